-- record.lua: record that a run's message to a customer was accepted, in the business's index
-- of recent sends (conversation/join.go, Index.Record). All keys share the business hash tag.
--
-- KEYS[1] -> the customer's bucket (rkeys.ConversationRecent): customer field ->
--            "SEQ:LEDGERBUCKET +LEFT ...", the run that messaged the customer last first;
--            LEFT is how many seconds the run had left before its until when it last did
--            (its until less LEFT is that time). LEFT is a token of its own after its run's
--            item, which stays SEQ:LEDGERBUCKET: an older Herald's receiver, which reads the
--            text after the first ':' as the bucket and skips a token without ':', reads
--            this entry (a rolling deploy upgrades the workers first). Read here too: items
--            without LEFT (an older Herald's), and SEQ:LEDGERBUCKET:LEFT (the one build that
--            wrote it), rewritten as SEQ:LEDGERBUCKET +LEFT; a +LEFT token with no item
--            just before it is dropped.
-- KEYS[2] -> run id -> SEQ (rkeys.ConversationRuns)
-- KEYS[3] -> SEQ -> "RUN|UNTIL", and "#" -> the last SEQ (rkeys.ConversationSeqs)
-- ARGV[1] -> the customer's field (phone digits, or the BSUID)
-- ARGV[2] -> run id
-- ARGV[3] -> until: unix seconds after which the run's replies trigger nothing
-- ARGV[4] -> now: unix seconds
-- ARGV[5] -> the entry's ledger bucket
-- ARGV[6] -> the most runs kept per customer (MaxRecentRuns)
--
-- A new run drops the runs whose until has passed from KEYS[2] and KEYS[3]; the customer's
-- entry keeps this run first (a run recorded again, for a follow-up, moves to the front with
-- its new LEFT), then their other live runs as they were, at most ARGV[6]; a customer new to
-- the bucket drops the bucket's customers whose runs are all past their until. Each key is
-- made to live at least until + 60 s (its TTL is only ever extended).
--
-- Returns the run's SEQ (its SEQ of before when the run is already numbered), or 0 when until
-- is not after now (nothing is recorded).
local deadline, now = tonumber(ARGV[3]), tonumber(ARGV[4])
if deadline <= now then
  return 0
end
local known = {}
local function live(seq)
  if known[seq] == nil then
    local v = redis.call('HGET', KEYS[3], seq)
    local u = nil
    if v then
      u = tonumber(string.match(v, '|(%d+)$'))
    end
    known[seq] = u ~= nil and u > now
  end
  return known[seq]
end
local seq = redis.call('HGET', KEYS[2], ARGV[2])
if not seq then
  -- A new run: number it, and drop the runs whose until has passed (the table holds only the
  -- runs still answerable, a few at a time).
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    if f ~= '#' then
      local run, u = string.match(v, '^(.*)|(%d+)$')
      if u == nil or tonumber(u) <= now then
        redis.call('HDEL', KEYS[3], f)
        if run then
          redis.call('HDEL', KEYS[2], run)
        end
      end
    end
  end
  seq = tostring(redis.call('HINCRBY', KEYS[3], '#', 1))
  redis.call('HSET', KEYS[2], ARGV[2], seq)
  redis.call('HSET', KEYS[3], seq, ARGV[2] .. '|' .. ARGV[3])
end
-- The tables live as long as their latest run.
local ttl = (deadline - now + 60) * 1000
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
-- The customer's entries: this run first, then the others still live, at most ARGV[6] runs
-- (the +LEFT tokens do not count). LEFT rather than the time itself keeps an entry a few
-- bytes (at most 30 days: 7 digits).
local out = { seq .. ':' .. ARGV[5], '+' .. tostring(deadline - now) }
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  -- A customer joins the bucket: drop the customers whose runs are all past their until, so
  -- a bucket that keeps being written (and so never expires) holds only live entries.
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local keep = false
    for e in string.gmatch(all[i + 1], '%S+') do
      local s = string.match(e, '^(%d+):')
      if s and live(s) then
        keep = true
        break
      end
    end
    if not keep then
      redis.call('HDEL', KEYS[1], all[i])
    end
  end
else
  local runs, max = 1, tonumber(ARGV[6])
  -- kept: the token just read is an item kept without its LEFT, which a +LEFT token next
  -- gives it.
  local kept = false
  for e in string.gmatch(cur, '%S+') do
    if string.match(e, '^%+%d+$') then
      if kept then
        out[#out + 1] = e
      end
      kept = false
    else
      kept = false
      local s, b, rest = string.match(e, '^(%d+):(%d+)(.*)$')
      if s then
        if runs >= max then
          break
        end
        if s ~= seq and live(s) then
          out[#out + 1] = s .. ':' .. b
          runs = runs + 1
          local left = string.match(rest, '^:(%d+)$')
          if left then
            out[#out + 1] = '+' .. left
          else
            kept = rest == ''
          end
        end
      end
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], table.concat(out, ' '))
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return tonumber(seq)
