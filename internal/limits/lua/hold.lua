-- hold.lua: hold a GCRA rate limit until a time, so no reservation of it is granted before
-- then (Connectly asked for a wait with Retry-After).
--
-- KEYS[1]  the limit's key; its value is the theoretical arrival time (TAT), in µs on
--          Redis's clock (TIME), as reserve.lua keeps it.
-- KEYS[2]  the sender's adaptive state (as reserve.lua reads it), when ARGV[3] > 0.
-- ARGV[1]  the hold, µs from now.
-- ARGV[2]  the limit's burst tolerance, µs, at its configured rate: a reservation is granted
--          at TAT minus the tolerance its adaptive factor scales (lib.lua), so the TAT is set
--          that much past the hold's end.
-- ARGV[3]  now (unix ms), the adaptive factor's clock, as reserve.lua's ARGV[3]; 0 when the
--          limit does not adapt (no KEYS[2]).
-- ARGV[4]  adaptive recovery: every (ms; 1 when none)
-- ARGV[5]  adaptive recovery: step
--
-- A factor lowered later during the hold keeps the hold: throttled.lua moves the TAT on by the
-- tolerance it adds. The TAT only moves forward: a longer hold already in place stays. The key
-- expires a second after the TAT, as reserve.lua sets it.
-- Returns the µs from now until the limit grants again (0 when it grants now).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tol = tonumber(ARGV[2])
local nowms = tonumber(ARGV[3] or '0') or 0
if nowms > 0 then
  local f = redis.call('HMGET', KEYS[2], 'f', 'at')
  if f[1] then tol = tolerance(tol, factor_at(f[1], f[2], nowms, tonumber(ARGV[4]), tonumber(ARGV[5]))) end
end
local want = now + tonumber(ARGV[1]) + tol
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < want then
  tat = want
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
local wait = tat - tol - now
if wait < 0 then wait = 0 end
return string.format('%.0f', wait)
