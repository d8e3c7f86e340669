-- followup.lua: create one follow-up entry (run, recipient, rule), exactly once, with its task
-- payload in the follow-up run's outbox. Every key is the follow-up run's (one hash tag).
--
-- A follow-up run ("RUN~RULE", FollowupRun) is a run of its own: its entries go through the
-- same claim, finish and delivery scripts as a campaign's. It is created by its first entry
-- and never marked expanded, so it never completes (replies keep adding entries until the
-- parent's on_reply.until).
--
-- KEYS[1] follow-up run hash
-- KEYS[2] counts
-- KEYS[3] codes
-- KEYS[4] the recipient's ledger bucket
-- KEYS[5] outbox: recipient field -> task payload
-- KEYS[6] outbox times: recipient field -> when the entry was created (unix ms)
-- ARGV[1] recipient field
-- ARGV[2] audience row of the recipient in the parent run
-- ARGV[3] task payload
-- ARGV[4] now (unix ms)
-- ARGV[5] skip reason: '' for none; else the entry is written skipped with it and no task
-- ARGV[6] the follow-up run's queue ('' leaves it): written every time, as is
-- ARGV[7] its resend_after (ms; '' for none), so that a follow-up run created by an earlier
--         version, with its parent's queue and no resend policy, takes them with its next entry
-- ARGV[8..] the run hash's fields and values, written when the run does not exist yet
--
-- Returns {verdict, payload}: 1 created (write its task), 2 it exists and its task may not
-- be written yet (write it again, payload: the one stored first), 0 it exists and its task
-- was written, 3 created skipped.
if redis.call('EXISTS', KEYS[1]) == 0 then
  local f = {}
  for i = 8, #ARGV do f[#f + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(f))
end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'queue', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'resend_after', ARGV[7]) end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then
  if redis.call('ZSCORE', KEYS[6], ARGV[1]) then
    return {2, redis.call('HGET', KEYS[5], ARGV[1]) or ''}
  end
  return {0, ''}
end
redis.call('HINCRBY', KEYS[1], 'total', 1)
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[1], 'k|' .. ARGV[2] .. '|0|' .. ARGV[5] .. '|')
  move(KEYS[2], nil, 'k')
  redis.call('HINCRBY', KEYS[3], 'skipped:' .. ARGV[5], 1)
  return {3, ''}
end
redis.call('HSET', KEYS[4], ARGV[1], 'q|' .. ARGV[2] .. '|0||')
move(KEYS[2], nil, 'q')
redis.call('HSET', KEYS[5], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[6], ARGV[4], ARGV[1])
return {1, ''}
