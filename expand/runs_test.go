package expand_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
)

// runs returns the bundle's Runs: tasks with a retry budget of 10, batches of 10 rows.
func (b *testBundle) runs(cfg expand.Config) *expand.Runs {
	cfg.Task = campaigns.TaskOptions{MaxRetry: 10}
	cfg.BatchSize = 10
	return expand.NewRuns(cfg, expand.Deps{Redis: b.rdb, Logger: zerolog.Nop(), Now: func() time.Time { return testNow },
		Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil }})
}

// startContinuing starts a run of `campaign send` over an audience of rows recipients with a
// backlog of 100, so that it continues in an expansion task.
func (b *testBundle) startContinuing(t *testing.T, rows int) expand.Started {
	t.Helper()
	def := b.campaign(t, audienceCSV(rows), "")
	st, err := b.runs(expand.Config{MinBacklog: 100, MaxBacklog: 100}).StartRun(context.Background(), expand.StartParams{Def: def, Bounded: true})
	if err != nil || !st.Continues {
		t.Fatalf("StartRun: %+v %v", st, err)
	}
	return st
}

// lenient is b.campaign for audiences with invalid rows: it accepts up to half of them.
func (b *testBundle) lenient(tb testing.TB, csv string) *campaigns.Definition {
	tb.Helper()
	def := b.campaign(tb, csv, "")
	def.Audience.MaxInvalidShare = 0.5
	return def
}

// runKeys returns the Redis keys of runs.
func (b *testBundle) runKeys() []string {
	var out []string
	for _, k := range b.mr.Keys() {
		if strings.HasPrefix(k, "herald:run:") {
			out = append(out, k)
		}
	}
	return out
}

func TestStartRunOfAFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("ExpandsTheWholeAudience", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, valid := audience(95)
		def := b.lenient(t, csv)
		st, err := b.runs(expand.Config{MinBacklog: 10, MaxBacklog: 10}).StartRun(ctx, expand.StartParams{Def: def})
		if err != nil {
			t.Fatalf("StartRun: %v", err)
		}
		if st.Continues || st.Stats.Rows != 95 || st.Stats.Planned != len(valid) || st.Run.ID != st.RunID || st.Run.Sender != "+14151111234" {
			t.Fatalf("started %+v", st)
		}
		b.checkConsistent(t, st.RunID, 95, valid)
	})

	t.Run("BoundedHandsOverAtTheBacklog", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, _ := audience(95)
		def := b.lenient(t, csv)
		st, err := b.runs(expand.Config{MinBacklog: 10, MaxBacklog: 10}).StartRun(ctx, expand.StartParams{Def: def, Bounded: true})
		if err != nil {
			t.Fatalf("StartRun: %v", err)
		}
		if !st.Continues || st.Backlog != 10 || st.Stats.Rows != 95 || st.Stats.Planned > 10 {
			t.Fatalf("started %+v, want the first backlog of 10 and the whole audience's rows", st)
		}
		if n := len(b.pending(t, st.Run.Queue)); n != st.Stats.Planned {
			t.Fatalf("%d send tasks, want the %d planned", n, st.Stats.Planned)
		}
		info, err := b.inspector.GetTaskInfo(campaigns.ExpandQueue, campaigns.ExpandTaskID(st.RunID, 1))
		if err != nil {
			t.Fatalf("no continuation: %v", err)
		}
		p, err := campaigns.DecodeExpand(info.Payload)
		if err != nil || p.Run != st.RunID || p.Seq != 1 || p.Trigger != "send" || p.Version != 0 {
			t.Fatalf("continuation %+v, %v", p, err)
		}
	})

	t.Run("TooManyInvalidRowsCreatesNoRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, _ := audience(95) // every eleventh row is invalid: above the default 5%
		def := b.campaign(t, csv, "")
		_, err := b.runs(expand.Config{}).StartRun(ctx, expand.StartParams{Def: def})
		if !errors.Is(err, expand.ErrRefused) || !strings.Contains(err.Error(), "max_invalid_share") {
			t.Fatalf("StartRun = %v, want ErrRefused naming max_invalid_share", err)
		}
		if keys := b.runKeys(); len(keys) > 0 {
			t.Fatalf("a refused run wrote %v", keys)
		}
	})
}

func TestStartRunOfAVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	r := b.runs(expand.Config{})
	fire := testNow.Add(-time.Minute)
	p := expand.StartParams{Campaign: "spring-sale", Version: 3, RunID: expand.TickRunID("spring-sale", fire), Fire: fire,
		Trigger: "cron", Retention: time.Hour}
	st, err := r.StartRun(ctx, p)
	if err != nil || !st.Enqueued || st.RunID != "spring-sale-20260320T092900Z" {
		t.Fatalf("StartRun = %+v, %v", st, err)
	}
	// A second replica firing the same tick finds the task.
	if st, err = r.StartRun(ctx, p); err != nil || st.Enqueued {
		t.Fatalf("second StartRun = %+v, %v; want not enqueued", st, err)
	}
	info, err := b.inspector.GetTaskInfo(campaigns.ExpandQueue, st.RunID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := campaigns.DecodeExpand(info.Payload)
	if err != nil || got.Version != 3 || got.Trigger != "cron" || !got.Fire.Equal(fire) || got.Seq != 0 || info.Retention != time.Hour {
		t.Fatalf("first expansion task %+v (retention %v), %v", got, info.Retention, err)
	}
	// A run by hand gets a fresh id.
	manual, err := r.StartRun(ctx, expand.StartParams{Campaign: "spring-sale", Version: 3, Trigger: "manual"})
	if err != nil || !manual.Enqueued || !strings.HasPrefix(manual.RunID, "spring-sale-20260320T093000Z-") {
		t.Fatalf("manual StartRun = %+v, %v", manual, err)
	}
	if _, err := r.StartRun(ctx, expand.StartParams{}); err == nil {
		t.Fatal("StartRun with neither a file nor a campaign succeeded")
	}
}

// TestStartRunOfTheCurrentVersion: a run of a campaign with no version given starts from its
// current version (campaign run), and a campaign never submitted is refused with
// defstore.ErrNotSubmitted and enqueues nothing.
func TestStartRunOfTheCurrentVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	r := b.runs(expand.Config{})
	if _, err := r.StartRun(ctx, expand.StartParams{Campaign: "spring-sale", Trigger: "manual"}); !errors.Is(err, defstore.ErrNotSubmitted) {
		t.Fatalf("StartRun of a campaign never submitted = %v, want ErrNotSubmitted", err)
	}
	if tasks, err := b.inspector.ListPendingTasks(campaigns.ExpandQueue); err == nil && len(tasks) > 0 {
		t.Fatalf("a refused start enqueued %d expansion tasks", len(tasks))
	}
	sub := b.submit(t, b.campaign(t, audienceCSV(3), ""))
	st, err := r.StartRun(ctx, expand.StartParams{Campaign: sub.ID, Trigger: "manual"})
	if err != nil || !st.Enqueued || st.Version != sub.Version {
		t.Fatalf("StartRun of the current version = %+v, %v; want version %d enqueued", st, err, sub.Version)
	}
	info, err := b.inspector.GetTaskInfo(campaigns.ExpandQueue, st.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := campaigns.DecodeExpand(info.Payload); err != nil || got.Version != sub.Version || got.Campaign != sub.ID {
		t.Fatalf("first expansion task %+v, %v; want campaign %s version %d", got, err, sub.ID, sub.Version)
	}
}

// finishAll plays a worker over every pending send task of queue: recipients for which fail
// returns a code fail with it, the others are accepted.
func (b *testBundle) finishAll(tb testing.TB, queue string, fail func(to string) string) {
	tb.Helper()
	ctx := context.Background()
	for id, p := range b.pending(tb, queue) {
		c, err := b.ledger.Claim(ctx, p.Address(), ledger.AtMostOnce)
		if err != nil || c.Verdict != ledger.VerdictSend {
			tb.Fatalf("claim %s: %+v, %v", p.To, c, err)
		}
		out := ledger.Outcome{State: ledger.Accepted, MessageID: "m", Attempt: c.Attempts}
		if code := fail(p.To); code != "" {
			out = ledger.Outcome{State: ledger.Failed, Code: code, Attempt: c.Attempts}
		}
		if _, err := b.ledger.Finish(ctx, p.Address(), out); err != nil {
			tb.Fatal(err)
		}
		if err := b.inspector.DeleteTask(queue, id); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestRetryRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table, err := connectly.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	// parent starts and finishes a run of 30 rows in which valid[1], valid[4] fail with a 5xx
	// (transient) and valid[2] was opted out (permanent).
	parent := func(t *testing.T) (*testBundle, *expand.Runs, ledger.Run, []string) {
		b := setup(t)
		csv, valid := audience(30)
		def := b.lenient(t, csv)
		r := b.runs(expand.Config{})
		st, err := r.StartRun(ctx, expand.StartParams{Def: def})
		if err != nil {
			t.Fatal(err)
		}
		codes := map[string]string{valid[1]: "HTTP_503", valid[4]: "HTTP_503", valid[2]: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}
		b.finishAll(t, st.Run.Queue, func(to string) string { return codes[to] })
		run := b.getRun(t, st.RunID)
		if run.Status != ledger.RunCompleted {
			t.Fatalf("parent is %s, want completed", run.Status)
		}
		return b, r, run, valid
	}

	t.Run("TransientFailuresByClass", func(t *testing.T) {
		t.Parallel()
		b, r, par, valid := parent(t)
		res, err := r.RetryRun(ctx, expand.RetryParams{Parent: par.ID, Class: connectly.ClassTransient, Table: table})
		if err != nil {
			t.Fatalf("RetryRun: %v", err)
		}
		if res.Child.Parent != par.ID || res.Picked != 2 || res.Stats.Planned != 2 || res.ByCode["failed:HTTP_503"] != 2 {
			t.Fatalf("retried %+v", res)
		}
		var got []string
		for _, p := range b.pending(t, res.Child.Queue) {
			if p.Run == res.Child.ID {
				got = append(got, p.To)
			}
		}
		sort.Strings(got)
		want := []string{valid[1], valid[4]}
		sort.Strings(want)
		wantEqual(t, "retried recipients", want, got)
		if c := b.counters(t, res.Child.ID); c.States[ledger.Queued] != 2 || c.Sum() != 2 {
			t.Fatalf("child counters %v", c.States)
		}
	})

	// A parent is retried again only for recipients its earlier retries do not send to: any
	// class, which picks the opted-out recipient too, is refused while the retry by code
	// exists (retry that run instead); the transient failures alone are not.
	t.Run("ByCodeAndAnyClass", func(t *testing.T) {
		t.Parallel()
		_, r, par, _ := parent(t)
		res, err := r.RetryRun(ctx, expand.RetryParams{Parent: par.ID, Codes: []string{"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}})
		if err != nil || res.Picked != 1 {
			t.Fatalf("by code: %+v, %v", res, err)
		}
		byCode := res.Child.ID
		if _, err = r.RetryRun(ctx, expand.RetryParams{Parent: par.ID, AnyClass: true}); !errors.Is(err, expand.ErrRetried) ||
			!strings.Contains(err.Error(), byCode) || !strings.Contains(err.Error(), "1 of the 3 recipients") {
			t.Fatalf("any class: %v; want ErrRetried naming %s", err, byCode)
		}
		res, err = r.RetryRun(ctx, expand.RetryParams{Parent: par.ID, Class: connectly.ClassTransient, Table: table})
		if err != nil || res.Picked != 2 {
			t.Fatalf("transient, after the retry by code: %+v, %v", res, err)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		t.Parallel()
		b, r, par, _ := parent(t)
		if _, err := r.RetryRun(ctx, expand.RetryParams{Parent: par.ID, Codes: []string{"NO_SUCH_CODE"}}); !errors.Is(err, expand.ErrNothingToRetry) {
			t.Fatalf("no match: %v, want ErrNothingToRetry", err)
		}
		if _, err := r.RetryRun(ctx, expand.RetryParams{Parent: "gone", AnyClass: true}); !errors.Is(err, ledger.ErrRunNotFound) {
			t.Fatalf("missing parent: %v, want ErrRunNotFound", err)
		}
		csv, _ := audience(5)
		running, err := r.StartRun(ctx, expand.StartParams{Def: b.lenient(t, csv)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.RetryRun(ctx, expand.RetryParams{Parent: running.RunID, AnyClass: true}); err == nil || !strings.Contains(err.Error(), "once it has finished") {
			t.Fatalf("running parent: %v", err)
		}
	})

	// A follow-up run never finishes: it is not "running, retry it once it has finished" but
	// a run that cannot be retried, and its parent is left as it was.
	t.Run("FollowupRun", func(t *testing.T) {
		t.Parallel()
		b, r, par, valid := parent(t)
		l := ledger.New(b.rdb, nil)
		if _, err := l.CreateFollowup(ctx, ledger.Followup{Parent: ledger.ParentRun{ID: par.ID, Campaign: par.Campaign, Buckets: 1},
			Rule: "yes", Recipient: valid[0], Payload: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		fu := ledger.FollowupRun(par.ID, "yes")
		_, err := r.RetryRun(ctx, expand.RetryParams{Parent: fu, AnyClass: true})
		if err == nil || strings.Contains(err.Error(), "once it has finished") ||
			!strings.Contains(err.Error(), "follow-up runs cannot be retried") || !strings.Contains(err.Error(), "rule yes of run "+par.ID) {
			t.Fatalf("retry of follow-up run %s: %v; want it refused as a follow-up run", fu, err)
		}
		if got := b.getRun(t, fu); len(got.RetriedBy) != 0 {
			t.Fatalf("follow-up run recorded retries %+v", got.RetriedBy)
		}
	})
}
