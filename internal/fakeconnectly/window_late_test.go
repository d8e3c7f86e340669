package fakeconnectly

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestWindowAnswerAtDelivery: under the window answers that fail at delivery (reference 9.3:
// "final outcome comes from delivery_status webhooks, where failures arrive as
// delivery_failed + Connectly error codes"; 9.2's 131047), a session send outside the window
// (never opened, expired) is answered 200 with an id, and its webhook story is sent, then
// one delivery_failed whose error is the window's: never a delivered or read, never a reply,
// though a fate makes every message read and a reply answers every session reader. A session
// send inside the window is delivered, read and replied to as usual, and a template send to
// a customer whose window is closed is accepted and read. The record says what happened.
func TestWindowAnswerAtDelivery(t *testing.T) {
	t.Parallel()
	const outside = "Failed to send a message because more than 24 hours have passed since the customer last replied"
	tests := []struct {
		answer string
		// code is the error's code as JSON decodes it: a string, or a float64 for a number;
		// rawCode is how the body writes it.
		code     any
		rawCode  string
		typ, msg string
		recorded string
	}{
		{WindowAnswerAtDelivery, CodeOutsideWindow, `"code":"` + CodeOutsideWindow + `"`, TypeDeadlineExceeded, outside, CodeOutsideWindow},
		{WindowAnswerAtDelivery131047, float64(131047), `"code":131047`, TypeInvalidRequest, metaReengagementMessage, CodeMetaReengagement},
		{WindowAnswerAtDelivery131047String, "131047", `"code":"131047"`, TypeInvalidRequest, metaReengagementMessage, CodeMetaReengagement},
	}
	for _, tc := range tests {
		t.Run(tc.answer, func(t *testing.T) {
			t.Parallel()
			const never, expired, open = "+15550007001", "+15550007002", "+15550007003"
			clock := newClock()
			sink := &wireSink{}
			s, base := newFake(t, Config{RateLimit: -1, Clock: clock.Now, WindowAnswer: tc.answer, Webhooks: WebhookConfig{
				URL: startSink(t, sink), Secret: "k", Seed: 1,
				// Every message is read and every session reader replies, unless its window
				// fails it.
				Fates:   []Fate{{Percent: 100, Salt: "all", Status: HookRead}},
				Replies: []Reply{{Kind: KindSession, Text: "thanks"}},
			}})
			t.Cleanup(func() { s.Close() })
			if err := s.OpenWindow(expired, clock.Now().Add(-25*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := s.OpenWindow(open, clock.Now().Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}

			ids := map[string]string{}
			for _, n := range []string{never, expired, open} {
				a := postSession(t, base, sessionBody(n))
				if a.status != 200 {
					t.Fatalf("session send to %s: %d %s, want 200", n, a.status, a.body)
				}
				ids[n] = messageID(t, a)
			}
			// Templates are not subject to the window (reference 3).
			templateID := sendTemplateTo(t, base, expired, "spring")
			settled(t, s)
			calls := sink.snapshot()

			for _, n := range []string{never, expired} {
				byStatus := statusEvents(callsAbout(calls, ids[n]))
				if len(byStatus[HookSent]) != 1 || len(byStatus[HookDeliveryFailed]) != 1 ||
					len(byStatus[HookDelivered]) != 0 || len(byStatus[HookRead]) != 0 {
					t.Errorf("%s: events by status %v, want one sent and one delivery_failed", n, counts(byStatus))
					continue
				}
				failed := byStatus[HookDeliveryFailed][0]
				if party(failed.body, "recipient")["id"] != n {
					t.Errorf("%s: delivery_failed about %v", n, failed.body["recipient"])
				}
				if !strings.Contains(string(failed.raw), tc.rawCode) {
					t.Errorf("%s: body %s: want %s", n, failed.raw, tc.rawCode)
				}
				e := failed.body["statusUpdate"].(map[string]any)["error"].(map[string]any)
				details, _ := json.Marshal(e["details"])
				if e["code"] != tc.code || e["type"] != tc.typ || e["message"] != tc.msg || e["userTitle"] != tc.msg ||
					e["userMessage"] != userMessage || !digitPattern.MatchString(e["cntTraceId"].(string)) ||
					string(details) != "{}" || len(e) != 7 {
					t.Errorf("%s: error %v", n, e)
				}
			}
			// Nor may the customer answer it on demand: a button reply needs a message that
			// reached them.
			if _, err := s.Inbound(never, Reply{Button: "Yes"}); err == nil {
				t.Errorf("a button reply from %s, whose only message never reached them", never)
			}
			for _, in := range inboundCalls(calls) {
				if from := party(in.body, "sender")["id"]; from == never || from == expired {
					t.Errorf("a reply from %v, whose message never reached them: %s", from, in.raw)
				}
			}

			// Inside the window: delivered, read and replied to as usual.
			byStatus := statusEvents(callsAbout(calls, ids[open]))
			if len(byStatus[HookRead]) != 1 || len(byStatus[HookDelivered]) != 1 || len(byStatus[HookDeliveryFailed]) != 0 {
				t.Errorf("in the window: events by status %v", counts(byStatus))
			}
			if replies := s.RepliesFrom(open); len(replies) != 1 || replies[0].ReplyTo != ids[open] {
				t.Errorf("in the window: replies %+v, want one to %s", replies, ids[open])
			}
			// A template to a closed window: accepted, read.
			if byStatus := statusEvents(callsAbout(calls, templateID)); len(byStatus[HookRead]) != 1 || len(byStatus[HookDeliveryFailed]) != 0 {
				t.Errorf("template: events by status %v", counts(byStatus))
			}

			st := s.Stats()
			if st.SessionsAccepted != 3 || st.OutsideWindow != 2 || st.AcceptedOutsideWindow != 2 || st.WindowFailedAtDelivery != 2 ||
				st.WindowRefused != 0 || st.Accepted != 4 || len(st.Errors) != 0 {
				t.Errorf("stats %+v", st)
			}
			for _, r := range s.Received() {
				late := r.Kind == KindSession && r.Number != open
				if want := map[bool]string{true: tc.recorded}[late]; r.WindowFailure != want || r.OutsideWindow != late || !r.Accepted() {
					t.Errorf("record of %s %s: windowFailure %q outsideWindow %v accepted %v, want %q %v true",
						r.Kind, r.Number, r.WindowFailure, r.OutsideWindow, r.Accepted(), want, late)
				}
			}
			c, err := s.Conversation(expired)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Messages) != 2 || c.Messages[0].WindowFailure != tc.recorded || c.Messages[0].WindowOpen ||
				c.Messages[1].Kind != KindTemplate || c.Messages[1].WindowFailure != "" || c.WindowRefused != 0 {
				t.Errorf("conversation %+v", c)
			}
			for _, o := range s.WebhookOutcomes() {
				if want := map[bool]string{true: HookDeliveryFailed, false: HookRead}[o.MessageID == ids[never] || o.MessageID == ids[expired]]; o.Planned != want {
					t.Errorf("outcome %+v, want planned %s", o, want)
				}
			}
		})
	}
}

// TestWindowAnswerAtDeliveryChoices: the answers are taken by name in the JSON
// configuration, listed in New's refusal of an unknown one, and IgnoreWindow still delivers
// a session send outside the window.
func TestWindowAnswerAtDeliveryChoices(t *testing.T) {
	t.Parallel()
	for _, answer := range []string{WindowAnswerAtDelivery, WindowAnswerAtDelivery131047, WindowAnswerAtDelivery131047String} {
		cfg, err := ParseConfig(strings.NewReader(`{"windowAnswer":"` + answer + `"}`))
		if err != nil || cfg.WindowAnswer != answer {
			t.Errorf("ParseConfig %s = %+v, %v", answer, cfg.WindowAnswer, err)
		}
	}
	_, err := New(Config{BusinessID: "b", APIKey: "k", WindowAnswer: "later"})
	if err == nil || !strings.Contains(err.Error(), WindowAnswerAtDelivery131047String) {
		t.Errorf("New with an unknown answer: %v, want the list of answers", err)
	}

	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1, IgnoreWindow: true, WindowAnswer: WindowAnswerAtDelivery,
		Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1}})
	t.Cleanup(func() { s.Close() })
	a := postSession(t, base, sessionBody("+15550007011"))
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	id := messageID(t, a)
	settled(t, s)
	if byStatus := statusEvents(callsAbout(sink.snapshot(), id)); len(byStatus[HookRead]) != 1 || len(byStatus[HookDeliveryFailed]) != 0 {
		t.Errorf("IgnoreWindow: events by status %v, want read", counts(byStatus))
	}
	if st := s.Stats(); st.AcceptedOutsideWindow != 1 || st.WindowFailedAtDelivery != 0 {
		t.Errorf("IgnoreWindow: stats %+v", st)
	}
}

// callsAbout returns the delivery_status calls about message id.
func callsAbout(calls []wireCall, id string) []wireCall {
	var out []wireCall
	for _, c := range calls {
		if _, ok := c.body["statusUpdate"]; ok && statusID(c) == id {
			out = append(out, c)
		}
	}
	return out
}

// counts is the number of calls of each status.
func counts(byStatus map[string][]wireCall) map[string]int {
	out := map[string]int{}
	for st, calls := range byStatus {
		out[st] = len(calls)
	}
	return out
}
