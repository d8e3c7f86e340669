package worker

import (
	"context"
	"errors"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// Client sends messages to Connectly; *connectly.Client implements it.
type Client interface {
	Sender
	SendSession(ctx context.Context, msg connectly.SessionMessage) (connectly.SendResult, error)
}

var _ Client = (*connectly.Client)(nil)

// Message is what one send task sends. The handler's pipeline (gate, limits, claim, states,
// counters) is the same for every kind; what differs, the handler asks of the message: its
// request (Send), how an accepted send counts (SentAs, Label), and, for a message that goes
// only inside the customer service window, what goes when the window is closed
// (WindowBound). The handler compares no kinds: a further kind implements these and is
// built by messageOf.
type Message interface {
	// Send makes the request.
	Send(ctx context.Context, c Client) (connectly.SendResult, error)
	// SentAs is the code an accepted send records, so the run's counters say how its messages
	// went (ledger.SentSession, SentFallback, SentInWindow, or "" for a template sent outside
	// any customer service window). inWindow says the send's reservation found the
	// recipient's window open (a reservation that read no window finds none open).
	SentAs(inWindow bool) string
	// Label is the class label of an accepted send in herald_sends_total; "" is the common
	// one ("none"). The fallback template is counted on its own.
	Label() string
}

// WindowBound is a Message that goes only while its recipient's customer service window is
// open (a session message). The handler asks once, when it decodes the task (job.use): the
// gate reads the window before any limit is reserved (gateWindow), and a window found closed
// there, or by the provider refusing the request as outside it (settle), sends Fallback
// instead. A message that is not WindowBound reads the window in its reservation, for SentAs.
type WindowBound interface {
	Message
	// Fallback is the message that goes instead while the window is closed, nil when there is
	// none (the entry is then skipped(window_closed) at the gate, and failed with the
	// provider's code on a refusal). A fallback that cannot go to this recipient comes with
	// its Bar: nothing is sent, and the entry records Bar.Code.
	Fallback() (Message, Bar)
}

// Bar says why a fallback cannot go to its recipient; the zero Bar lets it go.
type Bar struct {
	// Code is what the entry records instead (skipped at the gate, failed on a refusal).
	Code string
	// Why ends the log line that says so.
	Why string
}

// templateMessage is a template message (campaigns.KindTemplate).
type templateMessage struct{ m connectly.TemplateMessage }

func (t templateMessage) Send(ctx context.Context, c Client) (connectly.SendResult, error) {
	return c.SendTemplate(ctx, t.m)
}

// SentAs: a template's window is the one its reservation read, in the same round trip (its
// intention asks for it: ReadWindow; the daily tier reads it anyway).
func (templateMessage) SentAs(inWindow bool) string {
	if inWindow {
		return ledger.SentInWindow
	}
	return ""
}

func (templateMessage) Label() string { return "" }

// templateOf is the template message p carries (a session payload's fallback template when
// p is one).
func templateOf(p *campaigns.SendPayload) templateMessage {
	return templateMessage{m: connectly.TemplateMessage{
		Number: p.To, TemplateName: p.Template, Language: p.Language, Parameters: p.Params,
		Sender: p.Sender, CallbackData: p.Callback(), CampaignName: p.Campaign,
	}}
}

// messageOf is the message p carries, of template category category: the one place that
// knows every kind.
func messageOf(p *campaigns.SendPayload, category string) (Message, error) {
	switch p.Kind {
	case campaigns.KindSession:
		return sessionOf(p, category)
	case campaigns.KindFallback:
		return lateFallbackMessage{fallbackMessage{templateOf(p)}}, nil
	}
	return templateOf(p), nil
}

// errNoSession is the answer of a Sender that sends only templates to a session message.
var errNoSession = errors.New("worker: this client sends no session messages")

// templateOnly is a Sender that sends only templates: session messages fail before any
// request (a transport error: no request was written).
type templateOnly struct{ Sender }

func (templateOnly) SendSession(context.Context, connectly.SessionMessage) (connectly.SendResult, error) {
	return connectly.SendResult{}, &connectly.TransportError{Err: errNoSession}
}

// clientOf returns s as a Client.
func clientOf(s Sender) Client {
	if c, ok := s.(Client); ok {
		return c
	}
	return templateOnly{s}
}
