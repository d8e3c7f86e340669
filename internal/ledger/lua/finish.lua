-- finish.lua: end a claim: the entry moves from submitting to its outcome, or back to queued.
--
-- A worker whose claim was taken over (its lease lapsed and another attempt claimed again)
-- settles nothing, but for an accept of the attempt that left the entry unknown (below): ARGV[10] must match the entry's attempts, and ARGV[13], when given, the
-- claim's token (claim.lua): a claim whose answer was lost is given back by its token, and
-- only while the entry still holds it (no request was made). A recipient whose story is more
-- than one clean accept gets the outcome in its history (a fallback sent after a window
-- refusal, ARGV[14], is more). An unknown outcome in a run that
-- resends unknown recipients goes to the resend set with its task payload (see track_unknown).
-- A skip at send time of an entry retried after an answer that may follow a message that went
-- out (mode 'retry_maybe_sent' in its history) settles it unknown instead (withdraw_retry): the
-- recipient may hold the message. So does a failure that is not permanent (ARGV[9] not '1': the
-- attempts used up on answers that say nothing went) of such an entry: it ends unknown with the
-- code of its last maybe-sent answer, counted once as unknown:<code>, its history saying
-- "retries_exhausted:<attempts>:<code>:<s>" with the last answer's code (ARGV[3]); it is not
-- tracked for a resend. A permanent refusal of such an entry settles it unknown the same way,
-- its history saying "retry_refused:<attempts>:<code>:<s>", unless it is a refusal of the
-- request itself (ARGV[16]: its number or content, which any earlier attempt would have got
-- too), which fails it: an opt-out, a closed window or Meta's per-user limit may have come
-- after the earlier attempt that may have sent. An entry's one resend (at-most-once with
-- resend_after, its first message maybe gone) ends the same ways: skipped at send time, its
-- resend is withdrawn (withdraw_resend); failed, it is unknown with the code it had, not
-- counted again.
-- A permanent failure whose code fills more than ARGV[8] of the last ARGV[7] outcomes pauses
-- the run.
--
-- KEYS[1]  run hash
-- KEYS[2]  counts
-- KEYS[3]  codes
-- KEYS[4]  the recipient's ledger bucket
-- KEYS[5]  the run's recent outcomes list
-- KEYS[6]  the recipient's history bucket
-- KEYS[7]  the run's resend set
-- KEYS[8]  its payloads
-- ARGV[1]  recipient field
-- ARGV[2]  new state letter: a accepted; f failed (when the entry was retried after a
--          maybe-sent answer: unknown instead, with that answer's code, its history saying
--          retries_exhausted when not permanent, ARGV[9], or retry_refused when permanent but
--          not a refusal of the request itself, ARGV[16]); u unknown; k skipped without a request (its
--          attempt given back; for an entry retried after a maybe-sent answer: unknown instead,
--          with that answer's code, its history saying retry_withdrawn with ARGV[3]); q back to
--          queued
-- ARGV[3]  code (a skip's reason)
-- ARGV[4]  message id
-- ARGV[5]  mode for q: 'retry' (a transient failure: the attempt stays counted),
--          'retry_maybe_sent' (the same, after an answer that may follow a message that went
--          out, at-least-once: counted as 'retry'; the entry is never skipped afterwards),
--          'throttle',
--          'hold' or 'requeue' (the request did not count: the attempt is given back; only a
--          throttle is counted, a requeue is the same task going on to send)
-- ARGV[6]  now (unix ms)
-- ARGV[7]  burst sample (outcomes kept; 0 disables)
-- ARGV[8]  burst limit
-- ARGV[9]  '1' when this failure is permanent and counts towards a burst (an entry retried
--          after a maybe-sent answer is settled unknown even so, retry_refused, unless ARGV[16])
-- ARGV[10] the attempt number of the claim being settled ('' to skip the check)
-- ARGV[11] the recipient's member in the resend set ("<bucket>:<field>")
-- ARGV[12] the send task payload, kept when the outcome is unknown and the run resends
--          unknown recipients
-- ARGV[13] the token of the claim being settled ('' to skip the check)
-- ARGV[14] the code of an earlier request of this claim that Connectly refused as outside the
--          customer service window (its fallback went instead; '' or absent: none): the history
--          gets "window_refused:<attempts>:<code>:<s>" before the outcome, and an accept (the
--          fallback's) is counted in counts' window_refused_fallback
-- ARGV[15] '1' when a failure (ARGV[2] f) is a session message Connectly refused as outside the
--          customer service window, with no fallback sent: counted in counts' window_refused
-- ARGV[16] '1' when a permanent failure (ARGV[9]) is a refusal of the request itself (its
--          number or content): an entry retried after a maybe-sent answer fails with it
--
-- Returns {applied, completed, prior state letter, pause reason, withdrawn, exhausted,
-- refused}: applied, completed, exhausted and refused are 1 or 0, withdrawn 0, 1 or 2
-- (completed: this outcome completed the run; withdrawn: a skip settled the entry unknown
-- instead, 1 a retry's (withdraw_retry), 2 a resend's (withdraw_resend); exhausted: a failure that is not permanent settled it unknown instead,
-- retries_exhausted; refused: a permanent refusal not of the request itself did,
-- retry_refused); the pause reason is set when this outcome paused the run for a burst, else
-- ''.
local v = redis.call('HGET', KEYS[4], ARGV[1])
if not v then return {0, 0, '', '', 0, 0, 0} end
local st, row, att, code, mid = parse(v)
if st == 'u' and ARGV[2] == 'a' and ARGV[10] ~= '' and tonumber(ARGV[10]) == att and
    (code == 'CLAIM_FOUND' or code == 'TASK_DELETED') then
  -- A late accept: the worker whose claim another attempt found (CLAIM_FOUND) or whose task
  -- was deleted under it (TASK_DELETED), making the entry unknown, got Connectly's answer
  -- after all: the message went, so the entry is accepted with its message id, as a delivery
  -- event settles an unknown entry (codes' settled:accepted), and it no longer waits for its
  -- resend. Its claim's token is gone with the claim (an unknown entry holds none): the
  -- attempt number, which no claim since has moved, is the check. An unknown entry whose
  -- resend was released (queued) is left to its resend.
  local status = redis.call('HGET', KEYS[1], 'status')
  redis.call('HSET', KEYS[4], ARGV[1], 'a|' .. row .. '|' .. att .. '|' .. ARGV[3] .. '|' .. ARGV[4])
  move(KEYS[2], 'u', 'a')
  redis.call('HINCRBY', KEYS[3], 'settled:accepted', 1)
  local h = redis.call('HGET', KEYS[6], ARGV[1])
  local ev = 'a:' .. att .. ':' .. ARGV[3] .. ':' .. math.floor(tonumber(ARGV[6]) / 1000)
  if h then ev = h .. ';' .. ev end
  redis.call('HSET', KEYS[6], ARGV[1], ev)
  untrack(KEYS[1], KEYS[2], KEYS[7], KEYS[8], ARGV[11], ARGV[6])
  local completed = 0
  if status ~= 'completed' and redis.call('HGET', KEYS[1], 'status') == 'completed' then completed = 1 end
  return {1, completed, 'u', '', 0, 0, 0}
end
if st ~= 's' then return {0, 0, st, '', 0, 0, 0} end
if ARGV[10] ~= '' and tonumber(ARGV[10]) ~= att then return {0, 0, st, '', 0, 0, 0} end
if (ARGV[13] or '') ~= '' and mid ~= ARGV[13] then return {0, 0, st, '', 0, 0, 0} end
local new, mode = ARGV[2], ARGV[5]
-- A skip at send time (a frequency cap) made no request either.
if ((new == 'q' and (mode == 'throttle' or mode == 'hold' or mode == 'requeue')) or new == 'k') and att > 0 then
  att = att - 1
  redis.call('HINCRBY', KEYS[2], 'attempts', -1)
end
local h = redis.call('HGET', KEYS[6], ARGV[1])
if new == 'k' and resent_before(h) then
  -- A resend skipped at send time (its send expired, the customer opted out or reached a cap,
  -- the window closed): its first message may have gone, so never "skipped, never sent": the
  -- resend is withdrawn and the entry unknown again with the code it had (withdraw_resend:
  -- history resend_withdrawn with the reason, no longer counted in resent_unknown).
  withdraw_resend(KEYS[2], KEYS[4], KEYS[6], ARGV[1], h, row, att, ARGV[3], ARGV[6], 's')
  return {1, maybe_complete(KEYS[1], KEYS[2], ARGV[6]), st, '', 2, 0, 0}
end
if new == 'k' and maybe_sent_before(h) then
  -- Skipped at send time (suppressed, capped) after an earlier attempt that may have sent:
  -- not sent again, but never "skipped, never sent" either.
  withdraw_retry(KEYS[2], KEYS[3], KEYS[4], KEYS[6], ARGV[1], h, 's', row, att, ARGV[3], ARGV[6])
  return {1, maybe_complete(KEYS[1], KEYS[2], ARGV[6]), st, '', 1, 0, 0}
end
-- The entry's code: the outcome's, but for a failure that ends the retries of an entry an
-- earlier attempt of which may have sent: the attempts ran out on answers that say nothing
-- went (a 408, a refused connection), which says nothing of that earlier one, so it is unknown
-- with the code of its last maybe-sent answer, never failed ("Connectly did not take it"). So
-- is a permanent refusal that may have come after that attempt (an opt-out, a closed window:
-- retry_refused); a refusal of the request itself (an invalid number, ARGV[16]), which that
-- attempt would have got too, still fails it. The same holds for an entry's one resend
-- (at-most-once with resend_after), whose first message may have gone too: it ends unknown
-- with the code it had when its resend was released, that code not counted again (it was
-- when the entry first became unknown). (Such retries are at-least-once's, and resends
-- at-most-once's: no history holds both.)
local code, exhausted, refused_after, resent = ARGV[3], 0, 0, resent_before(h)
if new == 'f' and (resent or maybe_sent_before(h)) and not (ARGV[9] == '1' and ARGV[16] == '1') then
  new = 'u'
  if resent then code = resend_code(h) else code = maybe_sent_code(h) end
  if ARGV[9] == '1' then refused_after = 1 else exhausted = 1 end
end
redis.call('HSET', KEYS[4], ARGV[1], new .. '|' .. row .. '|' .. att .. '|' .. code .. '|' .. ARGV[4])
move(KEYS[2], 's', new)
-- History: every outcome of a recipient whose story is more than one clean accept.
local refused = ARGV[14] or ''
if h or new ~= 'a' or att > 1 or refused ~= '' then
  local sec = math.floor(tonumber(ARGV[6]) / 1000)
  local ev = new
  if new == 'q' then ev = mode end
  -- The last attempt's own answer, under the event that says the retries ended on it.
  if exhausted == 1 then ev = 'retries_exhausted' end
  if refused_after == 1 then ev = 'retry_refused' end
  ev = ev .. ':' .. att .. ':' .. ARGV[3] .. ':' .. sec
  if refused ~= '' then ev = 'window_refused:' .. att .. ':' .. refused .. ':' .. sec .. ';' .. ev end
  if h then ev = h .. ';' .. ev end
  redis.call('HSET', KEYS[6], ARGV[1], ev)
end
if new == 'u' and exhausted == 0 and refused_after == 0 then
  track_unknown(KEYS[1], KEYS[2], KEYS[7], KEYS[8], ARGV[11], ARGV[12], h, ARGV[6])
end
if new == 'q' then
  if mode == 'retry' or mode == 'retry_maybe_sent' then
    redis.call('HINCRBY', KEYS[2], 'retries', 1)
    redis.call('HINCRBY', KEYS[3], 'retried:' .. ARGV[3], 1)
  elseif mode == 'throttle' then
    redis.call('HINCRBY', KEYS[2], 'throttled', 1)
  end
  return {1, 0, st, '', 0, 0, 0}
end
if code ~= '' and not (resent and (exhausted == 1 or refused_after == 1)) then
  redis.call('HINCRBY', KEYS[3], names[new] .. ':' .. code, 1)
end
-- A window refusal is counted also when it settled the entry unknown (retry_refused).
if (new == 'f' or refused_after == 1) and ARGV[15] == '1' then redis.call('HINCRBY', KEYS[2], 'window_refused', 1) end
if new == 'a' and att > 1 then redis.call('HINCRBY', KEYS[2], 'accepted_after_retry', 1) end
if new == 'a' and refused ~= '' then redis.call('HINCRBY', KEYS[2], 'window_refused_fallback', 1) end
local paused = ''
local sample = tonumber(ARGV[7]) or 0
if sample > 0 then
  -- The code the entry records: an entry settled unknown when its retries ran out counts
  -- under its maybe-sent answer's code, as any unknown outcome, not the failure's. A
  -- permanent refusal that settled it unknown counts under its own code: it is Connectly's
  -- refusal, and a burst of it pauses the run as any other.
  local c = code
  if refused_after == 1 then c = ARGV[3] end
  if new == 'a' or c == '' then c = 'ok' end
  redis.call('LPUSH', KEYS[5], c)
  redis.call('LTRIM', KEYS[5], 0, sample - 1)
  if ARGV[9] == '1' and redis.call('LLEN', KEYS[5]) >= sample then
    local n = 0
    for _, v in ipairs(redis.call('LRANGE', KEYS[5], 0, sample - 1)) do
      if v == ARGV[3] then n = n + 1 end
    end
    if n > tonumber(ARGV[8]) and redis.call('HGET', KEYS[1], 'status') == 'running' then
      paused = ARGV[3] .. ': ' .. n .. ' of the last ' .. sample .. ' sends were refused with this code'
      redis.call('HSET', KEYS[1], 'status', 'paused', 'pause_reason', paused, 'paused_at', ARGV[6])
    end
  end
end
return {1, maybe_complete(KEYS[1], KEYS[2], ARGV[6]), st, paused, 0, exhausted, refused_after}
