-- record_fire.lua: move a campaign's last fire time forward, never back.
--
-- KEYS[1] the campaign's last fire key
-- ARGV[1] fire time (unix ms)
--
-- Returns 1 when the record moved, else 0.
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
