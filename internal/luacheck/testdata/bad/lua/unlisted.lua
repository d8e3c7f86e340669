-- unlisted.lua: a script the test does not list.
--
-- KEYS[1] a key
--
-- Returns 1.
return 1
