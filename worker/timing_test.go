package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
)

func TestBeforeSend(t *testing.T) {
	t.Parallel()
	ny, err := campaigns.LoadZone("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// Sunday 2026-03-08, the day New York moves its clocks forward, 08:00 EDT.
	now := time.Date(2026, 3, 8, 8, 0, 0, 0, ny)
	setup := func(t *testing.T) (*testBundle, []campaigns.SendPayload) {
		t.Helper()
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		w := New(testConfig(), Deps{Redis: rdb, Sender: &fakeSender{}, Logger: zerolog.Nop(), Now: func() time.Time { return now }})
		b := &testBundle{mr: mr, rdb: rdb, ledger: ledger.New(rdb, nil), worker: w}
		return b, seedRun(t, b, "r-hours", ledger.AtMostOnce, 3)
	}
	hours := func(from, to string) string {
		w, err := campaigns.NewSendHours(nil, from, to, "")
		if err != nil {
			t.Fatal(err)
		}
		return w.String()
	}

	t.Run("ExpiredIsSkipped", func(t *testing.T) {
		t.Parallel()
		b, ps := setup(t)
		p := ps[0]
		p.Expires = now.Unix()
		handled, err := b.worker.beforeSend(context.Background(), zerolog.Nop(), p)
		if !handled || err != nil {
			t.Fatalf("beforeSend = %v, %v; want handled without error", handled, err)
		}
		wantEntry(t, b, p, ledger.Entry{State: ledger.Skipped, Code: "expired"})
		if c := countersOf(t, b, p.Run); c.Codes["skipped:expired"] != 1 || c.States[ledger.Skipped] != 1 {
			t.Fatalf("counters %+v", c)
		}
		// A redelivered task changes nothing.
		if handled, err := b.worker.beforeSend(context.Background(), zerolog.Nop(), p); !handled || err != nil {
			t.Fatalf("again: %v %v", handled, err)
		}
		if c := countersOf(t, b, p.Run); c.Codes["skipped:expired"] != 1 {
			t.Fatalf("counted twice: %+v", c)
		}
	})
	t.Run("OutsideHoursWaitsForOpening", func(t *testing.T) {
		t.Parallel()
		b, ps := setup(t)
		p := ps[1]
		p.SendHours, p.Zone = hours("09:00", "20:00"), "America/New_York"
		handled, err := b.worker.beforeSend(context.Background(), zerolog.Nop(), p)
		te := wantAs[*ThrottledError](t, err)
		if !handled || te.RetryAfter != 54*time.Minute || isFailure(err) {
			t.Fatalf("handled %v, retry after %s (failure %v); want 90%% of the hour to 09:00", handled, te.RetryAfter, isFailure(err))
		}
		wantEntry(t, b, p, ledger.Entry{State: ledger.Queued})
		// The run says what its sends wait for (run show), until the task looks again.
		r := runOf(t, b, p.Run)
		if got := r.WaitingNow(now); !strings.HasPrefix(got, "send hours: sends resume at ") || !r.WaitingUntil.Equal(now.Add(54*time.Minute)) {
			t.Fatalf("run waiting %q until %v; want the send hours noted until the task looks again", got, r.WaitingUntil)
		}
	})
	t.Run("WithinHoursSendsAndShortWaitsComeBackEarly", func(t *testing.T) {
		t.Parallel()
		b, ps := setup(t)
		p := ps[1]
		p.SendHours, p.Zone = hours("08:00", "20:00"), "America/New_York"
		if handled, err := b.worker.beforeSend(context.Background(), zerolog.Nop(), p); handled || err != nil {
			t.Fatalf("within send hours: %v %v", handled, err)
		}
		p.SendHours = hours("08:01", "20:00")
		_, err := b.worker.beforeSend(context.Background(), zerolog.Nop(), p)
		if te := wantAs[*ThrottledError](t, err); te.RetryAfter != 54*time.Second {
			t.Fatalf("retry after %s, want 54s (90%% of the minute; it looks again then)", te.RetryAfter)
		}
	})
	t.Run("HoursOpeningAfterExpiry", func(t *testing.T) {
		t.Parallel()
		b, ps := setup(t)
		p := ps[2]
		p.SendHours, p.Zone, p.Expires = hours("09:00", "20:00"), "America/New_York", now.Add(30*time.Minute).Unix()
		if handled, err := b.worker.beforeSend(context.Background(), zerolog.Nop(), p); !handled || err != nil {
			t.Fatalf("%v %v", handled, err)
		}
		wantEntry(t, b, p, ledger.Entry{State: ledger.Skipped, Code: "expired"})
	})
}

func TestHandleSendSkipsExpired(t *testing.T) {
	b := setup(t, testConfig())
	ps := seedRun(t, b, "run-expired", ledger.AtMostOnce, 1)
	p := ps[0]
	p.Expires = time.Now().Add(-time.Minute).Unix()
	if err := handle(t, b, p); err != nil {
		t.Fatalf("HandleSend: %v", err)
	}
	wantEntry(t, b, p, ledger.Entry{State: ledger.Skipped, Code: "expired"})
	if n := len(b.sender.Calls()); n != 0 {
		t.Fatalf("%d requests for an expired send", n)
	}
}
