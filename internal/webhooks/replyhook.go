package webhooks

import "context"

// ReplyHandler acts on a customer's inbound message after the receiver has recorded the
// window and any opt-out: package conversation's follow-ups implement it, and cmd/herald
// installs them (conversation imports this package, so the receiver cannot call it
// directly).
//
// The receiver calls it for every inbound message, opt-outs marked Inbound.OptOut (a handler
// records them and triggers nothing), a repeat of the same message included (a retried
// webhook, a second receiver replica), before counting the
// reply: the handler must be idempotent, and an error makes the receiver answer 503 so that
// Connectly delivers the message again. It returns the run it joined the message to ("" for
// none): the receiver counts a reply it could not place itself (plain text carries no
// callbackData) in that run.
type ReplyHandler interface {
	HandleReply(ctx context.Context, in *Inbound) (run string, err error)
}
