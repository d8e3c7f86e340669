-- delivery.lua: apply one delivery webhook event to a recipient's entry and the run's delivery
-- statistics, in one round trip.
--
-- The events of one message are merged in a total order, whatever order they arrive in:
-- accepted < sent < failed < delivered < read. An event applies when it is above the entry's
-- state, else it is stale (a duplicate, or an event overtaken by a later one). So a failure
-- moves an accepted or sent entry to failed and is stale after delivered or read; a delivered
-- or read, which proves the message arrived, replaces a recorded delivery failure (a failed
-- entry that records a message id: a send that failed records none and is never moved) and
-- takes its counters back: failed:<code> in codes, df:<code> and dfc:<class> in the delivery
-- statistics, the class read from dfk:<code>, which records the class each code was counted
-- under (a failure recorded before dfk was written keeps its class count). Any arrival order of the same events thus ends in the same state and counters. A
-- suppression an opt-out failure wrote is the receiver's, and stays. An unknown entry is
-- settled by any event (and taken out of the resend set: it will not be sent again), and so is
-- one queued for its resend that has not been sent yet: the event can only be about the
-- earlier request, so the resend is withdrawn first (withdraw_resend, why 'settled').
-- Besides:
--   - an entry still being sent (submitting) is not touched: the event arrived before the
--     worker recorded the send and the caller parks it; this comes first, as the entry holds
--     no message id yet (its claim's token is where the id goes);
--   - with ARGV[7] '1' (the event was matched to the entry by guesswork, not by callbackData)
--     the entry must record exactly the event's message id, or it is not touched: checked
--     again when a parked event is retried, once the send recorded its id. An unknown entry
--     records none (its send's answer was lost), so only an event with callbackData settles it;
--   - an entry still planned or queued (but for a released resend, above) is not touched: the
--     event arrived before the worker recorded the send (or while a retry is under way) and the
--     caller parks it;
--   - an entry that records a different message id is not touched: the event is about an
--     earlier message to the same person (an at-least-once resend replaced it);
--   - the first event that takes an entry to delivered or read adds one time-to-deliver
--     sample, and a delivery failure is counted by code and class;
--   - how the message was sent, the code an accepted entry records (session, fallback,
--     in_window; '' for a template outside any window), stays with the entry as it moves on to
--     sent, delivered or read. A delivery failure records its own code instead, so an accepted
--     or sent entry with such a code that fails gets the accept written to its history first
--     ("a:<attempts>:<code>:<s>", as finish.lua writes an accept, unless the history already
--     holds one: it has one whenever it exists); a delivered or read that replaces the failure
--     takes the code back from the history's last accept. The entry ends the same whatever
--     the order of the events.
--
-- KEYS[1] counts
-- KEYS[2] codes
-- KEYS[3] the recipient's ledger bucket
-- KEYS[4] the run's delivery statistics
-- KEYS[5] run hash
-- KEYS[6] the run's resend set
-- KEYS[7] its payloads
-- KEYS[8] the recipient's history bucket (read and written only as said above, and read for a
--         queued entry)
-- ARGV[1] recipient field
-- ARGV[2] new state letter: t sent, d delivered, r read, f failed
-- ARGV[3] code (for f)
-- ARGV[4] message id ('' matches any)
-- ARGV[5] time-to-deliver field ("ttd:<bucket>", '' when unknown)
-- ARGV[6] failure class (for f)
-- ARGV[7] '1' to require the recorded message id to equal ARGV[4]
-- ARGV[8] the recipient's member in the resend set ("<bucket>:<field>")
-- ARGV[9] now (unix ms)
--
-- Returns {verdict, prior state letter}; verdict is 'applied', 'stale' (a duplicate or an
-- out-of-order event), 'early' (park it), 'other' (another message) or 'noentry'.
local rank = {a = 1, t = 2, f = 3, d = 4, r = 5}
local v = redis.call('HGET', KEYS[3], ARGV[1])
if not v then return {'noentry', ''} end
local st, row, att, code, mid = parse(v)
if st == 's' then return {'early', st} end
if ARGV[7] == '1' and mid ~= ARGV[4] then return {'other', st} end
if st == 'q' then
  -- Queued for its one resend, released but not sent yet (a send would have claimed it): the
  -- event is about the earlier request, whose answer was lost, so it settles the entry as it
  -- settles an unknown one, and the resend is withdrawn (the entry unknown again, no longer
  -- counted as resent, history resend_withdrawn settled); its task, when it comes, finds the
  -- entry settled and sends nothing.
  local h = redis.call('HGET', KEYS[8], ARGV[1])
  if resent_before(h) then
    withdraw_resend(KEYS[1], KEYS[3], KEYS[8], ARGV[1], h, row, att, 'settled', ARGV[9])
    st = 'u'
  end
end
if st == 'p' or st == 'q' then return {'early', st} end
if mid ~= '' and ARGV[4] ~= '' and mid ~= ARGV[4] then return {'other', st} end
local new = ARGV[2]
-- A failed entry with no message id failed at the send: no delivery event moves it.
if st == 'f' and mid == '' then return {'stale', st} end
if st ~= 'u' and not (rank[st] and rank[new] > rank[st]) then return {'stale', st} end
-- decr takes one back from a counter, dropping the field at zero.
local function decr(key, field)
  if redis.call('HINCRBY', key, field, -1) <= 0 then redis.call('HDEL', key, field) end
end
if st == 'f' then
  -- A delivered or read replaces the delivery failure: its counters are taken back.
  if code ~= '' then decr(KEYS[2], 'failed:' .. code) end
  decr(KEYS[4], 'df:' .. code)
  local class = redis.call('HGET', KEYS[4], 'dfk:' .. code)
  if class then decr(KEYS[4], 'dfc:' .. class) end
end
if ARGV[4] ~= '' then mid = ARGV[4] end
local c = ''
if new == 'f' then
  c = ARGV[3]
  if (st == 'a' or st == 't') and code ~= '' and not redis.call('HGET', KEYS[8], ARGV[1]) then
    redis.call('HSET', KEYS[8], ARGV[1], 'a:' .. att .. ':' .. code .. ':' .. math.floor(tonumber(ARGV[9]) / 1000))
  end
elseif st == 'a' or st == 't' or st == 'd' then
  c = code
elseif st == 'f' then
  local h = redis.call('HGET', KEYS[8], ARGV[1])
  if h then
    for x in string.gmatch(';' .. h, ';a:%d*:([^:;]*):') do c = x end
  end
end
redis.call('HSET', KEYS[3], ARGV[1], new .. '|' .. row .. '|' .. att .. '|' .. c .. '|' .. mid)
move(KEYS[1], st, new)
if new == 'f' then
  if c ~= '' then redis.call('HINCRBY', KEYS[2], 'failed:' .. c, 1) end
  redis.call('HINCRBY', KEYS[4], 'df:' .. c, 1)
  redis.call('HINCRBY', KEYS[4], 'dfc:' .. ARGV[6], 1)
  redis.call('HSET', KEYS[4], 'dfk:' .. c, ARGV[6])
elseif (new == 'd' or new == 'r') and st ~= 'd' and ARGV[5] ~= '' then
  redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
end
if st == 'u' then
  redis.call('HINCRBY', KEYS[2], 'settled:' .. names[new], 1)
  untrack(KEYS[5], KEYS[1], KEYS[6], KEYS[7], ARGV[8], ARGV[9])
end
return {'applied', st}
