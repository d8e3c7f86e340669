package serve

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
)

// MessageParams say what SendMessage sends to whom, and who sends it.
type MessageParams struct {
	Config config.Config
	// Connect opens Redis once the sender and the client are known. SendMessage closes the
	// client it returns.
	Connect func(ctx context.Context) (redis.UniversalClient, error)
	// To is the customer: E.164 or "bsuid:<id>".
	To string
	// Sender is the business number to send from; "" is the config's only sender
	// (config.SenderFor: a *config.SenderRequiredError when it lists several).
	Sender  string
	Content connectly.SessionContent
	// DryRun renders the request and sends nothing (no Connectly credentials needed).
	DryRun bool
	// Reveal shows the customer's number in full in the result.
	Reveal bool
	// Actor is who sends, for the audit log ("": the OS user).
	Actor string
	// IgnoreSuppression sends to a customer suppressed for every message
	// (conversation.AnswerParams.IgnoreSuppression).
	IgnoreSuppression bool
	// Now decides whether the window is open (zero: time.Now).
	Now time.Time
}

// SendMessage answers one customer with a session message (`herald message send`) through a
// Connectly client of config p.Config (ConnectlyClient), if the window Herald recorded for
// them in the configured business is open (conversation.Support), and keeps the send in the
// audit log.
func SendMessage(ctx context.Context, p MessageParams) (conversation.SupportResult, error) {
	c := p.Config
	sender, err := c.SenderFor(p.Sender)
	if err != nil {
		return conversation.SupportResult{}, err
	}
	var client *connectly.Client
	if !p.DryRun {
		if client, err = ConnectlyClient(c, 0); err != nil {
			return conversation.SupportResult{}, err
		}
	}
	rdb, err := p.Connect(ctx)
	if err != nil {
		return conversation.SupportResult{}, err
	}
	defer rdb.Close()
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	return conversation.Support(ctx, rdb, client, conversation.SupportParams{Reveal: p.Reveal,
		AnswerParams: conversation.AnswerParams{Business: c.Connectly.BusinessID, Wire: c.Connectly.Wire(),
			Margin: c.Worker.WindowMargin.D(), Windows: c.WindowPolicy(), To: p.To, Sender: sender, Content: p.Content,
			Actor: audit.Operator(p.Actor), Now: now, IgnoreSuppression: p.IgnoreSuppression}})
}
