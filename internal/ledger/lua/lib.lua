-- lib.lua: the functions every ledger script may call; prepended to most scripts (it is not a
-- script of its own, and defines no KEYS or ARGV).
--
-- An entry is "L|row|attempts|code|msgid" with L the state letter (see letters in state.go).
-- The message id is last and may be a packed ULID, 17 bytes of any value including '|' (see
-- format.go): parse takes everything after the fourth '|' as the id. While an entry is
-- submitting, that place holds the token of the claim that made it (claim.lua; empty in an
-- entry claimed before tokens).
--
--   parse(v)                          -> state letter, row, attempts (a number), code, message id
--   move(counts, from, to)            moves one entry between state counters (from nil: a new one)
--   maybe_complete(run, counts, now)  completes the run when it is done -> 1 if it is, else 0
--   resent_before(h)                  whether a history value holds the entry's one resend
--   resend_code(h)                    the code an entry had when its resend was released
--   withdraw_resend(...)              puts an entry whose resend was released, queued or being
--                                     sent, back to unknown -> the code it had before
--   maybe_sent_before(h)              whether a history value holds a retry after an answer that
--                                     may follow a message that went out (retry_maybe_sent)
--   maybe_sent_code(h)                the code of the last such answer ('' when none)
--   withdraw_retry(...)               settles unknown such an entry that will not be sent again
--                                     -> the code of its last maybe-sent answer
--   track_unknown(...)                puts an entry that just became unknown in the resend set
--   untrack(...)                      takes a member out of the resend set -> 1 if it was there
local names = {p='planned', q='queued', s='submitting', u='unknown', a='accepted', t='sent',
  d='delivered', r='read', f='failed', k='skipped'}
local terminal = {'accepted', 'sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'}
local function parse(v)
  local st, row, att, code, mid = string.match(v, '^(%a)|(%d*)|(%d*)|([^|]*)|(.*)$')
  return st, row, tonumber(att) or 0, code, mid
end
local function move(counts, from, to)
  if from then redis.call('HINCRBY', counts, names[from], -1) end
  redis.call('HINCRBY', counts, names[to], 1)
end
-- maybe_complete marks the run completed when it is expanded, every row is terminal and no
-- unknown recipient waits for its resend.
local function maybe_complete(run, counts, now)
  local m = redis.call('HMGET', run, 'expanded', 'total', 'status', 'finished')
  if m[1] ~= '1' then return 0 end
  if (tonumber(redis.call('HGET', counts, 'resend_waiting')) or 0) > 0 then return 0 end
  local c = redis.call('HMGET', counts, unpack(terminal))
  local sum = 0
  for i = 1, #c do sum = sum + (tonumber(c[i]) or 0) end
  if sum < (tonumber(m[2]) or 0) then return 0 end
  if m[3] == 'running' or m[3] == 'paused' then
    redis.call('HSET', run, 'status', 'completed')
  end
  if not m[4] then redis.call('HSET', run, 'finished', now) end
  return 1
end
-- resent_before reports whether a recipient's history already holds its one resend.
local function resent_before(h)
  return h ~= nil and h ~= false and string.find(';' .. h, ';resend:', 1, true) ~= nil
end
-- last_code returns the code of the last event named event in a history value ("<event>:
-- <attempt>:<code>:<s>"; '' when it has none).
local function last_code(h, event)
  local code = ''
  if not h then return code end
  for c in string.gmatch(';' .. h, ';' .. event .. ':%d*:([^:;]*):') do code = c end
  return code
end
-- resend_code returns the code an entry had when its resend was released (its last resend
-- event, "resend:<attempt>:<code>:<s>"; '' when none).
local function resend_code(h) return last_code(h, 'resend') end
-- withdraw_resend puts an entry whose resend was released (resent_before(h)) back to unknown
-- when the resend will not be sent (why: its run was cancelled, its task deleted, a skip's
-- reason): its first message
-- may have gone, so it is never skipped. It gets back the code it had when its resend was
-- released (its last resend event, "resend:<attempt>:<code>:<s>"), keeps its attempts, moves
-- from queued to unknown in counts, no longer counts in resent_unknown, and its history gets
-- "resend_withdrawn:<attempt>:<why>:<s>". Its code was counted when it first became unknown:
-- codes is left alone. The caller completes the run if need be (maybe_complete). The entry is
-- never tracked for a resend again (resent_before stays true), and its resend task, should it
-- still come, finds it unknown and sends nothing (claim.lua). from is its state letter: queued
-- (the default), or submitting for a skip at send time (finish.lua).
local function withdraw_resend(counts, bucket, history, field, h, row, att, why, now, from)
  local code = resend_code(h)
  redis.call('HSET', bucket, field, 'u|' .. row .. '|' .. att .. '|' .. code .. '|')
  move(counts, from or 'q', 'u')
  redis.call('HINCRBY', counts, 'resent_unknown', -1)
  redis.call('HSET', history, field, h .. ';resend_withdrawn:' .. att .. ':' .. why .. ':' .. math.floor(tonumber(now) / 1000))
  return code
end
-- maybe_sent_before reports whether a recipient's history holds a retry after an answer that
-- may follow a message that went out (a 5xx, or no answer after the request was written) in
-- an at-least-once run: finish.lua's mode 'retry_maybe_sent', whose event is
-- "retry_maybe_sent:<attempt>:<code>:<s>". Such a recipient may hold the message, so it is
-- never skipped (withdraw_retry).
local function maybe_sent_before(h)
  return h ~= nil and h ~= false and string.find(';' .. h, ';retry_maybe_sent:', 1, true) ~= nil
end
-- maybe_sent_code returns the code of the last retry_maybe_sent event of a history value ('' when
-- it has none): the answer an entry that may hold the message is settled unknown with.
local function maybe_sent_code(h) return last_code(h, 'retry_maybe_sent') end
-- withdraw_retry settles unknown an entry whose earlier attempt may have sent
-- (maybe_sent_before(h)) when it will not be sent again (why: its run was cancelled, its task
-- deleted, or the reason of a skip: expired, window_closed, capped...), where it would
-- otherwise be skipped, which says "never sent". from is its state letter: queued, or
-- submitting for a skip at send time (finish.lua, which gave the attempt back first). It
-- gets the code of its last maybe-sent answer (its last retry_maybe_sent event), keeps its
-- attempts, moves from `from` to unknown in counts, is counted once in codes as
-- unknown:<code> (it was never unknown before: its retry was a retry, counted as retried),
-- and its history gets "retry_withdrawn:<attempt>:<why>:<s>". The caller completes the run if
-- need be (maybe_complete). It is not tracked for a resend (no task payload comes with it),
-- and its retry task, should it still come, finds it unknown and sends nothing (claim.lua).
local function withdraw_retry(counts, codes, bucket, history, field, h, from, row, att, why, now)
  local code = maybe_sent_code(h)
  redis.call('HSET', bucket, field, 'u|' .. row .. '|' .. att .. '|' .. code .. '|')
  move(counts, from, 'u')
  redis.call('HINCRBY', codes, 'unknown:' .. code, 1)
  redis.call('HSET', history, field, h .. ';retry_withdrawn:' .. att .. ':' .. why .. ':' .. math.floor(tonumber(now) / 1000))
  return code
end
-- track_unknown puts an entry that just became unknown in the run's resend set, due after the
-- run's resend_after (ms), with its task payload; only for runs with that policy, not
-- cancelled, and never for an entry that had its resend (h: its history before this outcome).
local function track_unknown(run, counts, set, payloads, member, payload, h, now)
  local m = redis.call('HMGET', run, 'resend_after', 'status')
  local after = tonumber(m[1])
  if not after or after <= 0 or m[2] == 'cancelled' or payload == '' or resent_before(h) then return end
  if redis.call('ZADD', set, 'NX', tonumber(now) + after, member) == 1 then
    redis.call('HINCRBY', counts, 'resend_waiting', 1)
  end
  redis.call('HSET', payloads, member, payload)
end
-- untrack takes a member out of the resend set (settled, resent or given up) and completes
-- the run if it was the last thing the run waited for.
local function untrack(run, counts, set, payloads, member, now)
  if redis.call('ZREM', set, member) == 0 then return 0 end
  redis.call('HDEL', payloads, member)
  redis.call('HINCRBY', counts, 'resend_waiting', -1)
  if redis.call('EXISTS', run) == 1 then maybe_complete(run, counts, now) end
  return 1
end
