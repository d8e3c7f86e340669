-- refund.lua: give back what a reservation (reserve.lua) took, for a send that did not happen.
--
-- KEYS[1] .. KEYS[n] the n rate limits, then the tier key when ARGV[2] is not '', then the cap
--                    key when ARGV[3] is not '', then the reservation's memo key when ARGV[6]
--                    > 0
-- ARGV[1]   n
-- ARGV[2]   tier member to remove ('' none)
-- ARGV[3]   cap field ('' none)
-- ARGV[4]   cap tag: the run whose mark is removed from the field
-- ARGV[5]   the tier member's score the reservation wrote (unix ms): the member is removed only
--           while its score is still that one. A later send to the same person (another run,
--           another sender) moves the score to its own time; that person was messaged, so the
--           member stays.
-- ARGV[6]   the memo's lifetime (ms; 0: no memo key)
-- ARGV[6+i] for i = 1..n: the emission interval (µs) limit i's theoretical arrival time moves
--           back by (the adaptive limit's scaled by the reservation's factor)
-- ARGV[6+n+i] for i = 1..n: the theoretical arrival time (µs) limit i must still hold for its
--           permit to go back, or 0 (missing: 0) to give it back whatever it holds. A limit
--           with no burst tolerance (the pair limit) passes the time the reservation left in
--           it: once a later reservation booked the next slot, moving the time back would hand
--           that same slot out again, so the permit is lost instead.
--
-- The memo (see reserve.lua) records what was given back: field g:<rate limit key>, g:tier or
-- g:cap. What it already records is not given back again, so this script sent a second time
-- with the same arguments gives nothing twice; and a second run of the reservation finds the
-- marks and books nothing. The memo is written when absent (the reservation was refused and
-- room adopted from another goes back, or its memo expired) and lives ARGV[6] ms from here.
--
-- Returns the number of rate limits refunded (those whose key still existed, held what ARGV
-- asks, and that the memo did not record as given back already).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local memoTTL = tonumber(ARGV[6])
local memo
if memoTTL > 0 then memo = KEYS[#KEYS] end
-- first marks part given back under the memo, and says whether it was not already.
local function first(part)
  if not memo then return true end
  return redis.call('HSETNX', memo, part, '1') == 1
end
local done = 0
for i = 1, n do
  if first('g:' .. KEYS[i]) then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '')
    local held = tonumber(ARGV[6 + n + i]) or 0
    if tat and (held == 0 or tat == held) then
      tat = tat - tonumber(ARGV[6 + i])
      if tat <= now then
        redis.call('DEL', KEYS[i])
      else
        redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
      end
      done = done + 1
    end
  end
end
local k = n + 1
if ARGV[2] ~= '' then
  if first('g:tier') and tonumber(redis.call('ZSCORE', KEYS[k], ARGV[2]) or '') == tonumber(ARGV[5]) then
    redis.call('ZREM', KEYS[k], ARGV[2])
  end
  k = k + 1
end
if ARGV[3] ~= '' and first('g:cap') then
  local v = redis.call('HGET', KEYS[k], ARGV[3])
  if v then
    local kept = {}
    for tg, ts in string.gmatch(v, '([^:,]+):(%d+)') do
      if tg ~= ARGV[4] then kept[#kept + 1] = tg .. ':' .. ts end
    end
    if #kept == 0 then redis.call('HDEL', KEYS[k], ARGV[3])
    else redis.call('HSET', KEYS[k], ARGV[3], table.concat(kept, ',')) end
  end
end
if memo then redis.call('PEXPIRE', memo, memoTTL) end
return done
