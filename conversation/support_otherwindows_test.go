package conversation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/servicewindow"
)

// A refusal for a closed window names the customer's windows that are open but do not count
// for the sender: one to another business number (answer from it with --sender), and one
// recorded with no number that windows.scope: sender leaves out. It no longer says that the
// customer did not write when they did.
func TestSupportNamesOtherWindows(t *testing.T) {
	t.Parallel()
	const numberA, numberB = "+14155550100", "+14155550101"
	policy := servicewindow.Policy{Senders: []string{numberA, numberB}}

	t.Run("AnotherNumber", func(t *testing.T) {
		t.Parallel()
		b := newAnswerBench(t)
		ctx := context.Background()
		if err := b.rdb.FlushAll(ctx).Err(); err != nil { // the bench's window has no number
			t.Fatal(err)
		}
		tr := servicewindow.New(b.rdb, func() time.Time { return b.params.Now })
		tr.SetPolicy(policy)
		at := b.params.Now.Add(-time.Hour)
		if _, err := tr.TouchTo(ctx, "biz", numberB, []string{b.params.To}, at); err != nil {
			t.Fatal(err)
		}
		p := SupportParams{AnswerParams: b.params}
		p.Windows, p.Sender = policy, numberA
		res, err := Support(ctx, b.rdb, b.client, p)
		want := "they wrote to " + numberB + " (its window is open until " + at.Add(24*time.Hour).UTC().Format(time.RFC3339) +
			"): answer from that number with --sender " + numberB
		if !errors.Is(err, ErrWindowClosed) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "cannot reach them") {
			t.Fatalf("err = %v\nwant it to say %q", err, want)
		}
		if len(res.Window.Numbers) != 1 || !res.Window.Numbers[0].Open || res.Window.Numbers[0].To != "********0101" {
			t.Fatalf("result's windows %+v", res.Window)
		}
		if n := len(b.fake.Received()); n != 0 {
			t.Fatalf("sent %d", n)
		}
	})

	t.Run("NoNumberLeftOutByScope", func(t *testing.T) {
		t.Parallel()
		b := newAnswerBench(t) // the customer wrote an hour ago, in a message that named no number
		p := SupportParams{AnswerParams: b.params}
		p.Windows, p.Sender = policy, numberA
		res, err := Support(context.Background(), b.rdb, b.client, p)
		if !errors.Is(err, ErrWindowClosed) || !strings.Contains(err.Error(), "named no business number") ||
			!strings.Contains(err.Error(), "windows.scope: sender counts only for a message from the config's one sender, and the config lists 2") ||
			res.Window.NoNumber == nil || !res.Window.NoNumber.Open {
			t.Fatalf("%+v, %v", res.Window, err)
		}
		// With one sender configured and another one named, the same window is left out too.
		p.Windows = servicewindow.Policy{Senders: []string{numberB}}
		if _, err := Support(context.Background(), b.rdb, b.client, p); !errors.Is(err, ErrWindowClosed) ||
			!strings.Contains(err.Error(), "and ********0100 is not it") {
			t.Fatalf("one sender: %v", err)
		}
	})

	t.Run("NoWindowAnywhere", func(t *testing.T) {
		t.Parallel()
		b := newAnswerBench(t)
		if err := b.rdb.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		p := SupportParams{AnswerParams: b.params}
		p.Windows, p.Sender = policy, numberA
		_, err := Support(context.Background(), b.rdb, b.client, p)
		if !errors.Is(err, ErrWindowClosed) || !strings.Contains(err.Error(), "no inbound message in the last 24 h; a session message cannot reach them now") {
			t.Fatalf("%v", err)
		}
	})
}
