package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with what Parse produces now")

// inboundBodies returns the inbound bodies under testdata/inbound, by file name without .json.
func inboundBodies(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "inbound", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(paths) == 0 {
		tb.Fatal("no inbound bodies under testdata/inbound")
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = b
	}
	return out
}

// inboundGolden is what a golden file pins for one body.
type inboundGolden struct {
	CustomerKeys []string `json:"customer_keys"`
	Inbound      *Inbound `json:"inbound"`
}

// TestParseInboundGolden parses every inbound shape of reference 5.4 (testdata/inbound/*.json)
// and compares the normalised message with testdata/inbound/*.golden. Run with -update to
// rewrite the golden files, then read the diff.
func TestParseInboundGolden(t *testing.T) {
	t.Parallel()
	bodies := inboundBodies(t)
	// Every documented variant has a body, those without a message object included.
	for _, name := range []string{"text", "media", "location", "button_legacy", "button_context",
		"button_context_no_message", "button_top_level_id", "list_response", "text_bsuid_only", "text_bsuid_with_phone"} {
		if bodies[name] == nil {
			t.Errorf("no testdata/inbound/%s.json", name)
		}
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev, err := Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != KindInbound || ev.Inbound == nil {
				t.Fatalf("kind %v, inbound %v: not read as an inbound message", ev.Kind, ev.Inbound)
			}
			if !bytes.Equal(ev.Inbound.Raw, body) {
				t.Fatal("Raw is not the body")
			}
			got, err := json.MarshalIndent(inboundGolden{CustomerKeys: ev.Customer, Inbound: ev.Inbound}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "inbound", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(want, got) {
				t.Fatalf("%s differs (-want +got):\n-%s\n+%s", path, want, got)
			}
		})
	}
}

func TestParseInboundShapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		kind Kind
	}{
		{"TopLevelButtonOnly", `{"buttonResponse":{"text":"Yes","id":"b1"}}`, KindInbound},
		{"ContextOnly", `{"context":{"replyToId":"x"}}`, KindInbound},
		{"ListOnly", `{"listReply":{"id":"r1"}}`, KindInbound},
		{"MessagesTopicEmpty", `{"topic":"messages","sender":{"id":"+15550000001"}}`, KindInbound},
		{"NullMessage", `{"message":null,"sender":{"id":"+15550000001"}}`, KindIgnored},
		{"SenderOnly", `{"sender":{"id":"+15550000001"}}`, KindIgnored},
		{"OtherTopic", `{"topic":"topic_unspecified","message":{"text":"hi"}}`, KindIgnored},
		{"StatusWins", `{"statusUpdate":{"id":"1","status":"read"},"message":{"text":"hi"}}`, KindStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := Parse([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != tc.kind {
				t.Fatalf("kind %v, want %v", ev.Kind, tc.kind)
			}
		})
	}
	// A wrong type in a field the documentation fixes is refused; an undocumented reply object
	// of an unexpected shape is only not read.
	if _, err := Parse([]byte(`{"message":{"text":{"a":1}}}`)); err == nil {
		t.Error("message.text as an object accepted")
	}
	ev, err := Parse([]byte(`{"listResponse":["x"],"buttonResponse":{"text":["y"]},"message":{"text":"hi","attachments":{"x":1},"location":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if in := ev.Inbound; in.Kind != ReplyText || in.Button != nil || in.List != nil || in.Attachments != nil || in.Location != nil {
		t.Fatalf("%+v", in)
	}
}

func TestInboundAnswers(t *testing.T) {
	t.Parallel()
	in := &Inbound{Text: "Stop", Button: &ButtonReply{Text: "Stop", Payload: "STOP_PROMOS", ID: "b1"}, List: &ListReply{ID: "r1", Text: "Row"}}
	if got, want := in.Answers(), []string{"STOP_PROMOS", "b1", "r1", "Stop", "Row"}; !slices.Equal(got, want) {
		t.Fatalf("answers %q, want %q", got, want)
	}
	if (*Inbound)(nil).Answers() != nil || (&Inbound{}).Answers() != nil {
		t.Fatal("empty inbound has answers")
	}
	if l := (&ButtonReply{ID: "b1"}).Label(); l != "b1" {
		t.Fatalf("label %q", l)
	}
}

// TestRowIDs reads a list choice in every shape a receiver may meet it: a listResponse's row
// id, and a buttonResponse's payload or id (the reading the fake's webhooks.listReply
// button-response gives); a button reply's text is never a row id, and a list reply carries no
// button.
func TestRowIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		kind       ReplyKind
		want       []string
	}{
		{"ListResponse", `{"sender":{"id":"+15550000001"},"message":{"id":"m1"},"context":{"replyToId":"x"},"listResponse":{"id":"size_m","text":"Medium"}}`,
			ReplyList, []string{"size_m"}},
		{"ListAsButtonResponse", `{"sender":{"id":"+15550000001"},"message":{"id":"m1","text":"Medium"},"context":{"replyToId":"x"},"buttonResponse":{"text":"Medium","payload":"size_m"}}`,
			ReplyButton, []string{"size_m"}},
		{"TopLevelButtonID", `{"sender":{"id":"+15550000001"},"buttonResponse":{"text":"Medium","id":"size_m"}}`,
			ReplyButton, []string{"size_m"}},
		{"ButtonTextOnly", `{"sender":{"id":"+15550000001"},"message":{"text":"size_m","isButtonResponse":true}}`,
			ReplyButton, nil},
		{"Text", `{"sender":{"id":"+15550000001"},"message":{"text":"size_m"}}`, ReplyText, nil},
	} {
		ev, err := Parse([]byte(tc.body))
		if err != nil || ev.Inbound == nil {
			t.Fatalf("%s: Parse: %+v, %v", tc.name, ev, err)
		}
		in := ev.Inbound
		if got := RowIDs(in.Button, in.List); in.Kind != tc.kind || !slices.Equal(got, tc.want) {
			t.Errorf("%s: kind %s, row ids %q; want %s, %q", tc.name, in.Kind, got, tc.kind, tc.want)
		}
	}
	if got := RowIDs(&ButtonReply{Payload: "a"}, &ListReply{ID: "r"}); !slices.Equal(got, []string{"r"}) {
		t.Errorf("a list reply beside a button: %q, want the list's row only", got)
	}
}

// stopShapes is a quick-reply opt-out in every documented inbound shape, and a list reply;
// %[1]s is the sender object. None has a topic, as in the documented examples.
var stopShapes = []struct {
	name string
	body string
}{
	{"Text", `{"timestamp":"1767225600","sender":%[1]s,"message":{"text":"STOP"}}`},
	{"LegacyButtonText", `{"timestamp":"1767225600","sender":%[1]s,"message":{"text":"Stop","isButtonResponse":true}}`},
	{"ContextButtonPayloadWithMessage", `{"timestamp":"1767225600","sender":%[1]s,"message":{"text":"No more offers"},
		"context":{"replyToId":"01KDX7Y0000000000000000001"},"buttonResponse":{"text":"No more offers","payload":"STOP"}}`},
	{"ContextButtonTextNoMessage", `{"timestamp":"1767225600","sender":%[1]s,
		"context":{"replyToId":"01KDX7Y0000000000000000001"},"buttonResponse":{"text":"Unsubscribe","payload":"opt-1"}}`},
	{"ContextButtonPayloadNoMessage", `{"timestamp":"1767225600","sender":%[1]s,
		"context":{"replyToId":"01KDX7Y0000000000000000001"},"buttonResponse":{"text":"Leave","payload":"unsubscribe"}}`},
	{"TopLevelButtonText", `{"timestamp":"1767225600","sender":%[1]s,"buttonResponse":{"text":"Stop!","id":"btn-2"}}`},
	{"TopLevelButtonID", `{"timestamp":"1767225600","sender":%[1]s,"buttonResponse":{"text":"Leave","id":"STOP"}}`},
	{"ConfiguredWordButton", `{"timestamp":"1767225600","sender":%[1]s,"buttonResponse":{"text":"Darse de baja","payload":"x"}}`},
	{"ListRow", `{"timestamp":"1767225600","sender":%[1]s,"context":{"replyToId":"x"},"listResponse":{"id":"STOP","text":"Stop messages"}}`},
}

// TestQuickReplyStopSuppresses sends a STOP in each documented shape, from a phone number and
// from a phone-less BSUID customer, with and without Herald's callbackData, and checks that
// each person ends up on the ledger's suppression list and that a "Yes" tap does not.
func TestQuickReplyStopSuppresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{OptOutWords: []string{"darse de baja"}})
	type sent struct{ shape, key string }
	var all []sent
	for i, s := range stopShapes {
		phone := fmt.Sprintf("+1555010%04d", i)
		bsuid := fmt.Sprintf("US.9%019d", i)
		senders := map[string]string{
			phone:            fmt.Sprintf(`{"id":%q,"channelType":"whatsapp"}`, phone),
			"bsuid:" + bsuid: fmt.Sprintf(`{"id":%q,"userId":%q,"phoneNumber":""}`, bsuid, bsuid),
		}
		for key, sender := range senders {
			body := fmt.Sprintf(s.body, sender)
			if i%2 == 0 {
				// Half carry Herald's callbackData, as button replies to its messages do.
				body = strings.TrimSuffix(body, "}") + `,"callbackData":{"herald_run":"run-stop","herald_to":"` + key + `","herald_b":0}}`
			}
			if !json.Valid([]byte(body)) {
				t.Fatalf("%s: invalid test body %s", s.name, body)
			}
			if w := post(t, b, []byte(body), testSecret); w.Code != http.StatusOK {
				t.Fatalf("%s: %d %s", s.name, w.Code, w.Body)
			}
			all = append(all, sent{s.name, key})
		}
	}
	yes := `{"sender":{"id":"+15550209999"},"context":{"replyToId":"x"},"buttonResponse":{"text":"Yes","payload":"YES"}}`
	if w := post(t, b, []byte(yes), testSecret); w.Code != http.StatusOK {
		t.Fatalf("yes: %d", w.Code)
	}
	keys := []string{"+15550209999"}
	for _, s := range all {
		keys = append(keys, s.key)
	}
	sup, err := b.l.Suppressed(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if sup[0] {
		t.Error("a Yes button suppressed its sender")
	}
	for i, s := range all {
		if !sup[i+1] {
			t.Errorf("%s from %s: not suppressed", s.shape, s.key)
		}
	}
	d, err := b.l.DeliveryStats(ctx, "run-stop")
	if err != nil {
		t.Fatal(err)
	}
	withCallback := int64(0)
	for i := range stopShapes {
		if i%2 == 0 {
			withCallback += 2
		}
	}
	if d.OptOutsReceived != withCallback || d.Replies != withCallback {
		t.Fatalf("run-stop: %d opt-outs, %d replies, want %d of each", d.OptOutsReceived, d.Replies, withCallback)
	}
}

// TestInboundRepliesCounted counts button and list replies in every shape: through Herald's
// callbackData, else through the replied-to message id recorded in the customer's entry,
// else (a reply naming no message) through the newest run that sent to the customer.
func TestInboundRepliesCounted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{})
	const bsuid = "US.13491208655302741918"
	rcpts := []string{"+15550000001", "+15550000002", "+15550000003", "+15550000004", "+15550000005", "bsuid:" + bsuid}
	ids := []string{ulidAt(testNow, 1), ulidAt(testNow, 2), ulidAt(testNow, 3), ulidAt(testNow, 4), ulidAt(testNow, 5), ulidAt(testNow, 6)}
	seedAccepted(t, b, "run-old", []string{"+15550000001", "+15550000009"}, []string{ulidAt(testNow, 11), ulidAt(testNow, 19)})
	b.now = b.now.Add(time.Minute)
	buckets := seedAccepted(t, b, "run-new", rcpts, ids)
	cb := func(to string) string {
		return fmt.Sprintf(`{"herald_run":"run-new","herald_to":%q,"herald_b":%d}`, to, buckets[to])
	}
	for _, tc := range []struct {
		name string
		body string
	}{
		{"CallbackContextButton", `{"sender":{"id":"+15550000001"},"message":{"text":"Yes, please"},"context":{"replyToId":"` + ids[0] +
			`"},"buttonResponse":{"text":"Yes, please","payload":"YES"},"callbackData":` + cb("+15550000001") + `}`},
		{"ReplyToNoMessage", `{"sender":{"id":"+15550000002"},"context":{"replyToId":"` + ids[1] + `"},"buttonResponse":{"text":"Yes, please","payload":"YES"}}`},
		{"TopLevelNoMessage", `{"sender":{"id":"+15550000003"},"buttonResponse":{"text":"Later","id":"b-later"}}`},
		{"LegacyByNumber", `{"sender":{"id":"+15550000004"},"message":{"text":"Later","isButtonResponse":true}}`},
		{"ListCallback", `{"sender":{"id":"+15550000005"},"listResponse":{"id":"r1","text":"Tuesday"},"callbackData":` + cb("+15550000005") + `}`},
		{"BSUIDReplyTo", `{"sender":{"id":"` + bsuid + `","userId":"` + bsuid + `","phoneNumber":""},"context":{"replyToId":"` + ids[5] +
			`"},"buttonResponse":{"text":"Yes, please","payload":"YES"}}`},
		{"StopByReplyTo", `{"sender":{"id":"+15550000004"},"context":{"replyToId":"` + ids[3] + `"},"buttonResponse":{"text":"Stop","payload":"STOP"}}`},
		// Not counted in run-new: a reply to a message of the older run, one to a message no run
		// sent, and a button from someone no run sent to.
		{"OlderRunByReplyTo", `{"sender":{"id":"+15550000001"},"context":{"replyToId":"` + ulidAt(testNow, 11) + `"},"buttonResponse":{"text":"Old","payload":"OLD"}}`},
		{"UnknownMessage", `{"sender":{"id":"+15550000002"},"context":{"replyToId":"01KDX7Y0000000000000000000"},"buttonResponse":{"text":"Yes, please"}}`},
		{"StrangerOlderRun", `{"sender":{"id":"+15550000009"},"buttonResponse":{"text":"Old","id":"b-old"}}`},
		{"Stranger", `{"sender":{"id":"+15550000077"},"buttonResponse":{"text":"Yes, please","id":"b-yes"}}`},
		// Plain text carries no callbackData and is not joined to a run.
		{"PlainText", `{"sender":{"id":"+15550000003"},"message":{"text":"thanks"}}`},
	} {
		if w := post(t, b, []byte(tc.body), testSecret); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	d, err := b.l.DeliveryStats(ctx, "run-new")
	if err != nil {
		t.Fatal(err)
	}
	wantButtons := map[string]int64{"Yes, please": 3, "Later": 2, "Stop": 1}
	if d.Replies != 7 || d.OptOutsReceived != 1 || !maps.Equal(d.ButtonReplies, wantButtons) {
		t.Fatalf("run-new: replies %d (want 7), opt-outs %d (want 1), buttons %v (want %v)", d.Replies, d.OptOutsReceived, d.ButtonReplies, wantButtons)
	}
	old, err := b.l.DeliveryStats(ctx, "run-old")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"Old": 2}; old.Replies != 2 || !maps.Equal(old.ButtonReplies, want) {
		t.Fatalf("run-old: replies %d (want 2), buttons %v (want %v)", old.Replies, old.ButtonReplies, want)
	}
}

// A delivery failure whose error code is a JSON number (Meta writes its codes as numbers;
// reference 9.2) parses, its code read as digits, so an opt-out such as 131050 still reaches
// the suppression list instead of the whole webhook being refused.
func TestParseNumericErrorCode(t *testing.T) {
	body := []byte(`{"topic":"delivery_status","timestamp":"1767258000","sender":{"id":"+14155550100","channelType":"whatsapp","name":null},
"recipient":{"id":"+15550000001","channelType":"whatsapp","name":null},"metadata":null,
"statusUpdate":{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","status":"delivery_failed","error":{"message":"(#131050) user stopped marketing messages","type":"ERROR_TYPE_UNSPECIFIED","code":131050}}}`)
	ev, err := Parse(body)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if ev.Error == nil || ev.Error.Code != "131050" {
		t.Fatalf("error %+v, want code 131050", ev.Error)
	}
}

// A delivery failure whose error holds a field of an unexpected type (a numeric cntTraceId, a
// message that is a number) parses, keeping its code: the whole webhook refused for a field
// Herald only shows would be refused on every delivery, the failure never recorded.
func TestParseErrorFieldOfAnotherType(t *testing.T) {
	body := []byte(`{"topic":"delivery_status","timestamp":"1767258000","sender":{"id":"+14155550100","channelType":"whatsapp"},
"recipient":{"id":"+15550000001","channelType":"whatsapp"},
"statusUpdate":{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","status":"delivery_failed","error":{"message":404,"type":"ERROR_TYPE_UNSPECIFIED","code":"131050","cntTraceId":98765432109876}}}`)
	ev, err := Parse(body)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if ev.Error == nil || ev.Error.Code != "131050" || ev.Error.TraceID != "98765432109876" {
		t.Fatalf("error %+v, want code 131050 and the trace id as digits", ev.Error)
	}
}
