package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
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
// webhook receiver recorded) for the tracker's margin plus the longest the send may still
// wait for its slot (gateAhead), the session message goes; closed, the payload's fallback
// template goes instead, or, without one, the entry becomes skipped(window_closed) with no
// request (skipped(bsuid_not_supported) when the fallback is an authentication template and
// the recipient a BSUID, see fallbackBarred). A window that cannot be read (Redis) makes the
// task try again later.
func (w *Worker) gateWindow(ctx context.Context, j *job) (bool, error) {
	if j.p.Kind != campaigns.KindSession {
		return false, nil
	}
	_, open, err := w.windows.OpenFor(ctx, w.cfg.Limits.BusinessID, w.gateAhead(), j.p.To)
	if err != nil {
		return true, w.unreachable(ctx, j.log, err)
	}
	if open {
		return false, nil
	}
	if canFallBack(j) && fallbackBarred(j) {
		skipped, err := w.skipEntry(context.WithoutCancel(ctx), j.p, campaigns.SkipBSUIDNotSupported)
		if err != nil {
			return true, err
		}
		if skipped {
			w.count(j.p, metrics.OutcomeSkipped, campaigns.SkipBSUIDNotSupported)
			j.log.Info().Msg("skipped: customer service window closed, and the authentication fallback cannot go to a BSUID")
		}
		return true, nil
	}
	if canFallBack(j) {
		j.fallBack()
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

// gateAhead is the longest a send may wait between the gate and its request: keeping its
// place while its limits are booked ahead (KeepPlaceFor), then its slot, booked at most
// Limits.MaxWait ahead and booked afresh up to twice when the send comes to it late (onTime).
func (w *Worker) gateAhead() time.Duration {
	return max(w.cfg.KeepPlaceFor, 0) + 3*w.cfg.Limits.MaxWait
}

// SetWindowMargin sets how long before its close the worker counts a customer service
// window as closed when it decides whether a session message goes (default
// servicewindow.DefaultMargin; 0: until it closes). Call it before Start.
func (w *Worker) SetWindowMargin(d time.Duration) { w.windows.SetMargin(d) }

// canFallBack reports whether j is a session message whose payload names a fallback template.
func canFallBack(j *job) bool {
	return j.msg.Kind() == sessionMessage{}.Kind() && j.p.Template != ""
}

// fallbackBarred reports whether j's fallback template cannot go to its recipient: Meta
// refuses an authentication template to a BSUID (error 131062, reference 6), so sending it
// would only fail, and count towards the run's failure burst. The fallback's category is the
// send's (a session campaign's sends take its fallback template's, campaigns.SendCategory).
// Template campaigns skip such rows at expansion (campaigns.SkipBSUIDNotSupported); a session
// campaign's rows go, since the session message itself may reach a BSUID.
func fallbackBarred(j *job) bool {
	return campaigns.CategoryNeedsPhone(j.in.Category) && campaigns.IsBSUID(j.p.To)
}

// fallBack makes j send its payload's fallback template instead of the session message. The
// send keeps its intention (the fallback's category books the frequency cap, as the run's
// queue says) and records SentFallback when accepted.
func (j *job) fallBack() { j.msg = templateOf(j.p, kindFallback) }

// sendRefusedFallback answers a session message Connectly refused as outside the customer
// service window although Herald's record said open (an inbound webhook missed, a clock
// apart) when the payload names a fallback template: the template goes at once, under the
// same claim, since the refusal sent nothing, so the customer still gets exactly one message.
// It is one more request, held to the limits like any: fresh rate permits; the pair slot and
// the room in the frequency cap the refused request took pass to it; and the daily tier
// counts the recipient, whose window is closed whatever Herald's record says. Its answer
// settles the entry as any send's (accepted: code SentFallback, as from the gate).
func (w *Worker) sendRefusedFallback(ctx context.Context, j *job) error {
	j.fallBack()
	if done, err := w.rebook(ctx, j); done {
		return err
	}
	return w.settle(ctx, j, w.send(ctx, j))
}

// rebook books the limits of j's second request under the claim j holds, waiting for its
// slot as a paced send does (keeping its place for up to KeepPlaceFor, until the worker
// stops). It returns done when no slot came: the claim is given back (nothing was sent) and
// the task waits, as a send whose limits refused it before its claim.
func (w *Worker) rebook(ctx context.Context, j *job) (bool, error) {
	old := j.bk
	w.giveBack(ctx, old, limits.Late)
	req := *old.Request()
	req.Windows = nil
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.stopCtx, cancel)()
	b, err := w.reserveKeepingPlace(wctx, &req, w.now().Add(w.cfg.KeepPlaceFor))
	b.Adopt(old.Booking)
	b.waited = true
	if err == nil && b.OK {
		b, err = w.onTime(wctx, b)
	}
	j.bk = b
	if err == nil && b.OK {
		return false, nil
	}
	w.giveBack(ctx, b, limits.Waited)
	code := "RATE_LIMIT"
	switch {
	case err != nil:
		code = waitErrorCode(ctx)
	case b.Reason == limits.ReasonTier:
		code = "DAILY_TIER"
	}
	if rerr := w.release(j.p, j.claim.Attempts, ledger.ReleaseThrottle, code); rerr != nil {
		return true, rerr
	}
	if err != nil {
		return true, w.unreachable(ctx, j.log, err)
	}
	return true, w.waitFor(ctx, j.log, j.p, b.Reservation)
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
