package limits

import (
	"context"
	"testing"
	"time"
)

func TestPairBackoff(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 4 * time.Second, 3: 16 * time.Second,
		4: 64 * time.Second, 5: 256 * time.Second, 6: 256 * time.Second, 1000: 256 * time.Second} {
		if got := PairBackoff(n); got != want {
			t.Errorf("PairBackoff(%d) = %v, want %v", n, got, want)
		}
	}
}

// Refusals in a row grow the wait for that pair only; a pair left alone long enough starts
// again at a second.
func TestPairThrottled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := NewSends(b.lim, Config{BusinessID: "B1"})
	ctx := context.Background()
	next := func(sender, to string) time.Duration {
		t.Helper()
		d, err := s.PairThrottled(ctx, sender, to)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, want := range []time.Duration{time.Second, 4 * time.Second, 16 * time.Second} {
		if got := next("", "+15550001"); got != want {
			t.Fatalf("wait %v, want %v", got, want)
		}
	}
	if got := next("", "+15550002"); got != time.Second {
		t.Fatalf("another person: wait %v, want 1s", got)
	}
	if got := next("+15550009", "+15550001"); got != time.Second {
		t.Fatalf("another sender: wait %v, want 1s", got)
	}
	b.mr.FastForward(pairBackoffMemory + time.Second)
	if got := next("", "+15550001"); got != time.Second {
		t.Fatalf("after a quiet spell: wait %v, want 1s", got)
	}
}

// The backoff holds the pair's limit: a send of another run from the same sender to the same
// person waits it too (reference 9.1: "back off 4^X s for that recipient"), while another
// person does not.
func TestPairThrottledHoldsEverySendToThePerson(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := NewSends(b.lim, Config{BusinessID: "B1", PairInterval: 6 * time.Second, MaxWait: time.Second,
		Adaptive: Policy{Period: -1}})
	ctx := context.Background()
	const sender, to = "+15550009", "+15550001"
	var wait time.Duration
	for range 3 {
		d, err := s.PairThrottled(ctx, sender, to)
		if err != nil {
			t.Fatal(err)
		}
		wait = d
	}
	if wait != 16*time.Second {
		t.Fatalf("third refusal: wait %v, want 16s", wait)
	}
	bk, err := s.Reserve(ctx, Intention{Sender: sender, Run: "another-run", Recipient: to}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if bk.OK || bk.Wait < 15*time.Second {
		t.Fatalf("another run's send to the person: %+v; want it refused for about 16s", bk.Reservation)
	}
	other, err := s.Reserve(ctx, Intention{Sender: sender, Run: "another-run", Recipient: "+15550002"}, time.Now())
	if err != nil || !other.OK {
		t.Fatalf("a send to another person: %+v, %v; want it granted", other.Reservation, err)
	}
}
