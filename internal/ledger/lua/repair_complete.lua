-- repair_complete.lua: finish a run whose completion check never ran (herald run repair).
--
-- A run completes in the script that makes its last row terminal (lib.lua's maybe_complete);
-- one whose rows are all terminal while it still says running or paused missed that check,
-- and one whose resend_waiting counter is above its resend set's size (members removed
-- outside Herald) waits for resends that will never come. With ARGV[2] = '1' this sets
-- resend_waiting to the set's size and runs the completion check; otherwise it only says
-- what that would do.
--
-- KEYS[1] run hash
-- KEYS[2] counts
-- KEYS[3] the run's resend set
-- ARGV[1] now (unix ms)
-- ARGV[2] '1' to apply, else '0'
--
-- Returns {resend_waiting as counted, members in the resend set, completes}: completes is 1
-- when the run completed (ARGV[2] = '1') or would complete, else 0.
local counted = tonumber(redis.call('HGET', KEYS[2], 'resend_waiting')) or 0
local waiting = redis.call('ZCARD', KEYS[3])
local m = redis.call('HMGET', KEYS[1], 'status', 'expanded', 'total')
if m[1] ~= 'running' and m[1] ~= 'paused' then return {counted, waiting, 0} end
if ARGV[2] == '1' then
  if counted ~= waiting then redis.call('HSET', KEYS[2], 'resend_waiting', waiting) end
  return {counted, waiting, maybe_complete(KEYS[1], KEYS[2], ARGV[1])}
end
if m[2] ~= '1' or waiting > 0 then return {counted, waiting, 0} end
local c = redis.call('HMGET', KEYS[2], unpack(terminal))
local sum = 0
for i = 1, #c do sum = sum + (tonumber(c[i]) or 0) end
if sum < (tonumber(m[3]) or 0) then return {counted, waiting, 0} end
return {counted, waiting, 1}
