package campaigns

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseDuration: the campaign file's duration reader reads a Go duration as
// time.ParseDuration does and "Nd" as N days, refuses anything else without panicking, and
// a limit it writes back (limitIn) reads as the same duration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"7d", "0d", "10m", "2h30m", "1.5h", "-5m", "168h", "d", "+7d", "-7d", "1.5d", " 7d ",
		"7dd", "9223372036854775807d", "106751d", "106752d", "1d2h", "", "0", "1w", "Nd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseDuration(s)
		trimmed := strings.TrimSpace(s)
		if n, ok := strings.CutSuffix(trimmed, "d"); ok {
			days, perr := strconv.ParseUint(n, 10, 63)
			wantOK := perr == nil && n != "" && strings.Trim(n, "0123456789") == "" && days <= uint64(1<<63-1)/uint64(day)
			if (err == nil) != wantOK {
				t.Fatalf("ParseDuration(%q) = %v, %v; want ok %v", s, v, err, wantOK)
			}
			if err == nil && v != time.Duration(days)*day {
				t.Fatalf("ParseDuration(%q) = %v, want %d days", s, v, days)
			}
		} else {
			want, werr := time.ParseDuration(trimmed)
			if (err == nil) != (werr == nil) || v != want {
				t.Fatalf("ParseDuration(%q) = %v, %v; time.ParseDuration says %v, %v", s, v, err, want, werr)
			}
		}
		if err != nil || v < 0 {
			return
		}
		for _, written := range []string{"1d", "1h"} {
			back, err := ParseDuration(limitIn(written, v))
			if err != nil || back != v {
				t.Fatalf("limitIn(%q, %v) = %q reads back as %v, %v", written, v, limitIn(written, v), back, err)
			}
		}
	})
}

func TestLimitIn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		written string
		limit   time.Duration
		want    string
	}{
		{"8d", 7 * day, "7d"},
		{"200h", 7 * day, "168h"},
		{"23h59m", 23 * time.Hour, "23h"},
		{"2d", 23 * time.Hour, "23h"},
		{"100m", 90 * time.Minute, "1h30m"},
		{"30s", time.Minute, "1m"},
		{"1s", 1500 * time.Millisecond, "1.5s"},
	} {
		if got := limitIn(tc.written, tc.limit); got != tc.want {
			t.Errorf("limitIn(%q, %v) = %q, want %q", tc.written, tc.limit, got, tc.want)
		}
	}
}
