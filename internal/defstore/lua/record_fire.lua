-- record_fire.lua: move a campaign's last fire time forward, never back, unless the campaign
-- was removed.
--
-- KEYS[1] the campaign's last fire key
-- KEYS[2] the campaign's hash (its removed field; same {campaign} hash tag as KEYS[1])
-- ARGV[1] fire time (unix ms)
--
-- Returns 1 when the record moved, 0 when it was already at or after ARGV[1], -1 when the
-- campaign is marked removed (nothing is written: Remove deleted the record, and a tick handled
-- as rm ran must not bring it back for a later submit to catch up from).
if redis.call('HEXISTS', KEYS[2], 'removed') == 1 then return -1 end
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
