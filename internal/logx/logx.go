// Package logx sets up Herald's zerolog logger and holds the logging helpers every component
// shares: stable key names, phone masking, and adapters for asynq's and cron's loggers.
package logx

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/mattn/go-isatty"
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

// New returns a logger writing to w.
func New(w io.Writer, o Options) (zerolog.Logger, error) {
	lvl := zerolog.InfoLevel
	if o.Level != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(o.Level))
		if err != nil {
			return zerolog.Nop(), fmt.Errorf("log level %q: want trace, debug, info, warn or error", o.Level)
		}
		lvl = l
	}
	console := false
	switch o.Format {
	case "", "auto":
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			console = true
		}
	case "console":
		console = true
	case "json":
	default:
		return zerolog.Nop(), fmt.Errorf("log format %q: want json, console or auto", o.Format)
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

// digitsRE finds phone-like text: "+" and digits (with usual separators), or a bare run of 9
// to 15 digits (a national number). Shorter runs, such as dates in run ids, are left alone.
var digitsRE = regexp.MustCompile(`\+[0-9][0-9 ().-]{5,}[0-9]|\b[0-9]{9,15}\b`)

// MaskDigits masks every phone-like run of digits in free text, keeping the last 4 digits.
// It guards messages Herald does not compose itself (library logs, error strings).
func MaskDigits(s string) string {
	return digitsRE.ReplaceAllStringFunc(s, func(m string) string {
		n := 0
		for _, c := range m {
			if c >= '0' && c <= '9' {
				n++
			}
		}
		if n < 7 {
			return m
		}
		return Phone(m)
	})
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
