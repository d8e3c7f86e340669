-- pause.lua: pause a running run with a reason.
--
-- KEYS[1] run hash
-- ARGV[1] reason
-- ARGV[2] now (unix ms)
--
-- Returns the status before the call ('' when the run does not exist); only 'running' changes.
local s = redis.call('HGET', KEYS[1], 'status')
if s ~= 'running' then return s or '' end
redis.call('HSET', KEYS[1], 'status', 'paused', 'pause_reason', ARGV[1], 'paused_at', ARGV[2])
return 'running'
