-- repair_settle.lua: settle one entry that no task will ever send or settle (herald run
-- repair), only while it is still exactly as the repair read it before it looked for its
-- tasks: same state, attempts, code and claim token. asynq's keys are in other Cluster slots
-- than the run's, so the look for the entry's tasks cannot be part of this script; it holds
-- by construction instead: no Herald writer creates a task for a submitting entry, nor a
-- send task for a queued entry of a finished expansion, and any claim or settlement since the
-- read changed the entry (a new claim writes a new token), which this script then leaves
-- alone. An entry in the run's resend set is the resend sweep's and is left alone too.
--
-- A submitting entry (a claim no task will settle: its request may have gone) becomes unknown
-- with ARGV[4], as skip.lua settles a claim whose task was deleted: never skipped, and not
-- tracked for a resend, as its tasks are gone. A queued one whose resend was released, its
-- resend task gone before it made a request (it waited: held by a paused run, or for a
-- worker), is never skipped either, as its first message may have gone: the resend is
-- withdrawn, the entry back to unknown with the code it had, no longer counted in
-- resent_unknown, its history saying resend_withdrawn with ARGV[4] (withdraw_resend). A
-- planned or queued entry never sent becomes skipped with the reason ARGV[4]. A queued one
-- retried after an answer that may follow a message that went out (at-least-once:
-- maybe_sent_before), its retry task gone, is asked for either way: skipped (its task could
-- not be rebuilt, or its run was cancelled) or unknown; it is never skipped, as the recipient
-- may hold the message: it becomes unknown with that answer's code, its history saying
-- retry_withdrawn with ARGV[4] (withdraw_retry). The outcome goes in the recipient's history.
--
-- KEYS[1] run hash
-- KEYS[2] counts
-- KEYS[3] codes
-- KEYS[4] the recipient's ledger bucket
-- KEYS[5] the recipient's history bucket
-- KEYS[6] the run's resend set
-- ARGV[1] recipient field
-- ARGV[2] the entry as the repair read it
-- ARGV[3] new state letter: 'u' unknown or 'k' skipped
-- ARGV[4] code (unknown), why (a withdrawn resend or retry) or reason (skipped)
-- ARGV[5] now (unix ms)
-- ARGV[6] the recipient's member in the resend set ("<bucket>:<field>")
--
-- Returns {changed, completed}: 1 or 0 each (completed: this settlement completed the run).
local to = ARGV[3]
if to ~= 'u' and to ~= 'k' then
  return redis.error_reply('repair_settle: the new state must be u or k, not ' .. tostring(to))
end
local v = redis.call('HGET', KEYS[4], ARGV[1])
if v ~= ARGV[2] then return {0, 0} end
if redis.call('ZSCORE', KEYS[6], ARGV[6]) then return {0, 0} end
local st, row, att = parse(v)
local h = redis.call('HGET', KEYS[5], ARGV[1])
local maysent = st == 's' or (st == 'q' and resent_before(h))
if st == 'q' and not maysent and maybe_sent_before(h) then
  withdraw_retry(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], h, 'q', row, att, ARGV[4], ARGV[5])
  return {1, maybe_complete(KEYS[1], KEYS[2], ARGV[5])}
end
if (to == 'u' and not maysent) or (to == 'k' and (maysent or (st ~= 'p' and st ~= 'q'))) then
  return {0, 0}
end
if to == 'u' and st == 'q' then
  withdraw_resend(KEYS[2], KEYS[4], KEYS[5], ARGV[1], h, row, att, ARGV[4], ARGV[5])
  return {1, maybe_complete(KEYS[1], KEYS[2], ARGV[5])}
end
redis.call('HSET', KEYS[4], ARGV[1], to .. '|' .. row .. '|' .. att .. '|' .. ARGV[4] .. '|')
move(KEYS[2], st, to)
redis.call('HINCRBY', KEYS[3], names[to] .. ':' .. ARGV[4], 1)
local ev = to .. ':' .. att .. ':' .. ARGV[4] .. ':' .. math.floor(tonumber(ARGV[5]) / 1000)
if h then ev = h .. ';' .. ev end
redis.call('HSET', KEYS[5], ARGV[1], ev)
return {1, maybe_complete(KEYS[1], KEYS[2], ARGV[5])}
