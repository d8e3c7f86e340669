package ledger

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// movesOnRead is a go-redis hook that, while left > 0, claims and accepts one more entry of
// a run each time the entries are read (the pipeline of HGETALLs of Verify's scan), after the
// read: the run moves while it is being verified, as a run still sending does.
type movesOnRead struct {
	l       *Ledger
	entries []PlanEntry
	run     string
	left    int
	moved   int
}

func (h *movesOnRead) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *movesOnRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *movesOnRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if h.left > 0 && len(cmds) > 0 && cmds[0].Name() == "hgetall" && strings.Contains(fmt.Sprint(cmds[0].Args()[1]), ":l:") {
			h.left--
			pe := h.entries[h.moved]
			h.moved++
			a := Address{Run: h.run, Recipient: pe.Recipient, Bucket: pe.Bucket}
			if _, cerr := h.l.Claim(ctx, a, AtMostOnce); cerr != nil {
				return cerr
			}
			if _, ferr := h.l.Finish(ctx, a, Outcome{State: Accepted, MessageID: "m" + pe.Recipient, Attempt: 1}); ferr != nil {
				return ferr
			}
		}
		return err
	}
}

// TestVerifyOfAMovingRun: a run that changes while its entries are read is read again, and
// compared only once a read saw it at rest; one that changes during every read is reported
// moving, with no mismatch: the counters and the ledger never disagreed, they were read at
// different moments.
func TestVerifyOfAMovingRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		moves  int
		moving bool
	}{
		{"SettlesOnTheSecondRead", 1, false},
		{"MovesOnEveryRead", VerifyReads, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			ctx := context.Background()
			entries := seedRun(t, b, "r-moving", AtMostOnce, recipients(40), true)
			other := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
			t.Cleanup(func() { other.Close() })
			h := &movesOnRead{l: New(other, nil), entries: entries, run: "r-moving", left: tc.moves}
			b.rdb.AddHook(h)
			v, err := b.l.Verify(ctx, "r-moving")
			if err != nil {
				t.Fatal(err)
			}
			if h.moved != tc.moves {
				t.Fatalf("the run moved %d times during the reads, want %d: the test tested nothing", h.moved, tc.moves)
			}
			if v.Moving != tc.moving || len(v.Mismatches) != 0 {
				t.Fatalf("Verify = moving %v, mismatches %+v; want moving %v and none", v.Moving, v.Mismatches, tc.moving)
			}
			if !tc.moving && (v.Entries != 40 || v.States[Accepted] != int64(tc.moves)) {
				t.Fatalf("Verify read %d entries, %d accepted; want 40 and %d", v.Entries, v.States[Accepted], tc.moves)
			}
		})
	}
}
