package conversation

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// answerBench is a Redis, a fake Connectly and a client of it, with the customer's window
// open in both an hour ago.
type answerBench struct {
	rdb    *redis.Client
	fake   *fakeconnectly.Server
	client *connectly.Client
	params AnswerParams
}

func newAnswerBench(t *testing.T) *answerBench {
	t.Helper()
	return newAnswerBenchAt(t, time.Now())
}

// newAnswerBenchAt is newAnswerBench at now: the fake's clock stands still at the params'
// Now, so Herald and the fake judge a window at the same instant however long the test
// waits to run (a parallel test may wait for minutes on a busy machine).
func newAnswerBenchAt(t *testing.T, now time.Time) *answerBench {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: "biz", APIKey: "key",
		Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: srv.URL, BusinessID: "biz", APIKey: "key"})
	if err != nil {
		t.Fatal(err)
	}
	b := &answerBench{rdb: rdb, fake: fake, client: client, params: AnswerParams{Business: "biz", To: "+14155553002",
		Content: connectly.SessionContent{Text: "Your refund is on its way"}, Actor: "ana", Now: now}}
	at := now.Add(-time.Hour)
	if _, err := servicewindow.New(rdb, func() time.Time { return now }).Touch(context.Background(), "biz", []string{b.params.To}, at); err != nil {
		t.Fatal(err)
	}
	if err := fake.OpenWindow(b.params.To, at); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *answerBench) audit(t *testing.T) []audit.Entry {
	t.Helper()
	es, err := audit.List(context.Background(), b.rdb, 10)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// An answer that leaves it unknown whether the message went out (a 5xx after the message was
// taken, a connection lost after the request was written) is ErrMaybeSent, with the outcome
// and code to show, and is in the audit log with its outcome unknown: the person who sent it
// must learn that the customer may have it, and the log must show it even when they send it
// again.
func TestAnswerMaybeSent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rule fakeconnectly.Rule
		code string
	}{
		{"HTTP500", fakeconnectly.Rule{Status: 500, Sent: true}, "ERROR_CODE_UNSPECIFIED"},
		{"LostResponse", fakeconnectly.Rule{LoseResponse: true}, "NO_RESPONSE"},
		// grpc-gateway's 504 {"code":4} (DEADLINE_EXCEEDED) is no throttle (Meta's code 4):
		// it was reported not sent, and a person would send again.
		{"GatewayDeadline504", fakeconnectly.Rule{Code: "DEADLINE_EXCEEDED", Body: fakeconnectly.BodyGRPC, Sent: true}, "HTTP_504"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newAnswerBench(t)
			rule := tc.rule
			rule.Numbers, rule.Kind, rule.Times = []string{b.params.To}, fakeconnectly.KindSession, 1
			b.fake.SetRules([]fakeconnectly.Rule{rule})
			out, err := Answer(context.Background(), b.rdb, b.client, b.params)
			if !errors.Is(err, ErrMaybeSent) || out.Outcome != OutcomeMaybeSent || out.Code != tc.code || out.MessageID != "" {
				t.Fatalf("answered %+v, %v; want maybe sent (%s)", out, err, tc.code)
			}
			if n := b.fake.AcceptedCount(b.params.To); n != 1 {
				t.Fatalf("fake accepted %d messages, want the one that may have gone", n)
			}
			es := b.audit(t)
			if len(es) != 1 || es[0].Action != "message send" || es[0].Actor != "ana" || es[0].Target != "********3002" ||
				es[0].Detail != "text message, outcome unknown ("+tc.code+"): it may have been delivered" {
				t.Fatalf("audit %+v", es)
			}
			// Support says so, and what to do.
			res, err := Support(context.Background(), b.rdb, b.client, SupportParams{AnswerParams: b.params})
			if err != nil || res.Outcome != OutcomeSent {
				t.Fatalf("second send (rule used up): %+v, %v", res, err)
			}
			b.fake.SetRules([]fakeconnectly.Rule{rule})
			res, err = Support(context.Background(), b.rdb, b.client, SupportParams{AnswerParams: b.params})
			if !errors.Is(err, ErrMaybeSent) || res.Outcome != OutcomeMaybeSent || res.Code != tc.code ||
				!strings.Contains(err.Error(), "do not send it again before checking the conversation with ********3002") {
				t.Fatalf("support: %+v, %v", res, err)
			}
		})
	}
}

// Connectly's refusal sent nothing, but the request was made: it is in the audit log with
// its code, so the log has every attempt to reach the customer.
func TestAnswerRefusedIsAudited(t *testing.T) {
	t.Parallel()
	b := newAnswerBench(t)
	b.fake.SetRules([]fakeconnectly.Rule{{Numbers: []string{b.params.To}, Kind: fakeconnectly.KindSession, Status: 400, Times: 1}})
	out, err := Answer(context.Background(), b.rdb, b.client, b.params)
	if err == nil || errors.Is(err, ErrMaybeSent) || out.Outcome != OutcomeRefused || out.Code == "" || out.MessageID != "" {
		t.Fatalf("answered %+v, %v; want refused", out, err)
	}
	es := b.audit(t)
	if len(es) != 1 || es[0].Detail != "text message, refused ("+out.Code+")" {
		t.Fatalf("audit %+v", es)
	}
}
