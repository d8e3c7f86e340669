-- hold.lua: hold a GCRA rate limit until a time, so no reservation of it is granted before
-- then (Connectly asked for a wait with Retry-After).
--
-- KEYS[1]  the limit's key; its value is the theoretical arrival time (TAT), in µs on
--          Redis's clock (TIME), as reserve.lua keeps it.
-- ARGV[1]  the hold, µs from now.
-- ARGV[2]  the limit's burst tolerance, µs: a reservation is granted at TAT minus it, so the
--          TAT is set that much past the hold's end.
--
-- The TAT only moves forward: a longer hold already in place stays. The key expires a second
-- after the TAT, as reserve.lua sets it.
-- Returns the µs from now until the limit grants again (0 when it grants now).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tol = tonumber(ARGV[2])
local want = now + tonumber(ARGV[1]) + tol
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < want then
  tat = want
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
local wait = tat - tol - now
if wait < 0 then wait = 0 end
return string.format('%.0f', wait)
