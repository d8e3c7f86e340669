package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// ErrWindowClosed is returned by Answer when the customer's service window to the sender
// number is closed by Herald's record, or closes within AnswerParams.Margin: nothing was
// sent. When Connectly refuses the message as outside the window,
// Answer returns the provider's error as it is (connectly.IsWindowClosed).
var ErrWindowClosed = errors.New("customer service window closed")

// ErrMaybeSent is wrapped, with Connectly's answer, by Answer's error when the answer leaves
// it unknown whether the message went out (connectly.Ambiguous: a 5xx, no answer after the
// request was written): the customer may have it, and sending it again may give it to them
// twice. The send is in the audit log with its outcome unknown.
var ErrMaybeSent = errors.New("the message may have been delivered")

// ErrSuppressed is returned by Answer when the customer is on the suppression list for every
// message (they opted out: a STOP, an Unsubscribe tap, an opt-out answer) and
// AnswerParams.IgnoreSuppression is not set: nothing was sent. An entry for marketing only
// (Meta 131050) does not stop a support message, which is not marketing.
var ErrSuppressed = errors.New("customer opted out of every message")

// SendOutcome is what became of a support reply's message, as `herald message send --json`
// prints it.
type SendOutcome string

const (
	// OutcomeSent: Connectly took the message and gave its id.
	OutcomeSent SendOutcome = "sent"
	// OutcomeMaybeSent: Connectly's answer (a 5xx, or none after the request was written)
	// leaves it unknown whether the message went out (ErrMaybeSent).
	OutcomeMaybeSent SendOutcome = "maybe_sent"
	// OutcomeRefused: Connectly refused the message (a permanent answer, a window it says is
	// closed): it did not go out, and the same request would be refused again.
	OutcomeRefused SendOutcome = "refused"
	// OutcomeNotSent: nothing went out and nothing stands in the way of trying again later:
	// Herald made no request (its record says the window is closed), or Connectly did not
	// take it (a throttle, a request that was not written).
	OutcomeNotSent SendOutcome = "not_sent"
)

// answerTable reads Connectly's answers as connectly.Ambiguous and connectly.IsWindowClosed
// do: the default classification.
var answerTable, _ = connectly.NewTable(nil)

// AnswerParams is one session message to one customer, outside any run: a support reply.
type AnswerParams struct {
	// Business is the Connectly business whose windows Herald records; Wire is how the send
	// body is encoded, as the client encodes it (connectly.Client.Wire).
	Business string
	Wire     connectly.Wire
	// To is the customer: E.164 or "bsuid:<id>". Sender is the business number ("" lets
	// Connectly choose): the customer must have written to it (Windows).
	To, Sender string
	// Windows is the business's window policy (its sender numbers and windows.scope): which
	// recorded windows count for a message from Sender.
	Windows servicewindow.Policy
	Content connectly.SessionContent
	// Actor is who sends, for the audit log.
	Actor string
	// IgnoreSuppression sends to a customer on the suppression list for every message (who
	// opted out), where Answer otherwise refuses with ErrSuppressed; the audit entry says so.
	IgnoreSuppression bool
	// Now is the clock that decides whether the window is open.
	Now time.Time
	// Margin is how long before its close the window counts as closed, as for a campaign's
	// session messages (servicewindow.Tracker.SetMargin; worker.window_margin): Connectly
	// judges the window on its own clock.
	Margin time.Duration
}

// Answered is what Answer did.
type Answered struct {
	// Window is the customer's window that counts for a message from AnswerParams.Sender,
	// as Herald recorded it, at AnswerParams.Now.
	Window servicewindow.Window
	// Request is the exact request body (the customer unmasked); nil only when the message
	// could not be encoded (the error says why).
	Request json.RawMessage
	// Suppression is the customer's entry on the suppression list (the zero Suppression when
	// they have none).
	Suppression ledger.Suppression
	// Record is every window Herald recorded of the customer, to any number or none, read
	// when Window is not usable (nil otherwise): the customer may have written to another
	// business number, or in a message that named none.
	Record *servicewindow.Record
	// MessageID is Connectly's id of the message; "" when nothing was sent, or when it is
	// unknown whether it was (OutcomeMaybeSent).
	MessageID string
	// Outcome is what became of the message; "" on a dry run, and when Answer failed before
	// it could decide (a message that cannot be encoded, Redis unreachable).
	Outcome SendOutcome
	// Code is the key of Connectly's error answer ("HTTP_500", "NO_RESPONSE", an error code:
	// connectly.Decision.Key) when the send failed; "" otherwise.
	Code string
}

// Answer sends one session message through client when the customer's window to the sender
// number is open and they are not on the suppression list for every message (ErrSuppressed,
// unless IgnoreSuppression), and records in the audit log every request it makes to
// Connectly, with its outcome: the message id, or the code of Connectly's answer (refused,
// not sent, or outcome unknown). A nil client is a dry run: the request is built, the window
// and the suppression list read, and nothing is sent. Answered is filled as far as Answer got
// (the window and request are there with a closed window). An answer that leaves it unknown
// whether the message went out (connectly.Ambiguous) is an error wrapping ErrMaybeSent and
// Connectly's error.
func Answer(ctx context.Context, rdb redis.UniversalClient, client *connectly.Client, p AnswerParams) (Answered, error) {
	msg := connectly.SessionMessage{To: p.To, Sender: p.Sender, Content: p.Content}
	body, err := p.Wire.EncodeSession(msg)
	if err != nil {
		return Answered{}, err
	}
	tracker := servicewindow.New(rdb, func() time.Time { return p.Now })
	tracker.SetMargin(p.Margin)
	tracker.SetPolicy(p.Windows)
	w, err := tracker.Lookup(ctx, p.Business, p.Sender, p.To)
	if err != nil {
		return Answered{Request: body}, err
	}
	res := Answered{Window: w, Request: body}
	supp, err := ledger.New(rdb, nil).Suppressions(ctx, []string{p.To})
	if err != nil {
		return res, err
	}
	res.Suppression = supp[0]
	// A support message is not marketing: only an entry for every message stops it.
	if res.Suppression.Blocks(false) && !p.IgnoreSuppression {
		res.Outcome = OutcomeNotSent
		return res, ErrSuppressed
	}
	if !tracker.Usable(res.Window, 0) {
		res.Outcome = OutcomeNotSent
		rec, err := tracker.Record(ctx, p.Business, []string{p.To})
		if err != nil {
			return res, fmt.Errorf("%w; the customer's other windows could not be read: %w", ErrWindowClosed, err)
		}
		res.Record = &rec
		return res, ErrWindowClosed
	}
	if client == nil {
		return res, nil
	}
	sent, err := client.SendSession(ctx, msg)
	res.Outcome, res.Code = outcomeOf(err)
	detail := fmt.Sprintf("%s message, ", p.Content.Kind())
	switch res.Outcome {
	case OutcomeSent:
		res.MessageID = sent.ID
		detail += "id " + sent.ID
	case OutcomeMaybeSent:
		detail += "outcome unknown (" + res.Code + "): it may have been delivered"
		err = fmt.Errorf("%w: %w", ErrMaybeSent, err)
	case OutcomeRefused:
		detail += "refused (" + res.Code + ")"
	default:
		detail += "not sent (" + res.Code + ")"
	}
	if res.Suppression.Blocks(false) {
		detail += "; suppressed " + res.Suppression.String() + ", ignored as asked"
	}
	if err != nil && !connectly.IsWindowClosed(err) && !errors.Is(err, ErrMaybeSent) {
		err = fmt.Errorf("send: %w", err)
	}
	e := audit.Entry{Actor: p.Actor, Action: "message send", Target: logx.Phone(p.To), Detail: detail}
	if aerr := audit.Append(ctx, rdb, e); aerr != nil {
		if err != nil {
			return res, errors.Join(err, fmt.Errorf("the send was not written to the audit log: %w", aerr))
		}
		return res, fmt.Errorf("message %s was sent, but the audit log was not written: %w", sent.ID, aerr)
	}
	return res, err
}

// outcomeOf is what the answer to a send says of its message, and the key of an error
// answer. An error that is no answer of Connectly's (the request could not be made) sent
// nothing.
func outcomeOf(err error) (SendOutcome, string) {
	if err == nil {
		return OutcomeSent, ""
	}
	var ae *connectly.Error
	var te *connectly.TransportError
	if !errors.As(err, &ae) && !errors.As(err, &te) {
		return OutcomeNotSent, connectly.ErrorKey(err)
	}
	d := answerTable.Decide(err)
	switch d.Outcome {
	case connectly.OutcomeMaybeSent:
		return OutcomeMaybeSent, d.Key
	case connectly.OutcomeRefused:
		return OutcomeRefused, d.Key
	}
	return OutcomeNotSent, d.Key
}
