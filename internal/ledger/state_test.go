package ledger

import (
	"fmt"
	"strings"
	"testing"
)

func TestBucketOf(t *testing.T) {
	t.Parallel()

	t.Run("StableAndInRange", func(t *testing.T) {
		t.Parallel()
		for _, n := range []int{2, 3, 7, 64, 1000} {
			seen := map[int]bool{}
			for i := range 2000 {
				r := fmt.Sprintf("+4477%08d", i)
				got := BucketOf(r, n)
				if got < 0 || got >= n {
					t.Fatalf("BucketOf(%q, %d) = %d, out of range", r, n, got)
				}
				if again := BucketOf(r, n); again != got {
					t.Fatalf("BucketOf(%q, %d) = %d then %d", r, n, got, again)
				}
				seen[got] = true
			}
			// 2000 recipients reach every one of a handful of buckets.
			if n <= 64 && len(seen) != n {
				t.Fatalf("n=%d: only %d buckets used", n, len(seen))
			}
		}
	})

	t.Run("KnownValues", func(t *testing.T) {
		t.Parallel()
		// Pinned: a change here moves every recipient of every stored run to another bucket.
		for _, tc := range []struct {
			recipient string
			n, want   int
		}{
			{"+15550000000", 1, 0},
			{"+15550000000", 0, 0},
			{"+15550000000", -3, 0},
			{"", 5, int(2166136261 % 5)}, // FNV-1a offset basis
		} {
			if got := BucketOf(tc.recipient, tc.n); got != tc.want {
				t.Fatalf("BucketOf(%q, %d) = %d, want %d", tc.recipient, tc.n, got, tc.want)
			}
		}
	})
}

func TestBucketsFor(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name       string
		rows, want int
	}{
		{"Empty", 0, 1},
		{"Negative", -5, 1},
		{"One", 1, 1},
		{"FullBucket", 64, 1},
		{"OneOver", 65, 2},
		{"Thousand", 1000, 16},
		{"Million", 1_000_000, 15625},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := BucketsFor(tc.rows)
			if got != tc.want {
				t.Fatalf("BucketsFor(%d) = %d, want %d", tc.rows, got, tc.want)
			}
			// Stay well under Redis's compact-hash limit of 128 entries a bucket.
			if tc.rows > 0 && (tc.rows+got-1)/got > 64 {
				t.Fatalf("BucketsFor(%d) = %d puts more than 64 rows in a bucket", tc.rows, got)
			}
		})
	}
}

func TestEntryEncoding(t *testing.T) {
	t.Parallel()

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		for _, s := range States {
			for _, e := range []Entry{
				{State: s, Row: 1},
				{State: s, Row: 1_000_000, Attempts: 7, Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID", MessageID: "7c1d2f0e-msg"},
				{State: s, Row: 42, Attempts: 1, Code: "skipped reason with spaces", MessageID: ""},
			} {
				got, err := decodeEntry(e.encode())
				if err != nil {
					t.Fatalf("decode(%q): %v", e.encode(), err)
				}
				if s == Submitting {
					// There the place of the message id holds the claim's token (claim.lua).
					e.MessageID = ""
				}
				wantEqual(t, "entry", e, got)
			}
		}
	})

	t.Run("ScriptForm", func(t *testing.T) {
		t.Parallel()
		// The Lua scripts write entries in this exact form.
		wantEqual(t, "planned", "p|3|0||", Entry{State: Planned, Row: 3}.encode())
		wantEqual(t, "accepted", "a|3|2||m-1", Entry{State: Accepted, Row: 3, Attempts: 2, MessageID: "m-1"}.encode())
	})

	t.Run("LettersAreDistinct", func(t *testing.T) {
		t.Parallel()
		seen := map[string]State{}
		for _, s := range States {
			l := s.Letter()
			if len(l) != 1 {
				t.Fatalf("%s has letter %q", s, l)
			}
			if other, ok := seen[l]; ok {
				t.Fatalf("%s and %s share letter %q", s, other, l)
			}
			seen[l] = s
		}
		if State("bogus").Letter() != "" {
			t.Fatal("an unknown state has a letter")
		}
	})

	t.Run("Malformed", func(t *testing.T) {
		t.Parallel()
		for _, v := range []string{"", "p", "p|1|0|", "x|1|0||", "p|one|0||", "p|1|zero||", "pq|1|0||"} {
			if e, err := decodeEntry(v); err == nil {
				t.Fatalf("decodeEntry(%q) = %+v, want an error", v, e)
			}
		}
	})

	t.Run("MessageIDMayHoldPipes", func(t *testing.T) {
		t.Parallel()
		// The message id is the last field, so nothing after the fourth '|' splits it.
		got, err := decodeEntry("a|1|1||id|with|pipes")
		if err != nil {
			t.Fatal(err)
		}
		if got.MessageID != "id|with|pipes" {
			t.Fatalf("message id %q", got.MessageID)
		}
	})
}

func TestStateTerminal(t *testing.T) {
	t.Parallel()

	want := map[State]bool{
		Planned: false, Queued: false, Submitting: false,
		Accepted: true, Sent: true, Delivered: true, Read: true, Failed: true, Skipped: true, Unknown: true,
	}
	if len(want) != len(States) {
		t.Fatalf("States lists %d states, the test knows %d", len(States), len(want))
	}
	for _, s := range States {
		if got := s.Terminal(); got != want[s] {
			t.Fatalf("%s.Terminal() = %v, want %v", s, got, want[s])
		}
	}
}

func TestParseDelivery(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name    string
		in      string
		want    Delivery
		wantErr string
	}{
		{"EmptyIsAtMostOnce", "", AtMostOnce, ""},
		{"AtMostOnce", "at-most-once", AtMostOnce, ""},
		{"AtLeastOnce", "at-least-once", AtLeastOnce, ""},
		{"ExactlyOnceIsRefused", "exactly-once", "", `delivery "exactly-once"`},
		{"CaseMatters", "At-Most-Once", "", "want at-most-once or at-least-once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDelivery(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseDelivery(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseDelivery(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}
