package expand_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// testNow is the scheduler and ledger clock in tests.
var testNow = time.Date(2026, 3, 20, 9, 30, 0, 0, time.UTC)

// testBundle is what an expansion test works with: a fresh miniredis with a ledger, the real
// asynq client and an inspector on it, and a directory for the campaign and its audience.
type testBundle struct {
	mr        *miniredis.Miniredis
	rdb       *redis.Client
	ledger    *ledger.Ledger
	client    *asynq.Client
	inspector *asynq.Inspector
	dir       string
}

func setup(tb testing.TB) *testBundle {
	tb.Helper()
	mr := miniredis.RunT(tb)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	client := asynq.NewClientFromRedisClient(rdb)
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	tb.Cleanup(func() {
		client.Close()
		inspector.Close()
		rdb.Close()
	})
	return &testBundle{
		mr: mr, rdb: rdb, client: client, inspector: inspector, dir: tb.TempDir(),
		ledger: ledger.New(rdb, func() time.Time { return testNow }),
	}
}

// expander returns an Expander on the bundle's ledger writing tasks through w (the writer on
// the bundle's Redis when nil).
func (b *testBundle) expander(w asynqbatch.Writer, batch int) *expand.Expander {
	if w == nil {
		w = asynqbatch.New(b.rdb)
	}
	return expand.NewExpander(expand.Options{
		Ledger: b.ledger, Tasks: w, BatchSize: batch, Logger: zerolog.Nop(),
		Task: campaigns.TaskOptions{MaxRetry: 10},
		Now:  func() time.Time { return testNow },
	})
}

// campaign writes the audience CSV and a campaign file sending body_1 = the name column, and
// loads it.
func (b *testBundle) campaign(tb testing.TB, csv, extra string) *campaigns.Definition {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(b.dir, "audience.csv"), []byte(csv), 0o644); err != nil {
		tb.Fatal(err)
	}
	yaml := "id: spring-sale\n" +
		"template: {name: spring_sale, language: en}\n" +
		"parameters:\n  body_1: \"{{.name}}\"\n" +
		"audience: {file: audience.csv}\n" + extra
	path := filepath.Join(b.dir, "campaign.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		tb.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return def
}

// createRun creates a run of def for the expander's tests, whose audiences hold invalid rows
// on purpose (audience): more of them than a run accepts by default.
func (b *testBundle) createRun(tb testing.TB, e *expand.Expander, def *campaigns.Definition) ledger.Run {
	tb.Helper()
	def.Audience.MaxInvalidShare = 1
	run, err := e.CreateRun(context.Background(), def, "+14151111234", "")
	if err != nil {
		tb.Fatalf("CreateRun: %v", err)
	}
	return run
}

func (b *testBundle) getRun(tb testing.TB, id string) ledger.Run {
	tb.Helper()
	run, err := b.ledger.GetRun(context.Background(), id)
	if err != nil {
		tb.Fatalf("GetRun: %v", err)
	}
	return run
}

func (b *testBundle) counters(tb testing.TB, id string) ledger.Counters {
	tb.Helper()
	c, err := b.ledger.Counters(context.Background(), id)
	if err != nil {
		tb.Fatalf("Counters: %v", err)
	}
	return c
}

// pending returns the pending send tasks of a queue by task id.
func (b *testBundle) pending(tb testing.TB, queue string) map[string]campaigns.SendPayload {
	tb.Helper()
	out := map[string]campaigns.SendPayload{}
	for page := 1; ; page++ {
		tasks, err := b.inspector.ListPendingTasks(queue, asynq.PageSize(100), asynq.Page(page))
		if err != nil {
			if errors.Is(err, asynq.ErrQueueNotFound) {
				return out
			}
			tb.Fatalf("ListPendingTasks: %v", err)
		}
		if len(tasks) == 0 {
			return out
		}
		for _, t := range tasks {
			if t.Type != campaigns.TypeSend {
				tb.Fatalf("task %s has type %q", t.ID, t.Type)
			}
			p, err := campaigns.DecodeSend(t.Payload)
			if err != nil {
				tb.Fatalf("task %s: %v", t.ID, err)
			}
			if _, dup := out[t.ID]; dup {
				tb.Fatalf("task %s listed twice", t.ID)
			}
			out[t.ID] = p
		}
	}
}

// checkConsistent checks the invariants every expanded run keeps: the run is expanded with
// Total = rows and both cursors at the end, the counters add up to the rows and agree with
// the ledger entries, and exactly the recipients in want (queued, one task each) have a task.
func (b *testBundle) checkConsistent(tb testing.TB, runID string, rows int, want []string) {
	tb.Helper()
	ctx := context.Background()
	run := b.getRun(tb, runID)
	if !run.Expanded || run.Total != rows || run.PlannedTo != rows || run.QueuedTo != rows {
		tb.Fatalf("run after expansion: expanded %v, total %d, planned_to %d, queued_to %d; want true and %d rows",
			run.Expanded, run.Total, run.PlannedTo, run.QueuedTo, rows)
	}
	c := b.counters(tb, runID)
	if got := c.Sum(); got != int64(rows) {
		tb.Fatalf("counters sum to %d, want %d rows: %v", got, rows, c.States)
	}
	wantEqual(tb, "queued", int64(len(want)), c.States[ledger.Queued])
	wantEqual(tb, "planned", int64(0), c.States[ledger.Planned])
	v, err := b.ledger.Verify(ctx, runID)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	if len(v.Mismatches) > 0 {
		tb.Fatalf("counters disagree with the ledger: %+v", v.Mismatches)
	}
	tasks := b.pending(tb, run.Queue)
	got := make([]string, 0, len(tasks))
	for id, p := range tasks {
		if p.Run != runID {
			continue
		}
		if id != b.taskID(runID, p.To) {
			tb.Fatalf("task %s for %s has the wrong id", id, p.To)
		}
		e, ok, err := b.ledger.Entry(ctx, ledger.Address{Run: runID, Bucket: p.Bucket, Recipient: p.To})
		if err != nil || !ok {
			tb.Fatalf("task for %s has no ledger entry in bucket %d (err %v)", p.To, p.Bucket, err)
		}
		if e.State != ledger.Queued || e.Row != p.Row {
			tb.Fatalf("task for %s (row %d) has ledger entry %+v", p.To, p.Row, e)
		}
		got = append(got, p.To)
	}
	sort.Strings(got)
	want = append([]string{}, want...)
	sort.Strings(want)
	wantEqual(tb, "recipients with a task", want, got)
}

// number returns the i-th test recipient, a valid US number in E.164.
func number(i int) string { return fmt.Sprintf("+1201555%04d", i) }

// audience writes n rows: every row a distinct valid recipient, except every seventh row
// repeats an earlier recipient in another format and every eleventh has an invalid number. It
// returns the CSV and the distinct valid recipients.
func audience(n int) (string, []string) {
	var sb strings.Builder
	sb.WriteString("phone,name\n")
	valid := []string{}
	seen := map[string]bool{}
	add := func(r string) {
		if !seen[r] {
			seen[r] = true
			valid = append(valid, r)
		}
	}
	for i := 1; i <= n; i++ {
		switch {
		case i%11 == 0:
			fmt.Fprintf(&sb, "555-%04d,invalid %d\n", i, i)
		case i%7 == 0:
			// Row i-3 may itself be invalid, which makes this row the recipient's first.
			fmt.Fprintf(&sb, "\"+1 (201) 555-%04d\",duplicate %d\n", i-3, i)
			add(number(i - 3))
		default:
			fmt.Fprintf(&sb, "%s,name %d\n", number(i), i)
			add(number(i))
		}
	}
	return sb.String(), valid
}

func wantEqual[T any](tb testing.TB, what string, want, got T) {
	tb.Helper()
	if !reflect.DeepEqual(want, got) {
		tb.Fatalf("%s mismatch (-want +got):\n- %+v\n+ %+v", what, want, got)
	}
}

// failingWriter passes tasks through to the real writer until it has passed failAfter of
// them, then fails every write (after writing the part of a batch still allowed), as an
// expansion does when it dies mid-batch. calls counts writes.
type failingWriter struct {
	next      asynqbatch.Writer
	failAfter int64
	passed    atomic.Int64
	calls     atomic.Int64
}

var errEnqueueDown = errors.New("redis went away")

func (f *failingWriter) Write(ctx context.Context, tasks []asynqbatch.Task, fresh bool) ([]bool, error) {
	f.calls.Add(1)
	room := max(f.failAfter-f.passed.Load(), 0)
	if int64(len(tasks)) <= room {
		f.passed.Add(int64(len(tasks)))
		return f.next.Write(ctx, tasks, fresh)
	}
	created := make([]bool, len(tasks))
	if room > 0 {
		f.passed.Add(room)
		part, err := f.next.Write(ctx, tasks[:room], fresh)
		copy(created, part)
		if err != nil {
			return created, err
		}
	}
	return created, errEnqueueDown
}

func TestNewRunID(t *testing.T) {
	t.Parallel()

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("BRT", -3*3600))
	id := expand.NewRunID("spring-sale", at)
	if !regexp.MustCompile(`^spring-sale-20260102T060405Z-[0-9a-f]{6}$`).MatchString(id) {
		t.Fatalf("NewRunID = %q, want spring-sale-<UTC time>-<6 hex digits>", id)
	}
	if other := expand.NewRunID("spring-sale", at); other == id {
		t.Fatalf("two run ids for the same time are equal: %q", id)
	}
}

func TestCreateRun(t *testing.T) {
	t.Parallel()

	t.Run("StoresTheRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, _ := audience(100)
		def := b.campaign(t, csv, "delivery: at-least-once\n")
		e := b.expander(nil, 0)
		run := b.createRun(t, e, def)
		if !strings.HasPrefix(run.ID, "spring-sale-20260320T093000Z-") {
			t.Errorf("run id %q", run.ID)
		}
		wantEqual(t, "campaign", "spring-sale", run.Campaign)
		wantEqual(t, "status", ledger.RunRunning, run.Status)
		wantEqual(t, "delivery", ledger.AtLeastOnce, run.Delivery)
		wantEqual(t, "template", "spring_sale", run.Template)
		wantEqual(t, "language", "en", run.Language)
		wantEqual(t, "sender", "+14151111234", run.Sender)
		wantEqual(t, "queue", "herald:marketing", run.Queue)
		wantEqual(t, "audience", def.AudiencePath(), run.Audience)
		// 100 rows, the header and the empty last line.
		wantEqual(t, "buckets", ledger.BucketsFor(102), run.Buckets)
		wantEqual(t, "created", testNow.UnixMilli(), run.Created.UnixMilli())
		if run.Expanded || run.Total != 0 || run.PlannedTo != 0 || run.QueuedTo != 0 {
			t.Errorf("new run already expanded: %+v", run)
		}
	})

	t.Run("GivenIDAndCategoryQueue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		def := b.campaign(t, "phone,name\n", "")
		def.Template.Category = "utility"
		run, err := b.expander(nil, 0).CreateRun(context.Background(), def, "", "my-run")
		if err != nil {
			t.Fatalf("CreateRun: %v", err)
		}
		wantEqual(t, "id", "my-run", run.ID)
		wantEqual(t, "queue", "herald:utility", run.Queue)
		_, err = b.expander(nil, 0).CreateRun(context.Background(), def, "", "my-run")
		if !errors.Is(err, ledger.ErrRunExists) {
			t.Fatalf("second CreateRun with the same id: %v, want ErrRunExists", err)
		}
	})

	// CreateRun checks the audience as StartRun does: too many invalid rows and no run.
	t.Run("RefusesTooManyInvalidRows", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, _ := audience(100)
		def := b.campaign(t, csv, "")
		_, err := b.expander(nil, 0).CreateRun(context.Background(), def, "+14151111234", "refused")
		if !errors.Is(err, expand.ErrRefused) || !strings.Contains(err.Error(), "max_invalid_share") {
			t.Fatalf("CreateRun = %v, want ErrRefused naming audience.max_invalid_share", err)
		}
		if _, err := b.ledger.GetRun(context.Background(), "refused"); !errors.Is(err, ledger.ErrRunNotFound) {
			t.Fatalf("a refused run was stored: %v", err)
		}
	})

	t.Run("MissingAudience", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		def := b.campaign(t, "phone\n", "")
		def.Audience.File = "gone.csv"
		_, err := b.expander(nil, 0).CreateRun(context.Background(), def, "", "")
		if err == nil || !strings.Contains(err.Error(), "gone.csv") {
			t.Fatalf("CreateRun = %v, want an error naming the audience file", err)
		}
	})
}

func TestExpand(t *testing.T) {
	t.Parallel()

	ctx := context.Background()

	t.Run("SmallAudience", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		def := b.campaign(t, "phone,name\n"+
			"+12015550100,Ana\n"+ // 1
			"+12015550101,Bia\n"+ // 2
			"\"+1 201 555 0100\",Ana again\n"+ // 3 duplicate of row 1
			",nobody\n"+ // 4 missing_phone
			"not a phone,junk\n"+ // 5 invalid_phone
			"+12015550102,\n"+ // 6 invalid_params: body_1 would be empty
			"2015550103,Cid\n"+ // 7 invalid_phone: no country code, no default_region
			"+12015550104,Dan\n", // 8
			"sender: \"+14151111234\"\n")
		e := b.expander(nil, 0)
		run := b.createRun(t, e, def)
		st, err := e.Expand(ctx, def, run)
		if err != nil {
			t.Fatalf("Expand: %v", err)
		}
		wantEqual(t, "stats", expand.Stats{
			Rows: 8, Planned: 3, Enqueued: 3,
			Skipped: map[string]int{"missing_phone": 1, "invalid_phone": 2, "invalid_params": 1},
		}, st)
		b.checkConsistent(t, run.ID, 8, []string{"+12015550100", "+12015550101", "+12015550104"})
		c := b.counters(t, run.ID)
		wantEqual(t, "skipped", int64(5), c.States[ledger.Skipped])
		wantEqual(t, "codes", map[string]int64{
			"skipped:duplicate": 1, "skipped:missing_phone": 1, "skipped:invalid_phone": 2, "skipped:invalid_params": 1,
		}, c.Codes)

		tasks := b.pending(t, "herald:marketing")
		got := tasks[b.taskID(run.ID, "+12015550100")]
		wantEqual(t, "payload", campaigns.SendPayload{
			Run: run.ID, To: "+12015550100", Bucket: ledger.BucketOf("+12015550100", run.Buckets), Row: 1,
			Campaign: "spring-sale", Template: "spring_sale", Language: "en", Sender: "+14151111234",
			Params: []connectly.Parameter{{Name: "body_1", Value: "Ana"}}, Delivery: "at-most-once", Category: "marketing",
		}, got)
		info, err := b.inspector.GetTaskInfo("herald:marketing", b.taskID(run.ID, "+12015550104"))
		if err != nil {
			t.Fatalf("GetTaskInfo: %v", err)
		}
		wantEqual(t, "max retry", 10, info.MaxRetry)
	})

	t.Run("ManyBatches", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, valid := audience(95)
		def := b.campaign(t, csv, "")
		var mu sync.Mutex
		var progress []int
		e := expand.NewExpander(expand.Options{
			Ledger: b.ledger, Tasks: asynqbatch.New(b.rdb), BatchSize: 10, Logger: zerolog.Nop(),
			Now: func() time.Time { return testNow },
			Progress: func(done, estimate int) {
				mu.Lock()
				defer mu.Unlock()
				if estimate < done {
					t.Errorf("progress estimate %d below done %d", estimate, done)
				}
				progress = append(progress, done)
			},
		})
		run := b.createRun(t, e, def)
		st, err := e.Expand(ctx, def, run)
		if err != nil {
			t.Fatalf("Expand: %v", err)
		}
		wantEqual(t, "enqueued", len(valid), st.Enqueued)
		wantEqual(t, "progress", []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 95}, progress)
		b.checkConsistent(t, run.ID, 95, valid)
	})

	t.Run("UtilityQueue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, valid := audience(12)
		def := b.campaign(t, csv, "")
		def.Template.Category = "utility"
		e := b.expander(nil, 5)
		run := b.createRun(t, e, def)
		if _, err := e.Expand(ctx, def, run); err != nil {
			t.Fatalf("Expand: %v", err)
		}
		b.checkConsistent(t, run.ID, 12, valid)
		wantEqual(t, "marketing tasks", 0, len(b.pending(t, "herald:marketing")))
	})

	t.Run("SuppressedRecipientsGetNoTask", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, valid := audience(30)
		def := b.campaign(t, csv, "")
		for _, r := range []string{valid[0], valid[7], valid[len(valid)-1]} {
			if err := b.ledger.Suppress(ctx, r, "STOP"); err != nil {
				t.Fatal(err)
			}
		}
		e := b.expander(nil, 10)
		run := b.createRun(t, e, def)
		if _, err := e.Expand(ctx, def, run); err != nil {
			t.Fatalf("Expand: %v", err)
		}
		sent := append(append([]string(nil), valid[1:7]...), valid[8:len(valid)-1]...)
		b.checkConsistent(t, run.ID, 30, sent)
		wantEqual(t, "suppressed", int64(3), b.counters(t, run.ID).Codes["skipped:suppressed"])
	})

	t.Run("ExpandedRunIsANoOp", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, valid := audience(25)
		def := b.campaign(t, csv, "")
		e := b.expander(nil, 10)
		run := b.createRun(t, e, def)
		if _, err := e.Expand(ctx, def, run); err != nil {
			t.Fatalf("Expand: %v", err)
		}
		before := b.counters(t, run.ID)
		enq := &failingWriter{next: asynqbatch.New(b.rdb), failAfter: 0}
		st, err := b.expander(enq, 10).Expand(ctx, def, b.getRun(t, run.ID))
		if err != nil {
			t.Fatalf("second Expand: %v", err)
		}
		wantEqual(t, "stats", expand.Stats{Skipped: map[string]int{}}, st)
		wantEqual(t, "task writes", int64(0), enq.calls.Load())
		wantEqual(t, "counters", before, b.counters(t, run.ID))
		b.checkConsistent(t, run.ID, 25, valid)
	})

	t.Run("StaleRunIsRejected", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, valid := audience(25)
		def := b.campaign(t, csv, "")
		e := b.expander(nil, 10)
		run := b.createRun(t, e, def)
		if _, err := e.Expand(ctx, def, run); err != nil {
			t.Fatalf("Expand: %v", err)
		}
		// A second scheduler still holding the run as created must not plan it again.
		_, err := e.Expand(ctx, def, run)
		if !errors.Is(err, ledger.ErrStaleBatch) {
			t.Fatalf("Expand with a stale run = %v, want ErrStaleBatch", err)
		}
		b.checkConsistent(t, run.ID, 25, valid)
	})

	t.Run("EmptyAudience", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		def := b.campaign(t, "phone,name\n", "")
		e := b.expander(nil, 10)
		run := b.createRun(t, e, def)
		if _, err := e.Expand(ctx, def, run); err != nil {
			t.Fatalf("Expand: %v", err)
		}
		b.checkConsistent(t, run.ID, 0, nil)
		if got := b.getRun(t, run.ID); got.Status != ledger.RunCompleted {
			t.Fatalf("run of an empty audience is %s, want completed", got.Status)
		}
	})

	t.Run("MalformedAudienceStops", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		def := b.campaign(t, "phone,name\n+12015550100,Ana\n+12015550101,Bia\n", "")
		e := b.expander(nil, 10)
		run := b.createRun(t, e, def)
		// The file turns malformed after the run was created from it (and checked).
		if err := os.WriteFile(def.AudiencePath(), []byte("phone,name\n+12015550100,Ana\n+12015550101,B\"ia\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := e.Expand(ctx, def, run)
		if err == nil || !strings.Contains(err.Error(), def.AudiencePath()) {
			t.Fatalf("Expand = %v, want an error naming the audience file", err)
		}
		if b.getRun(t, run.ID).Expanded {
			t.Fatal("run marked expanded after a malformed audience")
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, _ := audience(25)
		def := b.campaign(t, csv, "")
		e := b.expander(nil, 10)
		run := b.createRun(t, e, def)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := e.Expand(cctx, def, run); !errors.Is(err, context.Canceled) {
			t.Fatalf("Expand = %v, want context.Canceled", err)
		}
	})
}

// TestExpandResume interrupts expansion between the ledger write of a batch and the mark that
// its tasks exist, then expands again from the stored cursors.
func TestExpandResume(t *testing.T) {
	t.Parallel()

	ctx := context.Background()
	const rows = 95

	tests := []struct {
		name string
		// failAfter lists, per interrupted attempt, how many tasks are written before the crash.
		failAfter []int64
	}{
		{name: "BeforeAnyEnqueue", failAfter: []int64{0}},
		{name: "MidFirstBatch", failAfter: []int64{4}},
		{name: "MidLaterBatch", failAfter: []int64{23}},
		{name: "AtBatchBoundary", failAfter: []int64{9}},
		{name: "RepeatedCrashes", failAfter: []int64{5, 3, 0, 12, 1}},
		{name: "MidBatchTwice", failAfter: []int64{17, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			csv, valid := audience(rows)
			def := b.campaign(t, csv, "")
			run := b.createRun(t, b.expander(nil, 10), def)
			for i, n := range tt.failAfter {
				enq := &failingWriter{next: asynqbatch.New(b.rdb), failAfter: n}
				e := expand.NewExpander(expand.Options{
					Ledger: b.ledger, Tasks: enq, BatchSize: 10, Logger: zerolog.Nop(),
				})
				_, err := e.Expand(ctx, def, b.getRun(t, run.ID))
				if !errors.Is(err, errEnqueueDown) {
					t.Fatalf("attempt %d: Expand = %v, want the enqueue failure", i, err)
				}
				got := b.getRun(t, run.ID)
				if got.Expanded || got.PlannedTo <= got.QueuedTo {
					t.Fatalf("attempt %d did not stop between plan and queued: %+v", i, got)
				}
			}
			st, err := b.expander(nil, 10).Expand(ctx, def, b.getRun(t, run.ID))
			if err != nil {
				t.Fatalf("resumed Expand: %v", err)
			}
			if st.Rows != rows {
				t.Fatalf("resumed expansion read %d rows, want %d", st.Rows, rows)
			}
			b.checkConsistent(t, run.ID, rows, valid)
		})
	}

	t.Run("ReplayedBatchWithSuppressedAndDuplicates", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		csv, valid := audience(rows)
		def := b.campaign(t, csv, "")
		// valid[2] is on row 3, in the first batch, with its duplicate on row 7.
		if err := b.ledger.Suppress(ctx, valid[2], "STOP"); err != nil {
			t.Fatal(err)
		}
		run := b.createRun(t, b.expander(nil, 10), def)
		enq := &failingWriter{next: asynqbatch.New(b.rdb), failAfter: 2}
		_, err := b.expander(enq, 10).Expand(ctx, def, b.getRun(t, run.ID))
		if !errors.Is(err, errEnqueueDown) {
			t.Fatalf("Expand = %v, want the enqueue failure", err)
		}
		if _, err := b.expander(nil, 10).Expand(ctx, def, b.getRun(t, run.ID)); err != nil {
			t.Fatalf("resumed Expand: %v", err)
		}
		sent := append(append([]string(nil), valid[:2]...), valid[3:]...)
		b.checkConsistent(t, run.ID, rows, sent)
	})
}

func TestNewExpanderNeedsLedgerAndWriter(t *testing.T) {
	t.Parallel()

	defer func() {
		if recover() == nil {
			t.Fatal("NewExpander without a ledger did not panic")
		}
	}()
	expand.NewExpander(expand.Options{})
}

// pipelineFault fails the task writer's pipelines once it has let failAfter of them
// through: before Redis sees the commands, or (afterRun) after Redis ran them and the reply
// was lost, the two ways a scheduler dies around a write.
type pipelineFault struct {
	failAfter int64
	afterRun  bool
	calls     atomic.Int64
}

func (f *pipelineFault) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (f *pipelineFault) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f *pipelineFault) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if f.calls.Add(1) <= f.failAfter {
			return next(ctx, cmds)
		}
		if f.afterRun {
			_ = next(ctx, cmds)
		}
		for _, c := range cmds {
			c.SetErr(errEnqueueDown)
		}
		return errEnqueueDown
	}
}

// TestExpandBatchResume interrupts expansions that write tasks through the task writer
// (ledger and tasks on two stages) at several batches, before and
// after Redis ran the write, and requires the resumed expansion to end with every recipient
// queued once and exactly one task each (a task id queued twice would list twice).
func TestExpandBatchResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const rows = 95
	for _, tt := range []struct {
		name      string
		failAfter []int64
		afterRun  bool
	}{
		{name: "FirstWriteLost", failAfter: []int64{0}},
		{name: "FirstWriteRanReplyLost", failAfter: []int64{0}, afterRun: true},
		{name: "LaterWriteLost", failAfter: []int64{3}},
		{name: "LaterWriteRanReplyLost", failAfter: []int64{4}, afterRun: true},
		{name: "RepeatedCrashes", failAfter: []int64{2, 0, 1, 3}, afterRun: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			csv, valid := audience(rows)
			def := b.campaign(t, csv, "")
			run := b.createRun(t, b.expander(nil, 10), def)
			batchExpander := func(fault *pipelineFault) *expand.Expander {
				rdb := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
				t.Cleanup(func() { rdb.Close() })
				if fault != nil {
					rdb.AddHook(fault)
				}
				return expand.NewExpander(expand.Options{
					Ledger: b.ledger, Tasks: asynqbatch.New(rdb), BatchSize: 10, Logger: zerolog.Nop(),
					Task: campaigns.TaskOptions{MaxRetry: 10}, Now: func() time.Time { return testNow },
				})
			}
			for i, n := range tt.failAfter {
				_, err := batchExpander(&pipelineFault{failAfter: n, afterRun: tt.afterRun}).Expand(ctx, def, b.getRun(t, run.ID))
				if !errors.Is(err, errEnqueueDown) {
					t.Fatalf("attempt %d: Expand = %v, want the write failure", i, err)
				}
				if got := b.getRun(t, run.ID); got.Expanded || got.PlannedTo <= got.QueuedTo {
					t.Fatalf("attempt %d did not stop between plan and queued: %+v", i, got)
				}
			}
			st, err := batchExpander(nil).Expand(ctx, def, b.getRun(t, run.ID))
			if err != nil {
				t.Fatalf("resumed Expand: %v", err)
			}
			if st.Rows != rows {
				t.Fatalf("resumed expansion read %d rows, want %d", st.Rows, rows)
			}
			b.checkConsistent(t, run.ID, rows, valid)
		})
	}
}

// TestExpandBacklogFullQueuesWhatIsPlanned stops an expansion at its backlog while the batch
// before it is still between the two stages of the writer: the writer's second stage is held
// until planning is over (a full backlog included). The batch already planned must still get
// its tasks and move the queued cursor, so the run's pending count is exactly its tasks and
// the caller learns how many it planned; before, the full backlog made the writer drop it and
// its entries stayed queued with no task until a later expansion replayed them.
func TestExpandBacklogFullQueuesWhatIsPlanned(t *testing.T) {
	// Not parallel: the hook is the package's.
	ctx := context.Background()
	const rows, batch, backlog = 35, 10, 10
	for _, tt := range []struct{ name string }{{name: "Writer"}} {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			def := b.campaign(t, audienceCSV(rows), "")
			cfg := expand.Options{
				Ledger: b.ledger, BatchSize: batch, MaxBacklog: backlog, Logger: zerolog.Nop(),
				Task: campaigns.TaskOptions{MaxRetry: 10}, Now: func() time.Time { return testNow },
				Tasks: asynqbatch.New(b.rdb),
			}
			exp := expand.NewExpander(cfg)
			run := b.createRun(t, exp, def)
			held := 0
			restore := expand.SetBeforeQueue(func(planDone <-chan struct{}) {
				held++
				select {
				case <-planDone:
				case <-time.After(10 * time.Second):
					t.Error("the writer's first stage did not return while a batch waited")
				}
			})
			st, err := exp.Expand(ctx, def, run)
			restore()
			if !errors.Is(err, expand.ErrBacklogFull) {
				t.Fatalf("Expand = %v, want ErrBacklogFull", err)
			}
			if held != 1 {
				t.Fatalf("the second stage saw %d batches, want the first one only", held)
			}
			if st.Planned != batch || st.Enqueued != batch {
				t.Fatalf("stats %+v, want the first batch of %d planned and enqueued", st, batch)
			}
			got := b.getRun(t, run.ID)
			if got.PlannedTo != batch || got.QueuedTo != batch {
				t.Fatalf("cursors planned_to %d, queued_to %d; want both at %d", got.PlannedTo, got.QueuedTo, batch)
			}
			if n := len(b.pending(t, run.Queue)); n != batch {
				t.Fatalf("%d send tasks, want %d", n, batch)
			}
			if c := b.counters(t, run.ID); c.States[ledger.Queued] != batch || c.Sum() != batch {
				t.Fatalf("counters %v, want %d queued", c.States, batch)
			}

			// Sends complete and the expansion carries on to the end, one backlog at a time.
			sent := map[string]int{}
			for step := 0; ; step++ {
				if step > rows {
					t.Fatal("expansion did not finish")
				}
				b.sendAll(t, run.Queue, sent)
				_, err := exp.Expand(ctx, def, b.getRun(t, run.ID))
				if err == nil {
					break
				}
				if !errors.Is(err, expand.ErrBacklogFull) {
					t.Fatalf("step %d: %v", step, err)
				}
			}
			b.sendAll(t, run.Queue, sent)
			if len(sent) != rows {
				t.Fatalf("%d recipients sent, want %d", len(sent), rows)
			}
			if c := b.counters(t, run.ID); c.States[ledger.Accepted] != rows {
				t.Fatalf("counters %v, want %d accepted", c.States, rows)
			}
		})
	}
}

// taskID is the id of to's send task in run, under the deployment's key in b's Redis.
func (b *testBundle) taskID(run, to string) string {
	id, err := b.ledger.TaskID(context.Background(), run, to)
	if err != nil {
		panic(err)
	}
	return id
}
