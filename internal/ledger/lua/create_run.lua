-- create_run.lua: create a run hash whole, with its pick set when it has one, or nothing at all
-- when the id is taken.
--
-- KEYS[1] run hash
-- KEYS[2] the run's pick set (the recipients a retry run sends to)
-- ARGV[1] n, the number of field and value arguments after it
-- ARGV[2..n+1] field, value pairs
-- ARGV[n+2..] the members of the pick set (none for a run that is not a retry)
--
-- Returns 1 when created, 0 when it existed.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2, n + 1))
-- unpack is bounded by Lua's stack: the members go in slices.
local i = n + 2
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('SADD', KEYS[2], unpack(ARGV, i, j))
  i = j + 1
end
return 1
