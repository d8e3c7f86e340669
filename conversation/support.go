package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// SupportParams is one support reply (`herald message send`): the Answer to send, and
// whether the customer is shown in full.
type SupportParams struct {
	AnswerParams
	// Reveal shows the customer's number in full, in the result and the request body.
	Reveal bool
}

// SupportResult is what a support reply did, as `herald message send` prints it (--json).
type SupportResult struct {
	// To is the customer, masked unless SupportParams.Reveal.
	To     string                `json:"to"`
	Kind   connectly.SessionKind `json:"kind"`
	Window report.Window         `json:"window"`
	// MessageID is Connectly's id of the message sent; empty with a dry run, and when it is
	// unknown whether the message went out.
	MessageID string `json:"message_id,omitempty"`
	// Outcome is sent, maybe_sent (Connectly's answer leaves it unknown: check the
	// conversation before sending again), refused (by Connectly) or not_sent; empty with a
	// dry run.
	Outcome SendOutcome `json:"outcome,omitempty"`
	// Suppression is the customer's entry on the suppression list, when they have one: for
	// every message (the message is refused unless IgnoredSuppression) or for marketing
	// only (a support message is not marketing, and goes).
	Suppression *report.Suppression `json:"suppression,omitempty"`
	// IgnoredSuppression says the message went to a customer suppressed for every message,
	// as asked (SupportParams.IgnoreSuppression); the audit entry says so.
	IgnoredSuppression bool `json:"ignored_suppression,omitempty"`
	// Code is the key of Connectly's error answer, when the send failed.
	Code   string `json:"code,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	// Request is the exact request body (a dry run), masked unless SupportParams.Reveal.
	Request json.RawMessage `json:"request,omitempty"`
}

// UnsendableError says a support reply's message cannot be encoded for Connectly: nothing
// was looked up or sent. Its message is its cause's.
type UnsendableError struct{ err error }

func (e UnsendableError) Error() string { return e.err.Error() }
func (e UnsendableError) Unwrap() error { return e.err }

// Support answers one customer (Answer; a nil client is a dry run) and reports it for people.
// A message that cannot be encoded is an UnsendableError, with no result. A closed window,
// by Herald's record or by Connectly's refusal, is an error wrapping ErrWindowClosed that
// says what to do instead, and comes with a result to show. An answer that leaves it unknown
// whether the message went out is an error wrapping ErrMaybeSent that says not to send it
// again before checking, with a result whose Outcome is OutcomeMaybeSent. A customer on the
// suppression list for every message is an error wrapping ErrSuppressed that names the entry,
// unless SupportParams.IgnoreSuppression. Every result with an Outcome is one to show, with
// its error.
func Support(ctx context.Context, rdb redis.UniversalClient, client *connectly.Client, p SupportParams) (SupportResult, error) {
	now := p.Now
	out, err := Answer(ctx, rdb, client, p.AnswerParams)
	if out.Request == nil {
		return SupportResult{}, UnsendableError{err}
	}
	shown := p.To
	if !p.Reveal {
		shown = logx.Phone(p.To)
	}
	w := report.WindowOf(out.Window, p.Business, shown, now)
	whose := shown + "'s window"
	if p.Sender != "" {
		w.Sender = logx.Phone(p.Sender)
		whose += " to " + w.Sender
	}
	res := SupportResult{To: shown, Kind: p.Content.Kind(), Window: w, DryRun: client == nil, MessageID: out.MessageID,
		Outcome: out.Outcome, Code: out.Code}
	if sp := out.Suppression; sp.Listed() {
		res.Suppression = &report.Suppression{Scope: string(sp.Scope), Reason: sp.Reason}
		if !sp.At.IsZero() {
			res.Suppression.Since = &sp.At
		}
		res.IgnoredSuppression = sp.Blocks(false) && p.IgnoreSuppression && !errors.Is(err, ErrSuppressed)
	}
	if client == nil {
		res.Request = out.Request
		if !p.Reveal {
			res.Request = report.MaskRequests([]json.RawMessage{out.Request})[0]
		}
	}
	switch {
	case errors.Is(err, ErrSuppressed):
		return res, fmt.Errorf("%w: %s is on the suppression list %s, and nothing was sent; "+
			"send anyway only if they asked for this answer, with --ignore-suppression (the audit log records it)",
			err, shown, out.Suppression)
	case errors.Is(err, ErrMaybeSent):
		return res, fmt.Errorf("%w (Connectly's answer does not say whether it went out, and no message id came back): "+
			"do not send it again before checking the conversation with %s in Connectly's inbox, or they may get it twice; "+
			"herald audit ls has the send, outcome unknown", err, shown)
	case connectly.IsWindowClosed(err):
		return res, fmt.Errorf("%w: Connectly refused the message as outside %s (Herald's record: %s); send an approved template: %w",
			ErrWindowClosed, whose, w.Line(now), err)
	case errors.Is(err, ErrWindowClosed) && out.Record == nil:
		return res, err
	case errors.Is(err, ErrWindowClosed):
		res.Window.Numbers, res.Window.NoNumber = recordedWindows(*out.Record, now)
		elsewhere := otherWindows(*out.Record, p, now)
		if w.Open {
			return res, fmt.Errorf("%w: %s is %s, within worker.window_margin (%s) of its close, too near for Connectly's "+
				"clock to agree; %s", err, whose, w.Line(now), p.Margin, orTemplate(elsewhere))
		}
		return res, fmt.Errorf("%w: %s is %s; %s", err, whose, w.Line(now), orTemplate(elsewhere))
	}
	return res, err
}

// orTemplate is what to do about a closed window: answer in the windows that are open
// (elsewhere, from otherWindows), or, when none is, reach the customer with a template.
func orTemplate(elsewhere string) string {
	if elsewhere != "" {
		return "but " + elsewhere
	}
	return "a session message cannot reach them now: send an approved template (a campaign with template:), " +
		"or wait for them to write"
}

// recordedWindows are the customer's windows to each business number and the one with no
// number, as `window show` reports them.
func recordedWindows(rec servicewindow.Record, now time.Time) ([]report.Opening, *report.Opening) {
	var numbers []report.Opening
	for _, w := range rec.Numbers {
		numbers = append(numbers, report.OpeningOf(w, now))
	}
	if rec.Unnamed.ClosesAt.IsZero() {
		return numbers, nil
	}
	o := report.OpeningOf(rec.Unnamed, now)
	return numbers, &o
}

// otherWindows names the customer's windows, open for longer than the margin, that do not
// count for a message from p.Sender: those to other business numbers (answer from one of
// them with --sender), and one recorded with no number that windows.scope leaves out. ""
// when there is none.
func otherWindows(rec servicewindow.Record, p SupportParams, now time.Time) string {
	usable := func(w servicewindow.Window) bool { return w.ClosesAt.After(now.Add(p.Margin)) }
	sender := servicewindow.NumberDigits(p.Sender)
	var out []string
	for _, w := range rec.Numbers {
		if !usable(w) || servicewindow.NumberDigits(w.To) == sender {
			continue
		}
		number, flag := businessNumber(w.To, p), ""
		if number == w.To {
			flag = ": answer from that number with --sender " + number
		} else {
			flag = ", not one of the config's senders: answer from it with --sender and its number"
		}
		out = append(out, fmt.Sprintf("they wrote to %s (its window is open until %s)%s",
			number, w.ClosesAt.UTC().Format(time.RFC3339), flag))
	}
	if w := rec.Unnamed; usable(w) && !p.Windows.UnnamedCounts(p.Sender) {
		why := fmt.Sprintf("the config lists %d", len(p.Windows.Senders))
		if len(p.Windows.Senders) == 1 {
			why = businessNumber(p.Sender, p) + " is not it"
		}
		out = append(out, fmt.Sprintf("they wrote at %s in an inbound message that named no business number (a window "+
			"open until %s), which windows.scope: sender counts only for a message from the config's one sender, and %s "+
			"(windows.scope: business counts it for every number; Connectly refuses the message from a number they did "+
			"not write to)", w.LastInbound.UTC().Format(time.RFC3339), w.ClosesAt.UTC().Format(time.RFC3339), why))
	}
	return strings.Join(out, "; ")
}

// businessNumber is a business number as a refusal names it: in full when it is one of the
// config's senders (the number to give --sender, already written in the config), else
// masked, unless p.Reveal.
func businessNumber(number string, p SupportParams) string {
	if p.Reveal {
		return number
	}
	for _, s := range p.Windows.Senders {
		if servicewindow.NumberDigits(s) == servicewindow.NumberDigits(number) {
			return number
		}
	}
	return logx.Phone(number)
}
