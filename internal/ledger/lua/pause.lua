-- pause.lua: pause a running run with a reason.
--
-- The run keeps the token of the call that last changed its status (changed_by): go-redis
-- sends a script again when its reply was lost, and the second run then finds the run paused
-- by its own call and answers as the first did, so the caller reads the pause as its own.
--
-- KEYS[1] run hash
-- ARGV[1] reason
-- ARGV[2] now (unix ms)
-- ARGV[3] the call's token
--
-- Returns the status before the call ('' when the run does not exist); only 'running' changes.
local s = redis.call('HGET', KEYS[1], 'status')
if s == 'paused' and redis.call('HGET', KEYS[1], 'changed_by') == ARGV[3] then return 'running' end
if s ~= 'running' then return s or '' end
redis.call('HSET', KEYS[1], 'status', 'paused', 'pause_reason', ARGV[1], 'paused_at', ARGV[2], 'changed_by', ARGV[3])
return 'running'
