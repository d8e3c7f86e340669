package ledger

import "github.com/redis/go-redis/v9"

// luaLib is prepended to every script: entry parsing, counter moves and the completion check.
// An entry is "L|row|attempts|code|msgid" with L the state letter (see letters in state.go).
// The message id is last and may be a packed ULID, 17 bytes of any value including '|' (see
// format.go): parse takes everything after the fourth '|' as the id.
const luaLib = `
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
`

// planCmd writes one expansion batch of ledger entries, counting duplicates and skipped rows,
// exactly once per batch (guarded by the run's planned_to cursor). New entries are written in
// the state ARGV[4] names: planned ('p'), or queued ('q') when the expansion writes the
// batch's tasks right after (a crash before they exist is repaired by the resumed expansion,
// which enqueues every entry of the batch still queued, the TaskID keeping each single).
// Counters move once per batch, so the per-entry work in Redis is one HSETNX.
//
// KEYS[1] -> run hash, KEYS[2] -> counts, KEYS[3] -> codes, KEYS[4..] -> ledger buckets
// ARGV[1] -> cursor before the batch (rows), ARGV[2] -> cursor after it,
// ARGV[3] -> number of (reason, count) pairs after ARGV[4], ARGV[4] -> the new entries' state
// letter, then the pairs (rows skipped before reaching the ledger, e.g. invalid), then (key
// index, recipient field, row, skip reason) quadruples; a non-empty skip reason (e.g.
// suppressed) writes the entry as skipped(reason).
// Returns {-1} when the cursor does not match (the batch was applied already), else one flag
// per quadruple: 1 new, 2 skipped with its reason, 0 duplicate of an earlier row.
var planCmd = redis.NewScript(luaLib + `
local cur = tonumber(redis.call('HGET', KEYS[1], 'planned_to') or '0')
if cur ~= tonumber(ARGV[1]) then return {-1} end
local letter = ARGV[4]
local skipped, added, dup = 0, 0, 0
local reasons = {}
local i = 5
for j = 1, tonumber(ARGV[3]) do
  local n = tonumber(ARGV[i + 1])
  skipped = skipped + n
  reasons[ARGV[i]] = (reasons[ARGV[i]] or 0) + n
  i = i + 2
end
local out = {}
while i <= #ARGV do
  local k = KEYS[tonumber(ARGV[i])]
  local reason = ARGV[i + 3]
  local v = letter .. '|' .. ARGV[i + 2] .. '|0||'
  if reason ~= '' then v = 'k|' .. ARGV[i + 2] .. '|0|' .. reason .. '|' end
  if redis.call('HSETNX', k, ARGV[i + 1], v) == 1 then
    if reason == '' then
      added = added + 1
      out[#out + 1] = 1
    else
      skipped = skipped + 1
      reasons[reason] = (reasons[reason] or 0) + 1
      out[#out + 1] = 2
    end
  else
    skipped = skipped + 1
    dup = dup + 1
    out[#out + 1] = 0
  end
  i = i + 4
end
if added > 0 then redis.call('HINCRBY', KEYS[2], names[letter], added) end
if skipped > 0 then redis.call('HINCRBY', KEYS[2], 'skipped', skipped) end
if dup > 0 then reasons['duplicate'] = (reasons['duplicate'] or 0) + dup end
for r, n in pairs(reasons) do redis.call('HINCRBY', KEYS[3], 'skipped:' .. r, n) end
redis.call('HSET', KEYS[1], 'planned_to', ARGV[2])
return out
`)

// queuedCmd records that the send tasks of a batch exist: planned entries become queued.
// Entries a worker already claimed are left alone.
//
// KEYS[1] -> run hash, KEYS[2] -> counts, KEYS[3..] -> ledger buckets
// ARGV[1] -> queued_to cursor before the batch, ARGV[2] -> after, ARGV[3] -> the audience
// file offset after the batch's last row (empty: none), then (key index, recipient) pairs.
// Returns -1 when the cursor does not match, else 0.
var queuedCmd = redis.NewScript(luaLib + `
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
`)

// expandedCmd marks expansion finished with the audience size, and completes the run if
// every row is already terminal.
//
// KEYS[1] -> run hash, KEYS[2] -> counts. ARGV[1] -> total rows, ARGV[2] -> now (unix ms).
// Returns 1 when the run completed, else 0.
var expandedCmd = redis.NewScript(luaLib + `
redis.call('HSET', KEYS[1], 'expanded', '1', 'total', ARGV[1])
return maybe_complete(KEYS[1], KEYS[2], ARGV[2])
`)

// claimCmd claims a recipient before its send request.
//
// KEYS[1] -> run hash, KEYS[2] -> counts, KEYS[3] -> codes, KEYS[4] -> the recipient's bucket
// ARGV[1] -> recipient, ARGV[2] -> delivery policy ('alo' at-least-once, else at-most-once),
// ARGV[3] -> now (unix ms).
// Returns {verdict, state letter, attempts, detail}; verdict is one of
//
//	'send'      claimed (entry now submitting, attempts counted): make the request;
//	'done'      already past sending (accepted, failed, skipped, unknown...): do nothing;
//	'paused'    the run is paused (detail: the reason): hold the task;
//	'cancelled' the run is cancelled: the entry is now skipped(cancelled);
//	'unknown'   a claim from an earlier attempt was found and the run is at-most-once:
//	            the entry is now unknown;
//	'found'     the same, in a run that resends unknown recipients (resend_after): nothing
//	            changed, the caller settles the entry unknown with Finish (attempts: the
//	            earlier claim's), passing the task payload for the resend;
//	'norun' / 'noentry'  no such run or recipient.
var claimCmd = redis.NewScript(luaLib + `
local run = redis.call('HMGET', KEYS[1], 'status', 'resend_after')
local status = run[1]
if not status then return {'norun', '', 0, ''} end
local v = redis.call('HGET', KEYS[4], ARGV[1])
if not v then return {'noentry', '', 0, ''} end
local st, row, att, code, mid = parse(v)
if st ~= 'p' and st ~= 'q' and st ~= 's' then return {'done', st, att, code} end
if status == 'cancelled' and st == 's' then
  -- An earlier attempt may have sent it: the truth is unknown, not "never sent".
  redis.call('HSET', KEYS[4], ARGV[1], 'u|' .. row .. '|' .. att .. '|CLAIM_FOUND|')
  move(KEYS[2], 's', 'u')
  redis.call('HINCRBY', KEYS[3], 'unknown:CLAIM_FOUND', 1)
  maybe_complete(KEYS[1], KEYS[2], ARGV[3])
  return {'unknown', 'u', att, 'CLAIM_FOUND'}
end
if status == 'cancelled' then
  redis.call('HSET', KEYS[4], ARGV[1], 'k|' .. row .. '|' .. att .. '|cancelled|')
  move(KEYS[2], st, 'k')
  redis.call('HINCRBY', KEYS[3], 'skipped:cancelled', 1)
  maybe_complete(KEYS[1], KEYS[2], ARGV[3])
  return {'cancelled', 'k', att, 'cancelled'}
end
if status ~= 'running' then
  return {'paused', st, att, redis.call('HGET', KEYS[1], 'pause_reason') or status}
end
if st == 's' and ARGV[2] ~= 'alo' then
  -- A run that resends unknown recipients needs the task's payload with the entry: the
  -- caller settles it unknown with Finish, which keeps it.
  if run[2] then return {'found', 's', att, 'CLAIM_FOUND'} end
  redis.call('HSET', KEYS[4], ARGV[1], 'u|' .. row .. '|' .. att .. '|CLAIM_FOUND|')
  move(KEYS[2], 's', 'u')
  redis.call('HINCRBY', KEYS[3], 'unknown:CLAIM_FOUND', 1)
  maybe_complete(KEYS[1], KEYS[2], ARGV[3])
  return {'unknown', 'u', att, 'CLAIM_FOUND'}
end
att = att + 1
redis.call('HSET', KEYS[4], ARGV[1], 's|' .. row .. '|' .. att .. '|' .. code .. '|')
if st == 's' then
  redis.call('HINCRBY', KEYS[2], 'resent', 1)
else
  move(KEYS[2], st, 's')
end
redis.call('HINCRBY', KEYS[2], 'attempts', 1)
return {'send', 's', att, code}
`)

// finishCmd ends a claim: the entry moves from submitting to its outcome, or back to queued.
//
// KEYS[1] -> run hash, KEYS[2] -> counts, KEYS[3] -> codes, KEYS[4] -> the recipient's bucket,
// KEYS[5] -> the run's recent outcomes list, KEYS[6] -> the recipient's history bucket
// ARGV[1] -> recipient, ARGV[2] -> new state letter (a accepted, f failed, u unknown, k skipped
// without a request, its attempt given back; q back to queued), ARGV[3] -> code, ARGV[4] -> message id, ARGV[5] -> mode for q:
// 'retry' (a transient failure: the attempt stays counted), 'throttle' or 'hold' (the request
// did not count: the attempt is given back), ARGV[6] -> now (unix ms),
// ARGV[7] -> burst window (outcomes kept; 0 disables), ARGV[8] -> burst limit (a permanent
// failure whose code fills more than this many of the window pauses the run),
// ARGV[9] -> '1' when this failure is permanent and counts towards a burst,
// ARGV[10] -> the attempt number of the claim being settled (” to skip the check): a worker
// whose claim was taken over (its lease lapsed and another attempt claimed again) settles
// nothing. KEYS[7] -> the run's resend set, KEYS[8] -> its payloads, ARGV[11] -> the
// recipient's member in them ("<bucket>:<field>"), ARGV[12] -> the send task payload, kept
// when the outcome is unknown and the run resends unknown recipients (see track_unknown).
// Returns {1 if applied else 0, 1 if the run completed else 0, the prior state letter,
// the pause reason if this outcome paused the run for a burst else ”}.
var finishCmd = redis.NewScript(luaLib + `
local v = redis.call('HGET', KEYS[4], ARGV[1])
if not v then return {0, 0, '', ''} end
local st, row, att, code, mid = parse(v)
if st ~= 's' then return {0, 0, st, ''} end
if ARGV[10] ~= '' and tonumber(ARGV[10]) ~= att then return {0, 0, st, ''} end
local new, mode = ARGV[2], ARGV[5]
-- A skip at send time (a frequency cap) made no request either.
if ((new == 'q' and (mode == 'throttle' or mode == 'hold')) or new == 'k') and att > 0 then
  att = att - 1
  redis.call('HINCRBY', KEYS[2], 'attempts', -1)
end
redis.call('HSET', KEYS[4], ARGV[1], new .. '|' .. row .. '|' .. att .. '|' .. ARGV[3] .. '|' .. ARGV[4])
move(KEYS[2], 's', new)
-- History: every outcome of a recipient whose story is more than one clean accept.
local h = redis.call('HGET', KEYS[6], ARGV[1])
if h or new ~= 'a' or att > 1 then
  local ev = new
  if new == 'q' then ev = mode end
  ev = ev .. ':' .. att .. ':' .. ARGV[3] .. ':' .. math.floor(tonumber(ARGV[6]) / 1000)
  if h then ev = h .. ';' .. ev end
  redis.call('HSET', KEYS[6], ARGV[1], ev)
end
if new == 'u' then
  track_unknown(KEYS[1], KEYS[2], KEYS[7], KEYS[8], ARGV[11], ARGV[12], h, ARGV[6])
end
if new == 'q' then
  if mode == 'retry' then
    redis.call('HINCRBY', KEYS[2], 'retries', 1)
    redis.call('HINCRBY', KEYS[3], 'retried:' .. ARGV[3], 1)
  elseif mode == 'throttle' then
    redis.call('HINCRBY', KEYS[2], 'throttled', 1)
  end
  return {1, 0, st, ''}
end
if ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[3], names[new] .. ':' .. ARGV[3], 1) end
if new == 'a' and att > 1 then redis.call('HINCRBY', KEYS[2], 'accepted_after_retry', 1) end
local paused = ''
local window = tonumber(ARGV[7]) or 0
if window > 0 then
  local c = ARGV[3]
  if new == 'a' or c == '' then c = 'ok' end
  redis.call('LPUSH', KEYS[5], c)
  redis.call('LTRIM', KEYS[5], 0, window - 1)
  if ARGV[9] == '1' and redis.call('LLEN', KEYS[5]) >= window then
    local n = 0
    for _, v in ipairs(redis.call('LRANGE', KEYS[5], 0, window - 1)) do
      if v == ARGV[3] then n = n + 1 end
    end
    if n > tonumber(ARGV[8]) and redis.call('HGET', KEYS[1], 'status') == 'running' then
      paused = ARGV[3] .. ': ' .. n .. ' of the last ' .. window .. ' sends failed with this code'
      redis.call('HSET', KEYS[1], 'status', 'paused', 'pause_reason', paused, 'paused_at', ARGV[6])
    end
  end
end
return {1, maybe_complete(KEYS[1], KEYS[2], ARGV[6]), st, paused}
`)

// pauseCmd pauses a running run with a reason.
//
// KEYS[1] -> run hash. ARGV[1] -> reason, ARGV[2] -> now (unix ms).
// Returns the status before the call (” when the run does not exist); only 'running' changes.
var pauseCmd = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 'status')
if s ~= 'running' then return s or '' end
redis.call('HSET', KEYS[1], 'status', 'paused', 'pause_reason', ARGV[1], 'paused_at', ARGV[2])
return 'running'
`)

// skipCmd marks one planned or queued entry skipped with a reason (its task was deleted by an
// operator, say); entries already being sent or done are left alone.
//
// KEYS[1] -> run hash, KEYS[2] -> counts, KEYS[3] -> codes, KEYS[4] -> the recipient's bucket
// ARGV[1] -> recipient, ARGV[2] -> reason, ARGV[3] -> now (unix ms).
// Returns the prior state letter, and whether it changed, as {letter, 1|0}.
var skipCmd = redis.NewScript(luaLib + `
local v = redis.call('HGET', KEYS[4], ARGV[1])
if not v then return {'', 0} end
local st, row, att = parse(v)
if st ~= 'p' and st ~= 'q' then return {st, 0} end
redis.call('HSET', KEYS[4], ARGV[1], 'k|' .. row .. '|' .. att .. '|' .. ARGV[2] .. '|')
move(KEYS[2], st, 'k')
redis.call('HINCRBY', KEYS[3], 'skipped:' .. ARGV[2], 1)
maybe_complete(KEYS[1], KEYS[2], ARGV[3])
return {st, 1}
`)

// createRunCmd creates a run hash whole, or not at all when the id is taken.
//
// KEYS[1] -> run hash. ARGV -> field, value pairs. Returns 1 when created, 0 when it existed.
var createRunCmd = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)
