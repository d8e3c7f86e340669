-- skip.lua: mark one planned or queued entry skipped with a reason (its task was deleted by an
-- operator, say); entries already done are left alone, and so are entries being sent, unless
-- ARGV[4] names a code: then a submitting entry is settled unknown with it. That is for a
-- claim no task will settle any more (the task whose worker died mid-request was deleted): its
-- request may have gone, so the entry is neither skipped nor sent again, and, as claim.lua's
-- CLAIM_FOUND in a cancelled run, it is not tracked for a resend either. With ARGV[5] set (a
-- deleted task), a queued entry that already had its resend released is handled as a
-- submitting one: its first message may have gone, so it is never skipped: without a code it
-- is left alone (another task of the recipient may still send it); with one, the resend, which
-- made no request (it waited: held by a paused run, or for a worker), is withdrawn, the entry
-- back to unknown with the code it had, no longer counted in resent_unknown, its history saying
-- resend_withdrawn with ARGV[7] (withdraw_resend), never counted under a code of its own: no
-- worker died sending it. With ARGV[6] set (the run, or the run a follow-up follows, was cancelled),
-- such an entry is not skipped either: its resend is withdrawn, the entry back to unknown with
-- the code it had, as the cancelled run's other unknown recipients stay (withdraw_resend).
-- Whatever the arguments, a queued entry retried after an answer that may follow a message
-- that went out (at-least-once: maybe_sent_before) is never skipped either: it becomes
-- unknown with that answer's code, counted under it, its history saying retry_withdrawn with
-- ARGV[2] (withdraw_retry): its retry will not be sent, and the recipient may hold the
-- message. A queued entry whose resend was released is handled as above first.
--
-- KEYS[1] run hash
-- KEYS[2] counts
-- KEYS[3] codes
-- KEYS[4] the recipient's ledger bucket
-- KEYS[5] the recipient's history bucket (read for a queued entry)
-- ARGV[1] recipient field
-- ARGV[2] reason (also why, in its history, for a withdrawn retry or, with ARGV[6], resend)
-- ARGV[3] now (unix ms)
-- ARGV[4] code of an unknown outcome for a submitting entry ('' or absent: leave it alone)
-- ARGV[5] '1' to guard a queued entry whose resend was released, as a submitting one
-- ARGV[6] '1' to withdraw the resend of a queued entry whose resend was released (it becomes
--         unknown, its history saying resend_withdrawn with ARGV[2])
-- ARGV[7] why a resend the guard (ARGV[5]) withdraws, with a code (ARGV[4]), was withdrawn, for
--         its history ('' or absent: ARGV[4])
-- ARGV[8] '1' to skip only while the run is running (a worker's own skip, such as a closed
--         window's): when the entry is planned, queued or submitting and the run is paused,
--         cancelled, completed or gone, nothing changes and the reply says the run's status, so
--         the caller holds the task (paused) or ends it as its claim would (cancelled)
--
-- Returns {prior state letter, 1 if it changed else 0, the state letter it moved to ('' if none),
-- the run's status when ARGV[8] held the skip back ('' otherwise; also '' for a run that is gone),
-- what was withdrawn when the entry became unknown instead of skipped: 'resend' (a released
-- resend: unknown again, as it was before it), 'retry' (a retry after a maybe-sent answer:
-- newly unknown), or ''}.
local v = redis.call('HGET', KEYS[4], ARGV[1])
if not v then return {'', 0, '', '', ''} end
local st, row, att = parse(v)
if ARGV[8] == '1' and (st == 'p' or st == 'q' or st == 's') then
  local status = redis.call('HGET', KEYS[1], 'status') or ''
  if status ~= 'running' then return {st, 0, '', status, ''} end
end
local to, why = 'k', ARGV[2]
local h = false
if st == 'q' then h = redis.call('HGET', KEYS[5], ARGV[1]) end
if st == 'q' and ARGV[6] == '1' and resent_before(h) then
  withdraw_resend(KEYS[2], KEYS[4], KEYS[5], ARGV[1], h, row, att, ARGV[2], ARGV[3])
  maybe_complete(KEYS[1], KEYS[2], ARGV[3])
  return {st, 1, 'u', '', 'resend'}
end
local guarded = st == 's' or (st == 'q' and ARGV[5] == '1' and resent_before(h))
if guarded and (ARGV[4] or '') == '' then
  return {st, 0, '', '', ''}
elseif guarded and st == 'q' then
  local withdrawn = ARGV[7]
  if not withdrawn or withdrawn == '' then withdrawn = ARGV[4] end
  withdraw_resend(KEYS[2], KEYS[4], KEYS[5], ARGV[1], h, row, att, withdrawn, ARGV[3])
  maybe_complete(KEYS[1], KEYS[2], ARGV[3])
  return {st, 1, 'u', '', 'resend'}
elseif guarded then
  to, why = 'u', ARGV[4]
elseif st == 'q' and maybe_sent_before(h) then
  withdraw_retry(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], h, 'q', row, att, ARGV[2], ARGV[3])
  maybe_complete(KEYS[1], KEYS[2], ARGV[3])
  return {st, 1, 'u', '', 'retry'}
elseif st ~= 'p' and st ~= 'q' then
  return {st, 0, '', '', ''}
end
redis.call('HSET', KEYS[4], ARGV[1], to .. '|' .. row .. '|' .. att .. '|' .. why .. '|')
move(KEYS[2], st, to)
redis.call('HINCRBY', KEYS[3], names[to] .. ':' .. why, 1)
maybe_complete(KEYS[1], KEYS[2], ARGV[3])
return {st, 1, to, '', ''}
