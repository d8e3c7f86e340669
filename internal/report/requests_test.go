package report_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/report"
)

func TestMaskRequests(t *testing.T) {
	t.Parallel()
	bodies := []json.RawMessage{
		// A template send: the number, and the same number inside a parameter.
		json.RawMessage(`{"number":"+14155552671","templateName":"t","parameters":{"note":"call +14155552671"}}`),
		// A session send: the recipient by id, in callbackData too, and another number in the text.
		json.RawMessage(`{"recipient":{"id":"+14155552672"},"callbackData":"RUN:+14155552672","message":{"text":"or 415 555 9876"}}`),
		// A BSUID recipient.
		json.RawMessage(`{"recipient":{"userId":"US.13491208655302741918"},"message":{"text":"hi"}}`),
		// The recipient URL-encoded in a link, and without its '+' joined to a word.
		json.RawMessage(`{"number":"+14155552673","parameters":{"header_image":"https://x.example/%2B14155552673.png","body_1":"id14155552673x"}}`),
	}
	got := report.MaskRequests(bodies)
	want := []string{
		`{"number":"********2671","templateName":"t","parameters":{"note":"call ********2671"}}`,
		`{"recipient":{"id":"********2672"},"callbackData":"RUN:********2672","message":{"text":"or ********9876"}}`,
		`{"recipient":{"userId":"*******************1918"},"message":{"text":"hi"}}`,
		`{"number":"********2673","parameters":{"header_image":"https://x.example/%2B*******2673.png","body_1":"id*******2673x"}}`,
	}
	if len(got) != len(want) {
		t.Fatalf("%d bodies, want %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("body %d:\n got %s\nwant %s", i, got[i], want[i])
		}
		if !json.Valid(got[i]) {
			t.Errorf("body %d is no longer JSON: %s", i, got[i])
		}
	}
	if strings.Contains(string(bodies[0]), "*") {
		t.Error("the bodies given were changed in place")
	}
}
