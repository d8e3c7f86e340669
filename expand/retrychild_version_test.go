package expand_test

import (
	"context"
	"os"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/connectly"
)

// TestRetryOfASubmittedVersionKeepsIt: the retry of a run of submitted version N is expanded
// from version N, and the child records version N, so everything later read through SourceOf
// for the child (the on_reply rules its replies follow, its expansion steps, a retry of the
// child) comes from that version, not from the file as it is now, nor fails once it is gone.
func TestRetryOfASubmittedVersionKeepsIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	def := b.campaign(t, audienceCSV(20), "")
	sub := b.submit(t, def)
	runID := expand.TickRunID(def.ID, testNow)
	h := b.handlerTime(expand.Config{}, &fakeTime{})
	if err := h.ProcessTask(ctx, expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})); err != nil {
		t.Fatal(err)
	}
	b.finishAll(t, campaigns.QueueFor("marketing"), func(string) string { return "HTTP_503" })
	if err := os.Remove(def.Path); err != nil { // the submitted campaign's file is gone; its version is stored
		t.Fatal(err)
	}
	table, _ := connectly.NewTable(nil)
	r := b.runs(expand.Config{})
	res, err := r.RetryRun(ctx, expand.RetryParams{Parent: runID, Class: connectly.ClassTransient, Table: table})
	if err != nil {
		t.Fatalf("RetryRun: %v", err)
	}
	if res.Child.Version != sub.Version {
		t.Fatalf("the retry child records version %d, want its parent's %d", res.Child.Version, sub.Version)
	}
	if _, err := r.SourceOf(ctx, res.Child); err != nil {
		t.Fatalf("the retry child of version %d cannot read its campaign: %v", sub.Version, err)
	}
}
