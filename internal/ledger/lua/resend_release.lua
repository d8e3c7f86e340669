-- resend_release.lua: give a leased unknown recipient its one resend, if it still needs it.
--
-- Checks, in one step, that the entry is still unknown (no delivery event settled it), that it
-- never had a resend (its history holds no resend event) and that the run is not cancelled;
-- then moves it unknown → queued, counts resent_unknown and records "resend" in its history.
-- The member stays in the set (leased) until the caller has enqueued the resend task and calls
-- resend_done; an entry found queued after its resend (the caller died before that) is handed
-- out again, and the task's fixed id keeps it one task.
--
-- KEYS[1] run hash
-- KEYS[2] counts
-- KEYS[3] the recipient's ledger bucket
-- KEYS[4] the recipient's history bucket
-- KEYS[5] the run's resend set
-- KEYS[6] its payloads
-- ARGV[1] member ("<bucket>:<field>")
-- ARGV[2] the recipient's ledger field
-- ARGV[3] now (unix ms)
--
-- Returns {verdict, payload}: 'enqueue' with the send task's payload (enqueue the resend task,
-- then call resend_done), 'gone' (no longer in the set: another sweeper finished it), or why
-- nothing is sent and the member was removed: 'norun', 'noentry', 'cancelled', 'resent' (it had
-- its resend), 'nopayload', 'settled' (no longer unknown).
local function drop(why)
  untrack(KEYS[1], KEYS[2], KEYS[5], KEYS[6], ARGV[1], ARGV[3])
  return {why, ''}
end
if not redis.call('ZSCORE', KEYS[5], ARGV[1]) then return {'gone', ''} end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return drop('norun') end
local v = redis.call('HGET', KEYS[3], ARGV[2])
if not v then return drop('noentry') end
local st, row, att, code = parse(v)
local h = redis.call('HGET', KEYS[4], ARGV[2])
local payload = redis.call('HGET', KEYS[6], ARGV[1])
if st == 'u' then
  if status == 'cancelled' then return drop('cancelled') end
  if resent_before(h) then return drop('resent') end
  if not payload then return drop('nopayload') end
  redis.call('HSET', KEYS[3], ARGV[2], 'q|' .. row .. '|' .. att .. '|' .. code .. '|')
  move(KEYS[2], 'u', 'q')
  redis.call('HINCRBY', KEYS[2], 'resent_unknown', 1)
  local ev = 'resend:' .. att .. ':' .. code .. ':' .. math.floor(tonumber(ARGV[3]) / 1000)
  if h then ev = h .. ';' .. ev end
  redis.call('HSET', KEYS[4], ARGV[2], ev)
  return {'enqueue', payload}
end
if st == 'q' and payload and resent_before(h) then return {'enqueue', payload} end
return drop('settled')
