package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// A delete whose ledger step fails after the task is gone still leaves its audit entry, and
// the command still fails.
func TestTaskDeleteAuditedWhenLedgerFails(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	run, tasks := sendWelcome(t, env)
	const q = welcomeQueue
	if len(tasks) == 0 {
		t.Fatal("task ls: no tasks")
	}
	// The run's record is no longer a hash: the ledger's skip of the deleted task's recipient fails.
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Del(ctx, rkeys.Run(run)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, rkeys.Run(run), "not a run", 0).Err(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := herald(t, env, "task", "delete", q, tasks[0].ID, "--actor", "ops-ana", "--reason", "stuck")
	if code == 0 || !strings.Contains(errOut, "deleted") {
		t.Fatalf("delete with a failing ledger: exit %d %q %q, want an error saying the task was deleted", code, out, errOut)
	}
	var left []taskView
	if code, out, _ = herald(t, env, "task", "ls", q, "--json"); code != 0 || json.Unmarshal([]byte(out), &left) != nil || len(left) != len(tasks)-1 {
		t.Fatalf("after the delete, task ls: exit %d %s, want %d tasks", code, out, len(tasks)-1)
	}
	es, err := audit.List(ctx, rdb, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Fatalf("audit log has %d entries, want the delete's: %+v", len(es), es)
	}
	if e := es[0]; e.Action != "task delete" || e.Target != q+"/"+tasks[0].ID || e.Actor != "ops-ana" || e.Reason != "stuck" ||
		!strings.HasPrefix(e.Detail, "failed: task "+q+"/"+tasks[0].ID+" deleted") {
		t.Fatalf("audit entry %+v", e)
	}
}
