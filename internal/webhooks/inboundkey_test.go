package webhooks

import (
	"strings"
	"testing"
)

// TestInboundKey pins how an inbound message is named across its deliveries: by its message
// id whatever else the body says, else by its body, where spacing and key order do not count
// and every value does.
func TestInboundKey(t *testing.T) {
	t.Parallel()
	key := func(body string) string {
		t.Helper()
		ev, err := Parse([]byte(body))
		if err != nil || ev.Inbound == nil {
			t.Fatalf("Parse(%s) = %+v, %v; want an inbound message", body, ev, err)
		}
		return ev.Inbound.Key()
	}
	const (
		withID  = `{"timestamp":"1767225600","sender":{"id":"+15550000001"},"message":{"id":"01JIN00000000000000000000A","text":"how much?"}}`
		retried = `{"attempt":2,"timestamp":"1767225600","sender":{"id":"+15550000001"},"message":{"id":"01JIN00000000000000000000A","text":"how much?"}}`
		lone    = `{"timestamp":"1767225600","sender":{"id":"+15550000001"},"buttonResponse":{"text":"Not now","id":"b2"}}`
		spaced  = "{ \"buttonResponse\" : {\"id\":\"b2\", \"text\":\"Not now\"},\n \"sender\":{\"id\":\"+15550000001\"}, \"timestamp\":\"1767225600\" }"
		later   = `{"timestamp":"1767225605","sender":{"id":"+15550000001"},"buttonResponse":{"text":"Not now","id":"b2"}}`
		other   = `{"timestamp":"1767225600","sender":{"id":"+15550000002"},"buttonResponse":{"text":"Not now","id":"b2"}}`
		ctxTap  = `{"timestamp":"1767225600","sender":{"id":"+15550000001"},"context":{"replyToId":"01JOUT0000000000000000000B"},"buttonResponse":{"text":"Not now","payload":"LATER"}}`
	)
	if got := key(withID); got != "m:01JIN00000000000000000000A" {
		t.Errorf("message with an id: %q", got)
	}
	if key(retried) != key(withID) {
		t.Error("the same message id in a body with a field more is another message")
	}
	b := key(lone)
	if !strings.HasPrefix(b, "b:") || len(b) != 2+32 {
		t.Errorf("a lone buttonResponse: %q, want b: and 128 bits of digest", b)
	}
	if key(spaced) != b {
		t.Error("spacing or key order changed the name of a body")
	}
	for name, body := range map[string]string{"seconds later": later, "another customer": other, "context and buttonResponse": ctxTap} {
		if key(body) == b {
			t.Errorf("%s: named as the lone buttonResponse", name)
		}
	}
	if got := InboundKey("", nil); got != "" {
		t.Errorf("nothing to name: %q", got)
	}
	if got := InboundKey("", []byte("not json")); !strings.HasPrefix(got, "b:") {
		t.Errorf("a body that is not JSON: %q, want its digest", got)
	}
	var nilIn *Inbound
	if got := nilIn.Key(); got != "" {
		t.Errorf("nil inbound: %q", got)
	}
}
