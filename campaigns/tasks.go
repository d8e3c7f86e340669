package campaigns

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// TypeSend is the task type of one template message to one recipient of a run.
const TypeSend = "message:send"

// QueueFor returns the asynq queue of a template category.
func QueueFor(category string) string {
	if category == "" {
		category = "marketing"
	}
	return "herald:" + category
}

// Queues are the send queues with their asynq priorities: transactional categories first.
var Queues = map[string]int{
	QueueFor("authentication"): 6,
	QueueFor("utility"):        3,
	QueueFor("marketing"):      1,
}

// SendPayload is the payload of a TypeSend task: everything the worker needs for the request,
// so a send costs no extra Redis read for the campaign.
type SendPayload struct {
	Run string `json:"run"`
	// To is the recipient: E.164, or "bsuid:<BSUID>".
	To string `json:"to"`
	// Bucket is the recipient's ledger bucket in the run.
	Bucket   int                   `json:"b"`
	Row      int                   `json:"row"`
	Campaign string                `json:"c"`
	Template string                `json:"tpl"`
	Language string                `json:"lang"`
	Sender   string                `json:"from,omitempty"`
	Params   []connectly.Parameter `json:"params,omitempty"`
	// Delivery is the run's policy: "at-most-once" or "at-least-once".
	Delivery string `json:"dlv"`
	// Rate is the campaign's own cap in messages/s (0: the sender's rate only).
	Rate float64 `json:"rate,omitempty"`
	// Category is the template's category (marketing, utility, authentication): it chooses
	// the frequency cap that applies.
	Category string `json:"cat,omitempty"`
	// SendHours is the campaign's send window in its compact form (see SendHours.String), and Zone
	// the recipient's IANA zone when the window follows the recipient's zone; empty when the
	// campaign has no window. Expires is the unix second from which the send is skipped as
	// expired (0: never). The worker checks all three with CheckTime before sending.
	SendHours string `json:"win,omitempty"`
	Zone      string `json:"tz,omitempty"`
	Expires   int64  `json:"exp,omitempty"`
	// ConfirmsOptOut marks the follow-up of an on_reply rule with suppress: true: the
	// confirmation of the opt-out the reply asked for, which goes although its recipient is
	// on the suppression list by then (the worker's send-time check lets it through).
	ConfirmsOptOut bool `json:"oo,omitempty"`
	// Kind is what the task sends: KindTemplate ("", the template above), KindSession, or
	// KindFallback (the template above, as a session message's fallback).
	Kind string `json:"k,omitempty"`
	// Session is the rendered content of a session message (a connectly.SessionContent in
	// JSON), for KindSession. Template, when set on a session send, is the fallback sent
	// instead when the recipient's customer service window is closed.
	Session json.RawMessage `json:"sm,omitempty"`
	// ReplyCols are the recipient's values of the audience columns the campaign's on_reply
	// rules read (OnReply.Columns), which the worker stores for the follow-ups; nil, and not
	// encoded, when the rules read none.
	ReplyCols map[string]string `json:"rc,omitempty"`
}

// Kinds of message a send task carries.
const (
	KindTemplate = ""
	KindSession  = "session"
	// KindFallback is a session message's fallback template sent after Connectly accepted
	// the session message and then reported it undelivered because the customer's window
	// had closed (ledger.LateFallbackRun): the worker sends the template and records it as a
	// fallback. Only a worker that knows it keeps the fallback such a task is made from, and
	// workers are upgraded before the webhook receiver that makes it.
	KindFallback = "fallback"
)

// Address is the recipient's entry in the run's ledger.
func (p SendPayload) Address() ledger.Address {
	return ledger.Address{Run: p.Run, Recipient: p.To, Bucket: p.Bucket}
}

// Callback returns the payload's callbackData JSON: its ledger address, so webhook events
// find their entry.
func (p SendPayload) Callback() json.RawMessage { return p.Address().Callback() }

// TaskOptions are the asynq options of send tasks.
type TaskOptions struct {
	Queue string
	// MaxRetry is asynq's retry budget. Herald counts attempts itself and stops earlier, so this
	// must be above the configured attempts (a throttle on the last asynq retry would archive).
	MaxRetry int
	// Timeout bounds one handler run.
	Timeout time.Duration
	// Retention keeps completed tasks (and so their TaskIDs) this long.
	Retention time.Duration
}

// NewSendTask builds the asynq task for one recipient, named by the deployment's task ids.
func NewSendTask(p SendPayload, ids ledger.TaskIDs, o TaskOptions) (*asynq.Task, error) {
	b := EncodeSend(p)
	opts := []asynq.Option{asynq.TaskID(ids.TaskID(p.Run, p.To)), asynq.Queue(o.Queue), asynq.MaxRetry(o.MaxRetry)}
	if o.Timeout > 0 {
		opts = append(opts, asynq.Timeout(o.Timeout))
	}
	if o.Retention > 0 {
		opts = append(opts, asynq.Retention(o.Retention))
	}
	return asynq.NewTask(TypeSend, b, opts...), nil
}

// DecodeSend decodes a TypeSend payload.
func DecodeSend(b []byte) (SendPayload, error) {
	var p SendPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decode send payload: %w", err)
	}
	switch p.Kind {
	case KindTemplate, KindFallback:
		if p.Run == "" || p.To == "" || p.Template == "" {
			return p, fmt.Errorf("decode send payload: run, to and tpl are required")
		}
	case KindSession:
		if p.Run == "" || p.To == "" || len(p.Session) == 0 {
			return p, fmt.Errorf("decode send payload: run, to and sm are required for a session message")
		}
	default:
		return p, fmt.Errorf("decode send payload: unknown kind %q", p.Kind)
	}
	return p, nil
}
