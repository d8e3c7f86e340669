package conversation_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/golden"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/testredis"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// loadRules parses testdata/rules.yaml, the rule set every golden reply is matched against.
func loadRules(tb testing.TB) *campaigns.Definition {
	tb.Helper()
	d, err := campaigns.Load(filepath.Join("testdata", "rules.yaml"))
	if err != nil {
		tb.Fatalf("load rules: %v", err)
	}
	return d
}

// golden is what a golden file records for one inbound body.
type goldenReply struct {
	Reply conversation.Reply `json:"reply"`
	// Rule is the id of the matching rule, "" when none matches.
	Rule string `json:"rule"`
	// Join is the entry the reply belongs to, nil when none.
	Join *conversation.Entry `json:"join"`
}

// TestGoldenReplies parses every inbound shape of the provider reference (5.4), written as
// webhook bodies under testdata/replies, with internal/webhooks, and records the reply, the
// rule it matches and the entry it joins. Customers without callbackData are joined through
// an index in which the run promo-20260101 messaged every customer of the bodies (each entry
// accepted, with no message id).
func TestGoldenReplies(t *testing.T) {
	t.Parallel()
	d := loadRules(t)
	now := time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC)
	_, rdb := testredis.Mini(t)
	idx := conversation.NewIndex(rdb, "biz", func() time.Time { return now })
	ctx := context.Background()

	paths, err := filepath.Glob(filepath.Join("testdata", "replies", "*.json"))
	if err != nil || len(paths) < 15 {
		t.Fatalf("want the inbound bodies under testdata/replies, got %d (%v)", len(paths), err)
	}
	events := make([]webhooks.Event, len(paths))
	for i, p := range paths {
		body, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := webhooks.Parse(body)
		if err != nil {
			t.Fatalf("%s: Parse: %v", p, err)
		}
		if ev.Kind != webhooks.KindInbound || ev.Inbound == nil {
			t.Fatalf("%s: parsed as kind %d, want an inbound message", p, ev.Kind)
		}
		events[i] = ev
		for _, k := range ev.Inbound.From.Keys() {
			if strings.HasPrefix(k, "bsuid:") && ev.Inbound.From.Phone != "" {
				continue // the run sent to the phone
			}
			seedEntry(t, rdb, &clock{t: now}, "promo-20260101", ledger.Address{Run: "promo-20260101", Bucket: i, Recipient: k}, ledger.Accepted)
			if err := idx.Record(ctx, "promo-20260101", i, k, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		t.Run(name, func(t *testing.T) {
			r := conversation.ReplyOf(*events[i].Inbound)
			g := goldenReply{Reply: r}
			if rule, ok := conversation.Match(d.OnReply.Rules, r); ok {
				g.Rule = rule.ID()
			}
			e, ok, err := idx.Join(ctx, r)
			if err != nil {
				t.Fatalf("Join: %v", err)
			}
			if ok {
				g.Join = &e
			}
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, strings.TrimSuffix(p, ".json")+".golden", append(got, '\n'))
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	rules := loadRules(t).OnReply.Rules
	button := func(payload, id, text string) conversation.Reply {
		return conversation.Reply{Kind: webhooks.ReplyButton, ButtonPayload: payload, ButtonID: id, ButtonText: text}
	}
	text := func(s string) conversation.Reply { return conversation.Reply{Kind: webhooks.ReplyText, Text: s} }
	cases := []struct {
		name  string
		reply conversation.Reply
		want  string
	}{
		{"ButtonByPayload", button("yes_payload", "", "Yes, show me"), "interested"},
		{"ButtonByID", button("", "btn-track", ""), "interested"},
		{"ButtonByTextIgnoringCaseAndSpaces", button("", "", "  not   NOW "), "later"},
		{"FirstRuleInOrderWins", button("stop_payload", "", "Not now"), "stop"},
		{"UnknownButtonFallsToAny", button("x", "", "Maybe"), "catch-all"},
		{"ListRowByID", conversation.Reply{Kind: webhooks.ReplyList, ListRowID: " size_m ", ListRowText: "Medium"}, "size"},
		{"ListRowTextIsNotAnID", conversation.Reply{Kind: webhooks.ReplyList, ListRowText: "size_m"}, "catch-all"},
		// A list choice delivered as a button reply (buttonResponse {text, payload: <row id>}).
		{"ListRowAsButtonPayload", button("size_m", "", "Medium"), "size"},
		{"ListRowAsButtonID", button("", " slot-tue ", "Tuesday 10:00"), "size"},
		{"ButtonTextIsNotARowID", button("", "", "size_m"), "catch-all"},
		{"ListRowIsNotAButton", conversation.Reply{Kind: webhooks.ReplyList, ListRowID: "yes_payload", ListRowText: "Not now"}, "catch-all"},
		{"KeywordWholeWord", text("what's the price?"), "price"},
		{"KeywordNotInsideAWord", text("priceless"), "catch-all"},
		{"KeywordPhrase", text("How much is it"), "price"},
		{"KeywordPhraseWordsApart", text("how is it much"), "catch-all"},
		{"KeywordUnicodeCase", text("QUAL O PREÇO"), "price"},
		{"KeywordDecomposedAccent", text("preco\u0327o"), "catch-all"},
		{"KeywordDecomposedAccentMatches", text("prec\u0327o!"), "price"},
		{"ButtonTextIsNotTyped", button("", "", "price"), "catch-all"},
		{"TypedTextIsNotAButton", text("Unsubscribe"), "catch-all"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, ok := conversation.Match(rules, tc.reply)
			if !ok {
				t.Fatalf("Match = no rule, want %s", tc.want)
			}
			if r.ID() != tc.want {
				t.Fatalf("Match = %s, want %s", r.ID(), tc.want)
			}
		})
	}
	t.Run("NoRuleMatches", func(t *testing.T) {
		t.Parallel()
		if r, ok := conversation.Match(rules[:5], text("hello")); ok {
			t.Fatalf("Match = %s, want none", r.ID())
		}
	})
}

func TestWithin(t *testing.T) {
	t.Parallel()
	o := loadRules(t).OnReply // until: 7d
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(time.Hour)
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{start.Add(7*24*time.Hour - time.Second), true},
		{start.Add(7 * 24 * time.Hour), false},
		{time.Time{}, true}, // no time: taken as now
	} {
		if got := conversation.Within(&o, start, tc.at, now); got != tc.want {
			t.Errorf("Within(at %v) = %v, want %v", tc.at, got, tc.want)
		}
	}
}
