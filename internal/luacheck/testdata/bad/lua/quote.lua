-- quote.lua: an empty member (” none).
--
-- KEYS[1] a key
--
-- Returns 1.
return 1
