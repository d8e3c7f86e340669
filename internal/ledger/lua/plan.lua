-- plan.lua: write one expansion batch of ledger entries, exactly once per batch.
--
-- The run's planned_to cursor guards the batch: a replay finds the cursor moved and changes
-- nothing. A cursor already at the batch's end, moved there by the same expansion (the token
-- it plans with, kept as planned_by), says the batch was applied: the same script sent again
-- after its reply was lost. The caller then treats it as a batch planned before an
-- interruption. Moved there by another expansion, the batch is stale: that expansion writes
-- its tasks. New entries are written as queued ('q'), as expansion writes the batch's tasks right
-- after (a crash before they exist is repaired by the resumed expansion, which enqueues every
-- entry of the batch still queued, the TaskID keeping each single). Duplicates and skipped rows
-- are counted; counters move once per batch, so the per-entry work in Redis is one HSETNX.
--
-- KEYS[1]   run hash
-- KEYS[2]   counts
-- KEYS[3]   codes
-- KEYS[4..] ledger buckets
-- ARGV[1]   cursor before the batch (rows)
-- ARGV[2]   cursor after it
-- ARGV[3]   the token of the expansion writing the batch ('': none, no batch is taken as applied)
-- ARGV[4]   number of (reason, count) pairs after it
-- then      the pairs: rows skipped before reaching the ledger (e.g. invalid), by reason
-- then      (key index, recipient field, row, skip reason) quadruples; a non-empty skip reason
--           (e.g. suppressed) writes the entry as skipped(reason)
--
-- Returns {-2} when the cursor is at the batch's end, moved there by the same token (applied
-- already), {-1} when it is anywhere else but its start, else one flag per quadruple: 1 new,
-- 2 skipped with its reason, 0 duplicate of an earlier row.
local cur = tonumber(redis.call('HGET', KEYS[1], 'planned_to') or '0')
if cur ~= tonumber(ARGV[1]) then
  if cur == tonumber(ARGV[2]) and ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'planned_by') == ARGV[3] then
    return {-2}
  end
  return {-1}
end
local skipped, added, dup = 0, 0, 0
local reasons = {}
local i = 5
for j = 1, tonumber(ARGV[4]) do
  local n = tonumber(ARGV[i + 1])
  skipped = skipped + n
  reasons[ARGV[i]] = (reasons[ARGV[i]] or 0) + n
  i = i + 2
end
local out = {}
while i <= #ARGV do
  local k = KEYS[tonumber(ARGV[i])]
  local reason = ARGV[i + 3]
  local v = 'q|' .. ARGV[i + 2] .. '|0||'
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
if added > 0 then redis.call('HINCRBY', KEYS[2], 'queued', added) end
if skipped > 0 then redis.call('HINCRBY', KEYS[2], 'skipped', skipped) end
if dup > 0 then reasons['duplicate'] = (reasons['duplicate'] or 0) + dup end
for r, n in pairs(reasons) do redis.call('HINCRBY', KEYS[3], 'skipped:' .. r, n) end
redis.call('HSET', KEYS[1], 'planned_to', ARGV[2], 'planned_by', ARGV[3])
return out
