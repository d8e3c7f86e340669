package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// supportBench is what `message send` runs against: a Redis, a fake Connectly, and the
// environment that points herald at both.
type supportBench struct {
	fake *fakeconnectly.Server
	rdb  *redis.Client
	env  map[string]string
}

func newSupportBench(t *testing.T) *supportBench {
	t.Helper()
	m, env := miniEnv(t)
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: "biz", APIKey: "key"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	env["CONNECTLY_BASE_URL"], env["CONNECTLY_BUSINESS_ID"], env["CONNECTLY_API_KEY"] = srv.URL, "biz", "key"
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return &supportBench{fake: fake, rdb: rdb, env: env}
}

// open records an inbound message of customer an hour ago, with no business number, in
// Herald's record and in the fake's.
func (b *supportBench) open(t *testing.T, customer string) {
	t.Helper()
	at := time.Now().Add(-time.Hour)
	if _, err := servicewindow.New(b.rdb, time.Now).Touch(context.Background(), "biz", []string{customer}, at); err != nil {
		t.Fatal(err)
	}
	if err := b.fake.OpenWindow(customer, at); err != nil {
		t.Fatal(err)
	}
}

func (b *supportBench) audit(t *testing.T) []audit.Entry {
	t.Helper()
	es, err := audit.List(context.Background(), b.rdb, 10)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// oneJSON decodes stdout as exactly one JSON object.
func oneJSON(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, out)
	}
	if rest, _ := bytes.NewBufferString(out[dec.InputOffset():]).ReadString(0); strings.TrimSpace(rest) != "" {
		t.Fatalf("stdout holds more than one JSON object:\n%s", out)
	}
}

// A 5xx after Connectly took the message, or an answer lost after the request was written,
// leaves it unknown whether the customer has it: `message send` says so, that it must not be
// sent again before checking, prints the result (outcome maybe_sent: one JSON object with
// --json) and exits non-zero, and the audit log has the send with its outcome unknown, so a
// second send is not the only one it shows.
func TestMessageSendMaybeSent(t *testing.T) {
	t.Parallel()
	const customer = "+14155553002"
	for _, tc := range []struct {
		name string
		rule fakeconnectly.Rule
		code string
	}{
		{"HTTP500", fakeconnectly.Rule{Status: 500, Sent: true}, "ERROR_CODE_UNSPECIFIED"},
		{"LostResponse", fakeconnectly.Rule{LoseResponse: true}, "NO_RESPONSE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newSupportBench(t)
			b.open(t, customer)
			rule := tc.rule
			rule.Numbers, rule.Kind, rule.Times = []string{customer}, fakeconnectly.KindSession, 1
			b.fake.SetRules([]fakeconnectly.Rule{rule})
			code, out, errOut := herald(t, b.env, "message", "send", "--to", customer, "--text", "Your refund is on its way", "--json", "--actor", "ana")
			var res conversation.SupportResult
			oneJSON(t, out, &res)
			if code != exitError || res.Outcome != conversation.OutcomeMaybeSent || res.Code != tc.code || res.MessageID != "" ||
				!strings.Contains(errOut, "may have been delivered") || !strings.Contains(errOut, "do not send it again before checking") {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
			}
			es := b.audit(t)
			if len(es) != 1 || es[0].Actor != "ana" || es[0].Target != "********3002" ||
				es[0].Detail != "text message, outcome unknown ("+tc.code+"): it may have been delivered" {
				t.Fatalf("audit %+v", es)
			}
			// The text output says it too.
			b.fake.SetRules([]fakeconnectly.Rule{rule})
			code, out, errOut = herald(t, b.env, "message", "send", "--to", customer, "--text", "Your refund is on its way")
			if code != exitError || !strings.Contains(out, "Outcome    unknown ("+tc.code+"): the message may have been delivered") {
				t.Fatalf("text: exit %d\nstdout %s\nstderr %s", code, out, errOut)
			}
			if es := b.audit(t); len(es) != 2 {
				t.Fatalf("audit %+v, want both sends", es)
			}
		})
	}
}
