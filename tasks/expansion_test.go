package tasks_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/tasks"
)

// Deleting or archiving the expansion task of a run that has not read its whole audience, one
// task or every task in its state, is refused and touches nothing: nothing else would plan the
// rows not read yet. With Force it is done, and the result and the audit log name the run and
// the repair that starts its expansion again. The expansion task of a run that does not exist
// (its first step, before it created the run) holds nothing and is deleted.
func TestActOnTasksGuardsExpansionTasks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.startWith(t, 6, expand.Config{MinBacklog: 2, MaxBacklog: 2, BatchSize: 2, Task: campaigns.TaskOptions{MaxRetry: 10}}, true)
	if !st.Continues {
		t.Fatalf("run %+v, want it to continue in an expansion task", st)
	}
	step := campaigns.ExpandTaskID(st.RunID, 1)
	act := func(action, task string, all bool, state string, force bool) (tasks.TaskActed, error) {
		return tasks.ActOnTasks(ctx, tasks.TaskActionParams{Inspector: b.inspector, Ledger: b.ledger, Action: action,
			Queue: campaigns.ExpandQueue, Task: task, All: all, State: state, Force: force, Audit: audit.Record{Redis: b.rdb, Actor: "ana"}})
	}
	for _, c := range []struct {
		action string
		all    bool
	}{{"delete", false}, {"archive", false}, {"delete", true}, {"archive", true}} {
		task := step
		if c.all {
			task = ""
		}
		_, err := act(c.action, task, c.all, "scheduled", false)
		var ee tasks.ExpansionTaskError
		if !errors.As(err, &ee) || strings.Join(ee.Runs, ",") != st.RunID ||
			!strings.Contains(err.Error(), "herald run cancel "+st.RunID) || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("%s (all %v) of the run's expansion step: %v, want it refused naming the run", c.action, c.all, err)
		}
	}
	if info, err := b.inspector.GetTaskInfo(campaigns.ExpandQueue, step); err != nil || info.State != asynq.TaskStateScheduled {
		t.Fatalf("the step after the refusals: %+v, %v; want it untouched", info, err)
	}
	if es, err := audit.List(ctx, b.rdb, 10); err != nil || len(es) != 0 {
		t.Fatalf("audit log %+v, %v; want nothing for a refusal", es, err)
	}

	res, err := act("archive", step, false, "", true)
	want := "done; the expansion of run " + st.RunID + " stopped (herald run repair " + st.RunID + " --apply retries its task)"
	if err != nil || strings.Join(res.ExpansionsStopped, ",") != st.RunID || res.Detail() != want {
		t.Fatalf("forced archive: %+v (%q), %v; want %q", res, res.Detail(), err, want)
	}
	if err := b.inspector.RunTask(campaigns.ExpandQueue, step); err != nil {
		t.Fatal(err)
	}
	res, err = act("delete", step, false, "", true)
	want = "0 recipients skipped(deleted) in the ledger; the expansion of run " + st.RunID + " stopped (herald run repair " + st.RunID + " --apply starts it again)"
	if err != nil || strings.Join(res.ExpansionsStopped, ",") != st.RunID || res.Detail() != want {
		t.Fatalf("forced delete: %+v (%q), %v; want %q", res, res.Detail(), err, want)
	}
	if _, err := b.inspector.GetTaskInfo(campaigns.ExpandQueue, step); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("the step after a forced delete: %v, want it gone", err)
	}
	es, err := audit.List(ctx, b.rdb, 10)
	if err != nil || len(es) != 2 || es[0].Detail != want {
		t.Fatalf("audit log %+v, %v; want the forced delete", es, err)
	}

	first, err := campaigns.NewExpandTask(campaigns.ExpandPayload{Run: "nightly-20260320T093000Z", Campaign: "nightly", Version: 1}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asynq.NewClientFromRedisClient(b.rdb).Enqueue(first); err != nil {
		t.Fatal(err)
	}
	if res, err := act("delete", "nightly-20260320T093000Z", false, "", false); err != nil || len(res.ExpansionsStopped) != 0 {
		t.Fatalf("delete of the first step of a run not created: %+v, %v; want it deleted", res, err)
	}
}
