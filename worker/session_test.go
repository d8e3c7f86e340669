package worker

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// TestSessionSends sends a session message to four people through the same pipeline as a
// template: one whose window is open (sent as a session message), one whose window is closed
// and whose payload carries a fallback template (sent that template, counted apart), one
// whose window is closed without a fallback (skipped(window_closed), no request), and one
// the worker believes open but the provider finds closed (failed permanently with the
// provider's code, not retried).
func TestSessionSends(t *testing.T) {
	const business, key = "biz-session", "key-0123456789abcdef"
	fake, b := withFake(t, business, key)
	ctx := context.Background()
	ps := seedRun(t, b, "run-session", ledger.AtMostOnce, 4)
	content, _ := json.Marshal(connectly.SessionContent{Text: "Your order shipped"})
	for i := range ps {
		ps[i].Kind, ps[i].Session, ps[i].Template = campaigns.KindSession, content, ""
	}
	open, fallback, skipped, stale := ps[0], ps[1], ps[2], ps[3]
	fallback.Template = "spring_sale"
	fallback.Params = []connectly.Parameter{{Name: "body_1", Value: "Ana"}}
	now := time.Now()
	tracker := servicewindow.New(b.rdb, nil)
	for _, p := range []campaigns.SendPayload{open, stale} {
		if _, err := tracker.Touch(ctx, business, []string{p.To}, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fake.OpenWindow(open.To, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}

	for _, p := range []campaigns.SendPayload{open, fallback, skipped} {
		if err := handle(t, b, p); err != nil {
			t.Fatalf("%s: %v", p.To, err)
		}
	}
	if err := handle(t, b, stale); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("closed at the provider: %v, want a permanent failure (never a transient retry)", err)
	}

	if e := entryOf(t, b, open); e.State != ledger.Accepted {
		t.Errorf("open window: %+v, want accepted", e)
	}
	if e := entryOf(t, b, fallback); e.State != ledger.Accepted {
		t.Errorf("fallback: %+v, want accepted", e)
	}
	wantEntry(t, b, skipped, ledger.Entry{State: ledger.Skipped, Code: CodeWindowClosed})
	if e := entryOf(t, b, stale); e.State != ledger.Failed || e.Code == "" || e.Attempts != 1 {
		t.Errorf("closed at the provider: %+v, want failed with the provider's code after one attempt", e)
	}

	kinds := map[string]string{}
	for _, r := range fake.Received() {
		kinds[r.Number] = r.Kind
		if r.OutsideWindow && r.Accepted() {
			t.Errorf("%s: a session message accepted outside the window", r.Number)
		}
	}
	want := map[string]string{open.To: fakeconnectly.KindSession, fallback.To: fakeconnectly.KindTemplate,
		stale.To: fakeconnectly.KindSession}
	if len(kinds) != len(want) {
		t.Errorf("requests to %v, want %v (none to the skipped recipient)", kinds, want)
	}
	for to, k := range want {
		if kinds[to] != k {
			t.Errorf("%s: request kind %q, want %q", to, kinds[to], k)
		}
	}
	c := countersOf(t, b, "run-session")
	if c.States[ledger.Accepted] != 2 || c.States[ledger.Skipped] != 1 || c.States[ledger.Failed] != 1 {
		t.Errorf("counters %+v", c)
	}
}

// TestSessionRawMessage sends a raw message object (text beside an attachment, which the
// typed kind refuses) through the one send path: the fake, answering as the reference's 3.1
// shows, takes it as an attachment with its text.
func TestSessionRawMessage(t *testing.T) {
	const business, key = "biz-session-raw", "key-0123456789abcdef"
	fake, b := withFake(t, business, key)
	ctx := context.Background()
	ps := seedRun(t, b, "run-session-raw", ledger.AtMostOnce, 1)
	content, _ := json.Marshal(connectly.SessionContent{Raw: connectly.RawObject(
		`{"text":"Your invoice","attachments":[{"type":"document","url":"https://example.com/i.pdf","filename":"i.pdf"}]}`)})
	p := ps[0]
	p.Kind, p.Session, p.Template = campaigns.KindSession, content, ""
	now := time.Now()
	if _, err := servicewindow.New(b.rdb, nil).Touch(ctx, business, []string{p.To}, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := fake.OpenWindow(p.To, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := handle(t, b, p); err != nil {
		t.Fatal(err)
	}
	if e := entryOf(t, b, p); e.State != ledger.Accepted {
		t.Fatalf("entry %+v, want accepted", e)
	}
	got := fake.Received()
	if len(got) != 1 || !got[0].Accepted() || got[0].Content != fakeconnectly.ContentAttachments || got[0].Session == nil ||
		got[0].Session.Message.Text != "Your invoice" || len(got[0].Session.Message.Attachments) != 1 {
		t.Fatalf("received %+v, want one accepted attachment with its text", got)
	}
}
