package worker

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// keptOf returns the fallback payload the worker kept for p's recipient (nil: none).
func keptOf(t *testing.T, b *testBundle, p campaigns.SendPayload) []byte {
	t.Helper()
	kept, err := b.ledger.KeptFallback(context.Background(), p.Address())
	if err != nil {
		t.Fatal(err)
	}
	return kept
}

// TestKeepFallbackForLateRefusal: a session message that goes with a fallback able to go
// keeps that fallback, as a fallback task's payload, for a late refusal; nothing is kept for a
// message without a fallback, one whose fallback went at once (the window closed in Herald's
// record), or with keeping turned off.
func TestKeepFallbackForLateRefusal(t *testing.T) {
	b := setup(t, testConfig())
	b.worker.client = &sessionClient{fakeSender: b.sender}
	ps := seedRun(t, b, "run-keep", ledger.AtMostOnce, 3)
	withFallback, without, closed := sessionPayload(t, ps[0], true), sessionPayload(t, ps[1], false), sessionPayload(t, ps[2], true)
	for _, p := range []campaigns.SendPayload{withFallback, without} {
		openWindow(t, b, b.worker.cfg.Limits.BusinessID, p.To)
	}
	for _, p := range []campaigns.SendPayload{withFallback, without, closed} {
		if err := handle(t, b, p); err != nil {
			t.Fatalf("%s: %v", p.To, err)
		}
	}
	kept := keptOf(t, b, withFallback)
	if kept == nil {
		t.Fatal("nothing kept for a session message with a fallback")
	}
	var q campaigns.SendPayload
	if err := json.Unmarshal(kept, &q); err != nil {
		t.Fatal(err)
	}
	if q.Kind != campaigns.KindFallback || q.Template != withFallback.Template || len(q.Session) != 0 || len(q.Params) != 1 ||
		q.To != "" || q.Run != "" || q.Category != withFallback.Category || q.Sender != withFallback.Sender {
		t.Errorf("kept %+v, want the fallback template of %+v", q, withFallback)
	}
	if keptOf(t, b, without) != nil || keptOf(t, b, closed) != nil {
		t.Error("a fallback kept for a message without one, or one whose fallback went at once")
	}
	if e := entryOf(t, b, closed); e.Code != ledger.SentFallback {
		t.Errorf("closed window: %+v, want the fallback sent at once", e)
	}

	off := testConfig()
	off.LateFallbackFor = -1
	b2 := setup(t, off)
	b2.worker.client = &sessionClient{fakeSender: b2.sender}
	p := sessionPayload(t, seedRun(t, b2, "run-off", ledger.AtMostOnce, 1)[0], true)
	openWindow(t, b2, off.Limits.BusinessID, p.To)
	if err := handle(t, b2, p); err != nil {
		t.Fatal(err)
	}
	if keptOf(t, b2, p) != nil {
		t.Error("a fallback kept with late fallbacks off")
	}
}

// TestRefusedSessionKeepsNoFallback: a session message Connectly refused at once had its
// fallback sent under the same claim: nothing is left kept, so a later failure event sends no
// second fallback.
func TestRefusedSessionKeepsNoFallback(t *testing.T) {
	b, c, p := refusalBundle(t, testConfig())
	if err := handle(t, b, p); err != nil {
		t.Fatal(err)
	}
	if c.Sessions() != 1 || b.sender.CallsTo(p.To) != 1 {
		t.Fatalf("%d session and %d template requests, want 1 and 1", c.Sessions(), b.sender.CallsTo(p.To))
	}
	if keptOf(t, b, p) != nil {
		t.Error("the fallback is still kept after it went at once")
	}
}

// TestSendLateFallback: a fallback task (campaigns.KindFallback, written by the webhook
// receiver) sends the template with no window gate and records it as a fallback.
func TestSendLateFallback(t *testing.T) {
	b := setup(t, testConfig())
	c := &sessionClient{fakeSender: b.sender}
	b.worker.client = c
	p := seedRun(t, b, "run-late", ledger.AtMostOnce, 1)[0]
	p.Kind = campaigns.KindFallback
	p.Params = []connectly.Parameter{{Name: "body_1", Value: "Ana"}}
	if _, err := servicewindow.New(b.rdb, nil).Touch(context.Background(), b.worker.cfg.Limits.BusinessID, []string{"+19990000000"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := handle(t, b, p); err != nil {
		t.Fatal(err)
	}
	if c.Sessions() != 0 || b.sender.CallsTo(p.To) != 1 {
		t.Fatalf("%d session and %d template requests, want 0 and 1", c.Sessions(), b.sender.CallsTo(p.To))
	}
	if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Code != ledger.SentFallback {
		t.Errorf("entry %+v, want accepted(%s)", e, ledger.SentFallback)
	}
}

// TestFallbackUnkeptSendsNothing: a session message whose fallback cannot be kept (here the
// bucket's key holds another type) is not sent: its claim goes back under
// ledger.CodeFallbackUnkept and the task tries again; once the fallback can be kept it goes.
func TestFallbackUnkeptSendsNothing(t *testing.T) {
	b := setup(t, testConfig())
	c := &sessionClient{fakeSender: b.sender}
	b.worker.client = c
	p := sessionPayload(t, seedRun(t, b, "run-unkept", ledger.AtMostOnce, 1)[0], true)
	openWindow(t, b, b.worker.cfg.Limits.BusinessID, p.To)
	key := rkeys.KeptFallback(p.Run, p.Bucket)
	if err := b.rdb.Set(context.Background(), key, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := handle(t, b, p); err == nil {
		t.Fatal("handle: nil, want the task to try again")
	}
	if c.Sessions() != 0 {
		t.Fatalf("%d session requests, want none while the fallback cannot be kept", c.Sessions())
	}
	if e := entryOf(t, b, p); e.State != ledger.Queued || e.Code != ledger.CodeFallbackUnkept {
		t.Fatalf("entry %+v, want queued(%s)", e, ledger.CodeFallbackUnkept)
	}
	if err := b.rdb.Del(context.Background(), key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := handle(t, b, p); err != nil {
		t.Fatal(err)
	}
	if c.Sessions() != 1 || keptOf(t, b, p) == nil {
		t.Fatalf("%d session requests, kept %q: want the message sent with its fallback kept", c.Sessions(), keptOf(t, b, p))
	}
}
