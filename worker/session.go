package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
)

// Codes and labels of session sends.
const (
	// CodeWindowClosed is the skip reason of a session send whose recipient's customer
	// service window was closed at send time, with no fallback template.
	CodeWindowClosed = ledger.SkipWindowClosed
	// kindFallback labels a campaign's fallback template sent instead of a session message.
	kindFallback = "fallback"
)

// sessionMessage is a session message (campaigns.KindSession).
type sessionMessage struct{ m connectly.SessionMessage }

func (s sessionMessage) Send(ctx context.Context, c Client) (connectly.SendResult, error) {
	return c.SendSession(ctx, s.m)
}

func (sessionMessage) Kind() string { return "session" }

// messageOf is the message p carries.
func messageOf(p campaigns.SendPayload) (Message, error) {
	if p.Kind != campaigns.KindSession {
		return templateOf(p, "template"), nil
	}
	var content connectly.SessionContent
	if err := json.Unmarshal(p.Session, &content); err != nil {
		return nil, fmt.Errorf("decode session content: %w", err)
	}
	return sessionMessage{m: connectly.SessionMessage{
		To: p.To, Sender: p.Sender, CallbackData: p.Callback(), CampaignName: p.Campaign, Content: content,
	}}, nil
}

// gateWindow applies the customer service window to a session send, before any limit is
// reserved: with the window open (on the worker's clock, from the inbound messages the
// webhook receiver recorded) the session message goes; closed, the payload's fallback
// template goes instead, or, without one, the entry becomes skipped(window_closed) with no
// request. A window that cannot be read (Redis) makes the task try again later.
func (w *Worker) gateWindow(ctx context.Context, j *job) (bool, error) {
	if j.p.Kind != campaigns.KindSession {
		return false, nil
	}
	_, open, err := w.windows.Open(ctx, w.cfg.Limits.BusinessID, j.p.To)
	if err != nil {
		return true, w.unreachable(ctx, j.log, err)
	}
	if open {
		return false, nil
	}
	if j.p.Template != "" {
		j.msg = templateOf(j.p, kindFallback)
		j.log.Debug().Msg("customer service window closed: sending the fallback template")
		return false, nil
	}
	skipped, err := w.skipEntry(context.WithoutCancel(ctx), j.p, CodeWindowClosed)
	if err != nil {
		return true, err
	}
	if skipped {
		w.count(j.p, metrics.OutcomeSkipped, CodeWindowClosed)
		j.log.Info().Msg("skipped: customer service window closed")
	}
	return true, nil
}

// settledLabel is the class label of an accepted or failed send in herald_sends_total: the
// fallback template is counted on its own, and so is a window-closed answer.
func settledLabel(j *job, d connectly.Decision, o ledger.Outcome, label string) string {
	switch {
	case o.State == ledger.Accepted && j.msg.Kind() == kindFallback:
		return kindFallback
	case o.State == ledger.Failed && d.WindowClosed():
		return CodeWindowClosed
	}
	return label
}
