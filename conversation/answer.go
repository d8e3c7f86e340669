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
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// ErrWindowClosed is returned by Answer when the customer's service window to the sender
// number is closed by Herald's record, or closes within AnswerParams.Margin: nothing was
// sent. When Connectly refuses the message as outside the window,
// Answer returns the provider's error as it is (connectly.IsWindowClosed).
var ErrWindowClosed = errors.New("customer service window closed")

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
	// MessageID is Connectly's id of the message; "" when nothing was sent.
	MessageID string
}

// Answer sends one session message through client when the customer's window to the sender
// number is open, and records the send in the audit log. A nil client is a dry run: the
// request is built and the window read, and nothing is sent. Answered is filled as far as Answer got (the window and
// request are there with a closed window).
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
	if !tracker.Usable(res.Window, 0) {
		return res, ErrWindowClosed
	}
	if client == nil {
		return res, nil
	}
	sent, err := client.SendSession(ctx, msg)
	if err != nil {
		if connectly.IsWindowClosed(err) {
			return res, err
		}
		return res, fmt.Errorf("send: %w", err)
	}
	res.MessageID = sent.ID
	e := audit.Entry{Actor: p.Actor, Action: "message send", Target: logx.Phone(p.To),
		Detail: fmt.Sprintf("%s message, id %s", p.Content.Kind(), sent.ID)}
	if err := audit.Append(ctx, rdb, e); err != nil {
		return res, fmt.Errorf("message %s was sent, but the audit log was not written: %w", sent.ID, err)
	}
	return res, nil
}
