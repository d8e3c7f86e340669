package tasks_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/tasks"
)

// List decodes a page of tasks with masked recipients; Read adds the recipient's ledger
// state, and returns the ledger's error rather than a view without it.
func TestListAndRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.start(t, 3)
	table, err := connectly.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tasks.List(tasks.ListParams{Inspector: b.inspector, Table: table, Queue: st.Run.Queue, State: "nope"}); !errors.As(err, new(tasks.TaskStateError)) {
		t.Fatalf("unknown state: %v, want a TaskStateError", err)
	}
	vs, err := tasks.List(tasks.ListParams{Inspector: b.inspector, Table: table, Queue: st.Run.Queue, State: "pending", PageSize: 10, Page: 1})
	if err != nil || len(vs) != 3 {
		t.Fatalf("List = %d views, %v; want 3", len(vs), err)
	}
	if v := vs[0]; v.Run != st.RunID || !strings.HasPrefix(v.Recipient, "********") || v.State != "pending" {
		t.Fatalf("view %+v", v)
	}
	p := tasks.ReadParams{Inspector: b.inspector, Ledger: b.ledger, Table: table, Queue: st.Run.Queue, Task: vs[0].ID, Reveal: true}
	v, err := tasks.Read(ctx, p)
	if err != nil || v.Ledger != "queued" || v.Attempts == nil || *v.Attempts != 0 || !strings.HasPrefix(v.Recipient, "+1201555") {
		t.Fatalf("Read = %+v, %v", v, err)
	}
	// The run's record is no longer a hash: the task is still there, its ledger entry cannot
	// be read (by a new ledger: this one keeps what it read of the run).
	p.Ledger = ledger.New(b.rdb, nil)
	if err := b.rdb.Set(ctx, rkeys.Run(st.RunID), "not a run", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := tasks.Read(ctx, p); err == nil || !strings.Contains(err.Error(), vs[0].ID) {
		t.Fatalf("Read with a failing ledger = %+v, %v; want an error naming the task", v, err)
	}
}
