package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// Ways of trying to make Herald break "within every WhatsApp limit" with session messages and
// their fallback templates, each judged by what the fake Connectly recorded, never by what
// Herald's counters say.

// outsideWindowPeople are the people the fake took a message for while no window of theirs
// to the sending number was open: the people Meta's daily messaging tier counts (reference
// 3.1: it "counts unique people messaged outside an open window"; 9.1).
func outsideWindowPeople(fake *fakeconnectly.Server) map[string]bool {
	out := map[string]bool{}
	for _, r := range fake.Received() {
		if r.Accepted() && !r.WindowOpen {
			out[r.Number] = true
		}
	}
	return out
}

// TestAdversarialTierCountsAWindowClosingBeforeTheSlot: with
// worker.window_margin 0s (README: "0s: until it closes") a template's reservation reads the
// recipient's window as open at the time of the reservation and books no room in the daily
// tier, but the template leaves at its rate slot, up to retry.max_pace_wait later. A window
// that closes in between lets a template out of any window with no tier room: here the tier
// (1) is full with the first recipient, the second's window closes 1 s after the reservation,
// the sender's next slot is 2 s away, and the fake takes the template 1 s after the close:
// two people messaged outside a window against a tier of one, until the reservation judged the
// window as of the latest the send can leave. The gate's fallback template of a session
// message and a plain template are both checked.
func TestAdversarialTierCountsAWindowClosingBeforeTheSlot(t *testing.T) {
	for _, kind := range []string{"fallback", "template"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			sim := &simClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
			cfg := testConfig()
			cfg.Limits.BusinessID = shapesBusiness
			cfg.Limits.DailyTier = 1
			cfg.Limits.SenderRates = map[string]float64{testSender: 0.5} // a slot every 2 s
			cfg.Limits.MaxWait = 3 * time.Second
			b := setupWith(t, cfg, &redis.Options{}, sim.Sleep)
			b.worker = New(cfg, Deps{Redis: b.rdb, Sender: b.sender, Logger: zerolog.Nop(), Now: sim.Now, Sleep: sim.Sleep})
			sim.use(b)
			b.worker.SetWindowMargin(0)
			fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: shapesBusiness, APIKey: shapesKey,
				RateLimit: -1, Clock: sim.Now})
			useClient(t, b, url, shapesBusiness, shapesKey)

			ps := bodyParams(seedRun(t, b, "run-edge", ledger.AtMostOnce, 2))
			first, edge := ps[0], ps[1]
			if kind == "fallback" {
				edge = sessionPayload(t, edge, true)
			}
			// edge wrote 24 h less 1 s ago (Herald's record and Connectly's agree): the window
			// closes 1 s from now, before the sender's next slot.
			at := sim.Now().Add(-servicewindow.Length + time.Second)
			if _, err := servicewindow.New(b.rdb, sim.Now).Touch(ctx, shapesBusiness, []string{edge.To}, at); err != nil {
				t.Fatal(err)
			}
			if err := fake.OpenWindow(edge.To, at); err != nil {
				t.Fatal(err)
			}

			if err := handle(t, b, first); err != nil {
				t.Fatalf("first recipient: %v", err)
			}
			var te *ThrottledError
			if err := handle(t, b, edge); err != nil && !errors.As(err, &te) {
				t.Fatalf("edge recipient: %v, want sent or waiting for the tier", err)
			}
			if out := outsideWindowPeople(fake); len(out) > cfg.Limits.DailyTier {
				t.Errorf("the fake took messages for %d people outside any window (%v) with a daily tier of %d: "+
					"the %s was reserved as inside a window that closed before its slot, and took no room",
					len(out), out, cfg.Limits.DailyTier, kind)
			}
		})
	}
}
