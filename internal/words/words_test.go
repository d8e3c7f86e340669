package words_test

import (
	"testing"

	"github.com/heraldmsg/herald/internal/words"
)

func TestCount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "0 entries"},
		{1, "1 entry"},
		{2, "2 entries"},
		{-1, "-1 entries"},
		{1000, "1000 entries"},
	} {
		if got := words.Count(tc.n, "entry", "entries"); got != tc.want {
			t.Errorf("Count(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestPlural(t *testing.T) {
	t.Parallel()
	if got := words.Plural(1, "rule", "rules"); got != "rule" {
		t.Errorf("Plural(1) = %q", got)
	}
	if got := words.Plural(3, "rule", "rules"); got != "rules" {
		t.Errorf("Plural(3) = %q", got)
	}
}
