package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// Late refusals: a session message Connectly accepted and then reported undelivered because
// the customer's 24-hour window had closed (a delivery_failed event with a window-closed code)
// reached nobody, so its fallback template goes then, once, as a follow-up of the run that
// sent it (ledger.LateFallbackRun: "RUN~_fallback", or "RUN~_fallback-RULE" for a follow-up's
// message). The follow-up's entry, outbox and task are a follow-up's like any (CreateFollowup:
// exactly once per run, recipient and rule; the outbox sweep writes a task a receiver that
// stopped left unwritten); pausing or cancelling the run steers it as it steers every
// follow-up. The fallback is the one the worker kept just before the session message's
// request (ledger.KeepFallback, worker.Config.LateFallbackFor): none is kept for a message
// that had none, or whose fallback cannot go to its recipient, and none is left once the
// fallback went instead (from the gate on a later attempt, or at once after Connectly refused
// the request), so such a failure sends nothing. The task is due LateFallbackAfter later, and
// the worker reads the session message's entry again before it sends (a delivered or read that
// came meanwhile skips it).

var _ webhooks.LateRefusalHandler = (*Followups)(nil)

// Outcomes of a late refusal, in herald_followup_replies_total's outcome label (rule
// "_fallback..."): the fallback created, or why none was.
const (
	lateCreated   = "late_fallback"
	lateCancelled = "late_cancelled"
)

// HandleLateRefusal acts on a delivery failure saying the customer's window had closed,
// applied to the entry at ev.Address: when the entry still records this failure and the
// worker kept the session message's fallback, the fallback's follow-up entry is created and
// its task written. Every copy of the event comes here; the second finds the entry made and
// its task written, and does nothing. A run cancelled (or whose follow-ups an operator
// cancelled) gets no fallback.
func (f *Followups) HandleLateRefusal(ctx context.Context, ev ledger.DeliveryEvent) error {
	kept, err := f.ledger.KeptFallback(ctx, ev.Address)
	if err != nil {
		return err
	}
	log := f.log.With().Str(logx.KeyRun, ev.Run).Str(logx.KeyRecipient, logx.Phone(ev.Recipient)).Str(logx.KeyCode, ev.Code).Logger()
	e, ok, err := f.ledger.Entry(ctx, ev.Address)
	switch {
	case err != nil:
		return err
	case !ok || e.State != ledger.Failed || e.Code != ev.Code || (ev.MessageID != "" && e.MessageID != ev.MessageID):
		// A later event (delivered, read) replaced the failure, or the entry holds another
		// message by now: not this failure's to answer.
		return nil
	case kept == nil:
		log.Info().Msg("message undelivered, the customer's window closed: no fallback kept for it")
		return nil
	}
	run, parent, rule := ledger.LateFallbackRun(ev.Run)
	pr, err := f.ledger.GetRun(ctx, parent)
	if errors.Is(err, ledger.ErrRunNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if may, why, err := f.MayFollowUp(ctx, parent); err != nil || !may {
		if err == nil && why == UnansweredCancelled {
			f.count(pr.Campaign, rule, lateCancelled, "")
			log.Info().Msg("session message undelivered, its window closed: run cancelled, no fallback")
		}
		return err
	}
	// The kept payload leaves out what is known here (worker.keepFallback).
	var p campaigns.SendPayload
	if err := json.Unmarshal(kept, &p); err != nil {
		return fmt.Errorf("conversation: kept fallback in %s: %w", ev.Run, err)
	}
	addr := ledger.FollowupAddress(parent, rule, ev.Recipient, pr.Buckets)
	p.Run, p.To, p.Bucket, p.Row, p.Campaign, p.Kind = run, ev.Recipient, addr.Bucket, e.Row, pr.Campaign, campaigns.KindFallback
	enc := campaigns.EncodeSend(p)
	if _, err := campaigns.DecodeSend(enc); err != nil {
		return fmt.Errorf("conversation: kept fallback in %s: %w", ev.Run, err)
	}
	payload, err := connectly.EncodeJSON(envelope{At: f.cfg.Now().Add(max(f.cfg.LateFallbackAfter, 0)).UnixMilli(), P: enc})
	if err != nil {
		return err
	}
	res, err := f.ledger.CreateFollowup(ctx, ledger.Followup{Parent: parentOf(pr), Rule: rule, Recipient: ev.Recipient,
		Row: e.Row, Payload: payload, Queue: f.queue(p.Category)})
	if err != nil {
		return err
	}
	switch res.Verdict {
	case ledger.FollowupCreated:
		f.count(pr.Campaign, rule, lateCreated, "")
		log.Info().Str("followup", run).Msg("session message undelivered, its window closed: sending its fallback template")
		return f.enqueue(ctx, ledger.OutboxItem{Run: res.Run, Recipient: ev.Recipient, Payload: payload}, pr.ResendAfter > 0)
	case ledger.FollowupPending:
		return f.enqueue(ctx, ledger.OutboxItem{Run: res.Run, Recipient: ev.Recipient, Payload: res.Payload}, pr.ResendAfter > 0)
	}
	return nil
}
