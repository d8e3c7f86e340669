package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/tasks"
)

// taskView is one task as task ls and task show print it with --json.
type taskView = tasks.View

// breakRun replaces a run's record with a string, so that the ledger fails on the run's
// recipients.
func breakRun(t *testing.T, rdb *redis.Client, run string) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.Del(ctx, rkeys.Run(run)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, rkeys.Run(run), "not a run", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// task show reads the task's recipient in the ledger: when the ledger fails, the command
// fails and says so, instead of showing the task as if its recipient had no entry.
func TestTaskShowReportsLedgerErrors(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	run, ts := sendWelcome(t, env)
	if len(ts) == 0 {
		t.Fatal("task ls: no tasks")
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	breakRun(t, rdb, run)
	code, out, errOut := herald(t, env, "task", "show", welcomeQueue, ts[0].ID, "--json")
	if code != exitError || !strings.Contains(errOut, "ledger") || !strings.Contains(errOut, ts[0].ID) || out != "" {
		t.Fatalf("task show with a failing ledger: exit %d %q %q, want an error naming the task and the ledger", code, out, errOut)
	}
}

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
	breakRun(t, rdb, run)

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
