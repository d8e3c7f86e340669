package ledger

import (
	"context"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
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
	ki := newKeyIndex(rkeys.Run(runID), rkeys.Counts(runID), rkeys.Codes(runID))
	reasons := make([]string, 0, len(skippedRows))
	for r := range skippedRows {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	args := make([]any, 0, 3+2*len(reasons)+4*len(entries))
	args = append(args, from, to, len(reasons))
	for _, r := range reasons {
		args = append(args, r, skippedRows[r])
	}
	for _, e := range entries {
		args = append(args, ki.of(runID, e.Bucket), e.Recipient, e.Row, e.Skip)
	}
	res, err := planQueuedCmd.Run(ctx, l.rdb, ki.keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("ledger: plan batch of run %s: %w", runID, err)
	}
	if len(res) == 1 && res[0] == -1 {
		return nil, fmt.Errorf("ledger: plan rows %d-%d of run %s: %w", from+1, to, runID, ErrStaleBatch)
	}
	if len(res) != len(entries) {
		return nil, fmt.Errorf("ledger: plan batch of run %s: %d results for %d entries", runID, len(res), len(entries))
	}
	out := make([]bool, len(res))
	for i, v := range res {
		out[i] = v == 1
	}
	return out, nil
}
