-- create_run.lua: create a run hash whole, with its pick set when it has one, or nothing at all
-- when the id is taken.
--
-- The run keeps the token of the call that created it (created_by), as plan.lua keeps
-- planned_by: the same script sent again by that call, after its reply was lost, finds its own
-- run and answers created, not taken.
--
-- KEYS[1] run hash
-- KEYS[2] the run's pick set (the recipients a retry run sends to)
-- ARGV[1] the creating call's token (never '')
-- ARGV[2] n, the number of field and value arguments after it
-- ARGV[3..n+2] field, value pairs
-- ARGV[n+3..] the members of the pick set (none for a run that is not a retry)
--
-- Returns 1 when created, 2 when this token created it already, 0 when another call did.
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'created_by') == ARGV[1] then return 2 end
  return 0
end
local n = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'created_by', ARGV[1], unpack(ARGV, 3, n + 2))
-- unpack is bounded by Lua's stack: the members go in slices.
local i = n + 3
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('SADD', KEYS[2], unpack(ARGV, i, j))
  i = j + 1
end
return 1
