package fakeconnectly

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestReference3_1WindowPerBusinessNumber: on WhatsApp a customer opens a window by writing
// to one business number, and only that number may send them session messages (reference
// 3.1). A reply to a message from A opens A's window: a session send from B is refused as a
// conversation the customer never started with B, one from A is taken. The inbound call names
// A as its recipient (NameBusinessNumber), or names no recipient at all; the window is
// A's either way.
func TestReference3_1WindowPerBusinessNumber(t *testing.T) {
	t.Parallel()
	const a, b, customer = "+16044441234", "+16044445678", "+15550001234"
	for _, omit := range []bool{false, true} {
		sink := &hookSink{secret: "per-number"}
		hs := httptest.NewServer(sink)
		t.Cleanup(hs.Close)
		s := newTestServer(t, Config{BusinessID: testBusiness, APIKey: testKey, RateLimit: -1,
			Webhooks: WebhookConfig{URL: hs.URL, Secret: "per-number", NameBusinessNumber: !omit}})
		base, err := s.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tpl := `{"number":"` + customer + `","templateName":"spring_sale","language":"en","sender":"` + a + `"}`
		if ans := postTo(t, base+templatePath(testBusiness), tpl); ans.status != http.StatusOK {
			t.Fatalf("template from A: %d %s", ans.status, ans.body)
		}
		if _, err := s.Inbound(customer, Reply{Text: "Hi", Shape: ReplyText}); err != nil {
			t.Fatal(err)
		}
		waitIdle(t, s)
		var reply map[string]any
		for _, c := range sink.snapshot() {
			if snd, _ := c.body["sender"].(map[string]any); snd["id"] == customer {
				reply = c.body
			}
		}
		rcpt, has := reply["recipient"].(map[string]any)
		switch {
		case reply == nil:
			t.Fatalf("omit=%v: no inbound call", omit)
		case omit && has:
			t.Errorf("omit=%v: recipient %v, want none", omit, rcpt)
		case !omit && rcpt["id"] != a:
			t.Errorf("omit=%v: recipient %v, want A, the number replied to", omit, reply["recipient"])
		}
		if w := s.WindowTo(customer, a); !w.Open || w.To != a {
			t.Errorf("omit=%v: A's window %+v, want open", omit, w)
		}
		from := func(sender string) rawAnswer {
			return postSession(t, base, `{"sender":{"id":"`+sender+`","channelType":"whatsapp"},`+
				`"recipient":{"id":"`+customer+`","channelType":"whatsapp"},"message":{"text":"Hi"}}`)
		}
		if ans := from(b); ans.status != http.StatusBadRequest || errorFields(t, ans)["code"] != CodeNoConversation {
			t.Errorf("omit=%v: session from B: %d %s, want 400 %s", omit, ans.status, ans.body, CodeNoConversation)
		}
		if ans := from(a); ans.status != http.StatusOK {
			t.Errorf("omit=%v: session from A: %d %s, want 200", omit, ans.status, ans.body)
		}
		if st := s.Stats(); st.OutsideWindow != 1 {
			t.Errorf("omit=%v: %d session requests outside a window, want the one from B", omit, st.OutsideWindow)
		}
	}
}

// TestOpenWindowToOneNumber: the control shortcut opens a window to one number, or (without
// one) to every number, as POST /_fake/windows does.
func TestOpenWindowToOneNumber(t *testing.T) {
	t.Parallel()
	const a, b = "+16044441234", "+16044445678"
	s, base := newFake(t, Config{RateLimit: -1})
	r := Remote{BaseURL: base}
	w, err := r.OpenWindowTo(t.Context(), "+15550000001", a, time.Time{})
	if err != nil || !w.Open || w.To != a {
		t.Fatalf("open to A: %+v %v", w, err)
	}
	if s.WindowTo("+15550000001", b).Open {
		t.Error("a window to A is open for B")
	}
	if _, err := r.OpenWindow(t.Context(), "+15550000002", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if !s.WindowTo("+15550000002", a).Open || !s.WindowTo("+15550000002", b).Open {
		t.Error("a window opened to every number is closed for one")
	}
	if _, err := r.OpenWindowTo(t.Context(), "+15550000003", "biz", time.Time{}); err == nil {
		t.Error("a business number that is no number was taken")
	}
}
