package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/ledger"
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
	// Under --json the refusal is also one JSON object on stdout, never a view of the task.
	var refused jsonError
	oneJSON(t, out, &refused)
	if code != exitError || !strings.Contains(errOut, "ledger") || !strings.Contains(errOut, ts[0].ID) || errOut != "herald: "+refused.Error+"\n" {
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

// A worker died mid-request and its task is deleted: the recipient becomes
// unknown(TASK_DELETED), which the text and --json say apart from the skipped recipients, and
// the run completes once the rest are settled.
func TestTaskDeleteOfADeadWorkersClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, env := miniEnv(t)
	run, ts := sendWelcome(t, env)
	const q = welcomeQueue
	if len(ts) < 3 {
		t.Fatalf("task ls: %d tasks", len(ts))
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	in := asynq.NewInspectorFromRedisClient(rdb)
	l := ledger.New(rdb, nil)
	for _, task := range ts[:2] {
		info, err := in.GetTaskInfo(q, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		p, err := campaigns.DecodeSend(info.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := l.Claim(ctx, p.Address(), ledger.AtMostOnce); err != nil || c.Verdict != ledger.VerdictSend {
			t.Fatalf("claim: %+v, %v", c, err)
		}
	}
	code, out, errOut := herald(t, env, "task", "delete", q, ts[0].ID)
	if want := "delete " + q + "/" + ts[0].ID + ": 0 recipients skipped(deleted) in the ledger, 1 unknown(TASK_DELETED)"; code != 0 || !strings.HasPrefix(out, want) {
		t.Fatalf("task delete: exit %d %q %q; want %q", code, out, errOut, want)
	}
	var res struct {
		Skipped *int `json:"recipients_skipped"`
		Unknown *int `json:"recipients_unknown"`
	}
	code, out, errOut = herald(t, env, "task", "delete", q, ts[1].ID, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Skipped == nil || *res.Skipped != 0 || res.Unknown == nil || *res.Unknown != 1 {
		t.Fatalf("task delete --json: exit %d %q %q; want recipients_skipped 0, recipients_unknown 1", code, out, errOut)
	}
	res.Skipped, res.Unknown = nil, nil
	code, out, errOut = herald(t, env, "task", "delete", q, "--all", "--state", "pending", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Skipped == nil || *res.Skipped != len(ts)-2 || res.Unknown == nil || *res.Unknown != 0 {
		t.Fatalf("task delete --all --json: exit %d %q %q; want recipients_skipped %d, recipients_unknown 0", code, out, errOut, len(ts)-2)
	}
	r, err := l.GetRun(ctx, run)
	if err != nil || r.Status != ledger.RunCompleted {
		t.Fatalf("run %s, %v; want completed", r.Status, err)
	}
	c, err := l.Counters(ctx, run)
	if err != nil || c.Codes["unknown:"+ledger.CodeTaskDeleted] != 2 || c.States[ledger.Submitting] != 0 {
		t.Fatalf("counters %+v, %v; want 2 unknown:%s", c, err, ledger.CodeTaskDeleted)
	}
}

// task delete refuses the expansion task of a run still reading its audience (exit 2, naming
// the run, cancel and --force) and touches nothing; --force deletes it and says how to start
// the expansion again; run show then says the expansion stopped, and run repair finds it.
func TestTaskDeleteOfARunsExpansion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, env := miniEnv(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	const run = "promo-20260301T120000Z"
	if err := ledger.New(rdb, nil).CreateRun(ctx, ledger.Run{ID: run, Campaign: "promo", Delivery: ledger.AtMostOnce, Buckets: 1, Rows: 1200}); err != nil {
		t.Fatal(err)
	}
	task, err := campaigns.NewExpandTask(campaigns.ExpandPayload{Run: run, Campaign: "promo", Trigger: "send", Seq: 1}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asynq.NewClientFromRedisClient(rdb).Enqueue(task); err != nil {
		t.Fatal(err)
	}
	step := campaigns.ExpandTaskID(run, 1)
	code, out, errOut := herald(t, env, "task", "delete", campaigns.ExpandQueue, step)
	if code != exitUsage || !strings.Contains(errOut, "refused") || !strings.Contains(errOut, "herald run cancel "+run) || !strings.Contains(errOut, "--force") {
		t.Fatalf("task delete of the run's expansion step: exit %d %q %q; want it refused", code, out, errOut)
	}
	if code, out, _ := herald(t, env, "run", "show", run); code != 0 || !strings.Contains(out, "still expanding") {
		t.Fatalf("run show after the refusal: exit %d\n%s", code, out)
	}
	code, out, errOut = herald(t, env, "task", "delete", campaigns.ExpandQueue, step, "--force")
	if code != 0 || !strings.Contains(out, "the expansion of run "+run+" stopped (herald run repair "+run+" --apply starts it again)") {
		t.Fatalf("task delete --force: exit %d %q %q", code, out, errOut)
	}
	code, out, _ = herald(t, env, "run", "show", run)
	if code != 0 || !strings.Contains(out, "audience: expansion stopped (1200 rows so far): no expansion task left to read the rest; herald run repair "+run+" starts it again") {
		t.Fatalf("run show after the delete: exit %d\n%s", code, out)
	}
	code, out, _ = herald(t, env, "run", "repair", run)
	if code != 0 || !strings.Contains(out, "lost_expansion          1") {
		t.Fatalf("run repair after the delete: exit %d\n%s", code, out)
	}
}
