package suggest_test

import (
	"testing"

	"github.com/heraldmsg/herald/internal/suggest"
)

func TestClosest(t *testing.T) {
	t.Parallel()
	known := []string{"delay", "message", "reply_buttons", "template", "HTTP_429"}
	for _, tc := range []struct{ in, want string }{
		{"tempalte", "template"},
		{"delai", "delay"},
		{"reply_button", "reply_buttons"},
		{"Template", "template"},
		{"http_429", "HTTP_429"},
		{"audience", ""},
		{"", ""},
	} {
		if got := suggest.Closest(tc.in, known); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := suggest.Closest("x", nil); got != "" {
		t.Errorf("Closest with nothing known = %q", got)
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"héllo", "hello", 1},
	} {
		if got := suggest.EditDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
