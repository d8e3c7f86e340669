package campaigns

import (
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// slowNormalize is NormalizePhone without the fast path.
func slowNormalize(raw string) (string, bool) {
	num, err := phonenumbers.Parse(raw, "")
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", false
	}
	return phonenumbers.Format(num, phonenumbers.E164), true
}

// FuzzFastE164AgreesWithParser: whenever the fast path accepts a number, the full parser
// accepts it too and formats it to the same E.164.
func FuzzFastE164AgreesWithParser(f *testing.F) {
	for _, s := range []string{"+14155552671", "+5511987654321", "+447911123456", "+390612345678", "+3906123",
		"+861012345678", "+12425550100", "+1242555010", "+4915112345678", "+0123", "+999123456789", "+79123456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !fastValidE164(raw) {
			return
		}
		want, ok := slowNormalize(raw)
		if !ok || want != raw {
			t.Fatalf("fast path accepts %q; the parser gives %q (valid %v)", raw, want, ok)
		}
	})
}

func TestFastE164Cases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  string
		fast bool
	}{
		{"+14155552671", true},
		{"+5511987654321", true},
		{"+447911123456", true},
		{"+14155550100", true},
		{"+1415555267", false},     // too short for the US: left to the parser, which rejects it
		{"+1 415 555 2671", false}, // not canonical: the parser handles it
		{"+390612345678", false},   // Italian leading zero: the parser handles it
		{"14155552671", false},
	} {
		if got := fastValidE164(tc.raw); got != tc.fast {
			t.Errorf("fastValidE164(%q) = %v, want %v", tc.raw, got, tc.fast)
		}
	}
}

func TestHashSet(t *testing.T) {
	t.Parallel()
	var s hashSet
	seen := map[uint64]bool{}
	x := uint64(88172645463325252)
	for i := 0; i < 200000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		h := x % 150000 // many repeats, and zero among them
		if got, want := s.add(h), !seen[h]; got != want {
			t.Fatalf("add(%d) = %v, want %v", h, got, want)
		}
		seen[h] = true
	}
}
