package logx

import (
	"fmt"

	"github.com/rs/zerolog"
)

// Cron adapts a zerolog logger to robfig/cron's Logger: cron's key/value pairs become fields.
// cron logs every schedule and wake-up at Info; those go to debug, errors (a recovered panic)
// to error.
type Cron struct{ L zerolog.Logger }

func (c Cron) Info(msg string, keysAndValues ...any) {
	c.fields(c.L.Debug(), keysAndValues).Msg(msg)
}

func (c Cron) Error(err error, msg string, keysAndValues ...any) {
	c.fields(c.L.Error().Str("error", MaskDigits(fmt.Sprint(err))), keysAndValues).Msg(msg)
}

func (Cron) fields(e *zerolog.Event, kv []any) *zerolog.Event {
	for i := 0; i+1 < len(kv); i += 2 {
		e = e.Str(fmt.Sprint(kv[i]), MaskDigits(fmt.Sprint(kv[i+1])))
	}
	return e
}
