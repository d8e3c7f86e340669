package fakeconnectly

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestReplyBodiesGolden renders one inbound message in every shape and compares it with
// testdata/inbound-<shape>.json. Reference 5.4: "text: message.text; media:
// message.attachments[{type, url}]; location: message.location; button reply ...; list
// reply ...; callbackData of the original outbound message is echoed on quoted replies,
// button and list replies and reactions, but not on plain inbound text"; the older summary
// adds message.referral (ctwaClid, sourceUrl, sourceId, sourceType, headline, body,
// mediaType, imageUrl, ...) and "some examples also carry top-level attachments: [],
// location: null".
func TestReplyBodiesGolden(t *testing.T) {
	t.Parallel()
	rec := Received{
		Number:    "+15550001234",
		MessageID: "01HZX3J5Q6R8S9T0V1W2X3Y4Z5",
		Message: TemplateMessage{
			Sender:       "+14155550100",
			CallbackData: json.RawMessage(`{"herald_run":"r1","herald_to":"+15550001234","herald_b":0}`),
		},
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, shape := range InboundShapes {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			in := InboundRecord{ID: "01HZX3K7M8N9P0Q1R2S3T4V5W6", To: rec.Message.Sender, At: at, Shape: shape, Label: "STOP", Payload: "OPT_OUT"}
			got := replyBody(rec, in, "", inboundForm{Recipient: true})
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", "inbound-"+shape+".json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestReplyBodiesGolden -update to write it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("%s body:\n%s\nwant (%s):\n%s", shape, pretty.Bytes(), path, want)
			}
		})
	}
}

// replyShapeOf tells the shape of an inbound call by its fields.
func replyShapeOf(body map[string]any) string {
	msg, _ := body["message"].(map[string]any)
	switch {
	case body["listResponse"] != nil:
		return ReplyList
	case body["buttonResponse"] != nil && msg == nil && body["context"] != nil:
		return ReplyButtonBare
	case body["buttonResponse"] != nil && msg == nil:
		return ReplyButtonTop
	case body["buttonResponse"] != nil:
		return ReplyButtonContext
	case msg != nil && msg["isButtonResponse"] == true:
		return ReplyButtonLegacy
	case msg != nil && msg["referral"] != nil:
		return ReplyReferral
	case msg != nil && msg["attachments"] != nil:
		return ReplyMedia
	case msg != nil && msg["location"] != nil:
		return ReplyLocation
	case msg != nil && msg["reaction"] != nil:
		return ReplyReaction
	case msg != nil && body["context"] != nil:
		return ReplyQuoted
	case msg != nil:
		return ReplyText
	}
	return ""
}

// echoedByReference lists the shapes reference 5.4 says carry the replied message's
// callbackData: "quoted replies, button and list replies" (not plain text; media, locations
// and ad referrals reference no message).
var echoedByReference = map[string]bool{
	ReplyButtonLegacy: true, ReplyButtonContext: true, ReplyButtonTop: true, ReplyList: true, ReplyQuoted: true,
	ReplyButtonBare: true, ReplyReaction: true,
}

// checkReply asserts the fields every shape must carry, given the message it replies to.
func checkReply(t *testing.T, body map[string]any, shape string, rec Received, label, payload string) {
	t.Helper()
	if got := replyShapeOf(body); got != shape {
		t.Errorf("body %v has shape %q, want %q", body, got, shape)
		return
	}
	if _, ok := body["topic"]; ok {
		t.Errorf("inbound body has a topic field: %v", body)
	}
	if ts, ok := body["timestamp"].(string); !ok || !digitPattern.MatchString(ts) {
		t.Errorf("timestamp %v is not a string of digits", body["timestamp"])
	}
	if s, _ := body["sender"].(map[string]any); s["id"] != rec.Number || s["channelType"] != "whatsapp" {
		t.Errorf("sender %v, want the customer %s", body["sender"], rec.Number)
	}
	cb, hasCB := body["callbackData"]
	if !echoedByReference[shape] {
		if hasCB {
			t.Errorf("plain text carries callbackData %v", cb)
		}
	} else {
		want := map[string]any{}
		_ = json.Unmarshal(rec.Message.CallbackData, &want)
		if fmt.Sprint(cb) != fmt.Sprint(want) {
			t.Errorf("%s: callbackData %v, want the outbound message's %v", shape, cb, want)
		}
	}
	msg, _ := body["message"].(map[string]any)
	ctx, _ := body["context"].(map[string]any)
	br, _ := body["buttonResponse"].(map[string]any)
	lr, _ := body["listResponse"].(map[string]any)
	switch shape {
	case ReplyText:
		if msg["text"] != label || !idPattern.MatchString(fmt.Sprint(msg["id"])) || ctx != nil || br != nil {
			t.Errorf("text body %v", body)
		}
	case ReplyButtonLegacy:
		if msg["text"] != label || msg["isButtonResponse"] != true || br != nil {
			t.Errorf("legacy button body %v", body)
		}
	case ReplyButtonContext:
		if ctx["replyToId"] != rec.MessageID || br["text"] != label || br["payload"] != payload {
			t.Errorf("context button body %v", body)
		}
	case ReplyButtonTop:
		if msg != nil || ctx != nil || br["text"] != label || br["id"] != payload {
			t.Errorf("top-level button body %v", body)
		}
	case ReplyButtonBare:
		if msg != nil || ctx["replyToId"] != rec.MessageID || br["text"] != label || br["payload"] != payload {
			t.Errorf("button body without a message %v", body)
		}
	case ReplyList:
		if ctx["replyToId"] != rec.MessageID || lr["id"] != payload || lr["text"] != label || msg["text"] != nil {
			t.Errorf("list body %v", body)
		}
	case ReplyQuoted:
		if ctx["replyToId"] != rec.MessageID || msg["text"] != label || br != nil || lr != nil {
			t.Errorf("quoted body %v", body)
		}
	case ReplyMedia:
		atts, _ := msg["attachments"].([]any)
		a, _ := atts[0].(map[string]any)
		if len(atts) != 1 || a["type"] != "image" || !strings.HasPrefix(fmt.Sprint(a["url"]), "https://") || ctx != nil || msg["text"] != nil {
			t.Errorf("media body %v", body)
		}
	case ReplyLocation:
		loc, _ := msg["location"].(map[string]any)
		if _, ok := loc["latitude"].(float64); !ok || ctx != nil || msg["text"] != nil {
			t.Errorf("location body %v", body)
		}
	case ReplyReferral:
		ref, _ := msg["referral"].(map[string]any)
		if msg["text"] != label || ref["ctwaClid"] == nil || ref["sourceType"] == nil || ctx != nil {
			t.Errorf("referral body %v", body)
		}
	}
}

// TestRepliesRotateThroughEveryShape makes every reader answer STOP, the rule rotating the
// shape: ten readers give each of the five shapes twice, signed and sent as text/plain.
func TestRepliesRotateThroughEveryShape(t *testing.T) {
	t.Parallel()
	sink := &hookSink{secret: "rot"}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, Webhooks: WebhookConfig{
		URL: hs.URL, Secret: "rot", Seed: 3,
		Fates:   []Fate{{Suffix: "9", Status: HookDelivered}}, // not read: no reply
		Replies: []Reply{{Text: "STOP", Shape: ReplyRotate}},
		// The template is one the fake does not know: every tap goes, in each form.
		TapUnknownTemplates: true,
	}})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sendN(t, base, 11) // +15550000000 .. +15550000010; ...0009 is never read
	st := waitIdle(t, s)
	if sink.badSigs != 0 || st.GaveUp != 0 {
		t.Fatalf("%d bad signatures, stats %+v", sink.badSigs, st)
	}
	byNumber := map[string]Received{}
	for _, r := range s.Received() {
		byNumber[r.Number] = r
	}
	shapes := map[string]int{}
	for _, c := range sink.snapshot() {
		if c.body["statusUpdate"] != nil {
			continue
		}
		if c.ct != "text/plain; charset=utf-8" {
			t.Errorf("content type %q", c.ct)
		}
		sender, _ := c.body["sender"].(map[string]any)
		rec, ok := byNumber[fmt.Sprint(sender["id"])]
		if !ok {
			t.Fatalf("reply from an unknown sender: %v", c.body)
		}
		if strings.HasSuffix(rec.Number, "9") {
			t.Errorf("%s replied without reading", rec.Number)
		}
		shape := replyShapeOf(c.body)
		shapes[shape]++
		checkReply(t, c.body, shape, rec, "STOP", "STOP")
	}
	for _, shape := range ReplyShapes {
		if shapes[shape] != 2 {
			t.Errorf("%d replies in shape %s, want 2 (all: %v)", shapes[shape], shape, shapes)
		}
	}
	if st.ByStatus["reply"] != 10 || len(st.Replies) != len(ReplyShapes) || st.Replies[ReplyList] != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestInboundOnDemand sends one reply in each shape through the control endpoint, and checks
// SetReplies and the errors.
func TestInboundOnDemand(t *testing.T) {
	t.Parallel()
	sink := &hookSink{secret: "in"}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1, Webhooks: WebhookConfig{
		URL: hs.URL, Secret: "in", Seed: 5, Fates: []Fate{{Status: HookSent}}, // no automatic reply
		Replies: []Reply{{Button: "Yes", Payload: "YES"}},
	}})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	remote := Remote{BaseURL: base}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A typed STOP from someone never messaged: no earlier message, no callbackData.
	if shape, err := remote.Inbound(ctx, "+15557770000", Reply{Text: "STOP"}); err != nil || shape != ReplyText {
		t.Fatalf("Inbound text to a stranger = %q, %v", shape, err)
	}
	// A button reply needs a message to reply to.
	if _, err := remote.Inbound(ctx, "+15557770000", Reply{Button: "STOP", Shape: ReplyButtonTop}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("button reply to a stranger: %v", err)
	}
	if _, err := remote.Inbound(ctx, "+15557770000", Reply{Text: "STOP", Shape: "carousel"}); err == nil {
		t.Fatal("unknown shape accepted")
	}

	sendN(t, base, 1)
	rec := s.Received()[0]
	for _, shape := range ReplyShapes {
		got, err := remote.Inbound(ctx, rec.Number, Reply{Button: "Unsubscribe", Payload: "UNSUB", Shape: shape})
		if err != nil || got != shape {
			t.Fatalf("Inbound %s = %q, %v", shape, got, err)
		}
	}
	st := waitIdle(t, s)
	var replies []map[string]any
	for _, c := range sink.snapshot() {
		if c.body["statusUpdate"] == nil {
			replies = append(replies, c.body)
		}
	}
	if len(replies) != 1+len(ReplyShapes) || sink.badSigs != 0 || st.ByStatus["reply"] != 1+len(ReplyShapes) {
		t.Fatalf("%d replies, %d bad signatures, stats %+v", len(replies), sink.badSigs, st)
	}
	seen := map[string]bool{}
	for _, b := range replies {
		sender, _ := b["sender"].(map[string]any)
		if sender["id"] == "+15557770000" {
			checkReply(t, b, ReplyText, Received{Number: "+15557770000"}, "STOP", "STOP")
			continue
		}
		shape := replyShapeOf(b)
		seen[shape] = true
		checkReply(t, b, shape, rec, "Unsubscribe", "UNSUB")
	}
	if len(seen) != len(ReplyShapes) {
		t.Errorf("shapes seen %v", seen)
	}

	// Replies can be replaced at run time.
	if got, err := remote.Rules(ctx); err != nil || len(got) != 0 {
		t.Fatalf("rules %v, %v", got, err)
	}
	want := []Reply{{Numbers: []string{"+15550000000"}, Text: "STOP", Shape: ReplyRandom}}
	if err := remote.SetReplies(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got := s.Replies(); !slices.EqualFunc(got, want, func(a, b Reply) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Errorf("Replies = %+v", got)
	}
	if err := remote.SetReplies(ctx, []Reply{{Percent: 5}}); err == nil {
		t.Error("a reply with neither text nor button was accepted")
	}
	noHooks := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey})
	if _, err := noHooks.Inbound("+15550000000", Reply{Text: "hi"}); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("Inbound without a secret: %v", err)
	}
	if err := noHooks.SetReplies(nil); err == nil {
		t.Error("SetReplies without a secret succeeded")
	}
}

// TestDemoMix checks that the demo's mix holds every new shape and passes validation.
func TestDemoMix(t *testing.T) {
	t.Parallel()
	rules := DemoRules()
	if err := ValidateRules(rules); err != nil {
		t.Fatal(err)
	}
	has := func(f func(Rule) bool) bool { return slices.ContainsFunc(rules, f) }
	if !has(func(r Rule) bool { return r.Status == 500 && r.Sent && r.Body == "" }) ||
		!has(func(r Rule) bool { return r.Status == 429 && r.Body == "" }) ||
		!has(func(r Rule) bool { return r.Status == 429 && r.Body == BodyEmpty }) ||
		!has(func(r Rule) bool { return r.Body == BodyGateway }) {
		t.Errorf("demo rules lack a shape: %+v", rules)
	}
	hooks := DemoWebhooks("http://127.0.0.1:1/", "s", time.Millisecond)
	if err := ValidateWebhooks(hooks); err != nil {
		t.Fatal(err)
	}
	// STOP is typed or quoted: the demo's template has no STOP button to tap.
	if !slices.ContainsFunc(hooks.Replies, func(r Reply) bool {
		return r.Text == "STOP" && slices.Equal(r.Shapes, []string{ReplyText, ReplyQuoted})
	}) {
		t.Errorf("demo replies %+v: no STOP typed and quoted", hooks.Replies)
	}
	// Every tap is under the demo's template.
	for _, r := range hooks.Replies {
		if r.Button != "" && r.Template != DemoTemplate {
			t.Errorf("demo tap %+v not limited to %s", r, DemoTemplate)
		}
	}
}
