package ledger

import (
	_ "embed"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// luaLib is prepended to the ledger scripts: entry parsing, counter moves, the completion
// check and the resend set's bookkeeping (lua/lib.lua).
//
//go:embed lua/lib.lua
var luaLib string

//go:embed lua/plan.lua
var planLua string

// planCmd writes one expansion batch of ledger entries, exactly once per batch. Its KEYS, ARGV and
// reply are documented at the top of lua/plan.lua.
var planCmd = redis.NewScript(luaLib + planLua)

//go:embed lua/queued.lua
var queuedLua string

// queuedCmd records that the send tasks of a batch exist (the queued_to cursor moves). Its KEYS,
// ARGV and reply are documented at the top of lua/queued.lua.
var queuedCmd = redis.NewScript(queuedLua)

//go:embed lua/expanded.lua
var expandedLua string

// expandedCmd marks expansion finished and completes the run if every row is terminal. Its KEYS,
// ARGV and reply are documented at the top of lua/expanded.lua.
var expandedCmd = redis.NewScript(luaLib + expandedLua)

//go:embed lua/claim.lua
var claimLua string

// claimCmd claims a recipient before its send request. Its KEYS, ARGV and reply are documented at
// the top of lua/claim.lua.
var claimCmd = redis.NewScript(luaLib + claimLua)

//go:embed lua/finish.lua
var finishLua string

// finishCmd ends a claim: the entry moves from submitting to its outcome, or back to queued. Its
// KEYS, ARGV and reply are documented at the top of lua/finish.lua.
var finishCmd = redis.NewScript(luaLib + finishLua)

//go:embed lua/pause.lua
var pauseLua string

// pauseCmd pauses a running run with a reason. Its KEYS, ARGV and reply are documented at the top
// of lua/pause.lua.
var pauseCmd = redis.NewScript(pauseLua)

//go:embed lua/skip.lua
var skipLua string

// skipCmd marks one planned or queued entry skipped with a reason. Its KEYS, ARGV and reply are
// documented at the top of lua/skip.lua.
var skipCmd = redis.NewScript(luaLib + skipLua)

//go:embed lua/create_run.lua
var createRunLua string

// createRunCmd creates a run hash whole, or not at all when the id is taken. Its KEYS, ARGV and
// reply are documented at the top of lua/create_run.lua.
var createRunCmd = redis.NewScript(createRunLua)

// scriptReply reads a script's array reply, which must have n elements; what names the call
// in the errors ("claim in run R").
func scriptReply(c *redis.Cmd, n int, what string) ([]any, error) {
	res, err := c.Slice()
	if err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", what, err)
	}
	if len(res) != n {
		return nil, fmt.Errorf("ledger: %s: unexpected reply %v", what, res)
	}
	return res, nil
}

// replyString reads a string element of a script's reply ("" for any other type: a Lua
// false or nil).
func replyString(v any) string {
	s, _ := v.(string)
	return s
}

// replyInt reads an integer element of a script's reply (0 for any other type).
func replyInt(v any) int64 {
	n, _ := v.(int64)
	return n
}
