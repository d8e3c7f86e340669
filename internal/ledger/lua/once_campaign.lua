-- once_campaign.lua: give a (campaign, rule, recipient) follow-up to one run, for once_per:
-- campaign. The first run to ask owns it; the same run asking again (a retried webhook, a
-- second receiver replica, a crash between this step and the entry) is answered yes again.
-- A run that finds it held by run ARGV[3] takes it over from that run (the caller has seen
-- that run's follow-up end without a message going out): only while that run still holds it,
-- so two receivers taking it over at once give it to one.
--
-- KEYS[1] the campaign's marker hash for the rule: recipient -> run
-- ARGV[1] recipient
-- ARGV[2] run
-- ARGV[3] the run to take it over from ('' for none)
--
-- Returns the run that owns the follow-up: ARGV[2], or the other run that does.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v or (ARGV[3] ~= '' and v == ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return ARGV[2]
end
return v
