-- expanded.lua: mark expansion finished with the audience size, and complete the run if
-- every row is already terminal.
--
-- KEYS[1] run hash
-- KEYS[2] counts
-- ARGV[1] total rows; '' closes the expansion at the rows it accounted for so far (the sum
--         of the run's state counters), for a run that can read no more of its audience
-- ARGV[2] now (unix ms)
--
-- Returns 1 when the run completed, else 0.
local total = ARGV[1]
if total == '' then
  local c = redis.call('HMGET', KEYS[2], 'planned', 'queued', 'submitting', unpack(terminal))
  local sum = 0
  for i = 1, #c do sum = sum + (tonumber(c[i]) or 0) end
  total = sum
end
redis.call('HSET', KEYS[1], 'expanded', '1', 'total', total)
return maybe_complete(KEYS[1], KEYS[2], ARGV[2])
