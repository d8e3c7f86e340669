package worker

import (
	"bytes"
	"context"
	"io"
	"net"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
)

// lostReplyConn is a connection to Redis that, once lose is set, loses the answer to the next
// write carrying a claim (its at-most-once policy argument): Redis runs the claim, and the
// connection breaks before its reply reaches the client, as on a reset, a failover or a read
// timeout.
type lostReplyConn struct {
	net.Conn
	lose   *atomic.Bool
	broken atomic.Bool
}

func (c *lostReplyConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if bytes.Contains(p, []byte("\r\namo\r\n")) && c.lose.CompareAndSwap(true, false) {
		c.broken.Store(true)
	}
	return n, err
}

// claimReply is the start of a claim's reply: {verdict, state letter, attempts, detail}.
var claimReply = regexp.MustCompile(`\*4\r\n\$\d+\r\n(send|done|paused|cancelled|unknown|found|norun|noentry)\r\n`)

// Read reads on as usual until the claim was written; then it reads Redis's answer up to the
// claim's reply, so the claim has run, and throws it away with the connection.
func (c *lostReplyConn) Read(p []byte) (int, error) {
	if !c.broken.Load() {
		return c.Conn.Read(p)
	}
	var got []byte
	buf := make([]byte, 4096)
	for !claimReply.Match(got) {
		n, err := c.Conn.Read(buf)
		if err != nil {
			return 0, err
		}
		got = append(got, buf[:n]...)
	}
	c.Conn.Close()
	return 0, io.EOF
}

// setupLostReply is a worker whose Redis client loses the answer of the next claim once lose
// is set, and the one recipient of run r (at-most-once); opts sets the client's retries. Its
// waits between ledger retries are skipped.
func setupLostReply(t *testing.T, opts *redis.Options, r ledger.Run) (*testBundle, *atomic.Bool, campaigns.SendPayload) {
	t.Helper()
	lose := &atomic.Bool{}
	opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		cn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &lostReplyConn{Conn: cn, lose: lose}, nil
	}
	b := setupWith(t, testConfig(), opts, func(ctx context.Context, _ time.Duration) error { return ctx.Err() })
	r.Delivery = ledger.AtMostOnce
	p := seedRunWith(t, b, r, "+1555", 1)[0]
	ctx := context.Background()
	if err := b.worker.ledger.LoadScripts(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.worker.limits.Limiter().Load(ctx); err != nil {
		t.Fatal(err)
	}
	return b, lose, p
}

// claimPaths are the two ways a send claims: in one pipeline with its reservation, or alone
// once its sender's sends wait for their slots.
var claimPaths = []struct {
	name  string
	paced bool
}{{"Pipelined", false}, {"Paced", true}}

// TestALostClaimAnswerRunsTheClaimAgain: the Redis client runs a command again when its
// connection broke before the answer (go-redis's MaxRetries, 3 by default, which the
// worker's client keeps). The claim ran the first time; run again, it is the same claim and
// answers send again: the recipient is sent once, not made unknown by its own claim.
func TestALostClaimAnswerRunsTheClaimAgain(t *testing.T) {
	for _, path := range claimPaths {
		t.Run(path.name, func(t *testing.T) {
			b, lose, p := setupLostReply(t, &redis.Options{}, ledger.Run{ID: "run-lost-reply"})
			b.worker.pacing(p.Sender).Store(path.paced)
			lose.Store(true)
			if err := handle(t, b, p); err != nil {
				t.Fatalf("send: %v", err)
			}
			if lose.Load() {
				t.Fatal("no claim's answer was lost: the test tested nothing")
			}
			wantEntry(t, b, p, ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + p.To})
			if n := b.sender.CallsTo(p.To); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
			if c := countersOf(t, b, p.Run); c.Attempts != 1 || c.Resent != 0 {
				t.Fatalf("attempts %d, resent %d; want 1 and 0", c.Attempts, c.Resent)
			}
		})
	}
}

// TestALostClaimAnswerGivesTheClaimBack: with a client that does not run commands again, the
// claim's error reaches the worker, which gives the claim back by its token before the task
// waits and tries again: the retry sends, instead of finding the claim and making the
// recipient unknown although no request ever left.
func TestALostClaimAnswerGivesTheClaimBack(t *testing.T) {
	for _, path := range claimPaths {
		t.Run(path.name, func(t *testing.T) {
			b, lose, p := setupLostReply(t, &redis.Options{MaxRetries: -1}, ledger.Run{ID: "run-lost-reply"})
			b.worker.pacing(p.Sender).Store(path.paced)
			lose.Store(true)
			te := wantAs[*ThrottledError](t, handle(t, b, p))
			if isFailure(te) {
				t.Fatal("a lost answer counted as the recipient's failure")
			}
			if lose.Load() {
				t.Fatal("no claim's answer was lost: the test tested nothing")
			}
			if n := b.sender.CallsTo(p.To); n != 0 {
				t.Fatalf("%d requests after a lost claim, want none", n)
			}
			wantEntry(t, b, p, ledger.Entry{State: ledger.Queued, Attempts: 0, Code: CodeClaimUnanswered})
			if c := countersOf(t, b, p.Run); c.Attempts != 0 || c.Throttled != 0 {
				t.Fatalf("attempts %d, throttled %d after the give-back; want 0 and 0", c.Attempts, c.Throttled)
			}
			// asynq's retry of the task.
			if err := handle(t, b, p); err != nil {
				t.Fatalf("retry: %v", err)
			}
			wantEntry(t, b, p, ledger.Entry{State: ledger.Accepted, Attempts: 1, MessageID: "msg-" + p.To})
			if n := b.sender.CallsTo(p.To); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

// TestALostAnswerOfAClaimThatFoundAnotherGivesNothingBack: the give-back takes only the
// task's own claim. In a run that resends unknown recipients a claim that finds an earlier
// attempt's claim changes nothing (the task settles it, keeping its payload); when its answer
// is lost, the earlier claim, whose request may have gone out, must stay.
func TestALostAnswerOfAClaimThatFoundAnotherGivesNothingBack(t *testing.T) {
	b, lose, p := setupLostReply(t, &redis.Options{MaxRetries: -1}, ledger.Run{ID: "run-lost-reply", ResendAfter: time.Hour})
	// An earlier attempt's claim, whose worker died before its request's answer.
	if c, err := b.ledger.Claim(context.Background(), p.Address(), ledger.AtMostOnce); err != nil || c.Verdict != ledger.VerdictSend {
		t.Fatalf("earlier claim: %+v, %v", c, err)
	}
	lose.Store(true)
	wantAs[*ThrottledError](t, handle(t, b, p))
	if lose.Load() {
		t.Fatal("no claim's answer was lost: the test tested nothing")
	}
	wantEntry(t, b, p, ledger.Entry{State: ledger.Submitting, Attempts: 1})
	// asynq's retry of the task finds the earlier claim and settles it.
	if err := handle(t, b, p); err != nil {
		t.Fatalf("retry: %v", err)
	}
	wantEntry(t, b, p, ledger.Entry{State: ledger.Unknown, Attempts: 1, Code: ledger.CodeClaimFound})
	if n := b.sender.CallsTo(p.To); n != 0 {
		t.Fatalf("%d requests, want none: the earlier attempt may have sent", n)
	}
}
