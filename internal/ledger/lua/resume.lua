-- resume.lua: resume a paused run, keeping its pause reason as last_pause_reason.
--
-- Like pause.lua, the run keeps the token of the call that last changed its status
-- (changed_by), so a second run of the same call (its reply was lost) answers as the first.
--
-- KEYS[1] run hash
-- ARGV[1] now (unix ms)
-- ARGV[2] the call's token
--
-- Returns the status before the call ('' when the run does not exist); only 'paused' changes.
local s = redis.call('HGET', KEYS[1], 'status')
if s == 'running' and redis.call('HGET', KEYS[1], 'changed_by') == ARGV[2] then return 'paused' end
if s ~= 'paused' then return s or '' end
local reason = redis.call('HGET', KEYS[1], 'pause_reason') or ''
redis.call('HSET', KEYS[1], 'status', 'running', 'last_pause_reason', reason, 'resumed_at', ARGV[1], 'changed_by', ARGV[2])
redis.call('HDEL', KEYS[1], 'pause_reason')
return 'paused'
