-- followups.lua: pause, resume or cancel the follow-ups (on_reply) of a completed run, leaving
-- the run's own status and counts as they are. A run still running or paused steers its
-- follow-ups by its own status (pause.lua, cancel.lua); once it has completed, replies keep
-- creating follow-ups until its on_reply.until, and this is what holds or drops them. The
-- state is the run hash's field followups: 'paused' or 'cancelled' (none: they go), with
-- followups_reason and followups_at; a resume keeps the pause's reason as
-- followups_last_reason. Like pause.lua, the run keeps the token of the call that last changed
-- it (followups_by) and the state before (followups_from), so a second run of the same call
-- (its reply was lost) answers as the first. The index of runs whose follow-ups are paused
-- (herald:followups:held) is in another Cluster slot: the caller writes it after this script
-- (ledger.setFollowups).
--
-- KEYS[1] run hash
-- ARGV[1] the state wanted: 'paused', 'cancelled', or '' (resume: a pause is lifted)
-- ARGV[2] reason ('' for a resume)
-- ARGV[3] now (unix ms)
-- ARGV[4] the call's token
--
-- Returns {status, before}: the run's status ('' when the run does not exist) and its
-- follow-ups' state before the call. Only a completed run changes, and only from '' to paused,
-- from '' or paused to cancelled, and from paused to ''.
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return {'', ''} end
local f = redis.call('HGET', KEYS[1], 'followups') or ''
if redis.call('HGET', KEYS[1], 'followups_by') == ARGV[4] then
  return {s, redis.call('HGET', KEYS[1], 'followups_from') or ''}
end
if s ~= 'completed' then return {s, f} end
local to = ARGV[1]
local ok = (to == 'paused' and f == '') or (to == 'cancelled' and f ~= 'cancelled') or (to == '' and f == 'paused')
if not ok then return {s, f} end
if to == '' then
  redis.call('HSET', KEYS[1], 'followups_last_reason', redis.call('HGET', KEYS[1], 'followups_reason') or '')
  redis.call('HDEL', KEYS[1], 'followups', 'followups_reason')
else
  redis.call('HSET', KEYS[1], 'followups', to, 'followups_reason', ARGV[2])
end
redis.call('HSET', KEYS[1], 'followups_at', ARGV[3], 'followups_by', ARGV[4], 'followups_from', f)
return {s, f}
