package conversation_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/webhooks"
)

const histTo = "+447700900123"

// historySuite runs fn on miniredis and on a real Redis (see joinSuite) with a History on the
// bundle's clock and a run id of the test's own, whose keys are deleted afterwards.
func historySuite(t *testing.T, fn func(t *testing.T, b *joinBundle, h *conversation.History, run string)) {
	joinSuite(t, func(t *testing.T, b *joinBundle) {
		run := b.biz + "-R1"
		t.Cleanup(func() {
			ctx := context.Background()
			keys, _ := b.rdb.Keys(ctx, rkeys.Run(run)+"*").Result()
			if len(keys) > 0 {
				b.rdb.Del(ctx, keys...)
			}
		})
		fn(t, b, conversation.NewHistory(b.rdb, b.clock.now), run)
	})
}

func mustRecordSaid(t *testing.T, h *conversation.History, e conversation.Entry, r conversation.Reply, id string) bool {
	t.Helper()
	ok, err := h.Record(context.Background(), e, r, id, "")
	if err != nil {
		t.Fatalf("Record(%s): %v", id, err)
	}
	return ok
}

func mustRead(t *testing.T, h *conversation.History, run string) []report.Reply {
	t.Helper()
	got, err := h.Read(context.Background(), run, histTo)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return got
}

func TestHistoryRecordsInTimeOrder(t *testing.T) {
	historySuite(t, func(t *testing.T, b *joinBundle, h *conversation.History, run string) {
		t0 := b.clock.t.Add(-time.Hour).Truncate(time.Millisecond)
		e := conversation.Entry{Run: run, Bucket: 3, Recipient: histTo, Via: conversation.ViaCallback}
		// Arrival order is not time order: webhooks come in any order.
		mustRecordSaid(t, h, e, conversation.Reply{Kind: webhooks.ReplyText, Text: "how much?", At: t0.Add(2 * time.Minute)}, "wamid.3")
		mustRecordSaid(t, h, e, conversation.Reply{Kind: webhooks.ReplyButton, ButtonPayload: "YES", ButtonID: "b1", ButtonText: "Yes, show me", At: t0}, "wamid.1")
		fu := conversation.Entry{Run: ledger.FollowupRun(run, "yes"), Bucket: 3, Recipient: histTo, Via: conversation.ViaRecent}
		mustRecordSaid(t, h, fu, conversation.Reply{Kind: webhooks.ReplyList, ListRowID: "size_m", ListRowText: "Medium", At: t0.Add(time.Minute)}, "wamid.2")
		mustRecordSaid(t, h, e, conversation.Reply{Kind: webhooks.ReplyMedia, Text: "a photo of it", At: t0.Add(3 * time.Minute)}, "wamid.4")

		want := []report.Reply{
			{At: t0.UTC(), Kind: conversation.SaidButton, ID: "YES", Text: "Yes, show me", MessageID: "wamid.1", Run: run, Via: conversation.ViaCallback},
			{At: t0.Add(time.Minute).UTC(), Kind: conversation.SaidListRow, ID: "size_m", Text: "Medium", MessageID: "wamid.2", Run: fu.Run, Via: conversation.ViaRecent},
			{At: t0.Add(2 * time.Minute).UTC(), Kind: conversation.SaidText, Text: "how much?", MessageID: "wamid.3", Run: run, Via: conversation.ViaCallback},
			{At: t0.Add(3 * time.Minute).UTC(), Kind: conversation.SaidOther, Text: "a photo of it", MessageID: "wamid.4", Run: run, Via: conversation.ViaCallback},
		}
		got := mustRead(t, h, run)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Read:\n got %+v\nwant %+v", got, want)
		}
		// The follow-up's reply lives under the run it follows, not under the follow-up run.
		if other := mustRead(t, h, fu.Run); len(other) != 0 {
			t.Errorf("follow-up run has its own conversation: %+v", other)
		}
		// No phone number is written into a member: the recipient is the key.
		v, err := b.rdb.Get(context.Background(), rkeys.Conversation(run, histTo)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(v, "7700900123") {
			t.Errorf("the record holds the phone number: %s", v)
		}
	})
}

func TestHistoryCopiesRecordedOnce(t *testing.T) {
	historySuite(t, func(t *testing.T, b *joinBundle, h *conversation.History, run string) {
		e := conversation.Entry{Run: run, Recipient: histTo, Via: conversation.ViaRecent}
		at := b.clock.t.Add(-time.Minute)
		yes := conversation.Reply{Kind: webhooks.ReplyText, Text: "yes", At: at}
		if !mustRecordSaid(t, h, e, yes, "wamid.A") {
			t.Fatal("first copy not recorded")
		}
		if mustRecordSaid(t, h, e, yes, "wamid.A") {
			t.Error("second copy of wamid.A recorded again")
		}
		// An id that starts like another is another message.
		if !mustRecordSaid(t, h, e, yes, "wamid.AB") {
			t.Error("wamid.AB taken for a copy of wamid.A")
		}
		// Without an id a message is named by what it says and when.
		if !mustRecordSaid(t, h, e, conversation.Reply{Kind: webhooks.ReplyText, Text: "no", At: at}, "") {
			t.Error("first copy of an id-less message not recorded")
		}
		if mustRecordSaid(t, h, e, conversation.Reply{Kind: webhooks.ReplyText, Text: "no", At: at}, "") {
			t.Error("second copy of an id-less message recorded again")
		}
		if !mustRecordSaid(t, h, e, conversation.Reply{Kind: webhooks.ReplyText, Text: "no", At: at.Add(time.Second)}, "") {
			t.Error("the same words a second later taken for a copy")
		}
		// An overlong provider id is kept as a digest, still once.
		long := strings.Repeat("x", 300)
		mustRecordSaid(t, h, e, yes, long)
		if mustRecordSaid(t, h, e, yes, long) {
			t.Error("second copy of a long id recorded again")
		}
		got := mustRead(t, h, run)
		if len(got) != 5 {
			t.Fatalf("%d replies recorded, want 5: %+v", len(got), got)
		}
		for _, s := range got {
			if len(s.MessageID) > 128 {
				t.Errorf("message id kept at %d bytes", len(s.MessageID))
			}
		}
	})
}

func TestHistoryCapsCutsAndExpires(t *testing.T) {
	historySuite(t, func(t *testing.T, b *joinBundle, h *conversation.History, run string) {
		ctx := context.Background()
		e := conversation.Entry{Run: run, Recipient: histTo, Via: conversation.ViaRecent}
		t0 := b.clock.t.Add(-2 * time.Hour)
		n := conversation.MaxConversation + 10
		for i := range n {
			r := conversation.Reply{Kind: webhooks.ReplyText, Text: fmt.Sprint("reply ", i), At: t0.Add(time.Duration(i) * time.Second)}
			mustRecordSaid(t, h, e, r, fmt.Sprint("wamid.", i))
		}
		got := mustRead(t, h, run)
		if len(got) != conversation.MaxConversation {
			t.Fatalf("%d replies kept, want %d", len(got), conversation.MaxConversation)
		}
		if first := got[0].Text; first != "reply 10" {
			t.Errorf("oldest kept is %q, want the newest %d (reply 10 onwards)", first, conversation.MaxConversation)
		}

		long := strings.Repeat("é", conversation.MaxReplyText+50)
		mustRecordSaid(t, h, e, conversation.Reply{Kind: webhooks.ReplyText, Text: long, At: b.clock.t}, "wamid.long")
		got = mustRead(t, h, run)
		last := got[len(got)-1].Text
		if utf8.RuneCountInString(last) != conversation.MaxReplyText || !strings.HasSuffix(last, "…") {
			t.Errorf("long text kept as %d runes (%q...)", utf8.RuneCountInString(last), last[:10])
		}

		ttl, err := b.rdb.PTTL(ctx, rkeys.Conversation(run, histTo)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= conversation.DefaultRetention-time.Minute || ttl > conversation.DefaultRetention {
			t.Errorf("PTTL %v, want about %v", ttl, conversation.DefaultRetention)
		}
		// Real Redis's TTLs run on real time: there the expiry is only checked to be set.
		if strings.HasSuffix(t.Name(), "/Miniredis") {
			b.forward(conversation.DefaultRetention + time.Second)
			if got := mustRead(t, h, run); len(got) != 0 {
				t.Errorf("%d replies left after the retention", len(got))
			}
		}
	})
}

func TestHistoryTimes(t *testing.T) {
	historySuite(t, func(t *testing.T, b *joinBundle, h *conversation.History, run string) {
		e := conversation.Entry{Run: run, Recipient: histTo}
		now := b.clock.t.Truncate(time.Millisecond).UTC()
		mustRecordSaid(t, h, e, conversation.Reply{Kind: webhooks.ReplyText, Text: "no time"}, "wamid.1")
		mustRecordSaid(t, h, e, conversation.Reply{Kind: webhooks.ReplyText, Text: "from the future", At: now.Add(time.Hour)}, "wamid.2")
		for _, s := range mustRead(t, h, run) {
			if !s.At.Equal(now) {
				t.Errorf("%q recorded at %v, want now %v", s.Text, s.At, now)
			}
		}
	})
}

func TestHistoryNeedsAnEntry(t *testing.T) {
	t.Parallel()
	h := conversation.NewHistory(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), nil)
	for _, e := range []conversation.Entry{{Recipient: histTo}, {Run: "R1"}} {
		if _, err := h.Record(context.Background(), e, conversation.Reply{}, "x", ""); !errors.Is(err, conversation.ErrNoRecipient) {
			t.Errorf("Record(%+v) = %v, want ErrNoRecipient", e, err)
		}
	}
}

// TestHistoryMemory records one button reply (the common case) for 1,000 repliers on a real
// Redis and reports the bytes a replier costs (MEMORY USAGE of their key, which counts the
// key, its value and its expiry; the allocator rounds the value up). The bounds catch a change
// to a costlier encoding (a sorted set of such replies costs over 1,100 bytes for one tap).
func TestHistoryMemory(t *testing.T) {
	if os.Getenv(testredis.Env) == "" {
		t.Skipf("integration test: set %s to run it against a real Redis", testredis.Env)
	}
	t.Parallel()
	ctx := context.Background()
	rdb := redis.NewClient(testredis.Options(t, testredis.OffsetShared))
	run := "convmem-" + time.Now().Format("150405.000000000")
	t.Cleanup(func() {
		keys, _ := rdb.Keys(ctx, rkeys.Run(run)+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	h := conversation.NewHistory(rdb, nil)
	for _, tc := range []struct {
		name    string
		reply   conversation.Reply
		replies int
		max     int64
	}{
		{"OneButtonTap", conversation.Reply{Kind: webhooks.ReplyButton, ButtonPayload: "YES", ButtonText: "Yes, show me"}, 1, 320},
		{"ThreeTypedReplies", conversation.Reply{Kind: webhooks.ReplyText, Text: strings.Repeat("how much is the medium one? ", 3)}, 3, 1100},
	} {
		const repliers = 1000
		var total int64
		for i := range repliers {
			to := fmt.Sprintf("+4477009%05d", i)
			e := conversation.Entry{Run: run, Bucket: i % 64, Recipient: to, Via: conversation.ViaCallback}
			for j := range tc.replies {
				// Provider ids are about 60 bytes ("wamid." and base64).
				id := fmt.Sprintf("wamid.HBgLNDQ3NzAwOTAwMTIzFQIAEhgUM0E%s%05d%02dQzQ2RjA5QUY1RDA0AA==", tc.name[:3], i, j)
				if _, err := h.Record(ctx, e, tc.reply, id, ""); err != nil {
					t.Fatal(err)
				}
			}
			n, err := rdb.MemoryUsage(ctx, rkeys.Conversation(run, to)).Result()
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		per := total / repliers
		t.Logf("%s: %d bytes per replier (MEMORY USAGE)", tc.name, per)
		if per > tc.max {
			t.Errorf("%s: %d bytes per replier, want at most %d", tc.name, per, tc.max)
		}
	}
}
