package expand_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// TestRetryStoppedMidExpansionIsCarriedOn: `herald run retry` is killed after the child's
// first batch of send tasks reached Redis, and the operator runs it again. The child was
// recorded on its parent and its next expansion step enqueued before it expanded anything:
// the second retry of the same recipients is refused, naming the child, and an expansion
// server carries the child to its end, every recipient getting one send task in all.
func TestRetryStoppedMidExpansionIsCarriedOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table, err := connectly.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	def := b.campaign(t, audienceCSV(40), "")
	r := b.runs(expand.Config{}) // batches of 10 rows
	st, err := r.StartRun(ctx, expand.StartParams{Def: def})
	if err != nil {
		t.Fatal(err)
	}
	b.finishAll(t, st.Run.Queue, func(string) string { return "HTTP_503" }) // every send failed, transient

	// The first `run retry` dies after its first batch of tasks was written.
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	killed := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	defer killed.Close()
	killed.AddHook(&killHook{n: 1, after: true, cancel: cancel})
	cfg := expand.Config{Task: campaigns.TaskOptions{MaxRetry: 10}, BatchSize: 10}
	kr := expand.NewRuns(cfg, expand.Deps{Redis: killed, Logger: zerolog.Nop(), Now: func() time.Time { return testNow },
		Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil }})
	var started string
	first, err := kr.RetryRun(kctx, expand.RetryParams{Parent: st.RunID, Class: connectly.ClassTransient, Table: table,
		Started: func(c ledger.Run) { started = c.ID }})
	if !errors.Is(err, context.Canceled) || first.Child.ID == "" || started != first.Child.ID {
		t.Fatalf("killed retry: child %q (told %q), %v", first.Child.ID, started, err)
	}
	if c := b.getRun(t, first.Child.ID); c.Expanded || c.Picked != 40 {
		t.Fatalf("killed child: expanded %v, %d picked", c.Expanded, c.Picked)
	}

	// The operator runs it again: refused, naming the child that sends to them.
	_, err = r.RetryRun(ctx, expand.RetryParams{Parent: st.RunID, Class: connectly.ClassTransient, Table: table})
	if !errors.Is(err, expand.ErrRetried) || !strings.Contains(err.Error(), first.Child.ID) {
		t.Fatalf("second retry of the same recipients: %v; want ErrRetried naming %s", err, first.Child.ID)
	}

	sent := map[string]int{}
	b.runChain(t, first.Child.ID, st.Run.Queue, cfg, sent)
	if len(sent) != 40 {
		t.Fatalf("%d recipients sent by the child, want 40", len(sent))
	}
	for k, n := range sent {
		if n != 1 || !strings.HasPrefix(k, first.Child.ID+" ") {
			t.Fatalf("%s sent %d times", k, n)
		}
	}
	if c := b.counters(t, first.Child.ID); c.Sum() != 40 {
		t.Fatalf("child states add up to %d, want 40", c.Sum())
	}
}

// TestRetryLargerThanItsBacklog: a retry of more recipients than its backlog queues one
// backlog in the command and the rest by its expansion task, step by step, each step seeking
// to the cursor (which records how many of the rows before it the retry kept), every picked
// recipient once and no one else.
func TestRetryLargerThanItsBacklog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	def := b.campaign(t, audienceCSV(300)+"extra,+5511800000000\n", "")
	cfg := expand.Config{MinBacklog: 100, MaxBacklog: 100}
	r := b.runs(cfg)
	st, err := r.StartRun(ctx, expand.StartParams{Def: def})
	if err != nil {
		t.Fatal(err)
	}
	// Every send but the last row's failed, transient.
	b.finishAll(t, st.Run.Queue, func(to string) string {
		if to == "+5511800000000" {
			return ""
		}
		return "HTTP_503"
	})
	res, err := r.RetryRun(ctx, expand.RetryParams{Parent: st.RunID, AnyClass: true})
	if err != nil || !res.Continues || res.Picked != 300 || res.Stats.Planned != 100 {
		t.Fatalf("RetryRun = picked %d, planned %d, continues %v, %v", res.Picked, res.Stats.Planned, res.Continues, err)
	}
	sent := map[string]int{}
	b.runChain(t, res.Child.ID, st.Run.Queue, cfg, sent)
	child := b.getRun(t, res.Child.ID)
	if c := b.counters(t, child.ID); len(sent) != 300 || child.Total != 300 || c.Sum() != 300 {
		t.Fatalf("child: %d sent, total %d, states add up to %d; want 300", len(sent), child.Total, c.Sum())
	}
	for k, n := range sent {
		if n != 1 || strings.Contains(k, "+5511800000000") {
			t.Fatalf("%s sent %d times", k, n)
		}
	}
	if cur, ok, err := b.ledger.QueuedCursor(ctx, child.ID); err != nil || !ok || !cur.RowsKnown || cur.Rows != 300 || cur.Row != 301 {
		t.Fatalf("child's cursor %+v, %v, %v; want row 301 with 300 of its rows", cur, ok, err)
	}
}

// TestRetryAfterACancelledChild: a retry checks what an earlier, cancelled child sent or may
// still send, not what it picked. A retry whose child's expansion task could not be enqueued
// creates no child: the parent is retried again at once. A child cancelled after some sends
// refuses a new retry of those recipients only.
func TestRetryAfterACancelledChild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	def := b.campaign(t, audienceCSV(40), "")
	r := b.runs(expand.Config{})
	st, err := r.StartRun(ctx, expand.StartParams{Def: def})
	if err != nil {
		t.Fatal(err)
	}
	b.finishAll(t, st.Run.Queue, func(string) string { return "HTTP_503" })

	down := expand.NewRuns(expand.Config{BatchSize: 10}, expand.Deps{Redis: b.rdb, Logger: zerolog.Nop(), Now: func() time.Time { return testNow },
		Enqueuer: failingEnqueuer{}, Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil }})
	first, err := down.RetryRun(ctx, expand.RetryParams{Parent: st.RunID, AnyClass: true})
	if err == nil || first.Child.ID != "" || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("retry whose expansion task could not be enqueued: child %q, %v", first.Child.ID, err)
	}
	second, err := r.RetryRun(ctx, expand.RetryParams{Parent: st.RunID, AnyClass: true})
	if err != nil || second.Picked != 40 || second.Stats.Planned != 40 {
		t.Fatalf("retry after a child that sent nothing: %+v, %v", second, err)
	}

	// The second child sends to 10 of them, then is cancelled.
	sent := 0
	for _, p := range b.pending(t, st.Run.Queue) {
		if p.Run != second.Child.ID || sent == 10 {
			continue
		}
		c, err := b.ledger.Claim(ctx, p.Address(), ledger.AtMostOnce)
		if err != nil || c.Verdict != ledger.VerdictSend {
			t.Fatalf("claim: %+v, %v", c, err)
		}
		if _, err := b.ledger.Finish(ctx, p.Address(), ledger.Outcome{State: ledger.Accepted, MessageID: "m", Attempt: c.Attempts}); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if _, _, err := b.ledger.Cancel(ctx, second.Child.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	_, err = r.RetryRun(ctx, expand.RetryParams{Parent: st.RunID, AnyClass: true})
	if !errors.Is(err, expand.ErrRetried) || !strings.Contains(err.Error(), second.Child.ID) || !strings.Contains(err.Error(), "10 of the 40") {
		t.Fatalf("retry after a child cancelled with 10 sent: %v; want ErrRetried naming %s for 10 of the 40", err, second.Child.ID)
	}
}
