package worker

import (
	"context"
	"errors"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
)

// Client sends messages to Connectly; *connectly.Client implements it.
type Client interface {
	Sender
	SendSession(ctx context.Context, msg connectly.SessionMessage) (connectly.SendResult, error)
}

var _ Client = (*connectly.Client)(nil)

// Message is what one send task sends. The handler's pipeline (limits, claim, states,
// counters) is the same for every kind; only the request differs.
type Message interface {
	// Send makes the request.
	Send(ctx context.Context, c Client) (connectly.SendResult, error)
	// Kind names the message in logs and metrics ("template", "session", "fallback").
	Kind() string
}

// templateMessage is a template message (campaigns.KindTemplate).
type templateMessage struct {
	m    connectly.TemplateMessage
	kind string
}

func (t templateMessage) Send(ctx context.Context, c Client) (connectly.SendResult, error) {
	return c.SendTemplate(ctx, t.m)
}

func (t templateMessage) Kind() string { return t.kind }

// templateOf is the template message p carries (a session payload's fallback template when
// p is one).
func templateOf(p campaigns.SendPayload, kind string) Message {
	return templateMessage{kind: kind, m: connectly.TemplateMessage{
		Number: p.To, TemplateName: p.Template, Language: p.Language, Parameters: p.Params,
		Sender: p.Sender, CallbackData: p.Callback(), CampaignName: p.Campaign,
	}}
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
