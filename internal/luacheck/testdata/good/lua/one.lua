-- one.lua: double a counter.
--
-- KEYS[1] the counter
--
-- Returns the new value.
return redis.call('SET', KEYS[1], twice(tonumber(redis.call('GET', KEYS[1]) or '1')))
