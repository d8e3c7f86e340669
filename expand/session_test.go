package expand_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
)

// sessionCampaign writes a session campaign (message:, with fallback when given) and its
// audience, and loads it.
func (b *testBundle) sessionCampaign(tb testing.TB, csv, fallback string) *campaigns.Definition {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(b.dir, "audience.csv"), []byte(csv), 0o644); err != nil {
		tb.Fatal(err)
	}
	yaml := "id: follow-up\n" +
		"message:\n  text: \"Hi {{.name}}, did your order arrive?\"\n" +
		fallback +
		"audience: {file: audience.csv}\n"
	path := filepath.Join(b.dir, "session.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		tb.Fatal(err)
	}
	def, err := campaigns.Load(path)
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return def
}

// A session campaign's payloads carry the session kind and each row's rendered message; with
// a fallback template they also carry the template, its parameters and its category's queue;
// without one the run has no template and sends in the utility queue.
func TestExpandSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	csv := "phone,name\n+12015550100,Ana\n+12015550101,Bia\n"

	for _, tc := range []struct {
		name, fallback, queue, template, lang, category string
		params                                          int
	}{
		{name: "NoFallback", queue: "herald:utility", category: "utility"},
		{name: "Fallback", fallback: "fallback_template:\n  name: order_status\n  language: en\n  category: marketing\n" +
			"  parameters:\n    body_1: \"{{.name}}\"\n",
			queue: "herald:marketing", template: "order_status", lang: "en", category: "marketing", params: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			def := b.sessionCampaign(t, csv, tc.fallback)
			e := b.expander(nil, 0)
			run := b.createRun(t, e, def)
			wantEqual(t, "queue", tc.queue, run.Queue)
			wantEqual(t, "template", tc.template, run.Template)
			st, err := e.Expand(ctx, def, run)
			if err != nil {
				t.Fatalf("Expand: %v", err)
			}
			wantEqual(t, "enqueued", 2, st.Enqueued)
			b.checkConsistent(t, run.ID, 2, []string{"+12015550100", "+12015550101"})
			tasks := b.pending(t, tc.queue)
			for rcpt, name := range map[string]string{"+12015550100": "Ana", "+12015550101": "Bia"} {
				p, ok := tasks[b.taskID(run.ID, rcpt)]
				if !ok {
					t.Fatalf("no task for %s in %s (have %d)", rcpt, tc.queue, len(tasks))
				}
				wantEqual(t, "kind", campaigns.KindSession, p.Kind)
				content, err := campaigns.DecodeSession(p.Session)
				if err != nil {
					t.Fatalf("DecodeSession(%s): %v", p.Session, err)
				}
				wantEqual(t, "text", "Hi "+name+", did your order arrive?", content.Text)
				wantEqual(t, "template", tc.template, p.Template)
				wantEqual(t, "language", tc.lang, p.Language)
				wantEqual(t, "category", tc.category, p.Category)
				wantEqual(t, "params", tc.params, len(p.Params))
				wantEqual(t, "bucket", ledger.BucketOf(rcpt, run.Buckets), p.Bucket)
			}
		})
	}
}
