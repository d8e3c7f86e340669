package conversation

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// Answer sends only inside the window Herald recorded, records every request to Connectly in
// the audit log, sends nothing on a dry run, and hands back Connectly's own refusal when its
// record of the window disagrees with Herald's.
func TestAnswer(t *testing.T) {
	t.Parallel()
	// Every subtest judges the window at now, in Herald (params.Now) and in the fake (its
	// clock): a subtest may start long after now while parallel tests hold the machine.
	now := time.Now()
	setup := func(t *testing.T) (*redis.Client, *fakeconnectly.Server, *connectly.Client) {
		t.Helper()
		b := newAnswerBenchAt(t, now)
		return b.rdb, b.fake, b.client
	}
	params := AnswerParams{Business: "biz", To: "+14155552671", Content: connectly.SessionContent{Text: "Your parcel is here"},
		Actor: "ana", Now: now}
	touch := func(t *testing.T, rdb *redis.Client, at time.Time) {
		t.Helper()
		if _, err := servicewindow.New(rdb, func() time.Time { return at }).Touch(context.Background(), "biz", []string{params.To}, at); err != nil {
			t.Fatal(err)
		}
	}
	auditLog := func(t *testing.T, rdb *redis.Client) []audit.Entry {
		t.Helper()
		es, err := audit.List(context.Background(), rdb, 10)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}

	t.Run("OpenWindow", func(t *testing.T) {
		t.Parallel()
		rdb, fake, client := setup(t)
		touch(t, rdb, now.Add(-time.Hour))
		if err := fake.OpenWindow(params.To, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		out, err := Answer(context.Background(), rdb, client, params)
		if err != nil {
			t.Fatal(err)
		}
		rec := fake.Received()
		if len(rec) != 1 || rec[0].Status != 200 || out.MessageID == "" || out.MessageID != rec[0].MessageID || !out.Window.Open {
			t.Fatalf("answered %+v, fake received %+v", out, rec)
		}
		es := auditLog(t, rdb)
		if len(es) != 1 || es[0].Actor != "ana" || es[0].Target != "********2671" || es[0].Detail != "text message, id "+out.MessageID {
			t.Fatalf("audit %+v", es)
		}
	})

	t.Run("ClosedByHeraldsRecord", func(t *testing.T) {
		t.Parallel()
		rdb, fake, client := setup(t)
		touch(t, rdb, now.Add(-25*time.Hour))
		out, err := Answer(context.Background(), rdb, client, params)
		if !errors.Is(err, ErrWindowClosed) || out.Window.Open || out.Window.ClosesAt.IsZero() || out.Request == nil {
			t.Fatalf("answered %+v, %v", out, err)
		}
		if n := len(fake.Received()); n != 0 || len(auditLog(t, rdb)) != 0 {
			t.Fatalf("sent %d messages on a closed window, audit %+v", n, auditLog(t, rdb))
		}
	})

	// A window closing within the margin is closed for a session message: Connectly judges it
	// on its own clock. Without a margin it goes.
	t.Run("WithinMargin", func(t *testing.T) {
		t.Parallel()
		rdb, fake, client := setup(t)
		inbound := now.Add(-24*time.Hour + time.Minute) // closes in a minute
		touch(t, rdb, inbound)
		if err := fake.OpenWindow(params.To, inbound); err != nil {
			t.Fatal(err)
		}
		p := params
		p.Margin = 2 * time.Minute
		out, err := Answer(context.Background(), rdb, client, p)
		if !errors.Is(err, ErrWindowClosed) || !out.Window.Open || len(fake.Received()) != 0 {
			t.Fatalf("answered %+v, %v, sent %d: want refused by the margin", out, err, len(fake.Received()))
		}
		p.Margin = 0
		if out, err := Answer(context.Background(), rdb, client, p); err != nil || out.MessageID == "" {
			t.Fatalf("without a margin: answered %+v, %v", out, err)
		}
	})

	t.Run("DryRun", func(t *testing.T) {
		t.Parallel()
		rdb, fake, _ := setup(t)
		touch(t, rdb, now.Add(-time.Hour))
		out, err := Answer(context.Background(), rdb, nil, params)
		if err != nil || out.MessageID != "" || out.Request == nil || !out.Window.Open {
			t.Fatalf("answered %+v, %v", out, err)
		}
		if n := len(fake.Received()); n != 0 || len(auditLog(t, rdb)) != 0 {
			t.Fatalf("a dry run sent %d messages", n)
		}
	})

	t.Run("ConnectlySaysClosed", func(t *testing.T) {
		t.Parallel()
		rdb, _, client := setup(t)
		touch(t, rdb, now.Add(-time.Hour)) // Herald saw an inbound message; the fake did not.
		out, err := Answer(context.Background(), rdb, client, params)
		if !connectly.IsWindowClosed(err) || errors.Is(err, ErrWindowClosed) || out.Outcome != OutcomeRefused {
			t.Fatalf("answered %+v, %v, want Connectly's window refusal", out, err)
		}
		// The request was made: the audit log has it, refused, with Connectly's code.
		if es := auditLog(t, rdb); len(es) != 1 || es[0].Detail != "text message, refused ("+out.Code+")" ||
			out.Code != "ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION" {
			t.Fatalf("audit %+v, code %q", es, out.Code)
		}
	})

	// A customer opens a window by writing to one business number: a message from another
	// number is outside it, and nothing is sent (Connectly would refuse it).
	t.Run("OnlyTheNumberWrittenTo", func(t *testing.T) {
		t.Parallel()
		rdb, fake, client := setup(t)
		const numberA, numberB = "+16044441234", "+16044445678"
		policy := servicewindow.Policy{Senders: []string{numberA, numberB}}
		tr := servicewindow.New(rdb, func() time.Time { return now })
		tr.SetPolicy(policy)
		if _, err := tr.TouchTo(context.Background(), "biz", numberA, []string{params.To}, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		p := params
		p.Windows, p.Sender = policy, numberB
		out, err := Answer(context.Background(), rdb, client, p)
		if !errors.Is(err, ErrWindowClosed) || out.Window.Open || len(fake.Received()) != 0 {
			t.Fatalf("from B: answered %+v, %v, sent %d: want closed, nothing sent", out, err, len(fake.Received()))
		}
		p.Sender = numberA
		out, err = Answer(context.Background(), rdb, nil, p)
		if err != nil || !out.Window.Open || out.Window.To != numberA {
			t.Fatalf("from A: answered %+v, %v, want A's window open", out, err)
		}
	})

	t.Run("BadMessage", func(t *testing.T) {
		t.Parallel()
		rdb, _, client := setup(t)
		p := params
		p.Content = connectly.SessionContent{}
		if out, err := Answer(context.Background(), rdb, client, p); err == nil || out.Request != nil {
			t.Fatalf("answered %+v, %v for an empty message", out, err)
		}
	})
}
