-- create_run.lua: create a run hash whole, or not at all when the id is taken.
--
-- KEYS[1] run hash
-- ARGV    field, value pairs
--
-- Returns 1 when created, 0 when it existed.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
