-- expanded.lua: mark expansion finished with the audience size, and complete the run if
-- every row is already terminal.
--
-- KEYS[1] run hash
-- KEYS[2] counts
-- ARGV[1] total rows
-- ARGV[2] now (unix ms)
--
-- Returns 1 when the run completed, else 0.
redis.call('HSET', KEYS[1], 'expanded', '1', 'total', ARGV[1])
return maybe_complete(KEYS[1], KEYS[2], ARGV[2])
