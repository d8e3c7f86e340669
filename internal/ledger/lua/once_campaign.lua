-- once_campaign.lua: give a (campaign, rule, recipient) follow-up to one run, for once_per:
-- campaign. The first run to ask owns it; the same run asking again (a retried webhook, a
-- second receiver replica, a crash between this step and the entry) is answered yes again.
--
-- KEYS[1] the campaign's marker hash for the rule: recipient -> run
-- ARGV[1] recipient
-- ARGV[2] run
--
-- Returns 1 when the run owns the follow-up, 0 when another run does.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
if v == ARGV[2] then return 1 end
return 0
