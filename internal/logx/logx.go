// Package logx sets up Herald's zerolog logger and holds the logging helpers every component
// shares: stable key names, phone masking, and adapters for asynq's, cron's and go-redis's
// loggers.
package logx

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/mattn/go-isatty"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Stable log keys.
const (
	KeyComponent = "component"
	KeyCampaign  = "campaign"
	KeyRun       = "run"
	KeyRecipient = "recipient"
	KeyTaskID    = "task_id"
	KeyCode      = "code"
	KeyClass     = "class"
	KeyAttempt   = "attempt"
)

// Options configure New.
type Options struct {
	// Level is trace, debug, info, warn or error; default info.
	Level string
	// Format is json, console, or auto (console on a terminal, else json); default auto.
	Format string
}

// ParseLevel reads a log level (Options.Level): trace, debug, info, warn or error (or another
// of zerolog's levels), in any case; "" is info.
func ParseLevel(level string) (zerolog.Level, error) {
	if level == "" {
		return zerolog.InfoLevel, nil
	}
	l, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil {
		return zerolog.NoLevel, fmt.Errorf("log level %q: want trace, debug, info, warn or error", level)
	}
	return l, nil
}

// CheckFormat checks a log format (Options.Format): json, console, auto or "".
func CheckFormat(format string) error {
	switch format {
	case "", "auto", "console", "json":
		return nil
	}
	return fmt.Errorf("log format %q: want json, console or auto", format)
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) (zerolog.Logger, error) {
	lvl, err := ParseLevel(o.Level)
	if err != nil {
		return zerolog.Nop(), err
	}
	if err := CheckFormat(o.Format); err != nil {
		return zerolog.Nop(), err
	}
	console := o.Format == "console"
	if o.Format == "" || o.Format == "auto" {
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			console = true
		}
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	// Handlers log concurrently; zerolog does not serialise writes to w itself.
	w = zerolog.SyncWriter(w)
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// Phone masks a phone number or BSUID for logs: everything but the last 4 characters becomes '*'.
func Phone(s string) string {
	if len(s) <= 4 {
		return strings.Repeat("*", len(s))
	}
	return strings.Repeat("*", len(s)-4) + s[len(s)-4:]
}

// MaskDigits masks every phone number in free text (library logs, error strings, reply
// texts), keeping its last 4 digits: a run of digits, written with or without separators
// (space, '(', ')', '-', '.'), that holds 7 digits or more in all, such as "+1 (415) 555-0199",
// "415.555.0199", "020 7946 0958" or "14155550199". Every character of a number but its last
// 4 digits (and what lies between them) becomes '*', so the text keeps its length.
//
// What is not a phone number stays readable: fewer than 7 digits, a run joined to letters or
// an underscore (an id such as "spring-20260101T000000Z" or a hex hash), a date
// ("2026-12-06", "06.12.2026"), a decimal ("0.123456789", seconds of a time), an IPv4
// address, and a list of single digits ("[0 1 2 3]"). A number that starts with '+', or
// with '+' URL-encoded ("%2B14155550199" in a link), is masked wherever it stands.
func MaskDigits(s string) string {
	var b []byte // nil until something is masked
	for i := 0; i < len(s); {
		if !startsNumber(s, i) {
			i++
			continue
		}
		if s[i] == '(' && dateAt(s, i+1) > 0 {
			i++ // "(2026-12-06)": the date is read next
			continue
		}
		if n := dateAt(s, i); n > 0 {
			i += n
			continue
		}
		end, digits, shape := numberAt(s, i)
		if digits >= minDigits && isPhone(s, i, end, shape) {
			if b == nil {
				b = []byte(s)
			}
			maskRun(b[i:end])
		}
		i = end
	}
	if b == nil {
		return s
	}
	return string(b)
}

// minDigits is the fewest digits MaskDigits takes for a phone number.
const minDigits = 7

// isSep says whether c may stand between the digit groups of a phone number.
func isSep(c byte) bool { return c == ' ' || c == '(' || c == ')' || c == '-' || c == '.' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isWord says whether c belongs to a word: a digit run joined to one is part of an id.
func isWord(c byte) bool {
	return isDigit(c) || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// startsNumber says whether a number may start at s[i]: a digit, or '+' or '(' before one.
func startsNumber(s string, i int) bool {
	if isDigit(s[i]) {
		return true
	}
	return (s[i] == '+' || s[i] == '(') && i+1 < len(s) && isDigit(s[i+1])
}

// dateAt returns the length of a date written at s[i] (2026-12-06, 2026.12.06, 06-12-2026,
// 06.12.2026), or 0.
func dateAt(s string, i int) int {
	for _, groups := range [][3]int{{4, 2, 2}, {2, 2, 4}} {
		j, sep, ok := i, byte(0), true
		for g, n := range groups {
			if g > 0 {
				if j >= len(s) || (s[j] != '-' && s[j] != '.') || (sep != 0 && s[j] != sep) {
					ok = false
					break
				}
				sep = s[j]
				j++
			}
			for k := 0; k < n; k++ {
				if j >= len(s) || !isDigit(s[j]) {
					ok = false
					break
				}
				j++
			}
			if !ok {
				break
			}
		}
		if ok && (j == len(s) || !isDigit(s[j])) {
			return j - i
		}
	}
	return 0
}

// numberShape is what numberAt saw of a number's separators.
type numberShape struct {
	groups   int  // digit groups
	onlyDots bool // every separator is a single '.'
	short    bool // every group holds at most 3 digits
}

// numberAt reads the number starting at s[i] (see startsNumber): digit groups joined by one
// or two separators, every group after the first holding at least 2 digits (so "1 2 3" is
// not one number). It returns where the number ends (after its last digit), how many digits
// it holds and its shape.
func numberAt(s string, i int) (end, digits int, shape numberShape) {
	j := i
	if s[j] == '+' || s[j] == '(' {
		j++
	}
	shape = numberShape{onlyDots: true, short: true}
	for {
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if n := k - j; shape.groups > 0 && n < 2 {
			return end, digits, shape
		} else if n > 3 {
			shape.short = false
		}
		digits += k - j
		shape.groups++
		end = k
		// The separators to the next group: one or two.
		m := k
		for m < len(s) && m-k < 2 && isSep(s[m]) {
			m++
		}
		if m == k || m >= len(s) || !isDigit(s[m]) {
			return end, digits, shape
		}
		if m-k != 1 || s[k] != '.' {
			shape.onlyDots = false
		}
		j = m
	}
}

// isPhone says whether the number s[i:end] of the given shape is taken for a phone number.
func isPhone(s string, i, end int, shape numberShape) bool {
	if s[i] == '+' || plusEncodedBefore(s, i) {
		return true
	}
	if end < len(s) && isWord(s[end]) {
		return false // part of an id, or a quantity with its unit (1234567ms)
	}
	if i > 0 {
		p := s[i-1]
		if isWord(p) || ((p == '-' || p == '.') && i > 1 && isWord(s[i-2])) {
			return false // part of an id: spring-20260101, a1b2-1234567890
		}
	}
	if shape.onlyDots && (shape.groups == 2 || (shape.groups == 4 && shape.short)) {
		return false // a decimal, or an IPv4 address
	}
	return true
}

// plusEncodedBefore says whether s[:i] ends with a URL-encoded '+' ("%2B", as urlquery or a
// query string writes it): the digits that follow are a number that started with '+', not
// part of a word.
func plusEncodedBefore(s string, i int) bool {
	return i >= 3 && s[i-3] == '%' && s[i-2] == '2' && (s[i-1] == 'B' || s[i-1] == 'b')
}

// maskRun turns every byte of a number but its last 4 digits (and the separators between
// them) into '*'.
func maskRun(b []byte) {
	keep, n := len(b), 0
	for keep > 0 && n < 4 {
		keep--
		if isDigit(b[keep]) {
			n++
		}
	}
	for k := 0; k < keep; k++ {
		b[k] = '*'
	}
}

// Asynq adapts a zerolog logger to asynq.Logger, masking phone-like digits in its messages.
// asynq warns "Retry exhausted" whenever a task is archived; Herald archives permanent
// failures on purpose and logs their outcome itself, so that message is logged at info.
type Asynq struct{ L zerolog.Logger }

func (a Asynq) Debug(args ...any) { a.L.Debug().Msg(MaskDigits(fmt.Sprint(args...))) }
func (a Asynq) Info(args ...any)  { a.L.Info().Msg(MaskDigits(fmt.Sprint(args...))) }
func (a Asynq) Warn(args ...any) {
	msg := MaskDigits(fmt.Sprint(args...))
	if strings.HasPrefix(msg, "Retry exhausted for task") {
		a.L.Info().Msg(msg)
		return
	}
	a.L.Warn().Msg(msg)
}
func (a Asynq) Error(args ...any) { a.L.Error().Msg(MaskDigits(fmt.Sprint(args...))) }
func (a Asynq) Fatal(args ...any) { a.L.Fatal().Msg(MaskDigits(fmt.Sprint(args...))) }

// Redis adapts a zerolog logger to go-redis's logger (redis.SetLogger): its messages (a pool
// that cannot dial, a connection dropped, a sentinel failover) are logged at warn, with
// component redis and phone-like digits masked, instead of as plain text on stderr.
type Redis struct{ L zerolog.Logger }

// Printf logs one go-redis message.
func (r Redis) Printf(_ context.Context, format string, v ...any) {
	r.L.Warn().Str(KeyComponent, "redis").Msg(MaskDigits(strings.TrimSpace(fmt.Sprintf(format, v...))))
}

var routeRedis sync.Once

// RouteRedis sends go-redis's log lines through l (see Redis). go-redis has one logger per
// process, so only the first call takes effect: call it where the process makes its logger.
func RouteRedis(l zerolog.Logger) {
	routeRedis.Do(func() { redis.SetLogger(Redis{L: l}) })
}
