-- claim.lua: claim a recipient before its send request.
--
-- A claim carries a token, unique to the attempt that makes it, and a claim that sends keeps
-- it in the entry (in the message id's place, empty while submitting otherwise): the same
-- claim run again (its reply was lost and the client, or the worker, asks again) answers
-- 'send' again and changes nothing, and a worker that never got the answer can give its claim
-- back by the token (finish.lua's ARGV[13]), which only applies while no request was made.
-- An entry claimed by a version before tokens holds none and is never taken for a re-run.
--
-- KEYS[1] run hash
-- KEYS[2] counts
-- KEYS[3] codes
-- KEYS[4] the recipient's ledger bucket
-- KEYS[5] the recipient's history bucket (read in a cancelled run; written when an
--         at-least-once claim finds an earlier attempt's)
-- ARGV[1] recipient field
-- ARGV[2] delivery policy: 'alo' at-least-once, anything else at-most-once
-- ARGV[3] now (unix ms)
-- ARGV[4] the claim's token: letters and digits ('' for none: then no re-run is recognised)
--
-- Returns {verdict, state letter, attempts, detail}; verdict is one of
--   'send'      claimed (entry now submitting, attempts counted): make the request; also the
--               answer, unchanged, to the same claim run again (the entry holds ARGV[4]); in
--               an at-least-once run, also when a claim from an earlier attempt was found
--               (counted in resent), whose message may have gone: the history gets
--               "retry_maybe_sent:<its attempt>:CLAIM_FOUND:<s>", as after a maybe-sent answer
--               (finish.lua), so that nothing that ends the entry unsent says "never sent";
--   'done'      already past sending (accepted, failed, skipped, unknown...): do nothing;
--               also the answer in a cancelled run to a queued entry whose resend was
--               released: the resend is withdrawn, the entry unknown again with the code it
--               had (withdraw_resend; its first message may have gone);
--   'withdrawn' the run is cancelled and the entry, queued for a retry after an answer that
--               may follow a message that went out (at-least-once), is now unknown with that
--               answer's code (detail), its history saying retry_withdrawn cancelled
--               (withdraw_retry), never skipped;
--   'paused'    the run is paused (detail: the reason): hold the task;
--   'cancelled' the run is cancelled: the entry is now skipped(cancelled);
--   'unknown'   a claim from an earlier attempt was found and the run is at-most-once:
--               the entry is now unknown;
--   'found'     the same, in a run that resends unknown recipients (resend_after): nothing
--               changed, the caller settles the entry unknown with Finish (attempts: the
--               earlier claim's), passing the task payload for the resend;
--   'norun' / 'noentry'  no such run or recipient.
local run = redis.call('HMGET', KEYS[1], 'status', 'resend_after')
local status = run[1]
if not status then return {'norun', '', 0, ''} end
local v = redis.call('HGET', KEYS[4], ARGV[1])
if not v then return {'noentry', '', 0, ''} end
local st, row, att, code, mid = parse(v)
local token = ARGV[4] or ''
if st == 's' and token ~= '' and mid == token then
  -- This very claim, run again: it made no request yet (its answer never reached its
  -- worker), so the answer it gave then is the answer now, whatever the run did since.
  return {'send', 's', att, code}
end
if st ~= 'p' and st ~= 'q' and st ~= 's' then return {'done', st, att, code} end
-- settle ends the entry in state letter to with code: written, counted by code, and the run
-- completed if that was its last entry.
local function settle(to, why)
  redis.call('HSET', KEYS[4], ARGV[1], to .. '|' .. row .. '|' .. att .. '|' .. why .. '|')
  move(KEYS[2], st, to)
  redis.call('HINCRBY', KEYS[3], names[to] .. ':' .. why, 1)
  maybe_complete(KEYS[1], KEYS[2], ARGV[3])
end
if status == 'cancelled' and st == 's' then
  -- An earlier attempt may have sent it: the truth is unknown, not "never sent".
  settle('u', 'CLAIM_FOUND')
  return {'unknown', 'u', att, 'CLAIM_FOUND'}
end
if status == 'cancelled' and st == 'q' then
  local h = redis.call('HGET', KEYS[5], ARGV[1])
  if resent_before(h) then
    code = withdraw_resend(KEYS[2], KEYS[4], KEYS[5], ARGV[1], h, row, att, 'cancelled', ARGV[3])
    maybe_complete(KEYS[1], KEYS[2], ARGV[3])
    return {'done', 'u', att, code}
  elseif maybe_sent_before(h) then
    code = withdraw_retry(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], h, 'q', row, att, 'cancelled', ARGV[3])
    maybe_complete(KEYS[1], KEYS[2], ARGV[3])
    return {'withdrawn', 'u', att, code}
  end
end
if status == 'cancelled' then
  settle('k', 'cancelled')
  return {'cancelled', 'k', att, 'cancelled'}
end
if status ~= 'running' then
  return {'paused', st, att, redis.call('HGET', KEYS[1], 'pause_reason') or status}
end
if st == 's' and ARGV[2] ~= 'alo' then
  -- A run that resends unknown recipients needs the task's payload with the entry: the
  -- caller settles it unknown with Finish, which keeps it.
  if run[2] then return {'found', 's', att, 'CLAIM_FOUND'} end
  settle('u', 'CLAIM_FOUND')
  return {'unknown', 'u', att, 'CLAIM_FOUND'}
end
if st == 's' then
  -- At-least-once: the earlier attempt's worker died mid-request, or its answer never came;
  -- its message may have gone, and it is sent again. Recorded as a retry after a maybe-sent
  -- answer: a skip, a cancel, a refusal that may have come later or attempts used up then
  -- leave the recipient unknown with CLAIM_FOUND, never skipped or failed.
  local h = redis.call('HGET', KEYS[5], ARGV[1])
  local ev = 'retry_maybe_sent:' .. att .. ':CLAIM_FOUND:' .. math.floor(tonumber(ARGV[3]) / 1000)
  if h then ev = h .. ';' .. ev end
  redis.call('HSET', KEYS[5], ARGV[1], ev)
end
att = att + 1
redis.call('HSET', KEYS[4], ARGV[1], 's|' .. row .. '|' .. att .. '|' .. code .. '|' .. token)
if st == 's' then
  redis.call('HINCRBY', KEYS[2], 'resent', 1)
else
  move(KEYS[2], st, 's')
end
redis.call('HINCRBY', KEYS[2], 'attempts', 1)
return {'send', 's', att, code}
