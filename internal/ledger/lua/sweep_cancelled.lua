-- sweep_cancelled.lua: mark every planned or queued entry of one bucket skipped(cancelled),
-- so a cancelled run completes without waiting for each of its tasks to come up.
--
-- Entries being sent right now (submitting) are left to their worker. Nothing changes unless
-- the run is cancelled.
--
-- KEYS[1] run hash
-- KEYS[2] counts
-- KEYS[3] codes
-- KEYS[4] the ledger bucket to sweep
-- ARGV[1] now (unix ms)
--
-- Returns the number of entries skipped.
if redis.call('HGET', KEYS[1], 'status') ~= 'cancelled' then return 0 end
local all = redis.call('HGETALL', KEYS[4])
local n = 0
for i = 1, #all, 2 do
  local st, row, att = parse(all[i + 1])
  if st == 'p' or st == 'q' then
    redis.call('HSET', KEYS[4], all[i], 'k|' .. row .. '|' .. att .. '|cancelled|')
    move(KEYS[2], st, 'k')
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[3], 'skipped:cancelled', n)
  maybe_complete(KEYS[1], KEYS[2], ARGV[1])
end
return n
