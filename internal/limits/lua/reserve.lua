-- reserve.lua: reserve a send: frequency cap, daily tier, then one permit from every rate limit
-- at the earliest time all allow it. Nothing is written unless everything is granted. A run
-- with a memo key answers a second run with the same key (a command sent again after its
-- answer was lost) from the memo and takes nothing more.
--
-- KEYS (all under one hash tag), in this order:
--   KEYS[1] .. KEYS[n]  the n rate limits (GCRA: the theoretical arrival time, µs of Redis TIME)
--   then the tier key         when ARGV[4] > 0 (sorted set: member -> last send, unix ms)
--   then the cap key          when ARGV[7] > 0 (hash: field -> 'tag:ms,tag:ms...')
--   then the adaptive key     when ARGV[11] > 0 (hash: f = factor, at = when recovery starts, ms)
--   then the m service-window buckets (read whether or not there is a tier)
--   then the ARGV[14] usage keys (per-second reservation counts, INCR, 15 s TTL)
--   then the memo key         when ARGV[17] > 0 (hash: r = the granted answer, 'at,tier added,
--                             cap added,factor,binding,in window' with at the slot in µs of
--                             Redis TIME; g:<key>, g:tier, g:cap = what refund.lua gave back)
-- ARGV[1]  max wait (µs)
-- ARGV[2]  n, the number of rate limits
-- ARGV[3]  now (unix ms): the clock of the tier, the cap, the adaptive factor and the windows
-- ARGV[4]  tier limit (0: no tier)
-- ARGV[5]  tier period (ms)
-- ARGV[6]  tier member (the recipient)
-- ARGV[7]  cap max (0: no cap)
-- ARGV[8]  cap period (ms)
-- ARGV[9]  cap field (the recipient)
-- ARGV[10] cap tag (the run)
-- ARGV[11] the adaptive limit's 1-based position among KEYS[1] .. KEYS[n] (0: none)
-- ARGV[12] adaptive recovery: every (ms; 1 when none)
-- ARGV[13] adaptive recovery: step
-- ARGV[14] number of usage keys
-- ARGV[15] m, the number of service-window buckets
-- ARGV[16] service window length less the margin (ms)
-- ARGV[17] the memo's lifetime (ms; 0: no memo key)
-- ARGV[16+2i], ARGV[17+2i] for i = 1..n: limit i's emission interval and burst tolerance (µs)
-- ARGV[17+2n+1+j] for j = 0..m-1: the recipient's field in service-window bucket j
--
-- A window is open when its recorded time (unix s) * 1000 + ARGV[16] is after ARGV[3] (the
-- same test as openAt in reserve.go, for previews); the tier is skipped (not read, not
-- written) when any of the recipient's windows is open. The
-- rate limits run on Redis's clock (TIME), which all workers share.
--
-- The memo: a granted reservation writes its answer to the memo key (for ARGV[17] ms). A run
-- that finds the memo key reads nothing else and writes nothing: when it holds the answer and
-- nothing was given back it returns that answer again (its wait counted to the same slot:
-- negative once the slot has passed, so the caller finds itself late); when refund.lua gave something back under it (or wrote it without
-- an answer: the reservation it gave back for was refused) it returns a refusal with reason
-- 'given back'. A refused reservation writes no memo: it took nothing, and a second run may
-- be granted.
--
-- Returns {ok, wait, reason, tier added, cap added, factor, binding, in window, slot},
-- refusals included:
--   ok          1 reserved, 0 refused;
--   wait        µs (a string): the wait before the permit, or until one would be available
--               (for 'tier': until the oldest member leaves the period); negative only from
--               the memo, when the slot has passed;
--   reason      '' when reserved, else 'capped', 'tier', 'rate' or 'given back';
--   tier added  1 when the member is new in the tier, cap added 1 when the run's mark is new;
--   factor      the adaptive factor (a string, '%.4f'; '1' on a cap or tier refusal);
--   binding     the 1-based position of the rate limit that set the wait (0 none);
--   in window   1 when one of the recipient's service windows was open (0 on a tier refusal);
--   slot        µs of Redis TIME (a string): when the permits are for ('0' when refused).
--               A limit with no burst tolerance now holds slot + its interval, which
--               refund.lua checks before it gives that limit back.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local maxwait = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local nowms = tonumber(ARGV[3])
local tierLimit = tonumber(ARGV[4])
local capMax = tonumber(ARGV[7])
local aIdx = tonumber(ARGV[11])
local k = n + 1
local tierKey, capKey, aKey
if tierLimit > 0 then tierKey = KEYS[k]; k = k + 1 end
if capMax > 0 then capKey = KEYS[k]; k = k + 1 end
if aIdx > 0 then aKey = KEYS[k]; k = k + 1 end
local nUsage = tonumber(ARGV[14])
local m = tonumber(ARGV[15])
local memoTTL = tonumber(ARGV[17])
local memo
if memoTTL > 0 then
  memo = KEYS[k + m + nUsage]
  local h = redis.call('HGETALL', memo)
  if #h > 0 then
    local r, gone = nil, false
    for i = 1, #h, 2 do
      if h[i] == 'r' then r = h[i + 1] else gone = true end
    end
    if gone or not r then return {0, '0', 'given back', 0, 0, '1', 0, 0, '0'} end
    local at, tn, cn, fs, bind, inw = string.match(r, '^(%d+),(%d),(%d),([^,]+),(%d+),(%d)$')
    return {1, string.format('%.0f', tonumber(at) - now), '', tonumber(tn), tonumber(cn), fs, tonumber(bind), tonumber(inw), at}
  end
end
local inWindow = 0
local cswms = tonumber(ARGV[16])
for j = 0, m - 1 do
  local v = tonumber(redis.call('HGET', KEYS[k + j], ARGV[17 + 2 * n + 1 + j]) or '')
  if v and v * 1000 + cswms > nowms then inWindow = 1; tierKey = nil; break end
end
k = k + m

local capValue, capNew = nil, 0
if capKey then
  local period = tonumber(ARGV[8])
  local tag = ARGV[10]
  local v = redis.call('HGET', capKey, ARGV[9]) or ''
  local kept, others, mine = {}, 0, false
  for tg, ts in string.gmatch(v, '([^:,]+):(%d+)') do
    if tonumber(ts) > nowms - period then
      if tg == tag then mine = true else
        others = others + 1
        kept[#kept + 1] = tg .. ':' .. ts
      end
    end
  end
  if not mine and others >= capMax then return {0, '0', 'capped', 0, 0, '1', 0, inWindow, '0'} end
  kept[#kept + 1] = tag .. ':' .. string.format('%.0f', nowms)
  capValue = table.concat(kept, ',')
  if not mine then capNew = 1 end
end

local tierNew = 0
if tierKey then
  local period = tonumber(ARGV[5])
  redis.call('ZREMRANGEBYSCORE', tierKey, '-inf', nowms - period)
  if not redis.call('ZSCORE', tierKey, ARGV[6]) then
    if redis.call('ZCARD', tierKey) >= tierLimit then
      local o = redis.call('ZRANGE', tierKey, 0, 0, 'WITHSCORES')
      local w = (tonumber(o[2]) + period - nowms) * 1000
      if w < 0 then w = 0 end
      return {0, string.format('%.0f', w), 'tier', 0, 0, '1', 0, 0, '0'}
    end
    tierNew = 1
  end
end

local factor = 1
if aKey then
  -- 'at' is when recovery starts (a hold after the last decrease). A caller whose clock is
  -- behind it sees no recovery yet (never less than the stored factor, which the decrease
  -- kept at or above its floor).
  local f = redis.call('HMGET', aKey, 'f', 'at')
  if f[1] then factor = factor_at(f[1], f[2], nowms, tonumber(ARGV[12]), tonumber(ARGV[13])) end
end

local at = now
local bind = 0
local tats, ivs = {}, {}
for i = 1, n do
  local iv = tonumber(ARGV[16 + 2 * i])
  local tol = tonumber(ARGV[17 + 2 * i])
  if i == aIdx and factor < 1 then iv = iv / factor; tol = tolerance(tol, factor) end
  ivs[i] = iv
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  tats[i] = tat
  local allowed = tat - tol
  if allowed > at then at = allowed; bind = i end
end
local wait = at - now
local fs = string.format('%.4f', factor)
if wait > maxwait then return {0, string.format('%.0f', wait), 'rate', 0, 0, fs, bind, inWindow, '0'} end
for i = 1, n do
  local tat = tats[i]
  if at > tat then tat = at end
  tat = tat + ivs[i]
  redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
if capKey then
  redis.call('HSET', capKey, ARGV[9], capValue)
  redis.call('PEXPIRE', capKey, tonumber(ARGV[8]) + 60000)
end
if tierKey then
  redis.call('ZADD', tierKey, nowms, ARGV[6])
  redis.call('PEXPIRE', tierKey, tonumber(ARGV[5]) + 60000)
end
for j = 0, nUsage - 1 do
  if redis.call('INCR', KEYS[k + j]) == 1 then redis.call('PEXPIRE', KEYS[k + j], 15000) end
end
if memo then
  redis.call('HSET', memo, 'r', string.format('%.0f,%d,%d,%s,%d,%d', at, tierNew, capNew, fs, bind, inWindow))
  redis.call('PEXPIRE', memo, memoTTL)
end
return {1, string.format('%.0f', wait), '', tierNew, capNew, fs, bind, inWindow, string.format('%.0f', at)}
