package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/report"
)

// Codes and labels of session sends.
const (
	// CodeWindowClosed is the skip reason of a session send whose recipient's customer
	// service window was closed at send time, with no fallback template.
	CodeWindowClosed = ledger.SkipWindowClosed
	// kindFallback labels a campaign's fallback template sent instead of a session message
	// in herald_sends_total, when Herald's record of the window said it was closed (the gate).
	kindFallback = "fallback"
	// kindFallbackRefused labels the fallback template sent after Connectly refused the
	// session message as outside the window although Herald's record said open
	// (sendRefusedFallback): a count that grows says the record drifts from Connectly's.
	kindFallbackRefused = "fallback_refused"
	// kindFallbackLate labels the fallback template sent after Connectly accepted the session
	// message and then reported it undelivered as outside the window (a delivery_failed
	// event; the webhook receiver creates its task, campaigns.KindFallback).
	kindFallbackLate = "fallback_late"
)

// sessionMessage is a session message (campaigns.KindSession): it goes only inside its
// recipient's customer service window, and its payload may name a fallback template.
type sessionMessage struct {
	m connectly.SessionMessage
	// p is the task's payload (its fallback template), category the send's template category.
	p        *campaigns.SendPayload
	category string
}

func (s sessionMessage) Send(ctx context.Context, c Client) (connectly.SendResult, error) {
	return c.SendSession(ctx, s.m)
}

func (sessionMessage) SentAs(bool) string { return ledger.SentSession }

func (sessionMessage) Label() string { return "" }

// Fallback is the payload's fallback template, if it names one. It is barred when it cannot
// go to its recipient: Meta refuses an authentication template to a BSUID (error 131062,
// reference 6), so sending it would only fail, and count towards the run's failure burst.
// The fallback's category is the send's (a session campaign's sends take its fallback
// template's, campaigns.SendCategory). Template campaigns skip such rows at expansion
// (campaigns.SkipBSUIDNotSupported); a session campaign's rows go, since the session message
// itself may reach a BSUID.
func (s sessionMessage) Fallback() (Message, Bar) {
	if s.p.Template == "" {
		return nil, Bar{}
	}
	fb := fallbackMessage{templateOf(s.p)}
	if campaigns.CategoryNeedsPhone(s.category) && campaigns.IsBSUID(s.p.To) {
		return fb, Bar{Code: campaigns.SkipBSUIDNotSupported, Why: "the authentication fallback cannot go to a BSUID"}
	}
	return fb, Bar{}
}

// fallbackMessage is a session payload's fallback template, sent instead of the session
// message: recorded as ledger.SentFallback and counted on its own.
type fallbackMessage struct{ templateMessage }

func (fallbackMessage) SentAs(bool) string { return ledger.SentFallback }

func (fallbackMessage) Label() string { return kindFallback }

// lateFallbackMessage is the fallback template of a session message Connectly accepted and
// then reported undelivered as outside the window (campaigns.KindFallback): recorded as
// ledger.SentFallback, counted as kindFallbackLate.
type lateFallbackMessage struct{ fallbackMessage }

func (lateFallbackMessage) Label() string { return kindFallbackLate }

// gateLateFallback skips a late fallback (campaigns.KindFallback) whose session message turned
// out delivered after all: its entry in the run that sent it (ledger.LateFallbackSource) no
// longer records a window-closed failure, a delivered or read having replaced it (events of
// one message may come in any order, and one that came while the message's send was being
// recorded waited in the parked set). The receiver writes the task a little after the failure
// (conversation.FollowupConfig.LateFallbackAfter) so that such events apply first. The entry
// becomes skipped(session_delivered) with no request.
func (w *Worker) gateLateFallback(ctx context.Context, j *job) (bool, error) {
	if j.p.Kind != campaigns.KindFallback {
		return false, nil
	}
	source, ok := ledger.LateFallbackSource(j.p.Run)
	if !ok {
		return false, nil
	}
	e, found, err := w.ledger.Entry(ctx, ledger.Address{Run: source, Recipient: j.p.To, Bucket: j.p.Bucket})
	if err != nil {
		return true, w.unreachable(ctx, j.log, err)
	}
	if r, _ := w.table.Lookup(e.Code); found && e.State == ledger.Failed && r.WindowClosed {
		return false, nil
	}
	now, err := w.skipEntry(context.WithoutCancel(ctx), j.p, ledger.SkipSessionDelivered)
	if w.countSkip(j.log, j.p, now, ledger.SkipSessionDelivered) {
		j.log.Info().Str("state", string(e.State)).Msg("late fallback skipped: its session message no longer reads as undelivered")
	}
	return true, err
}

// keptFallback is the payload of the fallback template of j's session message to keep for a
// late refusal (ledger.KeepFallback, for Config.LateFallbackFor), when j sends one whose
// fallback may go; nil otherwise. The claim's round trip keeps it (claimIn), just before the
// request: should Connectly accept the message and later report it undelivered because the
// window had closed, the webhook receiver sends that fallback then. A claim whose keep failed
// is given back (ledger.CodeFallbackUnkept) and the task tries again, so no session message
// goes whose fallback would be missing. What the receiver knows (the run, recipient and
// campaign, its bucket and row) is left out: it fills them in
// (conversation.Followups.HandleLateRefusal), and a kept payload is about 100 bytes shorter.
//
// keep is set for every send of a session payload while late fallbacks are on: one that sends
// something else this time (its fallback, at the gate) drops what an earlier attempt kept.
func (w *Worker) keptFallback(j *job) (payload []byte, keep bool) {
	if j.p.Kind != campaigns.KindSession || w.cfg.LateFallbackFor <= 0 {
		return nil, false
	}
	if j.bound == nil {
		return nil, true
	}
	if fb, bar := j.bound.Fallback(); fb == nil || bar.Code != "" {
		return nil, true
	}
	q := j.p
	q.Kind, q.Session, q.ReplyCols = campaigns.KindFallback, nil, nil
	q.Run, q.To, q.Campaign, q.Bucket, q.Row = "", "", "", 0, 0
	return campaigns.EncodeSend(q), true
}

// sessionOf is the session message p carries.
func sessionOf(p *campaigns.SendPayload, category string) (Message, error) {
	var content connectly.SessionContent
	if err := json.Unmarshal(p.Session, &content); err != nil {
		return nil, fmt.Errorf("decode session content: %w", err)
	}
	return sessionMessage{p: p, category: category, m: connectly.SessionMessage{
		To: p.To, Sender: p.Sender, CallbackData: p.Callback(), CampaignName: p.Campaign, Content: content,
	}}, nil
}

// gateWindow applies the customer service window to a WindowBound message (a session
// message), before any limit is reserved: with the window that counts for its sender number
// open (on the worker's clock, from the inbound messages the webhook receiver recorded; the
// customer must have written to that number, see servicewindow.Policy) for the tracker's
// margin plus the longest the send may still wait for its slot (gateAhead), the message
// goes; closed, its fallback goes instead, or, without one, the entry becomes
// skipped(window_closed) with no request (skipped with the Bar's code when the fallback cannot
// go to the recipient, see sessionMessage.Fallback). A window that cannot be read (Redis)
// makes the task try again later.
func (w *Worker) gateWindow(ctx context.Context, j *job) (bool, error) {
	if j.bound == nil {
		return false, nil
	}
	_, open, err := w.windows.OpenFor(ctx, w.cfg.Limits.BusinessID, j.p.Sender, w.gateAhead(), j.p.To)
	if err != nil {
		return true, w.unreachable(ctx, j.log, err)
	}
	if open {
		return false, nil
	}
	fb, bar := j.bound.Fallback()
	if fb != nil && bar.Code == "" {
		j.use(fb)
		j.log.Debug().Msg("customer service window closed: sending the fallback template")
		return false, nil
	}
	code, msg := CodeWindowClosed, "skipped: customer service window closed"
	if fb != nil {
		code, msg = bar.Code, msg+", and "+bar.Why
	}
	return true, w.skipUnsent(ctx, j, code, msg)
}

// skipUnsent settles j's entry skipped(code), with no request, for a message the gate will
// not send (its window closed), and only while its run is running (ledger.SkipWhileRunning):
// a paused run's task is held, its entry left queued, as every task of a paused run is
// (neither sent nor settled; the skip comes once the run is resumed, should the window still
// be closed then); a cancelled or completed run's task ends as its claim ends it
// (claimEnded: skipped(cancelled)). msg is the log line of a skip.
func (w *Worker) skipUnsent(ctx context.Context, j *job, code, msg string) error {
	sctx := context.WithoutCancel(ctx)
	now, held, err := w.ledger.SkipWhileRunning(sctx, j.p.Address(), code)
	if err != nil {
		return err
	}
	verdict := ledger.Verdict("")
	switch {
	case held == ledger.RunPaused:
		return w.holdPaused(ctx, j)
	case held != "":
		return w.claimEnded(ctx, j)
	case now == "":
		// Not skippable as it stood (left submitting by an earlier attempt, say).
		now, verdict, err = w.skipLeftOver(sctx, j.p, code)
		if err != nil {
			return err
		}
	}
	switch {
	case verdict == ledger.VerdictPaused:
		// Paused since the skip looked.
		return w.holdPaused(ctx, j)
	case verdict == ledger.VerdictCancelled:
		w.count(j.p, metrics.OutcomeSkipped, ledger.SkipCancelled)
	case w.countSkip(j.log, j.p, now, code):
		j.log.Info().Msg(msg)
	}
	return nil
}

// holdPaused holds j, whose run is paused, for Config.HoldDelay, as the gate and the claim
// hold such a task.
func (w *Worker) holdPaused(ctx context.Context, j *job) error {
	reason := "paused"
	if ps, err := w.ledger.PauseState(ctx, j.p.Run); err == nil && ps.Reason != "" {
		reason = ps.Reason
	}
	w.notePausedFollowup(ctx, j)
	return &HeldError{RetryAfter: w.cfg.HoldDelay, Reason: reason}
}

// gateAhead is the longest a send may wait between the gate and its request: keeping its
// place while its limits are booked ahead (KeepPlaceFor), then its slot, booked at most
// Limits.MaxWait ahead and booked afresh up to twice when the send comes to it late (onTime).
// report.SendAhead computes it, so `window show` and `recipient explain` count as the gate.
func (w *Worker) gateAhead() time.Duration {
	return report.SendAhead(w.cfg.KeepPlaceFor, w.cfg.Limits.MaxWait)
}

// SetWindowMargin sets how long before its close the worker counts a customer service
// window as closed when it decides whether a session message goes (default
// servicewindow.DefaultMargin; 0: until it closes). Call it before Start.
func (w *Worker) SetWindowMargin(d time.Duration) { w.windows.SetMargin(d) }

// use makes m the message j sends: a fallback replaces the message it stands for. Whether m
// is WindowBound is asked here, once.
func (j *job) use(m Message) {
	j.msg = m
	j.bound, _ = m.(WindowBound)
}

// sendRefusedFallback answers a WindowBound message (a session message) Connectly refused as
// outside the customer service window although Herald's record said open (an inbound webhook
// missed, a clock apart) with its fallback fb: fb goes at once, under the same claim, since
// the refusal sent nothing, so the customer still gets exactly one message. It is one more
// request, held to the limits like any: fresh rate permits; the pair slot and the room in
// the frequency cap the refused request took pass to it; and the daily tier counts the
// recipient, whose window is closed whatever Herald's record says. Its answer settles the
// entry as any send's (accepted: fb's SentAs, as from the gate), its history saying the
// refusal first (ledger.EventWindowRefused with Connectly's code, job.refused), so the
// recipient's story tells this fallback from one the gate sent.
func (w *Worker) sendRefusedFallback(ctx context.Context, j *job, fb Message) error {
	j.use(fb)
	if w.cfg.LateFallbackFor > 0 {
		// The session message did not go: no late refusal can send its fallback again. An
		// error is logged: should the receiver hear of a late refusal, it finds this entry
		// accepted as the fallback, or still being sent, and sends nothing.
		if err := w.ledger.ForgetFallback(context.WithoutCancel(ctx), j.p.Address()); err != nil {
			j.log.Warn().Err(err).Msg("could not drop the kept fallback")
		}
	}
	if done, err := w.rebook(ctx, j); done {
		return err
	}
	return w.settle(ctx, j, w.send(ctx, j))
}

// rebook books the limits of j's second request under the claim j holds, waiting for its
// slot as a paced send does (keeping its place for up to KeepPlaceFor, until the worker
// stops). It returns done when no slot came: the claim is given back (nothing was sent) and
// the task waits, as a send whose limits refused it before its claim; and when the recipient
// is on the suppression list for the fallback by then (recheckSuppressed).
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
		// The claim's check of the suppression list is a wait ago: look again.
		return w.recheckSuppressed(ctx, j)
	}
	if errors.Is(err, errTooLate) {
		// onTime gave the booking back; the fallback waits for a slot that keeps the pair
		// interval, its claim given back unused.
		return true, w.lateForPair(j, j.claim)
	}
	w.giveBack(ctx, b, limits.Waited)
	code := ledger.CodeRateLimit
	switch {
	case err != nil:
		code = waitErrorCode(ctx)
	case b.Reason == limits.ReasonTier:
		code = ledger.CodeDailyTier
	}
	if rerr := w.release(j.p, j.claim.Attempts, ledger.ReleaseThrottle, code); rerr != nil {
		return true, rerr
	}
	if err != nil {
		return true, w.unreachable(ctx, j.log, err)
	}
	return true, w.waitFor(ctx, j.log, j.p, b.Reservation)
}

// settledLabel is the class label of an accepted or failed send in herald_sends_total: an
// accepted message with a label of its own (the fallback template) is counted under it, the
// fallback sent after Connectly refused the session message (j.refused) under
// kindFallbackRefused, and a window-closed answer under CodeWindowClosed.
func settledLabel(j *job, d connectly.Decision, o ledger.Outcome, label string) string {
	switch {
	case o.State == ledger.Accepted && j.msg.Label() == kindFallback && j.refused != "":
		return kindFallbackRefused
	case o.State == ledger.Accepted && j.msg.Label() != "":
		return j.msg.Label()
	case (o.State == ledger.Failed || o.State == ledger.Unknown) && d.WindowClosed():
		// Unknown: a window refusal that settled a maybe-sent retry unknown (retry_refused).
		return CodeWindowClosed
	}
	return label
}
