package webhooks

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/ledger"
)

// A worker dies mid-send; Connectly delivered the message and says so; the run is paused
// (for longer than park_for) before the send task runs again. The delivered event waits for
// the claim: after resume the next attempt turns the entry unknown, and the event settles it.
func TestParkedEventOutlivesAPause(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{})
	r := "+15550000001"
	buckets := seedAccepted(t, b, "run-p", []string{r}, nil)
	a := ledger.Address{Run: "run-p", Bucket: buckets[r], Recipient: r}
	if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil { // the worker that dies
		t.Fatal(err)
	}
	id := ulidAt(testNow, 1)
	if w := post(t, b, statusBody("run-p", r, buckets[r], id, StatusDelivered, testNow), testSecret); w.Code != http.StatusOK {
		t.Fatal(w.Code)
	}
	if _, err := b.l.Pause(ctx, "run-p", "operator"); err != nil {
		t.Fatal(err)
	}
	b.now = b.now.Add(20 * time.Minute)
	if c, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil || c.Verdict != ledger.VerdictPaused { // the reclaimed task, held
		t.Fatalf("claim %+v %v", c, err)
	}
	if _, _, err := b.rc.RetryParked(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Resume(ctx, "run-p"); err != nil {
		t.Fatal(err)
	}
	c, err := b.l.Claim(ctx, a, ledger.AtMostOnce)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.rc.RetryParked(ctx); err != nil {
		t.Fatal(err)
	}
	if e := entryState(t, b, "run-p", r, buckets[r]); e.State != ledger.Delivered {
		t.Fatalf("claim after resume %s; entry %+v: Connectly's 'delivered' was dropped", c.Verdict, e)
	}
}
