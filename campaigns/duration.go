package campaigns

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Durations in a campaign file (expire_after, schedule.grace, unknown.resend_after,
// on_reply.until, on_reply[].delay) are read by ParseDuration, so each takes the same forms,
// and a limit is said in the unit the user wrote (limitIn).

// errNotDuration is ParseDuration's error: its callers say which field and what it wants.
var errNotDuration = errors.New("not a duration: want a Go duration (90m, 2h30m) or a whole number of days (7d)")

// day is the unit of a duration written in days ("7d").
const day = 24 * time.Hour

// ParseDuration reads a duration written in a campaign file: a Go duration ("90m", "2h30m",
// "1.5h") or a whole number of days ("7d"), spaces around it ignored. A number of days is
// digits only (no sign, no fraction), and one too large for a time.Duration is refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if n == "" || strings.Trim(n, "0123456789") != "" {
			return 0, errNotDuration
		}
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v > math.MaxInt64/int64(day) {
			return 0, errNotDuration
		}
		return time.Duration(v) * day, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, errNotDuration
	}
	return v, nil
}

// limitIn writes limit in the unit of written, a value the user wrote: whole days ("7d") when
// written is in days and limit a whole number of them, else as short a Go duration as says
// it ("168h", "23h", "90m", "1h30m").
func limitIn(written string, limit time.Duration) string {
	if strings.HasSuffix(strings.TrimSpace(written), "d") && limit%day == 0 {
		return strconv.FormatInt(int64(limit/day), 10) + "d"
	}
	return shortDuration(limit)
}

// shortDuration is d as time.Duration.String writes it, without its zero minutes and
// seconds: "168h", "1h30m", "90s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
