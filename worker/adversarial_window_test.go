package worker

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// Session messages and their fallback templates against every limit, counted from what the
// fake Connectly recorded: each person gets at most one of the two, never a session message
// outside their window, and the session message is held to the same rate limits as a
// template.

// TestAdversarialWindowRefusalFormsSendOneFallback: Herald's record says the window is open,
// Connectly's says closed, and Connectly answers in each form the fake offers for it
// (Config.WindowAnswer: the documented codes at 400, the reference's example body for both
// cases, the no-conversation code for both, the example body at a 504 as grpc-gateway maps
// DEADLINE_EXCEEDED (reference 1), ERROR_TYPE_FAILED_PRECONDITION with no code (3.1)), and the
// window's code at a 503 while Connectly's own window is open (reference 4.4: the body's code
// before the status). Each refusal sent nothing, so the fallback template goes under the same
// claim: the fake took exactly one message per person, the template, after one refused
// session request.
func TestAdversarialWindowRefusalFormsSendOneFallback(t *testing.T) {
	forms := []string{fakeconnectly.WindowAnswerCodes, fakeconnectly.WindowAnswerOutsideWindow,
		fakeconnectly.WindowAnswerNoConversation, fakeconnectly.WindowAnswerDeadline504, fakeconnectly.WindowAnswerPrecondition}
	for _, form := range forms {
		t.Run(form, func(t *testing.T) {
			fake, b := withFakeOf(t, fakeconnectly.Config{WindowAnswer: form}, shapesBusiness, shapesKey)
			ps := bodyParams(seedRun(t, b, "run-refusal-forms", ledger.AtMostOnce, 3))
			for i := range ps {
				ps[i] = sessionPayload(t, ps[i], true)
				openWindow(t, b, shapesBusiness, ps[i].To)
			}
			expired, never, coded := ps[0], ps[1], ps[2]
			now := time.Now()
			if err := fake.OpenWindow(expired.To, now.Add(-25*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := fake.OpenWindow(coded.To, now.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			fake.SetRules([]fakeconnectly.Rule{{Numbers: []string{coded.To}, Kind: fakeconnectly.KindSession,
				Code: "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", Status: 503}})
			for name, p := range map[string]campaigns.SendPayload{"expired": expired, "never wrote": never, "503 with the code": coded} {
				if err := handle(t, b, p); err != nil {
					t.Fatalf("%s: %v, want the fallback accepted", name, err)
				}
				if e := entryOf(t, b, p); e.State != ledger.Accepted || e.Code != ledger.SentFallback || e.Attempts != 1 {
					t.Errorf("%s: entry %+v, want accepted(%s) after one attempt", name, e, ledger.SentFallback)
				}
				var kinds []string
				var taken []string
				for _, r := range fake.Received() {
					if r.Number != p.To {
						continue
					}
					kinds = append(kinds, r.Kind)
					if r.Accepted() {
						taken = append(taken, r.Kind)
					}
				}
				if len(kinds) != 2 || kinds[0] != fakeconnectly.KindSession || kinds[1] != fakeconnectly.KindTemplate ||
					len(taken) != 1 || taken[0] != fakeconnectly.KindTemplate {
					t.Errorf("%s: requests %v, taken %v; want the session refused, then the template taken, one message", name, kinds, taken)
				}
			}
		})
	}
}

// TestAdversarialAmbiguousSessionNeverFollowedByItsFallback: at most once, a session message
// whose answer leaves it unknown whether it went out (Connectly's JSON 500 after taking it, a
// connection reset after taking it, no answer before the worker's request timeout: reference
// 4.4's duplicate risks) is unknown, and when its task comes again after the window closed
// (Herald's record and Connectly's), the gate's choice of the fallback template does not
// send it: the person holds at most the one message the fake took.
func TestAdversarialAmbiguousSessionNeverFollowedByItsFallback(t *testing.T) {
	ctx := context.Background()
	fake, b := withFakeOf(t, fakeconnectly.Config{}, shapesBusiness, shapesKey)
	b.worker.cfg.RequestTimeout = 100 * time.Millisecond
	ps := bodyParams(seedRun(t, b, "run-ambiguous-session", ledger.AtMostOnce, 3))
	now := time.Now()
	for i := range ps {
		ps[i] = sessionPayload(t, ps[i], true)
		openWindow(t, b, shapesBusiness, ps[i].To)
		if err := fake.OpenWindow(ps[i].To, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	fake.SetRules([]fakeconnectly.Rule{
		{Numbers: []string{ps[0].To}, Kind: fakeconnectly.KindSession, Status: 500, Sent: true},
		{Numbers: []string{ps[1].To}, Kind: fakeconnectly.KindSession, LoseResponse: true},
		{Numbers: []string{ps[2].To}, Kind: fakeconnectly.KindSession, Latency: time.Minute, Sent: true},
	})
	for _, p := range ps {
		if err := handle(t, b, p); err != nil {
			t.Fatalf("%s: %v, want the send settled unknown", p.To, err)
		}
	}
	// The window closes before the task comes again.
	for _, p := range ps {
		key, _ := servicewindow.Locate(shapesBusiness, p.To)
		if err := b.rdb.Del(ctx, key).Err(); err != nil {
			t.Fatal(err)
		}
	}
	fake.ClearWindows()
	for _, p := range ps {
		if err := handle(t, b, p); err != nil {
			t.Fatalf("%s again: %v", p.To, err)
		}
	}
	for _, p := range ps {
		if e := entryOf(t, b, p); e.State != ledger.Unknown || e.Attempts != 1 {
			t.Errorf("%s: entry %+v, want unknown after one attempt", p.To, e)
		}
		if n, taken := requestsTo(fake, p.To), fake.AcceptedCount(p.To); n != 1 || taken != 1 {
			t.Errorf("%s: %d requests, %d messages taken; want the one session message, no fallback", p.To, n, taken)
		}
	}
}

// TestAdversarialSessionsTakeTheSenderRateAndThePairSlot: reference 9.1 counts every message
// of a number against its throughput ("inbound + outbound, all types") and the pair rate
// limit between one number and one person, session messages too. Session messages of one run
// and a template of another, from one sender paced at 1/s with a pair interval of 6 s, reach
// the fake at least a second apart, and the template to a person who just got a session
// message at least the pair interval after it (times on the fake's clock, which is the
// worker's simulated one).
func TestAdversarialSessionsTakeTheSenderRateAndThePairSlot(t *testing.T) {
	ctx := context.Background()
	sim := &simClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	cfg := testConfig()
	cfg.Limits.BusinessID = shapesBusiness
	cfg.Limits.SenderRates = map[string]float64{testSender: 1}
	cfg.Limits.PairInterval = 6 * time.Second
	cfg.Limits.MaxWait = 2 * time.Second
	b := setupWith(t, cfg, &redis.Options{}, sim.Sleep)
	b.worker = New(cfg, Deps{Redis: b.rdb, Sender: b.sender, Logger: zerolog.Nop(), Now: sim.Now, Sleep: sim.Sleep})
	sim.use(b)
	fake, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: shapesBusiness, APIKey: shapesKey,
		RateLimit: -1, Clock: sim.Now})
	useClient(t, b, url, shapesBusiness, shapesKey)

	sessions := bodyParams(seedRun(t, b, "run-session-rate", ledger.AtMostOnce, 3))
	tr := servicewindow.New(b.rdb, sim.Now)
	for i := range sessions {
		sessions[i] = sessionPayload(t, sessions[i], false)
		if _, err := tr.Touch(ctx, shapesBusiness, []string{sessions[i].To}, sim.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := fake.OpenWindow(sessions[i].To, sim.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// The same person as the first session message, in another run.
	template := bodyParams(seedRun(t, b, "run-template-rate", ledger.AtMostOnce, 1))[0]
	for _, p := range append(sessions, template) {
		for try := 0; ; try++ {
			err := handle(t, b, p)
			if err == nil {
				break
			}
			te := wantAs[*ThrottledError](t, err)
			if try == 5 {
				t.Fatalf("%s still throttled after %d tries: %v", p.To, try+1, te)
			}
			if err := sim.Sleep(ctx, te.RetryAfter); err != nil {
				t.Fatal(err)
			}
		}
	}

	var taken []fakeconnectly.Received
	for _, r := range fake.Received() {
		if r.Accepted() {
			taken = append(taken, r)
		}
	}
	if len(taken) != 4 {
		t.Fatalf("the fake took %d messages, want 4", len(taken))
	}
	for i := 1; i < len(taken); i++ {
		if gap := taken[i].At.Sub(taken[i-1].At); gap < time.Second {
			t.Errorf("%s (%s) %v after %s (%s): the sender's rate is 1/s", taken[i].Number, taken[i].Kind, gap,
				taken[i-1].Number, taken[i-1].Kind)
		}
	}
	first, last := taken[0], taken[len(taken)-1]
	if first.Number != template.To || first.Kind != fakeconnectly.KindSession || last.Kind != fakeconnectly.KindTemplate {
		t.Fatalf("taken %s %s first and %s %s last, want the session message and the template to %s", first.Kind,
			first.Number, last.Kind, last.Number, template.To)
	}
	if gap := last.At.Sub(first.At); gap < cfg.Limits.PairInterval {
		t.Errorf("the template reached %s %v after the session message, want at least the pair interval %v",
			template.To, gap, cfg.Limits.PairInterval)
	}
}
