package worker

import (
	"cmp"
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// stoppedMarketing is Meta's code for a person who stopped marketing messages from the
// business: the table suppresses them for marketing only.
const stoppedMarketing = "131050"

// putOnList writes value as to's entry on the suppression list, as a version of Herald
// before scopes wrote it ("code|unix ms"), when raw is set; otherwise it suppresses to for
// reason, as the opt-out paths do.
func putOnList(t *testing.T, b *testBundle, to, reason string, raw bool) {
	t.Helper()
	ctx := context.Background()
	if raw {
		if err := b.rdb.HSet(ctx, rkeys.Suppressed(), to, reason).Err(); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := b.ledger.Suppress(ctx, to, reason); err != nil {
		t.Fatal(err)
	}
}

// wantSentOrSkipped fails unless p's entry is accepted after one template request (sent), or
// skipped(suppressed) with no request.
func wantSentOrSkipped(t *testing.T, b *testBundle, p campaigns.SendPayload, sent bool, code string) {
	t.Helper()
	if sent {
		wantEntry(t, b, p, ledger.Entry{State: ledger.Accepted, Attempts: 1, Code: code, MessageID: "msg-" + p.To})
		if n := b.sender.CallsTo(p.To); n != 1 {
			t.Fatalf("%d template requests, want 1", n)
		}
		return
	}
	wantEntry(t, b, p, ledger.Entry{State: ledger.Skipped, Code: ledger.SkipSuppressed})
	if n := b.sender.CallsTo(p.To); n != 0 {
		t.Fatalf("%d template requests to a suppressed recipient, want none", n)
	}
}

// TestMarketingOnlySuppression: a person who stopped marketing messages (Meta 131050) is
// suppressed for marketing only. At the claim, by either path, a utility or authentication
// template goes to them, and a marketing one, or one of no known category, is
// skipped(suppressed) with no request. An entry for every message (a STOP, an opt-out answer)
// stops a utility template too, and so does an entry written before scopes, unless its code
// is 131050.
func TestMarketingOnlySuppression(t *testing.T) {
	cases := []struct {
		name, category, entry string
		// raw writes entry as it stands (an entry written before scopes); else it is the reason
		// Suppress is given.
		raw  bool
		sent bool
	}{
		{name: "UtilityGoes", category: "utility", entry: stoppedMarketing, sent: true},
		{name: "AuthenticationGoes", category: "authentication", entry: stoppedMarketing, sent: true},
		{name: "MarketingIsSkipped", category: "marketing", entry: stoppedMarketing},
		{name: "UnknownCategoryIsSkipped", category: "", entry: stoppedMarketing},
		{name: "StopSkipsUtility", category: "utility", entry: inboundOptOut},
		{name: "OptOutAnswerSkipsUtility", category: "utility", entry: optedOut},
		{name: "OldEntrySkipsUtility", category: "utility", entry: optedOut + "|1767225600000", raw: true},
		{name: "Old131050EntryLetsUtilityGo", category: "utility", entry: stoppedMarketing + "|1767225600000", raw: true, sent: true},
		{name: "Old131050EntrySkipsMarketing", category: "marketing", entry: stoppedMarketing + "|1767225600000", raw: true},
	}
	for _, backend := range []struct {
		name  string
		setup func(t *testing.T) *testBundle
	}{
		{"Miniredis", func(t *testing.T) *testBundle { return setup(t, testConfig()) }},
		{"RealRedis", func(t *testing.T) *testBundle { return setupReal(t, testConfig()) }},
	} {
		t.Run(backend.name, func(t *testing.T) {
			for _, path := range claimPaths {
				t.Run(path.name, func(t *testing.T) {
					b := backend.setup(t)
					ps := seedRun(t, b, "run-scope", ledger.AtMostOnce, len(cases))
					for i, tc := range cases {
						t.Run(tc.name, func(t *testing.T) {
							p := ps[i]
							p.Category = tc.category
							putOnList(t, b, p.To, tc.entry, tc.raw)
							b.worker.pacing(p.Sender).Store(path.paced)
							if err := handle(t, b, p); err != nil {
								t.Fatalf("handle: %v", err)
							}
							wantSentOrSkipped(t, b, p, tc.sent, "")
						})
					}
				})
			}
		})
	}
}

// setupReal is setup on the worker package's database of the real Redis HERALD_TEST_REDIS
// names (flushed before and after), or skips the test when it is unset.
func setupReal(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	rdb := testredis.Open(t, testredis.OffsetWorker)
	sender := &fakeSender{}
	w := New(cfg, Deps{Redis: rdb, Sender: sender, Logger: zerolog.Nop()})
	return &testBundle{rdb: rdb, ledger: ledger.New(rdb, nil), sender: sender, worker: w}
}

// TestMarketingOnlySuppressionOfSessions: to a person who stopped marketing messages, a
// campaign's session message counts as marketing by default (skipped(suppressed), no request)
// and goes when Config.CampaignSessionsNotMarketing says it does not; a follow-up's session
// message, which answers the customer's own reply, goes whatever its category; with the
// window closed, a campaign's fallback template counts by its own category; and an entry for
// every message stops a follow-up's session message too.
func TestMarketingOnlySuppressionOfSessions(t *testing.T) {
	cases := []struct {
		name       string
		notMarket  bool // Config.CampaignSessionsNotMarketing
		followup   bool
		open       bool   // the customer's window is open
		fallback   string // the fallback template's category ("": none)
		entry      string
		session    bool // the session message goes
		template   bool // the fallback goes
		wantSentAs string
	}{
		{name: "CampaignSessionIsMarketing", open: true, entry: stoppedMarketing},
		{name: "CampaignSessionNotMarketingByConfig", notMarket: true, open: true, entry: stoppedMarketing, session: true,
			wantSentAs: ledger.SentSession},
		{name: "FollowupSessionGoes", followup: true, open: true, entry: stoppedMarketing, session: true, wantSentAs: ledger.SentSession},
		{name: "FollowupSessionStoppedByStop", followup: true, open: true, entry: inboundOptOut},
		{name: "UtilityFallbackGoes", fallback: "utility", entry: stoppedMarketing, template: true, wantSentAs: ledger.SentFallback},
		{name: "MarketingFallbackIsSkipped", notMarket: true, fallback: "marketing", entry: stoppedMarketing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Limits.BusinessID = limitsBusiness
			cfg.CampaignSessionsNotMarketing = tc.notMarket
			b := setup(t, cfg)
			c := &sessionClient{fakeSender: b.sender}
			b.worker.client = c
			p := seedRun(t, b, "run-scope-session", ledger.AtMostOnce, 1)[0]
			if tc.followup {
				// The campaign's template went, and the customer answered it.
				if err := handle(t, b, p); err != nil {
					t.Fatal(err)
				}
				p = followupOf(t, b, p, "thanks", "")
			}
			before := b.sender.CallsTo(p.To)
			p = sessionPayload(t, p, tc.fallback != "")
			// A follow-up's category is its rule's template's, here marketing: it does not count.
			p.Category = cmp.Or(tc.fallback, "marketing")
			if tc.open {
				openWindow(t, b, limitsBusiness, p.To)
			}
			putOnList(t, b, p.To, tc.entry, false)
			if err := handle(t, b, p); err != nil {
				t.Fatalf("handle: %v", err)
			}
			if n := c.Sessions(); (n == 1) != tc.session || n > 1 {
				t.Fatalf("%d session requests, want the message sent %v", n, tc.session)
			}
			if n := b.sender.CallsTo(p.To) - before; (n == 1) != tc.template || n > 1 {
				t.Fatalf("%d template requests, want the fallback sent %v", n, tc.template)
			}
			e := entryOf(t, b, p)
			if tc.session || tc.template {
				if e.State != ledger.Accepted || e.Code != tc.wantSentAs {
					t.Fatalf("entry %+v, want accepted(%s)", e, tc.wantSentAs)
				}
				return
			}
			if e.State != ledger.Skipped || e.Code != ledger.SkipSuppressed {
				t.Fatalf("entry %+v, want skipped(%s)", e, ledger.SkipSuppressed)
			}
		})
	}
}
