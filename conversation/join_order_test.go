package conversation_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// askSizeYAML asks a size in a follow-up and answers the size typed back.
const askSizeYAML = `
id: sizes
template: {name: sizes_news, language: en_US}
audience: {file: audience.csv}
on_reply:
  - name: pick
    button: "Pick a size"
    message: {text: "Which size? Type S, M or L"}
  - name: size
    keyword: [s, m, l]
    message: {text: "Noted: {{ .reply }}"}
`

// sizesBench is campaign sizes with runs D1 and D2, each sending its message to ana (recorded
// in the index as the worker records it, then accepted), D2 an hour after D1.
type sizesBench struct {
	l     *ledger.Ledger
	fu    *conversation.Followups
	rec   func(context.Context, campaigns.SendPayload) error
	clock *clock
	runs  map[string]ledger.Run
}

func setupSizes(t *testing.T) *sizesBench {
	t.Helper()
	m, rdb := testredis.Mini(t)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	m.SetTime(c.t)
	def, err := campaigns.Parse("sizes.yaml", []byte(askSizeYAML))
	if err != nil {
		t.Fatal(err)
	}
	b := &sizesBench{l: ledger.New(rdb, c.now), clock: c, runs: map[string]ledger.Run{}}
	resolve := func(_ context.Context, id string) (conversation.RunInfo, bool, error) {
		r, ok := b.runs[id]
		return conversation.RunInfo{Run: r, Def: def}, ok, nil
	}
	b.fu, err = conversation.NewFollowups(conversation.FollowupConfig{Redis: rdb, Business: "biz",
		Tasks: &taskLog{tasks: map[string][]asynqbatch.Task{}}, Resolve: resolve, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	b.rec = conversation.SendRecorder(resolve, b.fu.Index(), conversation.NewColumns(rdb))
	ctx := context.Background()
	for i, id := range []string{"D1", "D2"} {
		if i > 0 {
			c.t = c.t.Add(time.Hour)
		}
		run := ledger.Run{ID: id, Campaign: "sizes", Template: "sizes_news", Language: "en_US", Queue: "herald:marketing",
			Delivery: ledger.AtMostOnce, Buckets: 1, Created: c.t}
		if err := b.l.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: id, From: 0, To: 1, Entries: []ledger.PlanEntry{{Recipient: ana, Row: 1}}}); err != nil {
			t.Fatal(err)
		}
		b.runs[id], _ = b.l.GetRun(ctx, id)
		b.send(t, campaigns.SendPayload{Run: id, To: ana}, "wamid."+id)
	}
	return b
}

// send records p's send in the index, as the worker does just before its request, and
// settles it accepted with message id mid.
func (b *sizesBench) send(t *testing.T, p campaigns.SendPayload, mid string) {
	t.Helper()
	ctx := context.Background()
	if err := b.rec(ctx, p); err != nil {
		t.Fatal(err)
	}
	a := p.Address()
	if _, err := b.l.Claim(ctx, a, ledger.AtMostOnce); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Finish(ctx, a, ledger.Outcome{State: ledger.Accepted, MessageID: mid, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
}

func (b *sizesBench) reply(t *testing.T, r conversation.Reply) conversation.Outcome {
	t.Helper()
	r.From, r.At = webhooks.Customer{Phone: ana}, b.clock.t
	out, err := b.fu.Reply(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tapPick taps run's "Pick a size" button and sends the follow-up that asks the size.
func (b *sizesBench) tapPick(t *testing.T, run string) {
	t.Helper()
	b.clock.t = b.clock.t.Add(time.Minute)
	cb := ledger.AddressIn(run, ana, 1)
	if out := b.reply(t, conversation.Reply{Kind: webhooks.ReplyButton, Callback: &cb, ButtonText: "Pick a size",
		MessageID: "wamid.tap-" + run}); !out.Created || out.Entry.Run != run {
		t.Fatalf("tap on %s's button: %+v, want its pick follow-up", run, out)
	}
	b.clock.t = b.clock.t.Add(time.Second)
	b.send(t, campaigns.SendPayload{Run: ledger.FollowupRun(run, "pick"), To: ana}, "wamid.ask-"+run)
}

// typeSize is ana typing a size, and must be answered by run's size rule.
func (b *sizesBench) typeSize(t *testing.T, size, run string) {
	t.Helper()
	b.clock.t = b.clock.t.Add(time.Minute)
	out := b.reply(t, conversation.Reply{Kind: webhooks.ReplyText, Text: size, MessageID: "wamid.size-" + size})
	if out.Entry.Run != run || out.Rule != "size" || !out.Created {
		t.Fatalf("typed %q: %+v, want it joined to %s, whose follow-up asked, and answered there", size, out, run)
	}
}

// TestTypedAnswerJoinsTheRunThatAsked: D1 and then D2 messaged ana; she taps D1's button and
// D1's follow-up asks her a size. Her typed answer joins D1, the run that messaged her last,
// not D2, the run numbered last; later D2's own question is answered in D2.
func TestTypedAnswerJoinsTheRunThatAsked(t *testing.T) {
	t.Parallel()
	b := setupSizes(t)
	b.tapPick(t, "D1")
	b.typeSize(t, "M", "D1")
	b.tapPick(t, "D2")
	b.typeSize(t, "L", "D2")
}

// TestJoinOrderLastMessaged: the join takes the customer's runs in the order they last
// messaged them (a follow-up, recorded under the run it follows, counts), merging the runs
// recorded under their phone and under their BSUID by those times, whatever the runs'
// numbers; a reply naming its message still joins the run that sent it.
func TestJoinOrderLastMessaged(t *testing.T) {
	t.Parallel()
	const phone, bsuid = "+15550001111", "US.13491208655302741918"

	t.Run("PhoneAndBSUIDMergedByTime", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			until := b.clock.t.Add(48 * time.Hour)
			runA, runB := b.biz+"-a", b.biz+"-b"
			mustRecord(t, b, runA, 1, phone, until)
			b.forward(time.Minute)
			mustRecord(t, b, runB, 2, "bsuid:"+bsuid, until)
			if e, ok := mustJoin(t, b, textFrom(phone, bsuid)); !ok || e.Run != runB {
				t.Fatalf("Join = %+v, %v; want %s, which messaged the BSUID last", e, ok, runB)
			}
			// A's follow-up messages the phone: A is now the last.
			b.forward(time.Minute)
			recordOnly(t, b, runA, 1, phone, until)
			if e, ok := mustJoin(t, b, textFrom(phone, bsuid)); !ok || e.Run != runA || e.Recipient != phone {
				t.Fatalf("Join = %+v, %v; want %s, whose follow-up messaged the phone last", e, ok, runA)
			}
		})
	})

	t.Run("ReplyToStillFirst", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			until := b.clock.t.Add(48 * time.Hour)
			runA, runB := b.biz+"-a", b.biz+"-b"
			seedSent(t, b, runA, phone, "wamid.A", until)
			b.forward(time.Hour)
			bucketB := seedSent(t, b, runB, phone, "wamid.B", until)
			b.forward(time.Hour)
			recordOnly(t, b, runA, ledger.BucketOf(phone, 4), phone, until) // A's follow-up
			e, ok := mustJoin(t, b, buttonTo(phone, "wamid.B"))
			want := conversation.Entry{Run: runB, Bucket: bucketB, Recipient: phone, Via: conversation.ViaReplyTo}
			if !ok || e != want {
				t.Fatalf("Join of a reply naming B's message = %+v, %v; want %+v", e, ok, want)
			}
			if e, ok := mustJoin(t, b, textFrom(phone, "")); !ok || e.Run != runA || e.Via != conversation.ViaRecent {
				t.Fatalf("Join of a reply naming no message = %+v, %v; want %s", e, ok, runA)
			}
		})
	})

	// A reply written before A's follow-up went (delivered late) answers what the customer
	// had then: B's message, the last before it. A counts by its own message's time.
	t.Run("ReplyBeforeAFollowupCountsTheRunsOwnMessage", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			until := b.clock.t.Add(48 * time.Hour)
			runA, runB := b.biz+"-a", b.biz+"-b"
			seedSent(t, b, runA, phone, ulidAt(b.clock.t, 1), until)
			b.forward(time.Hour)
			seedSent(t, b, runB, phone, ulidAt(b.clock.t, 2), until)
			b.forward(30 * time.Minute)
			written := b.clock.t
			b.forward(30 * time.Minute)
			recordOnly(t, b, runA, ledger.BucketOf(phone, 4), phone, until) // A's follow-up
			r := textFrom(phone, "")
			r.At = written
			if e, ok := mustJoin(t, b, r); !ok || e.Run != runB {
				t.Fatalf("Join of a reply written before A's follow-up = %+v, %v; want %s", e, ok, runB)
			}
			r.At = b.clock.t
			if e, ok := mustJoin(t, b, r); !ok || e.Run != runA {
				t.Fatalf("Join of a reply written after A's follow-up = %+v, %v; want %s", e, ok, runA)
			}
		})
	})

	// Entries an older Herald wrote carry no time: their runs go by their creation, as they
	// went by their numbers before.
	t.Run("OlderEntriesByTheirRunsCreation", func(t *testing.T) {
		joinSuite(t, func(t *testing.T, b *joinBundle) {
			until := b.clock.t.Add(48 * time.Hour)
			runA, runB := b.biz+"-a", b.biz+"-b"
			seedSent(t, b, runA, phone, "wamid.A", until)
			b.forward(time.Hour)
			seedSent(t, b, runB, phone, "wamid.B", until)
			field := phone[1:]
			key := rkeys.ConversationRecent(b.biz, servicewindow.BucketOf(field))
			v, err := b.rdb.HGet(context.Background(), key, field).Result()
			if err != nil {
				t.Fatal(err)
			}
			var old []string
			for _, it := range strings.Fields(v) {
				if !strings.HasPrefix(it, "+") { // the items without their +LEFT
					old = append(old, it)
				}
			}
			// Written as an older Herald wrote it, A first.
			slices.Reverse(old)
			if err := b.rdb.HSet(context.Background(), key, field, strings.Join(old, " ")).Err(); err != nil {
				t.Fatal(err)
			}
			if e, ok := mustJoin(t, b, textFrom(phone, "")); !ok || e.Run != runB {
				t.Fatalf("Join = %+v, %v; want %s, the run created last", e, ok, runB)
			}
		})
	})
}
