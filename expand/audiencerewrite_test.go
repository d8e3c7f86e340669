package expand_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
)

// rewriteOnWrite is a task writer that runs rewrite once, as the expansion writes its first
// batch of send tasks: rows have been read from the audience file, and more are being read.
type rewriteOnWrite struct {
	asynqbatch.Writer
	once    sync.Once
	rewrite func()
}

func (w *rewriteOnWrite) Write(ctx context.Context, tasks []asynqbatch.Task, fresh bool) ([]bool, error) {
	w.once.Do(w.rewrite)
	return w.Writer.Write(ctx, tasks, fresh)
}

// TestAudienceRewrittenInPlaceAsItIsRead: the export job rewrites the audience file in place
// (cp, a shell redirect: the file is truncated and written anew) while an expansion step is
// reading it, past the step's check of the fingerprint. The step reads on from its offset:
// the file ends early, or goes on with another audience's rows. It must not take that end for
// the end of the audience (so did it: the run was marked expanded at the rows read so far,
// 16,171 of 50,000, with no error), nor plan a row read from the new file: the run is paused,
// saying the audience file changed, with only rows of its own audience planned.
func TestAudienceRewrittenInPlaceAsItIsRead(t *testing.T) {
	t.Parallel()
	// More rows than the step can have read when its first batch is written: the batches
	// between the reader and the writer (at most five), and those the audience stream reads
	// ahead (a few per core, of 1,024 rows).
	const batch = 500
	n := 5*batch + (4*runtime.GOMAXPROCS(0)+8)*1024 + 5000
	other := func() []byte {
		var sb strings.Builder
		sb.WriteString("name,phone\n")
		for i := range 2 * n {
			fmt.Fprintf(&sb, "next%d,+5521%09d\n", i, 900000000+i)
		}
		return []byte(sb.String())
	}
	for _, tc := range []struct {
		name    string
		rewrite func(path string) error
	}{
		{"Truncated", func(path string) error { return os.Truncate(path, 0) }},
		{"AnotherAudience", func(path string) error { return os.WriteFile(path, other(), 0o644) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			def := b.campaign(t, audienceCSV(n), "")
			sub := b.submit(t, def)
			path := filepath.Join(b.dir, "audience.csv")
			w := &rewriteOnWrite{Writer: asynqbatch.New(b.rdb), rewrite: func() {
				if err := tc.rewrite(path); err != nil {
					t.Error(err)
				}
			}}
			ft := &fakeTime{}
			h := expand.NewHandler(expand.Config{BatchSize: batch, MinBacklog: 2 * n, MaxBacklog: 2 * n}, expand.Deps{
				Redis: b.rdb, Logger: zerolog.Nop(), Now: ft.Now, Sleep: ft.Sleep, Tasks: w,
				Sender: func(*campaigns.Definition) (string, error) { return "+14151111234", nil },
			})
			runID := expand.TickRunID(def.ID, testNow)
			task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
			if err := h.ProcessTask(ctx, task); err != nil {
				t.Fatalf("ProcessTask: %v", err)
			}
			run := b.getRun(t, runID)
			t.Logf("run %s expanded %v at row %d of %d (%q)", run.Status, run.Expanded, run.QueuedTo, n, run.PauseReason)
			if run.Status != ledger.RunPaused || run.Expanded ||
				!strings.Contains(run.PauseReason, "the audience file changed since the run started") {
				t.Fatalf("run %s, expanded %v at row %d of %d (%q); want paused, saying the audience file changed",
					run.Status, run.Expanded, run.QueuedTo, n, run.PauseReason)
			}
			pending := b.pending(t, campaigns.QueueFor("marketing"))
			for _, p := range pending {
				if !strings.HasPrefix(p.To, "+5511") {
					t.Fatalf("a row of the rewritten file was planned: row %d, %s", p.Row, p.To)
				}
			}
			// Every row of the original audience is a distinct valid recipient: each row
			// planned has its task.
			if c := b.counters(t, runID); len(pending) != run.QueuedTo || c.Sum() != int64(run.QueuedTo) {
				t.Fatalf("%d send tasks and %d entries for %d rows planned", len(pending), c.Sum(), run.QueuedTo)
			}
		})
	}
}
