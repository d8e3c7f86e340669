-- two.lua: read a key.
--
-- KEYS[1] the key
--
-- Returns its value.
return redis.call('GET', KEYS[1])
