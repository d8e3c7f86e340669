-- cancel.lua: cancel a running or paused run.
--
-- KEYS[1] run hash
-- ARGV[1] reason
-- ARGV[2] now (unix ms)
--
-- Returns the status before the call ('' when the run does not exist); only 'running' and
-- 'paused' change.
local s = redis.call('HGET', KEYS[1], 'status')
if s ~= 'running' and s ~= 'paused' then return s or '' end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancel_reason', ARGV[1], 'cancelled_at', ARGV[2])
return s
