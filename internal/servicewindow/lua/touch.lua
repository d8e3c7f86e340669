-- touch.lua: record a customer's inbound message time, moving it only forward
-- (internal/servicewindow, Tracker.TouchTo).
--
-- KEYS[1] .. KEYS[n] -> KEYS[i] is the bucket hash of the i-th id (every bucket of one business
--                       shares its hash tag; two ids may share a bucket)
-- ARGV[1]   -> the inbound message's time, unix seconds
-- ARGV[2]   -> cutoff, unix seconds: a field whose time is at or before it has a closed window
-- ARGV[3]   -> the bucket's TTL in ms when this inbound time is its newest (window close - now,
--              plus a minute's grace)
-- ARGV[3+i] -> the field of the i-th id's window: phone digits or the BSUID, followed by '>'
--              and the business number's digits when the window is to a number
-- Returns the number of ids whose time moved forward (0: every id already held this time or
-- a later one).
--
-- A field is new when its customer had no open window (to that number): before adding it the
-- bucket drops its closed windows, so a bucket holds at most the windows that were open when
-- it last grew, plus one. The bucket's TTL is only ever extended, to the close of its newest window.
local at = tonumber(ARGV[1])
local cutoff = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local moved = 0
for i, key in ipairs(KEYS) do
  local field = ARGV[3 + i]
  local cur = redis.call('HGET', key, field)
  if not cur then
    local all = redis.call('HGETALL', key)
    local closed = {}
    for j = 1, #all, 2 do
      local t = tonumber(all[j + 1])
      if t == nil or t <= cutoff then
        closed[#closed + 1] = all[j]
      end
    end
    if #closed > 0 then
      redis.call('HDEL', key, unpack(closed))
    end
  end
  if not cur or tonumber(cur) == nil or tonumber(cur) < at then
    redis.call('HSET', key, field, at)
    moved = moved + 1
    if redis.call('PTTL', key) < ttl then
      redis.call('PEXPIRE', key, ttl)
    end
  end
end
return moved
