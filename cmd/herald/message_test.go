package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

func TestMessageSend(t *testing.T) {
	t.Parallel()
	type bundle struct {
		fake *fakeconnectly.Server
		rdb  *redis.Client
		env  map[string]string
		dir  string
	}
	setup := func(t *testing.T) *bundle {
		t.Helper()
		sb := newSupportBench(t)
		return &bundle{fake: sb.fake, rdb: sb.rdb, env: sb.env, dir: t.TempDir()}
	}
	// open records an inbound message from the customer an hour ago, in Herald's tracker and
	// (when fake is set) in the fake, which enforces the window on its own record.
	open := func(t *testing.T, b *bundle, customer string, fake bool) {
		t.Helper()
		at := time.Now().Add(-time.Hour)
		if _, err := servicewindow.New(b.rdb, time.Now).Touch(context.Background(), "biz", []string{customer}, at); err != nil {
			t.Fatal(err)
		}
		if fake {
			if err := b.fake.OpenWindow(customer, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	auditLog := func(t *testing.T, b *bundle) []audit.Entry {
		t.Helper()
		es, err := audit.List(context.Background(), b.rdb, 10)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}

	t.Run("SendsInAnOpenWindow", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		open(t, b, "+14155552671", true)
		code, out, errOut := herald(t, b.env, "message", "send", "--to", "+1 415-555-2671", "--text", "Your parcel is at the door", "--json", "--actor", "ana")
		var res conversation.SupportResult
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
			t.Fatalf("exit %d %q %q", code, out, errOut)
		}
		rec := b.fake.Received()
		if len(rec) != 1 || rec[0].Kind != fakeconnectly.KindSession || rec[0].Status != 200 || rec[0].OutsideWindow ||
			rec[0].Session.Message.Text != "Your parcel is at the door" || rec[0].Number != "+14155552671" {
			t.Fatalf("fake received %+v", rec)
		}
		if res.MessageID == "" || res.MessageID != rec[0].MessageID || res.Kind != "text" || res.To != "********2671" || !res.Window.Open {
			t.Fatalf("result %+v", res)
		}
		es := auditLog(t, b)
		if len(es) != 1 || es[0].Actor != "ana" || es[0].Action != "message send" || es[0].Target != "********2671" ||
			es[0].Detail != "text message, id "+res.MessageID {
			t.Fatalf("audit %+v", es)
		}
		if strings.Contains(out, "4155552671") {
			t.Fatalf("number not masked: %s", out)
		}
	})

	t.Run("RefusedWhenClosed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// A window that closed an hour ago, and one never opened.
		at := time.Now().Add(-25 * time.Hour)
		if _, err := servicewindow.New(b.rdb, func() time.Time { return at.Add(time.Minute) }).Touch(context.Background(), "biz", []string{"+14155552671"}, at); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := herald(t, b.env, "message", "send", "--to", "+14155552671", "--text", "hi")
		if code != exitError || !strings.Contains(errOut, "window is closed since "+at.Add(24*time.Hour).UTC().Format(time.RFC3339)) ||
			!strings.Contains(errOut, "send an approved template") || !strings.Contains(out, "Window     closed since") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		code, _, errOut = herald(t, b.env, "message", "send", "--to", "+14155550199", "--text", "hi")
		if code != exitError || !strings.Contains(errOut, "closed: no inbound message in the last 24 h") {
			t.Fatalf("exit %d %s", code, errOut)
		}
		if n := len(b.fake.Received()); n != 0 {
			t.Fatalf("fake received %d requests, want none", n)
		}
		if es := auditLog(t, b); len(es) != 0 {
			t.Fatalf("audit %+v", es)
		}
	})

	t.Run("ConnectlySaysClosed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// Herald's record says open; Connectly (the fake) has no inbound message and refuses.
		open(t, b, "+14155552671", false)
		code, _, errOut := herald(t, b.env, "message", "send", "--to", "+14155552671", "--text", "hi")
		if code != exitError || !strings.Contains(errOut, "Connectly refused the message as outside ********2671's window") {
			t.Fatalf("exit %d %s", code, errOut)
		}
		// The request was made: the audit log has it, refused, with Connectly's code.
		if es := auditLog(t, b); len(es) != 1 || es[0].Detail != "text message, refused (ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION)" {
			t.Fatalf("audit %+v", es)
		}
	})

	t.Run("FileAndDryRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		open(t, b, "bsuid:US.13491208655302741918", true)
		yml := filepath.Join(b.dir, "m.yaml")
		if err := os.WriteFile(yml, []byte("text: Which day?\nreply_buttons:\n  buttons:\n    - {id: mon, text: Monday}\n    - {id: tue, text: Tuesday}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"CONNECTLY_SESSION_BSUID_FIELD": "userId"}
		for k, v := range b.env {
			env[k] = v
		}
		code, out, errOut := herald(t, env, "message", "send", "--to", "bsuid:US.13491208655302741918", "--file", yml, "--dry-run", "--json")
		var res conversation.SupportResult
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
			t.Fatalf("exit %d %q %q", code, out, errOut)
		}
		want := `{"recipient":{"userId":"*******************1918","channelType":"whatsapp"},"message":{"text":"Which day?","replyButtonMessage":{"buttons":[{"id":"mon","text":"Monday"},{"id":"tue","text":"Tuesday"}]}}}`
		var compact bytes.Buffer
		if err := json.Compact(&compact, res.Request); err != nil {
			t.Fatal(err)
		}
		if !res.DryRun || res.MessageID != "" || res.Kind != "reply_buttons" || compact.String() != want {
			t.Fatalf("result %+v\nrequest %s", res, res.Request)
		}
		if n := len(b.fake.Received()); n != 0 {
			t.Fatalf("dry run sent %d requests", n)
		}
		// Sent for real, through the same file.
		code, out, errOut = herald(t, env, "message", "send", "--to", "bsuid:US.13491208655302741918", "--file", yml)
		rec := b.fake.Received()
		if code != 0 || !strings.Contains(out, "Sent       message id ") || len(rec) != 1 || rec[0].Status != 200 ||
			rec[0].Session.Recipient.UserID != "US.13491208655302741918" || rec[0].Content != fakeconnectly.ContentReplyButtons {
			t.Fatalf("exit %d %s %s\n%+v", code, out, errOut, rec)
		}
	})

	t.Run("JSONFile", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		open(t, b, "+14155552671", true)
		js := filepath.Join(b.dir, "m.json")
		if err := os.WriteFile(js, []byte(`{"location":{"latitude":38.72,"longitude":-9.14,"name":"Store"}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := herald(t, b.env, "message", "send", "--to", "+14155552671", "--file", js, "--dry-run", "--reveal")
		if code != 0 || !strings.Contains(out, `"id": "+14155552671"`) || !strings.Contains(out, `"latitude": 38.72`) {
			t.Fatalf("exit %d %s %s", code, out, errOut)
		}
		// The request goes to the configured business, not to an escaped placeholder.
		if !strings.Contains(out, "POST /v1/businesses/biz/send/messages\n") || strings.Contains(out, "%7B") {
			t.Fatalf("dry run's path: %s", out)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		bad := filepath.Join(b.dir, "bad.yaml")
		if err := os.WriteFile(bad, []byte("text: hi\nbuttons: []\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		tooMany := filepath.Join(b.dir, "many.yaml")
		if err := os.WriteFile(tooMany, []byte("text: Pick\nreply_buttons:\n  buttons: [{id: a, text: A}, {id: b, text: B}, {id: c, text: C}, {id: d, text: D}]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--text", "hi"}, "--to is required"},
			{[]string{"--to", "+14155552671"}, "exactly one of --text and --file"},
			{[]string{"--to", "+14155552671", "--text", "hi", "--file", bad}, "exactly one of --text and --file"},
			{[]string{"--to", "12", "--text", "hi"}, "bsuid:BSUID"},
			{[]string{"--to", "+14155552671", "--file", bad}, bad + `:2:1: buttons: unknown key "buttons"`},
			{[]string{"--to", "+14155552671", "--file", tooMany}, tooMany + ":3:67: reply_buttons.buttons[3]: at most 3 buttons"},
		} {
			code, _, errOut := herald(t, b.env, append([]string{"message", "send"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("%v: exit %d %q, want usage error with %q", tc.args, code, errOut, tc.want)
			}
		}
		// With several senders configured, the sender is named, as a campaign's is: nothing
		// is sent from a number picked by default.
		cfg := filepath.Join(b.dir, "herald.yaml")
		if err := os.WriteFile(cfg, []byte("senders:\n  - number: \"+14155550100\"\n  - number: \"+14155550101\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := herald(t, b.env, "--config", cfg, "message", "send", "--to", "+14155552671", "--text", "hi", "--dry-run")
		if want := "sender: required, the config lists 2 senders: give --sender"; code != exitUsage || !strings.Contains(errOut, want) {
			t.Errorf("several senders, none named: exit %d %q, want usage error with %q", code, errOut, want)
		}
	})
}

func TestCampaignPlanSession(t *testing.T) {
	t.Parallel()
	f := filepath.Join("..", "..", "configs", "campaigns", "delivery-followup.yaml")
	code, out, errOut := herald(t, nil, "campaign", "validate", f)
	if code != 0 || !strings.HasPrefix(out, "ok  ") {
		t.Fatalf("validate: exit %d %s %s", code, out, errOut)
	}
	code, out, errOut = herald(t, nil, "campaign", "plan", "--json", "--sample", "2", f)
	var p planOutput
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
		t.Fatalf("plan: exit %d %s %s", code, out, errOut)
	}
	if p.Session == nil || p.Session.Kind != "reply_buttons" || p.Session.WindowClosed != "fallback" || len(p.Samples) != 2 ||
		len(p.Session.FallbackSamples) != 2 {
		t.Fatalf("plan %+v", p)
	}
	var body struct {
		Recipient struct{ ID string } `json:"recipient"`
		Message   struct{ Text string }
	}
	if err := json.Unmarshal(p.Samples[0], &body); err != nil || body.Recipient.ID != "********2671" ||
		!strings.HasPrefix(body.Message.Text, "Hi Ana, your order A-1001") {
		t.Fatalf("sample %s", p.Samples[0])
	}
	if strings.Contains(out, "4155552671") {
		t.Fatal("numbers not masked")
	}
	code, out, _ = herald(t, nil, "campaign", "plan", f)
	if code != 0 || !strings.Contains(out, "POST /v1/businesses/{businessId}/send/messages") ||
		!strings.Contains(out, "are sent the fallback template order_status (en) instead") ||
		!strings.Contains(out, "Fallback request 1: POST /v1/businesses/{businessId}/send/whatsapp_templated_messages") {
		t.Fatalf("plan text: exit %d\n%s", code, out)
	}
}

func TestCampaignValidateSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte("phone,name\n+14155552671,ana\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(bad, []byte("id: s\naudience: {file: a.csv}\nmessage:\n  text: Pick\n  reply_buttons:\n    buttons:\n"+
		"      - {id: a, text: \"{{ .name | printf }}\"}\n      - {id: b, text: \"Something far too long {{ .name }}\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := herald(t, nil, "campaign", "validate", bad)
	if code != exitError || !strings.Contains(out, bad+":7:23: message.reply_buttons.buttons[0].text: {{ .name | printf }} at column 12 of the template: function \"printf\" is not allowed") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if err := os.WriteFile(bad, []byte("id: s\naudience: {file: a.csv}\nmessage:\n  text: Pick\n  reply_buttons:\n    buttons:\n"+
		"      - {id: b, text: \"Something far too long {{ .name }}\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = herald(t, nil, "campaign", "validate", bad)
	if code != exitError || !strings.Contains(out, bad+":7:23: message.reply_buttons.buttons[0].text: 30 characters, at most 20 (on every row)") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
