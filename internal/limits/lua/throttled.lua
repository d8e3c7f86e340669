-- throttled.lua: count one throttled send and let the sender's adaptive controller decide.
--
-- Within the hold after a decrease it does nothing more; otherwise, when the throttled share of
-- the period's whole seconds after the last decrease's is over the threshold, the factor drops
-- to the rate that got through in the latest of those seconds with any traffic (the rate the
-- sender used then, at most its factor, times the share not throttled), not below the floor,
-- and holds. The period decides whether (its average is steady against random throttles), the
-- latest second how far (the average lags when throttling has just begun).
--
-- KEYS[1]            the controller's state (hash: f factor, at when recovery starts ms, dec
--                    the last decrease ms, s the share it answered)
-- KEYS[2]            this second's throttle count
-- KEYS[3..n+2]       the throttle counts of the n seconds before it, newest first
-- KEYS[n+3..2n+2]    the reservation counts of the same seconds, newest first
-- ARGV[1]  now (unix ms)
-- ARGV[2]  now (unix s)
-- ARGV[3]  n, the period in whole seconds
-- ARGV[4]  hold after a decrease (ms)
-- ARGV[5]  threshold (throttled share)
-- ARGV[6]  min factor
-- ARGV[7]  recovery every (ms)
-- ARGV[8]  recovery step
-- ARGV[9]  configured rate (sends/s; 0: unknown, the factor is scaled instead)
-- ARGV[10] TTL of a throttle count (ms)
--
-- Returns {1 if lowered else 0, the factor now ('%.4f'), the share decided on ('%.4f'; ''
-- while holding)}.
local now, sec, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local every, step = tonumber(ARGV[7]), tonumber(ARGV[8])
if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[10])) end
local st = redis.call('HMGET', KEYS[1], 'f', 'at', 'dec')
local cur, after = 1, -1
if st[1] then
  local at = tonumber(st[2])
  if now < at then return {0, string.format('%.4f', tonumber(st[1])), ''} end
  cur = tonumber(st[1]) + math.floor((now - at) / every) * step
  if cur > 1 then cur = 1 end
  -- Sends reserved before the decrease still land in the second after it.
  after = math.floor(tonumber(st[3] or st[2]) / 1000)
end
local thr, res = 0, 0
local rthr, rres, ractive = 0, 0, 0 -- the latest second with traffic
for i = 1, n do
  if sec - i > after then
    local t = tonumber(redis.call('GET', KEYS[2 + i]) or '0') or 0
    local r = tonumber(redis.call('GET', KEYS[2 + n + i]) or '0') or 0
    thr = thr + t
    res = res + r
    if ractive < 1 and (t > 0 or r > 0) then
      rthr, rres, ractive = rthr + t, rres + r, ractive + 1
    end
  end
end
local share = 0
if thr > 0 then share = thr / math.max(thr, res) end
if share <= tonumber(ARGV[5]) then
  return {0, string.format('%.4f', cur), string.format('%.4f', share)}
end
-- The period says whether to decrease; the latest second with traffic says how far.
local rshare = 0
if rthr > 0 then rshare = rthr / math.max(rthr, rres) end
local used = cur
local rate = tonumber(ARGV[9])
if rate > 0 and ractive > 0 then used = math.min(cur, rres / (ractive * rate)) end
local nf = used * (1 - rshare)
if nf < tonumber(ARGV[6]) then nf = tonumber(ARGV[6]) end
local hold = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'f', string.format('%.4f', nf), 'at', string.format('%.0f', now + hold),
  'dec', string.format('%.0f', now), 's', string.format('%.4f', share))
redis.call('PEXPIRE', KEYS[1], hold + math.ceil((1 - nf) / step + 1) * every)
return {1, string.format('%.4f', nf), string.format('%.4f', share)}
