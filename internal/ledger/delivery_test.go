package ledger

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

func TestApplyDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// accepted seeds a run whose first n recipients were accepted with message ids m<i>.
	accepted := func(t *testing.T, b *testBundle, runID string, n int) []PlanEntry {
		t.Helper()
		es := seedRun(t, b, runID, AtMostOnce, recipients(n), true)
		for i, e := range es {
			claim(t, b, runID, e, AtMostOnce)
			finish(t, b, runID, e, Outcome{State: Accepted, MessageID: "m" + string(rune('a'+i))})
		}
		return es
	}
	apply := func(t *testing.T, b *testBundle, runID string, pe PlanEntry, st State, mid string, ttd time.Duration) DeliveryVerdict {
		t.Helper()
		v, _, err := b.l.ApplyDelivery(ctx, DeliveryEvent{Address: Address{Run: runID, Bucket: pe.Bucket, Recipient: pe.Recipient}, State: st,
			MessageID: mid, TimeToDeliver: ttd, Code: map[bool]string{true: "ERROR_CODE_UNSPECIFIED"}[st == Failed], Class: "transient"})
		if err != nil {
			t.Fatalf("ApplyDelivery: %v", err)
		}
		return v
	}

	t.Run("MonotonicWithOneLatencySample", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		es := accepted(t, b, "r1", 1)
		e := es[0]
		for _, step := range []struct {
			st   State
			want DeliveryVerdict
		}{
			{Delivered, DeliveryApplied}, {Sent, DeliveryStale}, {Delivered, DeliveryStale}, {Read, DeliveryApplied},
			{Delivered, DeliveryStale}, {Failed, DeliveryStale}, {Read, DeliveryStale},
		} {
			if got := apply(t, b, "r1", e, step.st, "ma", 1500*time.Millisecond); got != step.want {
				t.Fatalf("%s: verdict %s, want %s", step.st, got, step.want)
			}
		}
		if got := getEntry(t, b, "r1", e); got.State != Read || got.MessageID != "ma" {
			t.Fatalf("entry %+v", got)
		}
		d, err := b.l.DeliveryStats(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if d.TimeToDeliver.Samples != 1 || d.Read != 1 || d.Delivered != 1 || d.Sent != 1 || d.Accepted != 1 || d.ReadRate != 1 || d.DeliveryRate != 1 {
			t.Fatalf("stats %+v", d)
		}
		if p := d.TimeToDeliver.P50; p < time.Second || p > 2*time.Second {
			t.Fatalf("p50 %s, want about 1.5s", p)
		}
	})

	t.Run("FailedBeforeDeliveredCountsCodeAndClass", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		es := accepted(t, b, "r2", 2)
		if got := apply(t, b, "r2", es[0], Sent, "ma", 0); got != DeliveryApplied {
			t.Fatal(got)
		}
		if got := apply(t, b, "r2", es[0], Failed, "ma", 0); got != DeliveryApplied {
			t.Fatal(got)
		}
		if got := apply(t, b, "r2", es[0], Failed, "ma", 0); got != DeliveryStale {
			t.Fatal("duplicate failure applied")
		}
		apply(t, b, "r2", es[1], Delivered, "mb", time.Second)
		if got := apply(t, b, "r2", es[1], Failed, "mb", 0); got != DeliveryStale {
			t.Fatal("failure after delivered applied")
		}
		e := getEntry(t, b, "r2", es[0])
		if e.State != Failed || e.Code != "ERROR_CODE_UNSPECIFIED" {
			t.Fatalf("entry %+v", e)
		}
		d, _ := b.l.DeliveryStats(ctx, "r2")
		wantEqual(t, "by code", map[string]int64{"ERROR_CODE_UNSPECIFIED": 1}, d.FailedByCode)
		wantEqual(t, "by class", map[string]int64{"transient": 1}, d.FailedByClass)
		if d.Accepted != 2 || d.Delivered != 1 || d.DeliveryRate != 0.5 || d.SendFailed != 0 {
			t.Fatalf("stats %+v", d)
		}
	})

	t.Run("EarlyOtherAndMissing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		es := seedRun(t, b, "r3", AtLeastOnce, recipients(2), true)
		claim(t, b, "r3", es[0], AtLeastOnce)
		if got := apply(t, b, "r3", es[0], Sent, "m1", 0); got != DeliveryEarly {
			t.Fatalf("event for an entry being sent: %s", got)
		}
		if got := apply(t, b, "r3", es[1], Sent, "m1", 0); got != DeliveryEarly {
			t.Fatalf("event for a queued entry: %s", got)
		}
		finish(t, b, "r3", es[0], Outcome{State: Accepted, MessageID: "m2"})
		if got := apply(t, b, "r3", es[0], Delivered, "m1", 0); got != DeliveryOtherMessage {
			t.Fatalf("event for an earlier message: %s", got)
		}
		if got := apply(t, b, "r3", es[0], Delivered, "", 0); got != DeliveryApplied {
			t.Fatalf("event without an id: %s", got)
		}
		strict := func(pe PlanEntry, mid string) DeliveryVerdict {
			v, _, err := b.l.ApplyDelivery(ctx, DeliveryEvent{Address: Address{Run: "r3", Bucket: pe.Bucket, Recipient: pe.Recipient}, State: Read, MessageID: mid, Strict: true})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		if got := strict(es[1], "m1"); got != DeliveryOtherMessage {
			t.Fatalf("strict event for a queued entry with no id: %s", got)
		}
		claim(t, b, "r3", es[1], AtLeastOnce)
		if got := strict(es[1], "m3"); got != DeliveryEarly {
			t.Fatalf("strict event for an entry being sent (its claim's token where the id goes): %s", got)
		}
		if got := strict(es[0], "m1"); got != DeliveryOtherMessage {
			t.Fatalf("strict event for another id: %s", got)
		}
		if got := strict(es[0], "m2"); got != DeliveryApplied {
			t.Fatalf("strict event for the recorded id: %s", got)
		}
		if got := apply(t, b, "r3", PlanEntry{Recipient: "+15550009999"}, Sent, "", 0); got != DeliveryNoEntry {
			t.Fatalf("unknown recipient: %s", got)
		}
		if got := apply(t, b, "nope", es[0], Sent, "", 0); got != DeliveryNoEntry {
			t.Fatalf("unknown run: %s", got)
		}
	})

	t.Run("SettlesUnknown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		es := seedRun(t, b, "r4", AtMostOnce, recipients(1), true)
		claim(t, b, "r4", es[0], AtMostOnce)
		if c := claim(t, b, "r4", es[0], AtMostOnce); c.Verdict != VerdictUnknown {
			t.Fatalf("second claim %+v", c)
		}
		// An unknown entry records no message id: an event matched without callbackData
		// (Strict) cannot tell it is about this send, and leaves it.
		if v, _, err := b.l.ApplyDelivery(ctx, DeliveryEvent{Address: Address{Run: "r4", Bucket: es[0].Bucket, Recipient: es[0].Recipient},
			State: Read, MessageID: "mz", Strict: true}); err != nil || v != DeliveryOtherMessage {
			t.Fatalf("strict event for an unknown entry: %s %v", v, err)
		}
		if got := apply(t, b, "r4", es[0], Read, "mz", 2*time.Second); got != DeliveryApplied {
			t.Fatal(got)
		}
		e := getEntry(t, b, "r4", es[0])
		if e.State != Read || e.MessageID != "mz" {
			t.Fatalf("entry %+v", e)
		}
		c := getCounters(t, b, "r4")
		if c.States[Unknown] != 0 || c.States[Read] != 1 || c.Codes["settled:read"] != 1 {
			t.Fatalf("counters %+v", c)
		}
		if v, err := b.l.Verify(ctx, "r4"); err != nil || len(v.Mismatches) > 0 {
			t.Fatalf("verify %+v %v", v, err)
		}
	})

	t.Run("RejectsBadInput", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, ev := range []DeliveryEvent{
			{Address: Address{Run: "r"}, State: Accepted}, {Address: Address{Run: "r"}, State: Sent, Code: "a|b"}, {Address: Address{Run: "r"}, State: Sent, MessageID: "a|b"},
		} {
			if _, _, err := b.l.ApplyDelivery(ctx, ev); err == nil {
				t.Errorf("%+v accepted", ev)
			}
		}
	})

	t.Run("ShuffledEventsEndAtTheHighestState", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		const n = 200
		es := seedRun(t, b, "r5", AtMostOnce, recipients(n), true)
		rng := rand.New(rand.NewPCG(1, 2))
		want := map[string]State{}
		type ev struct {
			pe PlanEntry
			st State
		}
		var evs []ev
		for i, e := range es {
			claim(t, b, "r5", e, AtMostOnce)
			finish(t, b, "r5", e, Outcome{State: Accepted, MessageID: "id" + e.Recipient})
			seq := [][]State{{Sent}, {Sent, Delivered}, {Sent, Delivered, Read}, {Sent, Failed}}[i%4]
			want[e.Recipient] = seq[len(seq)-1]
			for _, st := range seq {
				evs = append(evs, ev{e, st})
				if rng.IntN(4) == 0 {
					evs = append(evs, ev{e, st}) // duplicate
				}
			}
		}
		rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		for _, x := range evs {
			apply(t, b, "r5", x.pe, x.st, "id"+x.pe.Recipient, time.Second)
		}
		for _, e := range es {
			if got := getEntry(t, b, "r5", e).State; got != want[e.Recipient] {
				t.Errorf("%s: %s, want %s", e.Recipient, got, want[e.Recipient])
			}
		}
		if v, err := b.l.Verify(ctx, "r5"); err != nil || len(v.Mismatches) > 0 {
			t.Fatalf("verify %+v %v", v, err)
		}
		d, _ := b.l.DeliveryStats(ctx, "r5")
		if d.TimeToDeliver.Samples != n/2 || d.Delivered != n/2 || d.Read != n/4 || d.DeliveryFailed != n/4 {
			t.Fatalf("stats %+v", d)
		}
	})
}

func TestCountReply(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	long := "a-very-long-button-text-that-goes-on-and-on-well-past-sixty-four-bytes-of-text"
	for _, r := range []struct {
		button string
		optOut bool
	}{{"Yes", false}, {"Yes", false}, {"", true}, {long, false}} {
		// Replies without an id are counted every time.
		if counted, err := b.l.CountReply(ctx, Reply{Run: "r", Button: r.button, OptOut: r.optOut}); err != nil || !counted {
			t.Fatalf("CountReply = %v, %v", counted, err)
		}
	}
	d, err := b.l.DeliveryStats(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "buttons", map[string]int64{"Yes": 2, long[:64]: 1}, d.ButtonReplies)
	if d.Replies != 4 || d.OptOutsReceived != 1 || d.Empty() {
		t.Fatalf("stats %+v", d)
	}
}

func TestLatencyHistogram(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {100 * time.Millisecond, 0}, {101 * time.Millisecond, 1}, {141 * time.Millisecond, 1},
		{142 * time.Millisecond, 2}, {200 * time.Millisecond, 2}, {time.Second, 7}, {365 * 24 * time.Hour, latencyBuckets - 1},
	} {
		if got := LatencyBucket(tc.d); got != tc.want {
			t.Errorf("LatencyBucket(%s) = %d, want %d", tc.d, got, tc.want)
		}
	}
	for i := 0; i < latencyBuckets-1; i++ {
		if LatencyBucket(latencyUpper(i)) != i || LatencyBucket(latencyUpper(i)+1) != i+1 {
			t.Fatalf("bucket edges at %d: %s", i, latencyUpper(i))
		}
	}
	// 1,000 samples spread evenly from 1 ms to 10 s: the estimates stay within a bucket (√2).
	hist := make([]int64, latencyBuckets)
	for i := 1; i <= 1000; i++ {
		hist[LatencyBucket(time.Duration(i)*10*time.Millisecond)]++
	}
	s := latencySummary(hist)
	for _, c := range []struct {
		got, want time.Duration
	}{{s.P50, 5 * time.Second}, {s.P90, 9 * time.Second}, {s.P99, 9900 * time.Millisecond}} {
		if r := float64(c.got) / float64(c.want); r < 0.7 || r > 1.42 {
			t.Errorf("estimate %s for %s", c.got, c.want)
		}
	}
	if s.Samples != 1000 {
		t.Fatal(s.Samples)
	}
	if z := latencySummary(make([]int64, latencyBuckets)); z != (Latency{}) {
		t.Fatal(z)
	}
}
