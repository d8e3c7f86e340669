package campaigns

import (
	"fmt"
	"slices"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/limits"
)

// UnlistedSender is a warning when the config lists senders and def's sender is not one of
// them, "" otherwise: the worker sends from such a number all the same (Connectly decides
// whether it is one of the business's), paced at limits.DefaultSenderRate instead of a
// configured rate, so `campaign validate` notes it, `campaign plan` warns, and `campaign
// send`, `submit` and `run` warn before they start. The warning begins with the sender field's
// place, file:line:col, when it is known.
func UnlistedSender(def *Definition, senders []config.Sender) string {
	if def.Sender == "" || len(senders) == 0 ||
		slices.ContainsFunc(senders, func(s config.Sender) bool { return s.Number == def.Sender }) {
		return ""
	}
	msg := fmt.Sprintf("sender: not one of the config's senders (%d listed): its sends go at the default rate of %g msg/s; "+
		"add it to senders with its rate, or name a listed one", len(senders), limits.DefaultSenderRate)
	switch {
	case def.Path == "":
		return msg
	case def.SenderAt.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", def.Path, def.SenderAt.Line, def.SenderAt.Column, msg)
	}
	return def.Path + ": " + msg
}
