-- resume.lua: resume a paused run, keeping its pause reason as last_pause_reason.
--
-- KEYS[1] run hash
-- ARGV[1] now (unix ms)
--
-- Returns the status before the call ('' when the run does not exist); only 'paused' changes.
local s = redis.call('HGET', KEYS[1], 'status')
if s ~= 'paused' then return s or '' end
local reason = redis.call('HGET', KEYS[1], 'pause_reason') or ''
redis.call('HSET', KEYS[1], 'status', 'running', 'last_pause_reason', reason, 'resumed_at', ARGV[1])
redis.call('HDEL', KEYS[1], 'pause_reason')
return 'paused'
