-- queued.lua: record that the send tasks of a batch exist: move queued_to past it.
--
-- Expansion plans entries straight as queued (plan.lua with 'q') and passes no entries. Entries
-- still planned ('p', written by earlier versions of Herald) that are passed become queued;
-- entries a worker already claimed are left alone. The run's queued_to cursor guards the batch.
--
-- KEYS[1]   run hash
-- KEYS[2]   counts
-- KEYS[3..] ledger buckets
-- ARGV[1]   queued_to cursor before the batch
-- ARGV[2]   queued_to cursor after it
-- ARGV[3]   the audience file offset after the batch's last row ('' when none)
-- then      (key index, recipient field) pairs
--
-- Returns -1 when the cursor does not match, else 0.
local cur = tonumber(redis.call('HGET', KEYS[1], 'queued_to') or '0')
if cur ~= tonumber(ARGV[1]) then return -1 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'queued_off', ARGV[2] .. ':' .. ARGV[3]) end
for i = 4, #ARGV, 2 do
  local k = KEYS[tonumber(ARGV[i])]
  local v = redis.call('HGET', k, ARGV[i + 1])
  if v and string.sub(v, 1, 1) == 'p' then
    redis.call('HSET', k, ARGV[i + 1], 'q' .. string.sub(v, 2))
    move(KEYS[2], 'p', 'q')
  end
end
redis.call('HSET', KEYS[1], 'queued_to', ARGV[2])
return 0
