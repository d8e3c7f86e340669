package logx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/testlog"
	"github.com/heraldmsg/herald/internal/testredis"
)

// MaskDigits masks phone numbers however people write them, keeping the last 4 digits, and
// leaves dates, times, addresses and ids readable.
func TestMaskDigits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"E164", "send to +14155550199 failed", "send to ********0199 failed"},
		{"E164Spaced", "to +1 (415) 555-0199", "to *************0199"},
		{"Parentheses", "to (415) 555-0199: refused", "to **********0199: refused"},
		{"Dashes", "number 415-555-0199", "number ********0199"},
		{"Spaces", "number 415 555 0199.", "number ********0199."},
		{"Dots", "number 415.555.0199", "number ********0199"},
		{"UKMobile", "07946 095877", "********5877"},
		{"UKLondon", "call 020 7946 0958 now", "call *********0958 now"},
		{"FrenchPairs", "06 12 34 56 78", "*********56 78"},
		{"BareNational", "4155550199", "******0199"},
		{"BareSevenDigits", "local 5550199", "local ***0199"},
		{"LedgerMember", "member 3:14155550199", "member 3:*******0199"},
		{"JSONValue", `{"to":"14155550199"}`, `{"to":"*******0199"}`},
		{"InErrorText", `column "phone": "+1 (415) 555-2671" is not a number`, `column "phone": "*************2671" is not a number`},
		{"URLEncodedPlus", "https://x.example/%2B14155552671.png?to=%2b14155550199", "https://x.example/%2B*******2671.png?to=%2b*******0199"},
		{"TwoNumbers", "415-555-0199 and 212-555-0143", "********0199 and ********0143"},

		// Left readable.
		{"Short", "attempt 3 of 25, status 429", "attempt 3 of 25, status 429"},
		{"SixDigits", "code 131026", "code 131026"},
		{"Date", "due 2026-12-06", "due 2026-12-06"},
		{"DotDate", "due 2026.12.06", "due 2026.12.06"},
		{"DateInParentheses", "due (2026-12-06) or (06.12.2026)", "due (2026-12-06) or (06.12.2026)"},
		{"DateTime", "at 2026-12-06 10:15:30.123456789 +0000 UTC", "at 2026-12-06 10:15:30.123456789 +0000 UTC"},
		{"RFC3339", "at 2026-12-06T10:15:30Z", "at 2026-12-06T10:15:30Z"},
		{"RunID", "run spring-20260101T000000Z-a1b2c3", "run spring-20260101T000000Z-a1b2c3"},
		{"TaskID", "task spring-20260101T000000Z/3f9a12345678901234567890", "task spring-20260101T000000Z/3f9a12345678901234567890"},
		{"HexDigitsFirst", "id 12345678901abcdef", "id 12345678901abcdef"},
		{"UUID", "id 123e4567-e89b-12d3-a456-426614174000", "id 123e4567-e89b-12d3-a456-426614174000"},
		{"IPv4", "dial tcp 192.168.100.200:6379: refused", "dial tcp 192.168.100.200:6379: refused"},
		{"Decimal", "took 1234567.891s, share 0.123456789", "took 1234567.891s, share 0.123456789"},
		{"IntList", "reply [0 1 2 3 4 5 6 7]", "reply [0 1 2 3 4 5 6 7]"},
		{"Duration", "waited 1234567ms", "waited 1234567ms"},
		{"Empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := logx.MaskDigits(tc.in); got != tc.want {
				t.Errorf("MaskDigits(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzMaskDigits(f *testing.F) {
	for _, s := range []string{"+1 (415) 555-0199", "415.555.0199", "2026-12-06 10:15:30", "a1b2 3456789", "(((((", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := logx.MaskDigits(s)
		if len(got) != len(s) {
			t.Fatalf("MaskDigits(%q) = %q: length changed", s, got)
		}
		if strings.Count(got, "*") < strings.Count(s, "*") {
			t.Fatalf("MaskDigits(%q) = %q unmasked a star", s, got)
		}
	})
}

// The asynq adapter masks phone numbers in asynq's messages.
func TestAsynqMasks(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := logx.New(&buf, logx.Options{Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	logx.Asynq{L: l}.Error("task failed: send to (415) 555-0199: timeout")
	if strings.Contains(buf.String(), "555-0199") || !strings.Contains(buf.String(), "0199") {
		t.Errorf("asynq log line %s does not mask the number to its last 4 digits", buf.String())
	}
}

// go-redis's own log lines go through the process logger: JSON at warn, component redis.
func TestRouteRedis(t *testing.T) {
	t.Parallel()
	var buf testlog.Buffer
	l, err := logx.New(&buf, logx.Options{Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	logx.RouteRedis(l)
	logx.RouteRedis(zerolog.Nop()) // once per process: the first logger keeps it
	_, rdb := testredis.Mini(t)
	// go-redis logs when it rounds a duration it cannot send.
	if err := rdb.Set(context.Background(), "k", "v", 500*time.Microsecond).Err(); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Level, Component, Message string
	}
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("go-redis's log is not one JSON line: %v\n%s", err, buf.Bytes())
	}
	if line.Level != "warn" || line.Component != "redis" || !strings.Contains(line.Message, "truncating to 1ms") {
		t.Errorf("go-redis's log line = %+v, want warn, component redis and its message", line)
	}
}

func TestLogLevel(t *testing.T) {
	t.Parallel()
	for _, lvl := range []string{"", "debug", "WARN", "error"} {
		if _, err := logx.ParseLevel(lvl); err != nil {
			t.Errorf("ParseLevel(%q): %v", lvl, err)
		}
	}
	if _, err := logx.ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), `"loud"`) {
		t.Errorf("ParseLevel(loud) = %v, want an error naming it", err)
	}
	if err := logx.CheckFormat("xml"); err == nil {
		t.Error("CheckFormat(xml) passed")
	}
}
