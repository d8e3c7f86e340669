package ledger

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// planQueuedCmd is planCmd for expansions that write a batch's tasks right after planning
// it: entries are written straight as queued (a crash before the tasks exist is repaired by
// the resumed expansion, which enqueues every entry of the batch still queued, the TaskID
// keeping each single), and counters move once per batch rather than once per entry. It
// leaves the per-entry work in Redis at one HSETNX.
//
// KEYS and ARGV as planCmd. Returns {-1} when the cursor does not match, else one flag per
// quadruple: 1 queued, 2 skipped with its reason, 0 duplicate of an earlier row.
var planQueuedCmd = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'planned_to') or '0')
if cur ~= tonumber(ARGV[1]) then return {-1} end
local skipped, queued, dup = 0, 0, 0
local reasons = {}
local i = 4
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
  local v = 'q|' .. ARGV[i + 2] .. '|0||'
  if reason ~= '' then v = 'k|' .. ARGV[i + 2] .. '|0|' .. reason .. '|' end
  if redis.call('HSETNX', k, ARGV[i + 1], v) == 1 then
    if reason == '' then
      queued = queued + 1
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
if queued > 0 then redis.call('HINCRBY', KEYS[2], 'queued', queued) end
if skipped > 0 then redis.call('HINCRBY', KEYS[2], 'skipped', skipped) end
if dup > 0 then reasons['duplicate'] = (reasons['duplicate'] or 0) + dup end
for r, n in pairs(reasons) do redis.call('HINCRBY', KEYS[3], 'skipped:' .. r, n) end
redis.call('HSET', KEYS[1], 'planned_to', ARGV[2])
return out
`)

// PlanQueued is Plan for an expansion that writes the batch's tasks right after: newly
// planned entries are written as queued at once (the expansion then advances queued_to with
// MarkQueued and no entries). It returns, per entry, whether it needs a task.
func (l *Ledger) PlanQueued(ctx context.Context, runID string, from, to int, skippedRows map[string]int, entries []PlanEntry) ([]bool, error) {
	return l.plan(ctx, planQueuedCmd, runID, from, to, skippedRows, entries)
}
