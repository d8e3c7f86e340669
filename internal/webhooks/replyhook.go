package webhooks

import "context"

// ReplyHandler acts on a customer's inbound message after the receiver has recorded the
// window and any opt-out: package conversation's follow-ups implement it, and cmd/herald
// installs them (conversation imports this package, so the receiver cannot call it
// directly).
//
// The receiver calls it for every inbound message, opt-outs marked Inbound.OptOut (a handler
// records them and triggers only a rule that confirms the opt-out), a repeat of the same message included (a retried
// webhook, a second receiver replica, a redelivery after this call or the count after it
// failed), before counting the reply: the handler must be idempotent, and must join every copy
// of a message (Inbound.Key) to the run its first copy was joined to, so that a copy delivered
// after a newer run messaged the customer neither triggers that run's rules nor is counted
// there. An error makes the receiver answer 503 so that Connectly delivers the message again,
// and the next copy must finish what this one left undone. It returns the run it joined the
// message to ("" for none): the receiver counts a reply it could not place itself (plain text
// carries no callbackData) in that run.
type ReplyHandler interface {
	HandleReply(ctx context.Context, in *Inbound) (run string, err error)
}
