package fakeconnectly

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Tests of reference 4.4's TRANSIENT row, over the wire: "500, 502, 503, 504, connection
// reset, timeout | TRANSIENT | duplicate risk: no idempotency key is documented, so retrying
// after a timeout may double-send". A client that saw no success cannot tell whether the
// message went out; the fake plays both.

// trySend posts a valid template send to number with ctx and its own connection, and returns
// the answer or the transport error (a timeout, a dropped connection).
func trySend(t *testing.T, ctx context.Context, base, number string) (rawAnswer, error) {
	t.Helper()
	body := `{"number":"` + number + `","templateName":"promo","language":"en"}`
	return manageCall(t, ctx, http.MethodPost, base+templatePath(testBusiness), body)
}

// eventsFor returns the delivery_status calls about messages to number (the recipient).
func eventsFor(calls []wireCall, number string) []wireCall {
	var out []wireCall
	for _, c := range calls {
		if _, ok := c.body["statusUpdate"]; ok && party(c.body, "recipient")["id"] == number {
			out = append(out, c)
		}
	}
	return out
}

// statusID is a delivery_status call's statusUpdate.id.
func statusID(c wireCall) string {
	su, _ := c.body["statusUpdate"].(map[string]any)
	id, _ := su["id"].(string)
	return id
}

// recordOf returns the records of number's sends.
func recordOf(s *Server, number string) []Received {
	var out []Received
	for _, r := range s.Received() {
		if r.Number == number {
			out = append(out, r)
		}
	}
	return out
}

// TestReference4_4TimeoutAfterTheMessageWasTaken: a rule with "sent": true and a latency
// takes the message on arrival. Its delivery webhooks go out while the call still hangs,
// and a client that times out leaves a message that went out: it counts as accepted, its
// webhooks carry the id the client never saw, and a retry sends it a second time.
func TestReference4_4TimeoutAfterTheMessageWasTaken(t *testing.T) {
	t.Parallel()
	const n = "+15550000101"
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1},
		Rules: []Rule{{Numbers: []string{n}, Latency: time.Hour, Sent: true, Times: 1}}})
	t.Cleanup(func() { s.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		a   rawAnswer
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := trySend(t, ctx, base, n)
		done <- result{a, err}
	}()
	// The call hangs for an hour; the message was taken on arrival, so its webhooks come
	// before any answer.
	waitFor(t, "a delivery_status event while the send still hangs", func() bool { return len(eventsFor(sink.snapshot(), n)) > 0 })
	if got := s.AcceptedCount(n); got != 1 {
		t.Errorf("AcceptedCount while the call hangs = %d, want 1 (taken on arrival)", got)
	}
	select {
	case r := <-done:
		t.Fatalf("the send answered before its latency: %+v, %v", r.a, r.err)
	default:
	}
	cancel() // the client's timeout
	r := <-done
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("client error %v, want its own cancellation (no answer came)", r.err)
	}
	waitFor(t, "the canceled send to be recorded", func() bool { return len(recordOf(s, n)) == 1 })
	rec := recordOf(s, n)[0]
	if rec.Status != 0 || rec.ErrorCode != CodeCanceled || !idPattern.MatchString(rec.MessageID) || !rec.Accepted() {
		t.Errorf("record %+v, want no answer, CANCELED, and a message id", rec)
	}
	st := s.Stats()
	if st.Accepted != 1 || st.Canceled != 1 || st.SentCanceled != 1 || st.Lost != 0 || st.SentWithError != 0 || len(st.Errors) != 0 {
		t.Errorf("stats %+v, want one accepted message, canceled, not counted as an error", st)
	}
	// The events carry the id the client never got: it went sent, delivered, read.
	settled(t, s)
	events := eventsFor(sink.snapshot(), n)
	byStatus := statusEvents(events)
	for _, st := range []string{HookSent, HookDelivered, HookRead} {
		if len(byStatus[st]) != 1 || statusID(byStatus[st][0]) != rec.MessageID {
			t.Errorf("%s events %d, want one about %s", st, len(byStatus[st]), rec.MessageID)
		}
	}

	// "retrying after a timeout may double-send": the retry is taken too, as a new message.
	a, err := trySend(t, context.Background(), base, n)
	if err != nil || a.status != 200 {
		t.Fatalf("retry: %+v, %v", a, err)
	}
	var res struct{ ID string }
	if json.Unmarshal(a.body, &res) != nil || res.ID == rec.MessageID || !idPattern.MatchString(res.ID) {
		t.Errorf("retry answer %s, want a new id beside %s", a.body, rec.MessageID)
	}
	if got := s.AcceptedCount(n); got != 2 {
		t.Errorf("AcceptedCount after the retry = %d, want 2: the message went out twice", got)
	}
}

// TestReference4_4TimeoutBeforeTheMessageWasTaken: a latency without "sent" (or with "sent":
// false, said explicitly) keeps today's reading: a client that times out leaves nothing sent,
// no webhook follows, and the retry is the only message.
func TestReference4_4TimeoutBeforeTheMessageWasTaken(t *testing.T) {
	t.Parallel()
	for _, rules := range []string{
		`[{"numbers":["+15550000102"],"latency":"1h","times":1}]`,
		`[{"numbers":["+15550000102"],"latency":"1h","sent":false,"times":1}]`,
	} {
		const n = "+15550000102"
		sink := &wireSink{}
		s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1}})
		t.Cleanup(func() { s.Close() })
		if a := postTo(t, base+"/_fake/rules", rules); a.status != 200 {
			t.Fatalf("rules %s: %d %s", rules, a.status, a.body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := trySend(t, ctx, base, n)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: client error %v, want its timeout", rules, err)
		}
		waitFor(t, "the canceled send to be recorded", func() bool { return len(recordOf(s, n)) == 1 })
		rec := recordOf(s, n)[0]
		if rec.Status != 0 || rec.ErrorCode != CodeCanceled || rec.MessageID != "" || rec.Accepted() {
			t.Errorf("%s: record %+v, want CANCELED and no message", rules, rec)
		}
		if st := s.Stats(); st.Accepted != 0 || st.Canceled != 1 || st.SentCanceled != 0 || st.Errors[CodeCanceled] != 1 {
			t.Errorf("%s: stats %+v", rules, st)
		}
		if ev := s.WebhookStats().Events; ev != 0 {
			t.Errorf("%s: %d webhook events planned for a message not sent", rules, ev)
		}
		if a, err := trySend(t, context.Background(), base, n); err != nil || a.status != 200 {
			t.Fatalf("%s: retry %+v, %v", rules, a, err)
		}
		if got := s.AcceptedCount(n); got != 1 {
			t.Errorf("%s: AcceptedCount after the retry = %d, want 1", rules, got)
		}
	}
}

// TestReference4_4TakenOnArrivalAnswersWhenTheClientWaits: with "sent": true and a latency, a
// client that waits gets the ordinary success (200, or the rule's 2xx, {"id"}), or the rule's
// 5xx with the message sent; either way once.
func TestReference4_4TakenOnArrivalAnswersWhenTheClientWaits(t *testing.T) {
	t.Parallel()
	const ok, created, failed = "+15550000103", "+15550000104", "+15550000105"
	s, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{
		{Numbers: []string{ok}, Latency: 20 * time.Millisecond, Sent: true},
		{Numbers: []string{created}, Latency: 20 * time.Millisecond, Status: 201, Sent: true},
		{Numbers: []string{failed}, Latency: 20 * time.Millisecond, Status: 503, Sent: true},
	}})
	for n, want := range map[string]int{ok: 200, created: 201} {
		a, err := trySend(t, context.Background(), base, n)
		var res map[string]any
		if err != nil || a.status != want || json.Unmarshal(a.body, &res) != nil || len(res) != 1 || !idPattern.MatchString(res["id"].(string)) {
			t.Fatalf("%s: %+v, %v; want %d with {\"id\"} alone", n, a, err, want)
		}
		if rec := recordOf(s, n); len(rec) != 1 || rec[0].Status != want || rec[0].ErrorCode != "" || rec[0].MessageID != res["id"] {
			t.Errorf("%s: record %+v", n, rec)
		}
	}
	a, err := trySend(t, context.Background(), base, failed)
	if err != nil || a.status != 503 {
		t.Fatalf("failed: %+v, %v", a, err)
	}
	checkStandardBody(t, a, "Internal server error", TypeUnspecified, CodeUnspecified, "Encountered unexpected error")
	for _, n := range []string{ok, created, failed} {
		if got := s.AcceptedCount(n); got != 1 {
			t.Errorf("%s: AcceptedCount %d, want 1", n, got)
		}
	}
	if st := s.Stats(); st.Accepted != 3 || st.SentWithError != 1 || st.Canceled != 0 || len(st.Errors) != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestReference4_4ConnectionResetBeforeTheMessageWasTaken: loseResponse with "sent": false is a
// connection reset before the message was taken: no answer, nothing sent, no webhook. With no
// "sent" (or "sent": true) loseResponse keeps sending the message first.
func TestReference4_4ConnectionResetBeforeTheMessageWasTaken(t *testing.T) {
	t.Parallel()
	const dropped, lost, lostTaken = "+15550000106", "+15550000107", "+15550000108"
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1}})
	t.Cleanup(func() { s.Close() })
	rules := `[{"numbers":["+15550000106"],"loseResponse":true,"sent":false},
		{"numbers":["+15550000107"],"loseResponse":true},
		{"numbers":["+15550000108"],"loseResponse":true,"sent":true}]`
	if a := postTo(t, base+"/_fake/rules", rules); a.status != 200 {
		t.Fatalf("rules: %d %s", a.status, a.body)
	}
	for _, n := range []string{dropped, lost, lostTaken} {
		if a, err := trySend(t, context.Background(), base, n); err == nil {
			t.Errorf("%s: answered %d %s, want the connection closed without an answer", n, a.status, a.body)
		}
	}
	rec := recordOf(s, dropped)
	if len(rec) != 1 || rec[0].Status != 0 || rec[0].ErrorCode != CodeDropped || rec[0].MessageID != "" {
		t.Errorf("dropped: record %+v, want DROPPED and no message", rec)
	}
	if s.AcceptedCount(dropped) != 0 || s.AcceptedCount(lost) != 1 || s.AcceptedCount(lostTaken) != 1 {
		t.Errorf("accepted counts %v, want the dropped one not sent and both lost answers sent", s.AcceptedCounts())
	}
	if st := s.Stats(); st.Dropped != 1 || st.Errors[CodeDropped] != 1 || st.Lost != 2 || st.Accepted != 2 {
		t.Errorf("stats %+v", st)
	}
	settled(t, s)
	calls := sink.snapshot()
	if ev := eventsFor(calls, dropped); len(ev) != 0 {
		t.Errorf("%d webhook events about a message that was never taken", len(ev))
	}
	if len(eventsFor(calls, lost)) == 0 || len(eventsFor(calls, lostTaken)) == 0 {
		t.Error("no webhook events about the lost answers' messages, which went out")
	}

	// The choice is written back as it was given.
	got, err := json.Marshal(s.Rules())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"loseResponse":true,"sent":false`, `"loseResponse":true,"sent":true`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("rules %s, want %s in them", got, want)
		}
	}
}
