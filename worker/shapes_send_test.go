package worker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// Answers to a send in the shapes the provider reference allows, as the fake Connectly writes
// them, through the real client and the worker: what each does to the recipient and the run.

const shapesBusiness, shapesKey = "biz-shapes", "key-0123456789abcdef"

// withFakeOf is withFake for a fake of cfg (its business id and key are shapes*, no rate
// limit), reached by a client that sends the given business id and key.
func withFakeOf(t *testing.T, cfg fakeconnectly.Config, businessID, apiKey string) (*fakeconnectly.Server, *testBundle) {
	t.Helper()
	cfg.BusinessID, cfg.APIKey, cfg.RateLimit = shapesBusiness, shapesKey, -1
	fake, url := fakeconnectly.StartForTest(t, cfg)
	wcfg := testConfig()
	wcfg.Limits.BusinessID = shapesBusiness
	b := setup(t, wcfg)
	useClient(t, b, url, businessID, apiKey)
	return fake, b
}

// useClient makes the bundle's worker send to url as businessID with apiKey.
func useClient(t *testing.T, b *testBundle, url, businessID, apiKey string) {
	t.Helper()
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: businessID, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	b.worker.client = client
}

// bodyParams names the body variable by position, as the fake checks parameter keys.
func bodyParams(ps []campaigns.SendPayload) []campaigns.SendPayload {
	for i := range ps {
		ps[i].Params = []connectly.Parameter{{Name: "body_1", Value: "Ana"}}
	}
	return ps
}

// requestsTo counts the requests the fake received for number.
func requestsTo(fake *fakeconnectly.Server, number string) int {
	n := 0
	for _, r := range fake.Received() {
		if r.Number == number {
			n++
		}
	}
	return n
}

// asSessions turns ps into session sends to customers whose window is open, in Herald's
// record and in the fake's, and limits rules to session sends.
func asSessions(t *testing.T, b *testBundle, fake *fakeconnectly.Server, ps []campaigns.SendPayload, rules []fakeconnectly.Rule) {
	t.Helper()
	for i := range ps {
		ps[i] = sessionPayload(t, ps[i], false)
		openWindow(t, b, shapesBusiness, ps[i].To)
		if err := fake.OpenWindow(ps[i].To, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range rules {
		rules[i].Kind = fakeconnectly.KindSession
	}
}

var uncodedForms = []string{fakeconnectly.UncodedUnspecified, fakeconnectly.UncodedEmpty, fakeconnectly.UncodedAbsent}

// A wrong API key (the fake's 401), another business id (its 404), and a rule's 401 or 404
// whatever the body says of its code (ERROR_CODE_UNSPECIFIED, "", absent): each would fail
// every recipient alike, so the first answer pauses the run with the reason (README: "a bare
// 401/403/404/409 ... pauses the run with the reason; its tasks are held, neither sent nor
// failed"). The later tasks of the run make no request, nobody is failed, and once the cause
// is gone and the run resumed everyone is sent exactly once.
func TestAuthAndConfigAnswersPauseTheRun(t *testing.T) {
	const wrongKey, otherBusiness = "key-wrong-0123456789", "another-business"
	for _, tc := range []struct {
		name       string
		rules      []fakeconnectly.Rule
		business   string
		key        string
		reasonKeys []string // the pause reason starts with one of these
	}{
		{name: "WrongKey", business: shapesBusiness, key: wrongKey, reasonKeys: []string{"ERROR_TYPE_AUTHENTICATION"}},
		{name: "WrongBusiness", business: otherBusiness, key: shapesKey, reasonKeys: []string{"HTTP_404"}},
		{name: "Rule401Unspecified", business: shapesBusiness, key: shapesKey, reasonKeys: []string{"HTTP_401"},
			rules: []fakeconnectly.Rule{{Code: "ERROR_CODE_UNSPECIFIED", Status: 401}}},
		{name: "Rule401NoType", business: shapesBusiness, key: shapesKey, reasonKeys: []string{"HTTP_401"},
			rules: []fakeconnectly.Rule{{Status: 401, Omit: []string{"type"}}}},
		{name: "Rule404", business: shapesBusiness, key: shapesKey, reasonKeys: []string{"HTTP_404"},
			rules: []fakeconnectly.Rule{{Status: 404, Details: json.RawMessage("null")}}},
	} {
		for _, form := range uncodedForms {
			t.Run(tc.name+"/"+form, func(t *testing.T) {
				ctx := context.Background()
				fake, fakeURL := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: shapesBusiness, APIKey: shapesKey,
					RateLimit: -1, UncodedBody: form, Rules: tc.rules})
				cfg := testConfig()
				cfg.Limits.BusinessID = shapesBusiness
				b := setup(t, cfg)
				useClient(t, b, fakeURL, tc.business, tc.key)
				const runID = "run-stop/20260301T0900Z"
				ps := bodyParams(seedRun(t, b, runID, ledger.AtMostOnce, 3))

				err := handle(t, b, ps[0])
				wantAs[*HeldError](t, err)
				r := runOf(t, b, runID)
				if r.Status != ledger.RunPaused || !hasAnyPrefix(r.PauseReason, tc.reasonKeys) {
					t.Fatalf("run %s (%q) after the first answer, want paused for one of %v", r.Status, r.PauseReason, tc.reasonKeys)
				}
				for _, p := range ps[1:] {
					wantAs[*HeldError](t, handle(t, b, p))
				}
				if got := len(fake.Received()); got != 1 {
					t.Errorf("the fake got %d requests, want 1: a paused run sends nothing more", got)
				}
				c := countersOf(t, b, runID)
				if c.States[ledger.Failed] != 0 || c.States[ledger.Unknown] != 0 || c.Retries != 0 {
					t.Errorf("counters %+v: want nobody failed, unknown or retried", c.States)
				}
				for _, p := range ps {
					if e := entryOf(t, b, p); e.State != ledger.Queued {
						t.Errorf("%s: %+v while paused, want queued (held)", p.To, e)
					}
				}

				// The cause goes away: the key or business is fixed, Connectly answers again.
				useClient(t, b, fakeURL, shapesBusiness, shapesKey)
				fake.SetRules(nil)
				if ok, err := b.ledger.Resume(ctx, runID); err != nil || !ok {
					t.Fatalf("Resume: %v, %v", ok, err)
				}
				for _, p := range ps {
					if err := handle(t, b, p); err != nil {
						t.Fatalf("%s after resume: %v", p.To, err)
					}
				}
				for _, p := range ps {
					if e := entryOf(t, b, p); e.State != ledger.Accepted || e.MessageID == "" {
						t.Errorf("%s after resume: %+v, want accepted", p.To, e)
					}
					if n := fake.AcceptedCount(p.To); n != 1 {
						t.Errorf("%s accepted %d times by the fake, want 1", p.To, n)
					}
				}
				if r := runOf(t, b, runID); r.Status != ledger.RunCompleted {
					t.Errorf("run %s after resume, want completed", r.Status)
				}
			})
		}
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// A 400 that names no documented code (ERROR_CODE_UNSPECIFIED, "" or no code; the type the
// catch-all ERROR_TYPE_UNSPECIFIED, or absent) refuses this recipient only: failed after one
// request, never retried as transient, and the run goes on (reference 4.4, "400 without a
// known code | PERMANENT"). The same for a session message the fake refuses with such a 400.
func TestUncoded400IsRefusedOnce(t *testing.T) {
	for _, form := range uncodedForms {
		for _, session := range []bool{false, true} {
			name := form + "/template"
			if session {
				name = form + "/session"
			}
			t.Run(name, func(t *testing.T) {
				const runID = "run-400/20260301T0900Z"
				fake, b := withFakeOf(t, fakeconnectly.Config{UncodedBody: form}, shapesBusiness, shapesKey)
				ps := bodyParams(seedRun(t, b, runID, ledger.AtMostOnce, 3))
				refused, refusedNoType := ps[0], ps[1]
				rules := []fakeconnectly.Rule{
					{Numbers: []string{refused.To}, Status: 400, Type: "ERROR_TYPE_UNSPECIFIED"},
					{Numbers: []string{refusedNoType.To}, Code: "ERROR_CODE_UNSPECIFIED", Status: 400, Omit: []string{"type", "details"}},
				}
				if session {
					asSessions(t, b, fake, ps, rules)
				}
				fake.SetRules(rules)
				for _, p := range ps {
					_ = handle(t, b, p)
				}
				for _, p := range ps[:2] {
					e := entryOf(t, b, p)
					if e.State != ledger.Failed || e.Code != "HTTP_400" || e.Attempts != 1 {
						t.Errorf("%s: %+v, want failed with HTTP_400 after one attempt", p.To, e)
					}
					if n := requestsTo(fake, p.To); n != 1 {
						t.Errorf("%s: %d requests, want 1 (never retried)", p.To, n)
					}
				}
				if e := entryOf(t, b, ps[2]); e.State != ledger.Accepted {
					t.Errorf("%s: %+v, want accepted: the run goes on", ps[2].To, e)
				}
				c := countersOf(t, b, runID)
				if c.Retries != 0 || c.Codes["failed:HTTP_400"] != 2 {
					t.Errorf("counters %+v retries %d, want two failed:HTTP_400 and no retry", c.Codes, c.Retries)
				}
				if r := runOf(t, b, runID); r.Status != ledger.RunCompleted {
					t.Errorf("run %s (%q), want completed", r.Status, r.PauseReason)
				}
			})
		}
	}
}

// Meta's codes written as JSON numbers in a send's error body ("code": 131056), with the
// type and message of another error and details null or left out: 131056 (pair limit) is a
// throttle on that person, not a failure; 131050 (stopped marketing) fails the recipient and
// suppresses them for marketing; 131026 (undeliverable) fails them, no suppression.
func TestNumericMetaCodesOnSend(t *testing.T) {
	const runID = "run-meta/20260301T0900Z"
	fake, b := withFakeOf(t, fakeconnectly.Config{}, shapesBusiness, shapesKey)
	ps := bodyParams(seedRun(t, b, runID, ledger.AtMostOnce, 3))
	pair, stopped, undeliverable := ps[0], ps[1], ps[2]
	fake.SetRules([]fakeconnectly.Rule{
		{Numbers: []string{pair.To}, Code: "131056", NumericCode: true, Times: 1, Type: "ERROR_TYPE_INVALID_REQUEST",
			Message: "(#131056) (Business Account, Consumer Account) pair rate limit hit", Details: json.RawMessage("null")},
		{Numbers: []string{stopped.To}, Code: "131050", NumericCode: true, Omit: []string{"details", "userTitle", "userMessage"}},
		{Numbers: []string{undeliverable.To}, Code: "131026", NumericCode: true, Omit: []string{"type", "message"}},
	})
	th := wantAs[*ThrottledError](t, handle(t, b, pair))
	if th.Reason != "131056" {
		t.Errorf("throttled for %q, want 131056", th.Reason)
	}
	if e := entryOf(t, b, pair); e.State != ledger.Queued || e.Attempts != 0 {
		t.Errorf("pair-limited: %+v, want queued with no attempt used", e)
	}
	_ = handle(t, b, stopped)
	_ = handle(t, b, undeliverable)
	for _, c := range []struct {
		p    campaigns.SendPayload
		code string
	}{{stopped, "131050"}, {undeliverable, "131026"}} {
		if e := entryOf(t, b, c.p); e.State != ledger.Failed || e.Code != c.code || e.Attempts != 1 {
			t.Errorf("%s: %+v, want failed with %s after one attempt", c.p.To, e, c.code)
		}
	}
	ss, err := b.ledger.Suppressions(context.Background(), []string{stopped.To, undeliverable.To})
	if err != nil {
		t.Fatal(err)
	}
	if !ss[0].Covers(ledger.ScopeMarketing) || ss[0].Covers(ledger.ScopeAll) {
		t.Errorf("131050: suppression %+v, want marketing only", ss[0])
	}
	if ss[1].Covers(ledger.ScopeMarketing) {
		t.Errorf("131026: suppression %+v, want none", ss[1])
	}
	// The pair-limited recipient goes once its wait is over (the rule fired once).
	if err := handle(t, b, pair); err != nil {
		t.Fatalf("pair-limited, again: %v", err)
	}
	if e := entryOf(t, b, pair); e.State != ledger.Accepted || fake.AcceptedCount(pair.To) != 1 {
		t.Errorf("pair-limited, again: %+v, accepted %d times; want accepted once", e, fake.AcceptedCount(pair.To))
	}
}
