-- sweep_cancelled.lua: mark every planned or queued entry of one bucket skipped(cancelled),
-- so a cancelled run completes without waiting for each of its tasks to come up.
--
-- Entries being sent right now (submitting) are left to their worker. A queued entry whose
-- resend was released (an unknown recipient queued for its one resend) is not skipped: its
-- first message may have gone, so it goes back to unknown with the code it had, as the
-- cancelled run's other unknown recipients stay (withdraw_resend). Nor is a queued entry
-- retried after an answer that may follow a message that went out (at-least-once): it becomes
-- unknown with that answer's code (withdraw_retry). Nothing changes unless the run is
-- cancelled.
--
-- KEYS[1] run hash
-- KEYS[2] counts
-- KEYS[3] codes
-- KEYS[4] the ledger bucket to sweep
-- KEYS[5] the bucket's history (same bucket number)
-- ARGV[1] now (unix ms)
--
-- Returns the number of entries skipped (a withdrawn resend or retry is not one).
if redis.call('HGET', KEYS[1], 'status') ~= 'cancelled' then return 0 end
local all = redis.call('HGETALL', KEYS[4])
local n, changed = 0, false
for i = 1, #all, 2 do
  local st, row, att = parse(all[i + 1])
  local h = false
  if st == 'q' then h = redis.call('HGET', KEYS[5], all[i]) end
  if st == 'q' and resent_before(h) then
    withdraw_resend(KEYS[2], KEYS[4], KEYS[5], all[i], h, row, att, 'cancelled', ARGV[1])
    changed = true
  elseif st == 'q' and maybe_sent_before(h) then
    withdraw_retry(KEYS[2], KEYS[3], KEYS[4], KEYS[5], all[i], h, 'q', row, att, 'cancelled', ARGV[1])
    changed = true
  elseif st == 'p' or st == 'q' then
    redis.call('HSET', KEYS[4], all[i], 'k|' .. row .. '|' .. att .. '|cancelled|')
    move(KEYS[2], st, 'k')
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[3], 'skipped:cancelled', n) end
if changed or n > 0 then maybe_complete(KEYS[1], KEYS[2], ARGV[1]) end
return n
