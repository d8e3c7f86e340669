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
-- KEYS[2n+3]         the sender's rate limit (its theoretical arrival time, µs of Redis TIME,
--                    as reserve.lua keeps it), when ARGV[11] > 0
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
-- ARGV[11] the sender's limit's burst tolerance at its configured rate (µs; 0: not moved)
--
-- A decrease widens the burst tolerance a reservation grants at (reserve.lua divides it by the
-- factor), so the sender's next grant would come earlier than before it: a Retry-After hold
-- (hold.lua) would end early. A decrease moves the limit's time, while it lies ahead, on by
-- the tolerance it adds, so the next grant stays where it was.
--
-- Returns {1 if lowered else 0, the factor now ('%.4f'), the share decided on ('%.4f'; ''
-- while holding)}.
local now, sec, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local every, step = tonumber(ARGV[7]), tonumber(ARGV[8])
local tol = tonumber(ARGV[11] or '0') or 0
if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[10])) end
local st = redis.call('HMGET', KEYS[1], 'f', 'at', 'dec')
local cur, after = 1, -1
if st[1] then
  local at = tonumber(st[2])
  if now < at then return {0, string.format('%.4f', tonumber(st[1])), ''} end
  cur = factor_at(st[1], at, now, every, step)
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
if tol > 0 and nf < cur then
  local lk = KEYS[2 * n + 3]
  local tat = tonumber(redis.call('GET', lk) or '')
  local t = redis.call('TIME')
  local rnow = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if tat and tat > rnow then
    tat = tat + tolerance(tol, nf) - tolerance(tol, cur)
    redis.call('SET', lk, string.format('%.0f', tat), 'PX', math.ceil((tat - rnow) / 1000) + 1000)
  end
end
return {1, string.format('%.4f', nf), string.format('%.4f', share)}
