package expand_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/ledger"
)

// TestAudienceRewrittenMidRunPausesTheRun: a nightly run reads its audience file in steps as
// its backlog frees. When the export job rewrites the file (tomorrow's audience) while the run
// is still expanding, the next step must not seek to the old file's byte offset in the new
// file and send half of another audience under this run (DESIGN: "each firing is one run with
// its own audience snapshot"). The step finds the file's fingerprint changed and pauses the
// run, saying why, with nothing planned from the new file; with the file put back as it was
// and the run resumed, the run goes on to its end, every one of its own recipients once.
func TestAudienceRewrittenMidRunPausesTheRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	def := b.campaign(t, audienceCSV(300), "")
	sub := b.submit(t, def)
	cfg := expand.Config{MinBacklog: 100, MaxBacklog: 100, BatchSize: 50, TopUp: 5 * time.Millisecond}
	h := b.handlerTime(cfg, &fakeTime{})
	queue := campaigns.QueueFor("marketing")
	runID := expand.TickRunID(def.ID, testNow)
	task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	sent := map[string]int{}
	b.sendAll(t, queue, sent)

	// Tomorrow's export replaces the file: other people, same format, same size.
	path := filepath.Join(b.dir, "audience.csv")
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString("name,phone\n")
	for i := range 300 {
		fmt.Fprintf(&sb, "next%d,+5521%09d\n", i, 900000000+i)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(ctx, b.continuation(t)); err != nil {
		t.Fatalf("step after the rewrite: %v", err)
	}
	run := b.getRun(t, runID)
	if run.Status != ledger.RunPaused || !strings.Contains(run.PauseReason, "the audience file changed since the run started") ||
		!strings.Contains(run.PauseReason, "audience.csv") {
		t.Fatalf("run %s (%q); want paused, saying the audience file changed", run.Status, run.PauseReason)
	}
	if run.QueuedTo != 100 || run.PlannedTo != 100 || len(b.pending(t, queue)) != 0 {
		t.Fatalf("rows planned from the new file: planned_to %d, queued_to %d", run.PlannedTo, run.QueuedTo)
	}
	// Looking again while the file is still the new one plans nothing either.
	if err := h.ProcessTask(ctx, b.continuation(t)); err != nil {
		t.Fatal(err)
	}
	if run := b.getRun(t, runID); run.PlannedTo != 100 {
		t.Fatalf("the recheck planned from the new file: planned_to %d", run.PlannedTo)
	}

	// The operator puts the file back as it was (its bytes and modification time) and resumes.
	if err := os.WriteFile(path, original, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ledger.Resume(ctx, runID); err != nil {
		t.Fatal(err)
	}
	b.runChain(t, runID, queue, cfg, sent)
	own, foreign := 0, 0
	for k, n := range sent {
		if n != 1 {
			t.Fatalf("%s sent %d times", k, n)
		}
		if strings.Contains(k, "+5511") {
			own++
		} else {
			foreign++
		}
	}
	if foreign > 0 || own != 300 {
		t.Fatalf("the run sent to %d of its own 300 recipients and to %d people of the rewritten file", own, foreign)
	}
}

// TestAudienceRemovedMidRunPausesTheRun: an audience file removed while the run still expands
// is something the run needs gone: the run is paused with the reason, and its expansion looks
// again later, rather than fail until its task is archived with the run left running.
func TestAudienceRemovedMidRunPausesTheRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	def := b.campaign(t, audienceCSV(300), "")
	sub := b.submit(t, def)
	h := b.handlerTime(expand.Config{MinBacklog: 100, MaxBacklog: 100, BatchSize: 50}, &fakeTime{})
	runID := expand.TickRunID(def.ID, testNow)
	if err := h.ProcessTask(ctx, expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})); err != nil {
		t.Fatal(err)
	}
	b.sendAll(t, campaigns.QueueFor("marketing"), map[string]int{})
	if err := os.Remove(filepath.Join(b.dir, "audience.csv")); err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(ctx, b.continuation(t)); err != nil {
		t.Fatalf("step after the file was removed: %v", err)
	}
	run := b.getRun(t, runID)
	if run.Status != ledger.RunPaused || !strings.Contains(run.PauseReason, "no such file") {
		t.Fatalf("run %s (%q); want paused, saying the file is gone", run.Status, run.PauseReason)
	}
	if b.continuation(t) == nil {
		t.Fatal("the paused run has no expansion task to look again")
	}
}
