package ulid

import (
	"strings"
	"testing"
)

func TestFormatParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		hi, lo uint64
		s      string
	}{
		{0, 0, strings.Repeat("0", 26)},
		{^uint64(0), ^uint64(0), "7" + strings.Repeat("Z", 25)},
		{0, 31, strings.Repeat("0", 25) + "Z"},
		{0, 32, strings.Repeat("0", 24) + "10"},
	} {
		if got := Format(tt.hi, tt.lo); got != tt.s {
			t.Errorf("Format(%x, %x) = %q, want %q", tt.hi, tt.lo, got, tt.s)
		}
		hi, lo, ok := Parse(tt.s)
		if !ok || hi != tt.hi || lo != tt.lo {
			t.Errorf("Parse(%q) = %x, %x, %v", tt.s, hi, lo, ok)
		}
	}
	for _, bad := range []string{"", "8" + strings.Repeat("0", 25), strings.Repeat("0", 25) + "U",
		strings.Repeat("0", 25) + "a", strings.Repeat("0", 27), "01ARZ3NDEKTSV4RRFFQ69G5FA"} {
		if _, _, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) accepted a non-canonical ULID", bad)
		}
	}
}

// FuzzParse: whatever Parse accepts, Format writes back unchanged.
func FuzzParse(f *testing.F) {
	f.Add("01ARZ3NDEKTSV4RRFFQ69G5FAV")
	f.Fuzz(func(t *testing.T, s string) {
		if hi, lo, ok := Parse(s); ok && Format(hi, lo) != s {
			t.Fatalf("%q → %q", s, Format(hi, lo))
		}
	})
}

func TestTime(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"01ARZ3NDEKTSV4RRFFQ69G5FAV", "01arz3ndektsv4rrffq69g5fav"} {
		at, ok := Time(id)
		if !ok || at.UnixMilli() != 1469922850259 {
			t.Errorf("Time(%q) = %v, %v; want 1469922850259 ms", id, at.UnixMilli(), ok)
		}
	}
	for _, bad := range []string{"", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01ARZ3NDEKTSV4RRFFQ69G5FAU", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ"} {
		if _, ok := Time(bad); ok {
			t.Errorf("Time(%q) accepted", bad)
		}
	}
}
