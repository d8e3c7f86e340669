package expand_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestCampaignSendGoesOnFromTheFileAsItStarted: `campaign send` expands up to its backlog and
// hands over to an expansion task. That task reads the campaign file as the run kept it when
// it started, not the file as it is now: removed, the run still goes on to its end; edited,
// the rest of the run still renders what the run started with. When what the run needs is
// gone for good (the kept file lost), the run is paused with the reason, never left running
// with no task, and a cancel closes it at the rows it had read.
func TestCampaignSendGoesOnFromTheFileAsItStarted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := expand.Config{MinBacklog: 100, MaxBacklog: 100}
	start := func(t *testing.T) (*testBundle, expand.Started) {
		b := setup(t)
		st := b.startContinuing(t, 300)
		if st.Run.Source == "" {
			t.Fatal("the run keeps no campaign file")
		}
		return b, st
	}

	t.Run("FileRemoved", func(t *testing.T) {
		t.Parallel()
		b, st := start(t)
		if err := os.Remove(st.Run.Definition); err != nil { // the operator tidies up the file after sending
			t.Fatal(err)
		}
		sent := map[string]int{}
		b.runChain(t, st.RunID, st.Run.Queue, cfg, sent)
		if c := b.counters(t, st.RunID); len(sent) != 300 || c.Sum() != 300 {
			t.Fatalf("%d sent, states add up to %d; want 300", len(sent), c.Sum())
		}
	})

	t.Run("FileEdited", func(t *testing.T) {
		t.Parallel()
		b, st := start(t)
		data, err := os.ReadFile(st.Run.Definition)
		if err != nil {
			t.Fatal(err)
		}
		edited := strings.Replace(string(data), `body_1: "{{.name}}"`, `body_1: "edited {{.name}}"`, 1)
		if err := os.WriteFile(st.Run.Definition, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		b.sendAll(t, st.Run.Queue, map[string]int{})
		task := b.continuation(t)
		if err := b.handlerTime(cfg, &fakeTime{}).ProcessTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		tasks := b.pending(t, st.Run.Queue)
		if len(tasks) == 0 {
			t.Fatal("the continuation wrote no task")
		}
		for _, p := range tasks {
			params, _ := json.Marshal(p.Params)
			if strings.Contains(string(params), "edited") {
				t.Fatalf("the continuation renders the file as it is now: %s", params)
			}
		}
	})

	t.Run("KeptFileGone", func(t *testing.T) {
		t.Parallel()
		b, st := start(t)
		b.mr.Del(rkeys.DefinitionFile(st.Run.Campaign, st.Run.Source))
		b.sendAll(t, st.Run.Queue, map[string]int{})
		h := b.handlerTime(cfg, &fakeTime{})
		if err := h.ProcessTask(ctx, b.continuation(t)); err != nil {
			t.Fatalf("continuation: %v", err)
		}
		run := b.getRun(t, st.RunID)
		if run.Status != ledger.RunPaused || !strings.Contains(run.PauseReason, "not kept") {
			t.Fatalf("run %s (%q); want paused with the reason", run.Status, run.PauseReason)
		}
		recheck := b.continuation(t)
		if recheck == nil {
			t.Fatal("the paused run has no expansion task to look again")
		}
		if _, _, err := b.ledger.Cancel(ctx, st.RunID, "given up"); err != nil {
			t.Fatal(err)
		}
		if err := h.ProcessTask(ctx, recheck); err != nil {
			t.Fatalf("recheck: %v", err)
		}
		run, c := b.getRun(t, st.RunID), b.counters(t, st.RunID)
		if !run.Expanded || run.Total != 100 || c.Sum() != 100 || run.Status != ledger.RunCancelled || run.Finished.IsZero() {
			t.Fatalf("cancelled run: expanded %v total %d finished %v, states add up to %d; want closed at the 100 rows it had read",
				run.Expanded, run.Total, run.Finished, c.Sum())
		}
		if next := b.continuation(t); next != nil {
			t.Fatal("a closed run still has an expansion task")
		}
	})
}
