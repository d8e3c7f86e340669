-- queued.lua: record that the send tasks of a batch exist: move queued_to past it.
--
-- Expansion plans entries straight as queued (plan.lua), so this moves the cursor only. Entries
-- still planned ('p', written by earlier versions of Herald) need no move: claim, skip, the
-- cancel sweep and delivery events take them as they take queued ones, and a resumed
-- expansion writes their tasks again. The run's queued_to cursor guards the batch; a cursor
-- already at the batch's end (the same script sent again after its reply was lost, or another
-- expansion of the run that wrote the same rows' tasks) is the batch done, not an error.
--
-- KEYS[1]   run hash
-- ARGV[1]   queued_to cursor before the batch
-- ARGV[2]   queued_to cursor after it
-- ARGV[3]   the audience file offset after the batch's last row
-- ARGV[4]   how many rows up to the batch's last row belong to the run (-1: not recorded)
--
-- Returns -1 when the cursor is neither at the batch's start nor at its end, else 0.
local cur = tonumber(redis.call('HGET', KEYS[1], 'queued_to') or '0')
if cur == tonumber(ARGV[2]) then return 0 end
if cur ~= tonumber(ARGV[1]) then return -1 end
local off = ARGV[2] .. ':' .. ARGV[3]
if tonumber(ARGV[4] or '-1') >= 0 then off = off .. ':' .. ARGV[4] end
redis.call('HSET', KEYS[1], 'queued_off', off, 'queued_to', ARGV[2])
return 0
