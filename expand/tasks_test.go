package expand_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/heraldmsg/herald/expand"
)

// ActOnTasks archives and deletes one task, then deletes every task left in a state; the
// recipients of deleted send tasks become skipped(deleted). A state an action does not apply
// to is a TaskStateError, and nothing is touched.
func TestActOnTasks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	csv, valid := audience(8)
	n := len(valid)
	st, err := b.runs(expand.Config{}).StartRun(ctx, expand.StartParams{Def: b.lenient(t, csv)})
	if err != nil {
		t.Fatal(err)
	}
	q := st.Run.Queue
	tasks, err := b.inspector.ListPendingTasks(q)
	if err != nil || len(tasks) != n {
		t.Fatalf("%d pending tasks, %v; want %d", len(tasks), err, n)
	}
	act := func(action, task string, all bool, state string) (string, string, error) {
		return expand.ActOnTasks(ctx, expand.TaskActionParams{Inspector: b.inspector, Ledger: b.ledger,
			Action: action, Queue: q, Task: task, All: all, State: state})
	}
	for _, c := range []struct{ action, state string }{{"retry", "pending"}, {"archive", "archived"}, {"delete", "active"}, {"delete", "nope"}} {
		if _, _, err := act(c.action, "", true, c.state); !errors.As(err, new(expand.TaskStateError)) {
			t.Errorf("%s --all --state %s: %v, want a TaskStateError", c.action, c.state, err)
		}
	}

	target, detail, err := act("archive", tasks[0].ID, false, "")
	if err != nil || target != q+"/"+tasks[0].ID || detail != "done" {
		t.Fatalf("archive one = %q, %q, %v", target, detail, err)
	}
	target, detail, err = act("delete", tasks[1].ID, false, "")
	if err != nil || target != q+"/"+tasks[1].ID || detail != "1 recipients skipped(deleted) in the ledger" {
		t.Fatalf("delete one = %q, %q, %v", target, detail, err)
	}
	target, detail, err = act("delete", "", true, "pending")
	if want := fmt.Sprintf("%d tasks; %[1]d recipients skipped(deleted) in the ledger", n-2); err != nil || target != q+" (pending)" || detail != want {
		t.Fatalf("delete --all pending = %q, %q, %v", target, detail, err)
	}
	if c := b.counters(t, st.RunID); c.Codes["skipped:deleted"] != int64(n-1) {
		t.Fatalf("codes %v, want %d skipped:deleted", c.Codes, n-1)
	}
	if left, err := b.inspector.ListPendingTasks(q); err != nil || len(left) != 0 {
		t.Fatalf("%d pending tasks left, %v", len(left), err)
	}
	target, detail, err = act("retry", "", true, "archived")
	if err != nil || target != q+" (archived)" || detail != "1 tasks" {
		t.Fatalf("retry --all archived = %q, %q, %v", target, detail, err)
	}
}
