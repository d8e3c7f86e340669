package fakeconnectly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// sendTemplateTo posts a valid template send to number with a callbackData naming it and a
// campaign, and returns the message id.
func sendTemplateTo(t *testing.T, base, number, campaign string) string {
	t.Helper()
	a := postTo(t, base+templatePath(testBusiness), `{"number":"`+number+`","templateName":"promo","language":"en",`+
		`"campaignName":"`+campaign+`","callbackData":{"step":"first","to":"`+number+`"}}`)
	if a.status != 200 {
		t.Fatalf("template to %s: %d %s", number, a.status, a.body)
	}
	var res struct{ ID string }
	if err := json.Unmarshal(a.body, &res); err != nil || res.ID == "" {
		t.Fatalf("template answer %s: %v", a.body, err)
	}
	return res.ID
}

// sendFollowUp posts a session text to number with a callbackData naming the step and number.
func sendFollowUp(t *testing.T, base, number, step string) rawAnswer {
	t.Helper()
	return postSession(t, base, `{"recipient":{"id":"`+number+`","channelType":"whatsapp"},"message":{"text":"Here it is"},`+
		`"campaignName":"spring-followup","callbackData":{"step":"`+step+`","to":"`+number+`"}}`)
}

func messageID(t *testing.T, a rawAnswer) string {
	t.Helper()
	var res struct{ ID string }
	if err := json.Unmarshal(a.body, &res); err != nil || res.ID == "" {
		t.Fatalf("answer %d %s has no id", a.status, a.body)
	}
	return res.ID
}

func numbers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("+1555010%04d", i)
	}
	return out
}

// TestReplyMix checks the shares of a reply mix: disjoint, of the documented size, stable,
// and restricted by Kind; and the validation of the new reply fields.
func TestReplyMix(t *testing.T) {
	t.Parallel()
	const vip = "+15550000001"
	mix := ReplyMix("m",
		Reply{Percent: 20, Button: "Yes"}, Reply{Percent: 10, Button: "No"}, Reply{Percent: 5, Text: "price?"},
		Reply{Numbers: []string{vip}, Text: "vip"})
	if err := ValidateReplies(mix); err != nil {
		t.Fatal(err)
	}
	if mix[1].From != 20 || mix[2].From != 30 || mix[2].Salt != "m" || mix[3].Salt != "" || mix[3].From != 0 {
		t.Fatalf("mix %+v", mix)
	}
	// Each number is in at most one share, and the shares have the sizes asked for.
	counts := make([]int, len(mix))
	const n = 20000
	for _, num := range numbers(n) {
		in := 0
		for i, r := range mix[:3] {
			if MatchReply([]Reply{r}, num, KindTemplate) == 0 {
				in++
				counts[i]++
			}
		}
		if in > 1 {
			t.Fatalf("%s is in %d shares", num, in)
		}
		if got, again := MatchReply(mix, num, KindTemplate), MatchReply(mix, num, KindTemplate); got != again {
			t.Fatalf("MatchReply is not stable for %s", num)
		}
	}
	for i, want := range []float64{20, 10, 5} {
		if got := float64(counts[i]) * 100 / n; got < want-1.5 || got > want+1.5 {
			t.Errorf("share %d: %.1f%%, want about %v%%", i, got, want)
		}
	}
	if MatchReply(mix, vip, KindTemplate) == -1 {
		t.Error("the vip rule picks nobody")
	}
	session := []Reply{{Kind: KindSession, Text: "Thanks"}}
	if MatchReply(session, vip, KindTemplate) != -1 || MatchReply(session, vip, KindSession) != 0 {
		t.Error("Kind does not restrict the rule to its endpoint")
	}

	for name, r := range map[string][]Reply{
		"OverHundred":    ReplyMix("x", Reply{Percent: 60, Text: "a"}, Reply{Percent: 50, Text: "b"}),
		"FromNoPercent":  {{From: 10, Text: "a"}},
		"BadKind":        {{Kind: "sms", Text: "a"}},
		"NegativeTimes":  {{Times: -1, Text: "a"}},
		"BadShapes":      {{Shapes: []string{"sticker"}, Text: "a"}},
		"ShapesAndShape": {{Shapes: ButtonShapes, Shape: ReplyText, Text: "a"}},
		"BadShape":       {{Shape: "poll", Text: "a"}},
	} {
		if err := ValidateReplies(r); err == nil {
			t.Errorf("%s: %+v validated", name, r)
		}
	}
	for _, sh := range InboundShapes {
		if err := ValidateReplies([]Reply{{Shape: sh, Text: "a"}}); err != nil {
			t.Errorf("shape %s: %v", sh, err)
		}
	}
}

// TestRepliesToFollowUps follows a conversation: readers of a template tap a button, the
// business answers each tapper with a session message (reference 3: "only allowed if the
// customer messaged you in the last 24 h"), which gets delivery webhooks like any message
// (reference 5.1: delivery_status "status of messages you sent") carrying its callbackData
// (reference 2.1: "echoed back at the top level of webhook events for this message"), and
// whose readers reply to it in turn, quoting it (reference 5.4: callbackData "is echoed on
// quoted replies"). A rule with Times answers only once per number.
func TestRepliesToFollowUps(t *testing.T) {
	t.Parallel()
	sink := &hookSink{secret: "conv"}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	replies := append(ReplyMix("tap", Reply{Percent: 50, Kind: KindTemplate, Template: "promo", Button: "Yes, show me", Payload: "YES", Shapes: ButtonShapes}),
		Reply{Kind: KindSession, Times: 1, Text: "Thanks!", Shape: ReplyQuoted})
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, Webhooks: WebhookConfig{
		URL: hs.URL, Secret: "conv", Seed: 4, DuplicatePercent: 20, ReorderPercent: 30, Replies: replies,
	}})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	templateIDs := map[string]string{}
	for _, n := range numbers(40) {
		templateIDs[n] = sendTemplateTo(t, base, n, "spring")
	}
	waitIdle(t, s)

	var tappers, others []string
	for _, n := range numbers(40) {
		got := s.RepliesFrom(n)
		if MatchReply(replies, n, KindTemplate) != 0 {
			others = append(others, n)
			if len(got) != 0 {
				t.Errorf("%s replied %+v, matching no rule", n, got)
			}
			continue
		}
		tappers = append(tappers, n)
		if len(got) != 1 {
			t.Fatalf("%s: replies %+v, want one tap", n, got)
		}
		r := got[0]
		if r.Rule != 0 || r.Label != "Yes, show me" || r.Payload != "YES" || r.ReplyTo != templateIDs[n] ||
			r.ReplyToKind != KindTemplate || !r.Delivered || !slices.Contains(ButtonShapes, r.Shape) ||
			!strings.Contains(string(r.CallbackData), `"first"`) {
			t.Errorf("%s: tap %+v", n, r)
		}
	}
	if len(tappers) < 10 || len(others) < 10 {
		t.Fatalf("%d tappers, %d others: too few to test", len(tappers), len(others))
	}

	// One follow-up per tapper, two to the first; one to someone who never wrote.
	followUps := map[string]string{} // message id -> number
	for _, n := range tappers {
		followUps[messageID(t, sendFollowUp(t, base, n, "yes"))] = n
	}
	followUps[messageID(t, sendFollowUp(t, base, tappers[0], "yes-again"))] = tappers[0]
	if a := sendFollowUp(t, base, others[0], "yes"); a.status != 400 {
		t.Fatalf("follow-up to a customer who never wrote: %d %s", a.status, a.body)
	}
	waitIdle(t, s)

	statuses := map[string]map[string]bool{}
	for _, c := range sink.snapshot() {
		su, _ := c.body["statusUpdate"].(map[string]any)
		if su == nil {
			continue
		}
		id := fmt.Sprint(su["id"])
		n, ok := followUps[id]
		if !ok {
			continue
		}
		if statuses[id] == nil {
			statuses[id] = map[string]bool{}
		}
		statuses[id][fmt.Sprint(su["status"])] = true
		cb, _ := c.body["callbackData"].(map[string]any)
		if cb["to"] != n || !strings.HasPrefix(fmt.Sprint(cb["step"]), "yes") {
			t.Errorf("follow-up event without its callbackData: %v", c.body)
		}
	}
	for id, n := range followUps {
		if st := statuses[id]; !st[HookSent] || !st[HookDelivered] || !st[HookRead] {
			t.Errorf("follow-up %s to %s: statuses %v, want sent, delivered and read", id, n, st)
		}
	}

	// Every tapper replied once to a follow-up, quoting it; the first tapper only once.
	quoted := 0
	for _, c := range sink.snapshot() {
		ctx, _ := c.body["context"].(map[string]any)
		msg, _ := c.body["message"].(map[string]any)
		if ctx == nil || msg["text"] != "Thanks!" {
			continue
		}
		quoted++
		id := fmt.Sprint(ctx["replyToId"])
		sender, _ := c.body["sender"].(map[string]any)
		cb, _ := c.body["callbackData"].(map[string]any)
		if followUps[id] != sender["id"] || cb["to"] != sender["id"] || !strings.HasPrefix(fmt.Sprint(cb["step"]), "yes") {
			t.Errorf("reply to a follow-up %v", c.body)
		}
	}
	if quoted < len(tappers) {
		t.Errorf("%d quoted replies delivered, want at least %d (duplicates come on top)", quoted, len(tappers))
	}
	for _, n := range tappers {
		got := s.RepliesFrom(n)
		var toFollowUp []InboundRecord
		for _, r := range got {
			if r.ReplyToKind == KindSession {
				toFollowUp = append(toFollowUp, r)
			}
		}
		if len(toFollowUp) != 1 || toFollowUp[0].Rule != 1 || toFollowUp[0].Shape != ReplyQuoted ||
			followUps[toFollowUp[0].ReplyTo] != n || !strings.Contains(string(toFollowUp[0].CallbackData), `"yes`) {
			t.Errorf("%s: replies to follow-ups %+v, want exactly one (Times 1)", n, toFollowUp)
		}
	}

	// The record judges: per tapper, the template outside a window, then follow-ups inside.
	for _, n := range tappers {
		c, err := s.Conversation(n)
		if err != nil {
			t.Fatal(err)
		}
		want := 2
		if n == tappers[0] {
			want = 3
		}
		if len(c.Messages) != want || c.Messages[0].Kind != KindTemplate || c.Messages[0].WindowOpen ||
			c.Messages[0].CampaignName != "spring" || c.Messages[0].Template != "promo" || c.WindowRefused != 0 {
			t.Fatalf("%s: conversation %+v", n, c)
		}
		for _, m := range c.Messages[1:] {
			if m.Kind != KindSession || !m.WindowOpen || m.CampaignName != "spring-followup" || m.Content != ContentText ||
				m.Text != "Here it is" || m.Status != 200 || !strings.Contains(string(m.CallbackData), n) {
				t.Errorf("%s: follow-up %+v", n, m)
			}
		}
		if len(c.Inbound) != 2 || c.Inbound[0].At.After(c.Inbound[1].At) {
			t.Errorf("%s: inbound %+v", n, c.Inbound)
		}
	}
	if c, _ := s.Conversation(others[0]); c.WindowRefused != 1 || len(c.Messages) != 1 {
		t.Errorf("refused customer's conversation %+v", c)
	}
	if st := s.Stats(); st.WindowRefused != 1 || st.AcceptedOutsideWindow != 0 || st.SessionsAccepted != len(tappers)+1 {
		t.Errorf("stats %+v", st)
	}
}

// TestEveryInboundShapeFromAMix makes readers answer in every inbound shape the reference
// lists (5.4), including a button reply with no message object, and checks each body and
// that each opens the customer's window (3.1: the window runs from "the customer's last
// inbound message").
func TestEveryInboundShapeFromAMix(t *testing.T) {
	t.Parallel()
	sink := &hookSink{secret: "all"}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, Webhooks: WebhookConfig{
		URL: hs.URL, Secret: "all", Seed: 2, Replies: []Reply{{Text: "Sneakers", Payload: "ROW_1", Shapes: InboundShapes}},
		// The template is one the fake does not know: every tap goes, in each form.
		TapUnknownTemplates: true,
	}})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string]Received{}
	for _, n := range numbers(len(InboundShapes)) {
		id := sendTemplateTo(t, base, n, "spring")
		recs[n] = Received{Number: n, MessageID: id, Message: TemplateMessage{
			Sender: businessNum, CallbackData: json.RawMessage(`{"step":"first","to":"` + n + `"}`)}}
	}
	waitIdle(t, s)
	seen := map[string]int{}
	for _, c := range sink.snapshot() {
		if c.body["statusUpdate"] != nil {
			continue
		}
		sender, _ := c.body["sender"].(map[string]any)
		rec := recs[fmt.Sprint(sender["id"])]
		shape := replyShapeOf(c.body)
		seen[shape]++
		label := "Sneakers"
		if shape == ReplyMedia || shape == ReplyLocation {
			label = ""
		}
		checkReply(t, c.body, shape, rec, label, "ROW_1")
	}
	for _, sh := range InboundShapes {
		if seen[sh] != 1 {
			t.Errorf("shape %s sent %d times, want once (all: %v)", sh, seen[sh], seen)
		}
	}
	for n := range recs {
		if !s.WindowOf(n).Open {
			t.Errorf("%s wrote and has no open window", n)
		}
		if a := sendFollowUp(t, base, n, "any"); a.status != 200 {
			t.Errorf("follow-up to %s: %d %s", n, a.status, a.body)
		}
	}
}

// eventKey names a webhook call: the status event of a message, or an inbound message.
func eventKey(body map[string]any) string {
	if su, ok := body["statusUpdate"].(map[string]any); ok {
		return fmt.Sprint(su["id"], "/", su["status"])
	}
	msg, _ := body["message"].(map[string]any)
	return fmt.Sprint("in/", msg["id"])
}

// TestSeveralReceivers runs two receiver replicas: each event goes to one of them and its
// duplicate to the other (reference 5.1: ordering and duplicates are not guaranteed, so two
// replicas may each see a copy), a topic can have receivers of its own, and the receivers
// can change while the fake runs.
func TestSeveralReceivers(t *testing.T) {
	t.Parallel()
	newSink := func() (*hookSink, string) {
		sink := &hookSink{secret: "rep"}
		hs := httptest.NewServer(sink)
		t.Cleanup(hs.Close)
		return sink, hs.URL
	}
	start := func(t *testing.T, hooks WebhookConfig) (*Server, string) {
		hooks.Secret, hooks.Replies = "rep", []Reply{{Template: "promo", Button: "Yes", Payload: "YES"}}
		s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, Webhooks: hooks})
		base, err := s.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return s, base
	}
	keys := func(sink *hookSink) map[string]int {
		out := map[string]int{}
		for _, c := range sink.snapshot() {
			out[eventKey(c.body)]++
		}
		return out
	}

	t.Run("DuplicateGoesToTheOtherReplica", func(t *testing.T) {
		t.Parallel()
		a, aURL := newSink()
		b, bURL := newSink()
		s, base := start(t, WebhookConfig{URL: aURL, URLs: []string{bURL}, Seed: 1, DuplicatePercent: 100, ReorderPercent: 50})
		for _, n := range numbers(20) {
			sendTemplateTo(t, base, n, "spring")
		}
		st := waitIdle(t, s)
		ka, kb := keys(a), keys(b)
		if len(ka) != st.Events/2 || len(kb) != st.Events/2 {
			t.Fatalf("%d and %d distinct events, want %d each", len(ka), len(kb), st.Events/2)
		}
		for k, n := range ka {
			if n != 1 || kb[k] != 1 {
				t.Errorf("event %s: %d copies at a, %d at b; want one at each", k, n, kb[k])
			}
		}
		if st.ByAddress[aURL] != st.Events/2 || st.ByAddress[bURL] != st.Events/2 {
			t.Errorf("by address %v", st.ByAddress)
		}
	})

	t.Run("EachEventGoesToOne", func(t *testing.T) {
		t.Parallel()
		a, aURL := newSink()
		b, bURL := newSink()
		s, base := start(t, WebhookConfig{URLs: []string{aURL, bURL}, Seed: 1})
		for _, n := range numbers(20) {
			sendTemplateTo(t, base, n, "spring")
		}
		st := waitIdle(t, s)
		ka, kb := keys(a), keys(b)
		if len(ka) == 0 || len(kb) == 0 || len(ka)+len(kb) != st.Events {
			t.Fatalf("a %d, b %d events; %d in all", len(ka), len(kb), st.Events)
		}
		split := 0
		for k := range ka {
			if kb[k] != 0 {
				t.Errorf("event %s went to both", k)
			}
		}
		// The events of one message are spread over both replicas.
		for _, o := range s.WebhookOutcomes() {
			inA, inB := false, false
			for _, st := range []string{HookSent, HookDelivered, HookRead} {
				inA = inA || ka[o.MessageID+"/"+st] > 0
				inB = inB || kb[o.MessageID+"/"+st] > 0
			}
			if inA && inB {
				split++
			}
		}
		if split == 0 {
			t.Error("no message had its events at both replicas")
		}
	})

	t.Run("TopicReceiversAndChanges", func(t *testing.T) {
		t.Parallel()
		a, aURL := newSink()
		c, cURL := newSink()
		d, dURL := newSink()
		s, base := start(t, WebhookConfig{URL: aURL, TopicURLs: map[string][]string{TopicMessages: {cURL}}, Seed: 1})
		for _, n := range numbers(5) {
			sendTemplateTo(t, base, n, "spring")
		}
		waitIdle(t, s)
		for _, call := range a.snapshot() {
			if call.body["statusUpdate"] == nil {
				t.Errorf("an inbound message at the status receiver: %v", call.body)
			}
		}
		if got := len(c.snapshot()); got != 5 {
			t.Errorf("%d inbound messages at the messages receiver, want 5", got)
		}
		remote := Remote{BaseURL: base}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := remote.SetReceivers(ctx, Receivers{URLs: []string{dURL}}); err != nil {
			t.Fatal(err)
		}
		if r, err := remote.Receivers(ctx); err != nil || !slices.Equal(r.URLs, []string{dURL}) || len(r.Topics) != 0 {
			t.Fatalf("Receivers = %+v, %v", r, err)
		}
		if err := remote.SetReceivers(ctx, Receivers{URLs: []string{"ftp://x"}}); err == nil || !strings.Contains(err.Error(), "400") {
			t.Errorf("bad receiver: %v", err)
		}
		sendTemplateTo(t, base, "+15550209999", "spring")
		waitIdle(t, s)
		if got := len(d.snapshot()); got != 4 {
			t.Errorf("%d calls at the new receiver, want 4 (sent, delivered, read, reply)", got)
		}
		if st, err := remote.WebhookStats(ctx); err != nil || st.ByAddress[dURL] != 4 || st.Pending != 0 {
			t.Errorf("remote webhook stats %+v, %v", st, err)
		}
		// A reply mix with every new field goes through /_fake/replies unchanged.
		mix := append(ReplyMix("x", Reply{Percent: 30, Kind: KindTemplate, Button: "Yes", Shapes: ButtonShapes}),
			Reply{Percent: 10, Salt: "y", Kind: KindSession, Times: 1, Text: "ok", Shape: ReplyMedia})
		if err := remote.SetReplies(ctx, mix); err != nil {
			t.Fatal(err)
		}
		if got := s.Replies(); fmt.Sprint(got) != fmt.Sprint(mix) {
			t.Errorf("replies over control: %+v, want %+v", got, mix)
		}
		if err := remote.SetReplies(ctx, ReplyMix("x", Reply{Percent: 70, Text: "a"}, Reply{Percent: 40, Text: "b"})); err == nil {
			t.Error("a mix over 100% was taken")
		}
	})
}

// TestConversationRecord checks the record a test judges by, on an injected clock: each
// accepted message with whether the customer's window was open (reference 3.1: the window
// runs 24 h from the customer's last inbound message; Meta counts only people messaged
// outside one), the session sends refused outside a window with the documented codes
// (reference 3: ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW,
// ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION), one record for a BSUID however
// written (reference 6), and the same through the control endpoints.
func TestConversationRecord(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s, base := newFake(t, Config{RateLimit: -1, Clock: clock.Now})
	const a, b = "+15550300001", "+15550300002"
	const bsuid = "US.13491208655302741918"

	sendTemplateTo(t, base, a, "spring") // no window yet
	if err := s.OpenWindow(a, time.Time{}); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	sendTemplateTo(t, base, a, "spring") // into the open window
	if r := sendFollowUp(t, base, a, "one"); r.status != 200 {
		t.Fatalf("follow-up in window: %d %s", r.status, r.body)
	}
	if r := sendFollowUp(t, base, b, "one"); r.status != 400 || !strings.Contains(string(r.body), CodeNoConversation) {
		t.Fatalf("never wrote: %d %s", r.status, r.body)
	}
	clock.Add(24 * time.Hour)
	if r := sendFollowUp(t, base, a, "late"); r.status != 400 || !strings.Contains(string(r.body), CodeOutsideWindow) {
		t.Fatalf("expired: %d %s", r.status, r.body)
	}
	if err := s.OpenWindow("bsuid:"+bsuid, time.Time{}); err != nil {
		t.Fatal(err)
	}
	sendTemplateTo(t, base, "bsuid:"+bsuid, "spring")
	if r := postSession(t, base, `{"recipient":{"id":"`+bsuid+`","channelType":"whatsapp"},"message":{"text":"Hi"}}`); r.status != 200 {
		t.Fatalf("bare BSUID: %d %s", r.status, r.body)
	}

	ca, err := s.Conversation(a)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var open []bool
	for _, m := range ca.Messages {
		kinds, open = append(kinds, m.Kind), append(open, m.WindowOpen)
	}
	if !slices.Equal(kinds, []string{KindTemplate, KindTemplate, KindSession}) || !slices.Equal(open, []bool{false, true, true}) ||
		ca.WindowRefused != 1 || !ca.Messages[1].At.Equal(ca.Messages[2].At) {
		t.Fatalf("conversation of a: kinds %v, open %v, %+v", kinds, open, ca)
	}
	if cb, _ := s.Conversation(b); cb.WindowRefused != 1 || len(cb.Messages) != 0 {
		t.Errorf("conversation of b: %+v", cb)
	}
	cu, _ := s.Conversation(bsuid)
	if cu.Number != "bsuid:"+bsuid || len(cu.Messages) != 2 || !cu.Messages[0].WindowOpen || !cu.Messages[1].WindowOpen {
		t.Errorf("BSUID conversation %+v", cu)
	}
	st := s.Stats()
	if st.WindowRefused != 2 || st.TemplatesInWindow != 2 || st.AcceptedOutsideWindow != 0 || st.OutsideWindow != 2 {
		t.Errorf("stats %+v", st)
	}
	rec := s.Received()
	if !rec[1].WindowOpen || rec[0].WindowOpen {
		t.Errorf("Received.WindowOpen: %+v", rec[:2])
	}

	remote := Remote{BaseURL: base}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all, err := remote.Conversations(ctx)
	if err != nil || len(all) != 3 || all[0].Number != a || all[1].Number != b || all[2].Number != "bsuid:"+bsuid {
		t.Fatalf("remote conversations %+v, %v", all, err)
	}
	one, err := remote.Conversation(ctx, a)
	if err != nil || len(one.Messages) != 3 || one.WindowRefused != 1 {
		t.Fatalf("remote conversation %+v, %v", one, err)
	}
	if in, err := remote.RepliesFrom(ctx, a); err != nil || len(in) != 0 {
		t.Errorf("remote replies from a fake without webhooks: %+v, %v", in, err)
	}
	if err := remote.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if all, _ := remote.Conversations(ctx); len(all) != 0 {
		t.Errorf("conversations after Reset: %+v", all)
	}

	// Accepted outside a window: only with IgnoreWindow, and counted.
	ign, ibase := newFake(t, Config{RateLimit: -1, IgnoreWindow: true})
	if r := sendFollowUp(t, ibase, b, "x"); r.status != 200 {
		t.Fatalf("IgnoreWindow: %d", r.status)
	}
	if c, _ := ign.Conversation(b); len(c.Messages) != 1 || c.Messages[0].WindowOpen || ign.Stats().AcceptedOutsideWindow != 1 {
		t.Errorf("IgnoreWindow record %+v, stats %+v", c, ign.Stats())
	}

	// A fake that keeps little (MaxReceived) keeps no conversations, and says so.
	capped, cbase := newFake(t, Config{RateLimit: -1, MaxReceived: 1})
	if _, err := capped.Conversations(); !errors.Is(err, ErrNoConversations) {
		t.Errorf("capped Conversations: %v", err)
	}
	if _, err := (Remote{BaseURL: cbase}).Conversation(ctx, a); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("capped remote conversation: %v", err)
	}
}

// TestDemoReplies runs the demo's reply mix: every reader of the demo's template whose
// number falls in a share answers as its rule says, exactly once per template read, and
// nobody else does; under another template the tappers' shares do not answer (it has not
// their buttons) and the others do; then a follow-up to each "Yes" tapper is answered by a
// quarter of them, once.
func TestDemoReplies(t *testing.T) {
	t.Parallel()
	replies := DemoReplies()
	if err := ValidateReplies(replies); err != nil {
		t.Fatal(err)
	}
	sink := &hookSink{secret: "demo"}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	hooks := DemoWebhooks(hs.URL, "demo", 0)
	hooks.Seed = 5
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, Webhooks: hooks})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nums := numbers(600)
	for _, n := range nums {
		sendNamedTemplate(t, base, n, DemoTemplate)
	}
	// Under another template nobody taps: the typed replies alone come.
	others := numbers(660)[600:]
	for _, n := range others {
		sendNamedTemplate(t, base, n, "order_status")
	}
	waitIdle(t, s)
	read := map[string]bool{}
	for _, o := range s.WebhookOutcomes() {
		read[o.Number] = o.Planned == HookRead
	}
	byLabel := map[string]int{}
	var yes []string
	for _, n := range nums {
		got := s.RepliesFrom(n)
		i := MatchReply(replies, n, KindTemplate)
		if !read[n] || i < 0 {
			if len(got) != 0 {
				t.Errorf("%s (read %v, rule %d) replied %+v", n, read[n], i, got)
			}
			continue
		}
		if len(got) != 1 || got[0].Rule != i || got[0].Label != replies[i].label() {
			t.Fatalf("%s: rule %d, replies %+v", n, i, got)
		}
		byLabel[got[0].Label]++
		switch got[0].Label {
		case "Yes, show me":
			yes = append(yes, n)
			fallthrough
		case "No thanks":
			if !slices.Contains(ButtonShapes, got[0].Shape) {
				t.Errorf("tap in shape %s", got[0].Shape)
			}
		case "price?":
			if got[0].Shape != ReplyText {
				t.Errorf("keyword in shape %s", got[0].Shape)
			}
		case "STOP":
			if got[0].Shape != ReplyText && got[0].Shape != ReplyQuoted {
				t.Errorf("STOP in shape %s", got[0].Shape)
			}
		}
	}
	for _, n := range others {
		got := s.RepliesFrom(n)
		i := MatchReply(replies, n, KindTemplate)
		tapper := i >= 0 && replies[i].Button != ""
		if want := read[n] && i >= 0 && !tapper; len(got) != map[bool]int{true: 1, false: 0}[want] ||
			len(got) == 1 && (got[0].Rule != i || slices.Contains(ButtonShapes, got[0].Shape)) {
			t.Errorf("%s under order_status (read %v, rule %d): %+v; want a reply only from a reader who does not tap", n, read[n], i, got)
		}
	}
	for _, label := range []string{"Yes, show me", "No thanks", "price?", "STOP"} {
		if byLabel[label] == 0 {
			t.Errorf("nobody answered %q: %v", label, byLabel)
		}
	}
	if byLabel["Yes, show me"] <= byLabel["No thanks"] || byLabel["No thanks"] <= byLabel["STOP"] {
		t.Errorf("shares out of order: %v", byLabel)
	}
	if st := s.WebhookStats(); st.Replies[ReplyButtonTop] == 0 {
		t.Errorf("no tap without a message object: %v", st.Replies)
	}

	// Follow-ups: a quarter of their readers answer, once even when sent two.
	for _, n := range yes {
		for _, step := range []string{"yes", "yes-2"} {
			if a := sendFollowUp(t, base, n, step); a.status != 200 {
				t.Fatalf("follow-up to %s: %d %s", n, a.status, a.body)
			}
		}
	}
	waitIdle(t, s)
	answered := 0
	for _, n := range yes {
		var toFollowUp int
		for _, r := range s.RepliesFrom(n) {
			if r.ReplyToKind == KindSession {
				toFollowUp++
			}
		}
		wantReply := read[n] && MatchReply(replies, n, KindSession) >= 0
		if toFollowUp != map[bool]int{true: 1, false: 0}[wantReply] {
			t.Errorf("%s: %d replies to follow-ups, want one only if matched (%v)", n, toFollowUp, wantReply)
		}
		answered += toFollowUp
	}
	if answered == 0 {
		t.Errorf("no reply to a follow-up among %d tappers", len(yes))
	}
}
