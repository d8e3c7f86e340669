-- cancel.lua: cancel a running or paused run.
--
-- Like pause.lua, the run keeps the token of the call that last changed its status
-- (changed_by) and the status it was cancelled from (cancelled_from), so a second run of the
-- same call (its reply was lost) answers as the first.
--
-- KEYS[1] run hash
-- ARGV[1] reason
-- ARGV[2] now (unix ms)
-- ARGV[3] the call's token
--
-- Returns the status before the call ('' when the run does not exist); only 'running' and
-- 'paused' change.
local s = redis.call('HGET', KEYS[1], 'status')
if s == 'cancelled' and redis.call('HGET', KEYS[1], 'changed_by') == ARGV[3] then
  return redis.call('HGET', KEYS[1], 'cancelled_from') or 'running'
end
if s ~= 'running' and s ~= 'paused' then return s or '' end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancel_reason', ARGV[1], 'cancelled_at', ARGV[2],
  'changed_by', ARGV[3], 'cancelled_from', s)
return s
