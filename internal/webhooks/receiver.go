package webhooks

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/tick"
	"github.com/heraldmsg/herald/internal/ulid"
)

// SignatureHeader carries Base64(HMAC-SHA256(raw body, secret)) (reference 5.3).
const SignatureHeader = "X-Connectly-Hmac-Sha256"

// DefaultMaxBody is the default limit on a webhook body: 1 MiB, hundreds of times the
// documented payloads.
const DefaultMaxBody = 1 << 20

// DefaultParkFor is how long a delivery event that arrived before its send was recorded keeps
// being tried (longer while its entry is still being sent: see Config.ParkFor).
const DefaultParkFor = 15 * time.Minute

// DefaultOptOutWords are the inbound texts that always opt the sender out.
var DefaultOptOutWords = []string{"STOP", "UNSUBSCRIBE"}

// Suppression reasons written for opt-outs that arrive through webhooks. Delivery failures
// with an opt-out code are suppressed with the code itself.
const ReasonInboundOptOut = "INBOUND_OPT_OUT"

// Config configures a Receiver.
type Config struct {
	// Secrets are the webhook signing secrets. A request signed with any of them is accepted,
	// so a secret can be rotated without a gap. At least one is required.
	Secrets []string
	// MaxBody is the largest body accepted, in bytes; larger ones get 413. Default
	// DefaultMaxBody.
	MaxBody int64
	// OptOutWords are inbound texts that opt the sender out, in addition to
	// DefaultOptOutWords. A message opts out when its whole text (or the button pressed) is one
	// of them, ignoring case, surrounding spaces and punctuation.
	OptOutWords []string
	// ParkFor is how long a delivery event that arrived before its send was recorded keeps
	// being tried. Default DefaultParkFor. An event whose entry is still being sent (its
	// claim not yet settled, e.g. in a paused run) is kept longer, up to ledger.ParkedMaxAge.
	ParkFor time.Duration
	// RetryEvery is how often parked events are tried again by Start's loop. Default 1s.
	RetryEvery time.Duration
	// ReplyMemory is how long an inbound message is remembered once counted in its run's
	// replies, so that the same message delivered again (a retried webhook, or a second
	// receiver replica) is not counted twice. Default ledger.DefaultReplyMemory (48h).
	ReplyMemory time.Duration
	// Table classifies delivery failure codes and says which ones are opt-outs. Default: the
	// default table.
	Table *connectly.Table
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// OwnNumbers are the business's sender numbers (E.164): a messages-topic event sent from
	// one of them is an echo of an outbound message, not a customer writing (see isEcho).
	// With any listed, an inbound message's window is recorded under the business number it
	// was sent to (servicewindow.Policy); with none, Herald's sends name no number and every
	// window is recorded with none.
	OwnNumbers []string
	// Business is the Connectly business id the webhooks are for. Every inbound message
	// records its customer's service window under it (the same id keys the send limits).
	// Default "": the windows of an install with no business id configured, which every
	// Herald process of that install reads alike.
	Business string
}

// Deps are a Receiver's collaborators.
type Deps struct {
	// Redis holds the ledger. Required.
	Redis redis.UniversalClient
	// Logger is used for the receiver's own records; recipients are masked.
	Logger zerolog.Logger
	// Metrics may be nil.
	Metrics *metrics.Webhooks
	// Replies, when set, acts on inbound messages (on_reply rules); opt-outs come marked
	// (Inbound.OptOut), after the customer is suppressed.
	Replies ReplyHandler
	// LateRefusals, when set, acts on a delivery failure that says the customer's window had
	// closed (a session message Connectly accepted, then could not deliver).
	LateRefusals LateRefusalHandler
}

// Receiver is the http.Handler that takes Connectly's webhook calls: it checks the method,
// content type, size and signature, parses the body, and applies it to the ledger before
// answering 200. A request it could not record gets 503, so Connectly tries it again.
type Receiver struct {
	cfg     Config
	secrets [][]byte
	optOut  map[string]bool
	table   *connectly.Table
	ledger  *ledger.Ledger
	windows *servicewindow.Tracker
	log     zerolog.Logger
	// rejectLog is sampled: a misconfigured secret must not flood the logs.
	rejectLog zerolog.Logger
	m         *metrics.Webhooks
	replies   ReplyHandler
	late      LateRefusalHandler

	bucketsMu sync.Mutex
	buckets   map[string]int

	lifeMu sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New validates cfg and returns a Receiver. Call Start to retry parked events in the
// background.
func New(cfg Config, deps Deps) (*Receiver, error) {
	if deps.Redis == nil {
		return nil, errors.New("webhooks: Redis is required")
	}
	rc := &Receiver{m: deps.Metrics, replies: deps.Replies, late: deps.LateRefusals, optOut: map[string]bool{}, buckets: map[string]int{}}
	for _, s := range cfg.Secrets {
		if s = strings.TrimSpace(s); s != "" {
			rc.secrets = append(rc.secrets, []byte(s))
		}
	}
	if len(rc.secrets) == 0 {
		return nil, errors.New("webhooks: no webhook secret (set CONNECTLY_WEBHOOK_SECRET or connectly.webhook_secret_file)")
	}
	if cfg.MaxBody < 0 {
		return nil, fmt.Errorf("webhooks: max body %d is negative", cfg.MaxBody)
	}
	cfg.MaxBody = cmp.Or(cfg.MaxBody, DefaultMaxBody)
	cfg.ParkFor = cmp.Or(cfg.ParkFor, DefaultParkFor)
	cfg.RetryEvery = cmp.Or(cfg.RetryEvery, time.Second)
	cfg.ReplyMemory = cmp.Or(cfg.ReplyMemory, ledger.DefaultReplyMemory)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	rc.table = cfg.Table
	if rc.table == nil {
		t, err := connectly.NewTable(nil)
		if err != nil {
			return nil, err
		}
		rc.table = t
	}
	for _, w := range append(append([]string{}, DefaultOptOutWords...), cfg.OptOutWords...) {
		if n := normalizeWord(w); n != "" {
			rc.optOut[n] = true
		}
	}
	rc.cfg = cfg
	rc.ledger = ledger.New(deps.Redis, cfg.Now)
	rc.windows = servicewindow.New(deps.Redis, cfg.Now)
	rc.windows.SetPolicy(servicewindow.Policy{Senders: cfg.OwnNumbers})
	rc.log = deps.Logger.With().Str(logx.KeyComponent, "webhooks").Logger()
	rc.rejectLog = rc.log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})
	return rc, nil
}

// normalizeWord upper-cases s, drops surrounding spaces and punctuation and collapses inner
// spaces, so "  Stop! " and "STOP" compare equal.
func normalizeWord(s string) string {
	s = strings.Trim(s, " \t\r\n.,;:!?¡¿\"'()*")
	return strings.ToUpper(strings.Join(strings.Fields(s), " "))
}

// Results of a request, as counted by herald_webhook_requests_total.
const (
	resultOK          = "ok"
	resultUnsigned    = "unauthorized"
	resultTooLarge    = "too_large"
	resultBadRequest  = "bad_request"
	resultMediaType   = "unsupported_media_type"
	resultMethod      = "method_not_allowed"
	resultStoreFailed = "error"
)

// ServeHTTP answers one webhook call.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	status, result := rc.handle(w, r)
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, result+"\n")
	if rc.m != nil {
		rc.m.Requests.WithLabelValues(result).Inc()
		rc.m.Duration.Observe(time.Since(began).Seconds())
	}
}

func (rc *Receiver) handle(w http.ResponseWriter, r *http.Request) (int, string) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, resultMethod
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "text/plain" && mt != "application/json") {
			return http.StatusUnsupportedMediaType, resultMediaType
		}
	}
	if r.ContentLength > rc.cfg.MaxBody {
		return http.StatusRequestEntityTooLarge, resultTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rc.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, resultTooLarge
		}
		return http.StatusBadRequest, resultBadRequest
	}
	if !rc.Verify(body, r.Header.Get(SignatureHeader)) {
		rc.rejectLog.Warn().Str("remote", r.RemoteAddr).Bool("signed", r.Header.Get(SignatureHeader) != "").
			Msg("webhook refused: missing or wrong signature (check the webhook secret)")
		return http.StatusUnauthorized, resultUnsigned
	}
	ev, err := Parse(body)
	if err != nil {
		rc.rejectLog.Warn().Err(err).Int("bytes", len(body)).Msg("webhook refused: body is not a documented JSON object")
		return http.StatusBadRequest, resultBadRequest
	}
	if err := rc.Apply(r.Context(), ev); err != nil {
		rc.log.Error().Err(err).Msg("webhook not recorded; Connectly should send it again")
		return http.StatusServiceUnavailable, resultStoreFailed
	}
	return http.StatusOK, resultOK
}

// Verify reports whether signature (the header's value) is a valid signature of body under
// one of the secrets, comparing in constant time.
func (rc *Receiver) Verify(body []byte, signature string) bool {
	signature = strings.TrimSpace(signature)
	if signature == "" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	ok := false
	for _, s := range rc.secrets {
		mac := hmac.New(sha256.New, s)
		mac.Write(body)
		if hmac.Equal(mac.Sum(nil), got) {
			ok = true
		}
	}
	return ok
}

// Sign returns the signature header value of body under secret: Base64 (standard, padded) of
// HMAC-SHA256 over the raw body.
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Apply records a parsed event. It returns an error only when Redis failed.
func (rc *Receiver) Apply(ctx context.Context, ev Event) error {
	var (
		verdict string
		err     error
	)
	switch ev.Kind {
	case KindStatus:
		verdict, err = rc.applyStatus(ctx, ev)
	case KindInbound:
		verdict, err = rc.applyInbound(ctx, ev)
	default:
		verdict = "ignored"
	}
	if err != nil {
		return err
	}
	if rc.m != nil {
		kind := map[Kind]string{KindStatus: "status", KindInbound: "inbound", KindIgnored: "ignored"}[ev.Kind]
		status := ev.Status
		if ev.Inbound != nil {
			status = string(ev.Inbound.Kind)
		}
		if ev.Kind == KindStatus {
			if _, ok := stateOf(status); !ok {
				status = "other"
			}
		}
		rc.m.Events.WithLabelValues(kind, status, verdict).Inc()
		if ev.Kind == KindStatus && !ev.At.IsZero() {
			rc.m.Lag.WithLabelValues(status).Observe(max(0, rc.cfg.Now().Sub(ev.At).Seconds()))
		}
	}
	return nil
}

// stateOf maps a webhook status to the ledger state it moves a recipient to.
func stateOf(status string) (ledger.State, bool) {
	switch status {
	case StatusSent:
		return ledger.Sent, true
	case StatusDelivered:
		return ledger.Delivered, true
	case StatusRead:
		return ledger.Read, true
	case StatusDeliveryFailed:
		return ledger.Failed, true
	}
	return "", false
}

// failureCode is the most specific identifier of a delivery failure: its code, else its
// type, as a send's error is read (connectly.Table.Decide; reference 4.1, one shape for
// both). The catch-all ERROR_CODE_UNSPECIFIED and ERROR_TYPE_UNSPECIFIED come last: a body
// with no code of its own may write the catch-all code beside a specific type
// (ERROR_TYPE_INVALID_REQUEST), and that type is what the failure was. Recorded under the
// catch-all code, it read as transient, so `run retry` sent it again, and the same failure
// was recorded under another key when the body wrote "code": "" or left the code out.
func failureCode(e *connectly.ErrorBody) string {
	if e == nil {
		return ledger.CodeDeliveryFailed
	}
	specific := func(k string) string {
		if connectly.CatchAll(k) {
			return ""
		}
		return k
	}
	return clean(cmp.Or(specific(e.Code), specific(e.Type), e.Code, e.Type, ledger.CodeDeliveryFailed))
}

// clean keeps a code or id safe for the ledger's '|'-separated entries and bounded in size.
func clean(s string) string {
	s = strings.ReplaceAll(s, "|", "_")
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

func (rc *Receiver) applyStatus(ctx context.Context, ev Event) (string, error) {
	st, ok := stateOf(ev.Status)
	if !ok {
		return "unknown_status", nil
	}
	de := ledger.DeliveryEvent{State: st, MessageID: clean(ev.MessageID)}
	optOut, stopRun, windowClosed := false, "", false
	if st == ledger.Failed {
		de.Code = failureCode(ev.Error)
		de.Class = rc.table.ClassOf(de.Code).String()
		r, _ := rc.table.Lookup(de.Code)
		optOut, windowClosed = r.OptOut, r.WindowClosed
		if r.Class == connectly.ClassStopRun {
			stopRun = cmp.Or(r.Why, "a code that stops the run")
		}
	} else if st != ledger.Sent {
		de.TimeToDeliver = rc.timeToDeliver(ev)
	}
	var (
		verdict    string
		recipients []string
		run        string
		err        error
	)
	if cb := ev.Callback; cb != nil {
		de.Address = *cb
		recipients, run = []string{cb.Recipient}, cb.Run
		verdict, err = rc.applyDelivery(ctx, de)
	} else {
		recipients = ev.Customer
		verdict, de.Address, err = rc.applyByCampaign(ctx, ev, de)
		run = de.Run
	}
	if err != nil {
		return "", err
	}
	if windowClosed {
		if err := rc.lateRefusal(ctx, de, verdict); err != nil {
			return "", err
		}
	}
	if stopRun != "" && run != "" {
		// A failure that hits every recipient (a template Meta paused or disabled, one
		// deleted): the run's other messages would fail the same way, so it stops as the
		// worker stops it for such an answer to a send. A copy of the event pauses nothing
		// more; a run already ended stays as it is.
		paused, err := rc.ledger.Pause(ctx, run, fmt.Sprintf("delivery failed: %s (%s)", de.Code, stopRun))
		if err != nil {
			return "", err
		}
		if paused {
			rc.log.Warn().Str(logx.KeyRun, run).Str(logx.KeyCode, de.Code).Msg("run paused: a delivery failure stops the run")
		}
	}
	if optOut {
		for _, rcpt := range recipients {
			if err := rc.ledger.Suppress(ctx, rcpt, de.Code); err != nil {
				return "", err
			}
		}
		rc.log.Info().Str(logx.KeyRun, de.Run).Str(logx.KeyRecipient, logx.Phone(strings.Join(recipients, ","))).
			Str(logx.KeyCode, de.Code).Msg("opted out (delivery failure): added to the suppression list")
	}
	if verdict == "applied" && st == ledger.Failed {
		rc.log.Info().Str(logx.KeyRun, de.Run).Str(logx.KeyRecipient, logx.Phone(de.Recipient)).
			Str(logx.KeyCode, de.Code).Str(logx.KeyClass, de.Class).Msg("delivery failed")
	}
	rc.log.Debug().Str(logx.KeyRun, de.Run).Str(logx.KeyRecipient, logx.Phone(de.Recipient)).Str("status", ev.Status).
		Str("campaign", ev.Campaign).Str("verdict", verdict).Msg("delivery event")
	return verdict, nil
}

// applyDelivery applies one event whose entry is known, parking it when the entry is not
// yet recorded as sent.
func (rc *Receiver) applyDelivery(ctx context.Context, de ledger.DeliveryEvent) (string, error) {
	v, _, err := rc.ledger.ApplyDelivery(ctx, de)
	if err != nil {
		return "", err
	}
	switch v {
	case ledger.DeliveryEarly:
		if err := rc.park(ctx, de); err != nil {
			return "", err
		}
		return "parked", nil
	case ledger.DeliveryOtherMessage:
		return "other_message", nil
	case ledger.DeliveryNoEntry:
		return "no_entry", nil
	}
	return string(v), nil
}

// park keeps an event whose entry is not yet recorded as sent, to be tried again.
func (rc *Receiver) park(ctx context.Context, de ledger.DeliveryEvent) error {
	if err := rc.ledger.Park(ctx, de); err != nil {
		return err
	}
	if rc.m != nil {
		rc.m.Parked.WithLabelValues("parked").Inc()
	}
	return nil
}

// applyByCampaign finds the entry of an event without Herald's callbackData: in the recent
// runs of the campaign the event names (Herald sends the campaign id as campaignName), under
// each key the customer may be known by, the one entry that recorded this very message id.
// When none did but some are still being sent (no message id recorded yet: the event may
// have come before its send was recorded), the event is parked for each of them, still
// matched strictly: once a send records its id, the entry whose id it is takes the event and
// the others find it about another message. An unknown entry records no message id and is
// never matched this way (see ledger.DeliveryEvent.Strict).
func (rc *Receiver) applyByCampaign(ctx context.Context, ev Event, de ledger.DeliveryEvent) (verdict string, at ledger.Address, err error) {
	if ev.Campaign == "" || de.MessageID == "" || len(ev.Customer) == 0 {
		return "unmatched", ledger.Address{}, nil
	}
	de.Strict = true
	verdict = "unmatched"
	var early []ledger.Address
	_, err = rc.findInRecentRuns(ctx, ev.Campaign, 3, ev.Customer, func(a ledger.Address) (bool, error) {
		de.Address = a
		v, _, err := rc.ledger.ApplyDelivery(ctx, de)
		if err != nil {
			return false, err
		}
		switch v {
		case ledger.DeliveryApplied, ledger.DeliveryStale:
			verdict, at = string(v), a
			return true, nil
		case ledger.DeliveryEarly:
			early = append(early, a)
		}
		return false, nil
	})
	if err != nil {
		return "", ledger.Address{}, err
	}
	if verdict != "unmatched" || len(early) == 0 {
		return verdict, at, nil
	}
	for _, a := range early {
		de.Address = a
		if err := rc.park(ctx, de); err != nil {
			return "", ledger.Address{}, err
		}
	}
	if len(early) == 1 {
		at = early[0]
	}
	return "parked", at, nil
}

// findInRecentRuns looks for a customer's entry in the newest n runs of campaign (see
// recentAddresses): it calls found with each address in turn until found says it is the one,
// and returns that run ("" when none is).
func (rc *Receiver) findInRecentRuns(ctx context.Context, campaign string, n int, keys []string, found func(ledger.Address) (bool, error)) (string, error) {
	addrs, err := rc.recentAddresses(ctx, campaign, n, keys)
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		ok, err := found(a)
		if err != nil {
			return "", err
		}
		if ok {
			return a.Run, nil
		}
	}
	return "", nil
}

// recentAddresses is where a customer's entry would be in the newest n runs of campaign (of any
// campaign when ""), under each key the customer may be known by, newest run first.
func (rc *Receiver) recentAddresses(ctx context.Context, campaign string, n int, keys []string) ([]ledger.Address, error) {
	runs, err := rc.ledger.RecentRuns(ctx, campaign, n)
	if err != nil {
		return nil, err
	}
	addrs := make([]ledger.Address, 0, len(runs)*len(keys))
	for _, run := range runs {
		buckets, err := rc.bucketsOf(ctx, run)
		if err != nil {
			return nil, err
		}
		if buckets <= 0 {
			continue
		}
		for _, key := range keys {
			addrs = append(addrs, ledger.AddressIn(run, key, buckets))
		}
	}
	return addrs, nil
}

// bucketsOf returns a run's ledger bucket count, which never changes, from a small cache; 0
// for a run that no longer exists.
func (rc *Receiver) bucketsOf(ctx context.Context, runID string) (int, error) {
	rc.bucketsMu.Lock()
	n, ok := rc.buckets[runID]
	rc.bucketsMu.Unlock()
	if ok {
		return n, nil
	}
	r, err := rc.ledger.GetRun(ctx, runID)
	if errors.Is(err, ledger.ErrRunNotFound) {
		// Deleted since it was listed: nothing to match in it.
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	rc.bucketsMu.Lock()
	if len(rc.buckets) > 1000 {
		clear(rc.buckets)
	}
	rc.buckets[runID] = r.Buckets
	rc.bucketsMu.Unlock()
	return r.Buckets, nil
}

// timeToDeliver estimates the time from the send's acceptance (the creation time in the
// message id) to the event. The event time is the receipt time held within the second the
// event's timestamp names, which is all the precision Connectly gives; 0 when the id is not a
// ULID or the result is implausible.
func (rc *Receiver) timeToDeliver(ev Event) time.Duration {
	sent, ok := ulid.Time(ev.MessageID)
	if !ok {
		return 0
	}
	at := rc.cfg.Now()
	if !ev.At.IsZero() {
		lo, hi := ev.At, ev.At.Add(999*time.Millisecond)
		if at.Before(lo) {
			at = lo
		} else if at.After(hi) {
			at = hi
		}
	}
	d := at.Sub(sent)
	switch {
	case d < -time.Minute || d > 30*24*time.Hour:
		return 0
	case d <= 0:
		return time.Millisecond
	}
	return d
}

// isOptOut reports whether an inbound message is an opt-out: its text, the button's text,
// payload or id, or the list row's id or text is one of the opt-out words.
func (rc *Receiver) isOptOut(in *Inbound) bool {
	for _, v := range in.Answers() {
		if rc.optOut[normalizeWord(v)] {
			return true
		}
	}
	return false
}

// isEcho reports whether an inbound event is an echo of one of the business's own outbound
// messages (a webhook registered with configuration.echo, reference 5.2) rather than a
// customer writing. The reference shows no echo body, so Herald reads the parties, which every
// messages-topic body has: an event is an echo when its sender is the business (its id,
// Config.Business, or one of Config.OwnNumbers), or when it is addressed to the customer that
// Herald's own callbackData names (a customer's message is addressed to the business). An echo
// records nothing: no window (the customer did not write), no opt-out, no reply, no follow-up.
// This is the one place that decides it.
func (rc *Receiver) isEcho(ev Event) bool {
	if ev.senderID != "" && ev.senderID == rc.cfg.Business {
		return true
	}
	for _, k := range ev.Customer {
		if slices.Contains(rc.cfg.OwnNumbers, k) {
			return true
		}
	}
	return ev.Callback != nil && slices.Contains(ev.Addressee, ev.Callback.Recipient)
}

// applyInbound records the customer's service window, suppresses a customer who opted out
// and counts a reply in its run: the run in Herald's callbackData, unless it names another
// customer than the sender (ForeignCallback), else, for a button or list reply, the run found
// by replyRun, else the run the reply handler joined it to.
func (rc *Receiver) applyInbound(ctx context.Context, ev Event) (string, error) {
	in := ev.Inbound
	if in == nil {
		return "ignored", nil
	}
	if rc.isEcho(ev) {
		return "echo", nil
	}
	// Any message from the customer opens (or extends) the window, opt-outs included: the
	// window is Meta's rule, suppression is Herald's. The event's time, at most now (TouchTo
	// clamps a future one), else the time its first copy arrived (TouchUndated: a copy
	// delivered again later must not stretch the window). The window is the business
	// number's the message was sent to (the event's recipient); an event that names none
	// records a window with no number, which servicewindow.Policy decides the use of.
	if len(ev.Customer) > 0 {
		var err error
		if in.At.IsZero() {
			_, err = rc.windows.TouchUndated(ctx, rc.cfg.Business, ev.BusinessNumber(), ev.Customer, in.Key(), rc.cfg.ReplyMemory)
		} else {
			_, err = rc.windows.TouchTo(ctx, rc.cfg.Business, ev.BusinessNumber(), ev.Customer, in.At)
		}
		if err != nil {
			return "", err
		}
	}
	optOut := rc.isOptOut(in)
	verdict := "message"
	if optOut {
		verdict = "opt_out"
		for _, k := range ev.Customer {
			if err := rc.ledger.Suppress(ctx, k, ReasonInboundOptOut); err != nil {
				return "", err
			}
		}
		rc.log.Info().Str(logx.KeyRecipient, logx.Phone(strings.Join(ev.Customer, ","))).Str("reply", string(in.Kind)).
			Msg("opted out (inbound message): added to the suppression list")
	}
	joined := ""
	if rc.replies != nil {
		in.OptOut = optOut
		var err error
		if joined, err = rc.replies.HandleReply(ctx, in); err != nil {
			return "", err
		}
		if optOut {
			// Counted without the handler's join: in the run its callbackData names (unless
			// foreign), else, for a button or list reply, replyRun's.
			joined = ""
		}
	}
	// A callbackData naming another customer than the sender is not trusted: the reply is
	// counted as one without it, as the reply handler joins it (conversation.ForeignCallback),
	// so the run it names does not count a tap its customer never made.
	foreign := ForeignCallback(in.From, in.Callback)
	run := ""
	switch {
	case in.Callback != nil && !foreign:
		run = in.Callback.Run
	case (in.Kind == ReplyButton || in.Kind == ReplyList) && (in.ReplyTo != "" || joined == ""):
		// The replied-to message (context.replyToId) names its run whatever the copy. A reply
		// that names none is counted in the reply handler's join when it has one, which every
		// copy of the message shares: replyRun's newest run that messaged the customer would
		// count a copy delivered after a newer run in that run too.
		var err error
		if run, err = rc.replyRun(ctx, ev); err != nil {
			return "", err
		}
	}
	if run == "" {
		run = joined // plain text, placed by the reply handler's index of recent sends
	}
	if run != "" {
		label := ""
		if in.Kind == ReplyButton {
			label = in.Button.Label()
		}
		counted, err := rc.ledger.CountReply(ctx, ledger.Reply{Run: run, ID: in.Key(), Button: label, OptOut: optOut,
			Memory: rc.cfg.ReplyMemory})
		if err != nil {
			return "", err
		}
		if !counted {
			verdict = "duplicate"
		} else if !optOut {
			verdict = "reply"
			if label != "" {
				verdict = "button"
			}
		}
	}
	rc.log.Debug().Str(logx.KeyRun, run).Str(logx.KeyRecipient, logx.Phone(strings.Join(ev.Customer, ","))).
		Str("reply", string(in.Kind)).Str("verdict", verdict).Bool("foreign_callback", foreign).Msg("inbound message")
	return verdict, nil
}

// replyRuns is how many of the newest runs replyRun searches.
const replyRuns = 5

// replyRun finds the run a reply without Herald's callbackData answers, the way delivery
// events without it are matched: among the newest runs (of the campaign the body names, if
// any), the one whose entry for the customer, under any key they may be known by, recorded
// the replied-to message id (context.replyToId). A reply that names no message is given to
// the newest of those runs in which Connectly took a message for the customer. "" when none
// matches. The candidate entries are read in one round trip.
func (rc *Receiver) replyRun(ctx context.Context, ev Event) (string, error) {
	in := ev.Inbound
	if len(ev.Customer) == 0 {
		return "", nil
	}
	addrs, err := rc.recentAddresses(ctx, ev.Campaign, replyRuns, ev.Customer)
	if err != nil {
		return "", err
	}
	entries, err := rc.ledger.Entries(ctx, addrs)
	if err != nil {
		return "", err
	}
	for i, e := range entries {
		if in.ReplyTo != "" {
			if e.MessageID == in.ReplyTo {
				return addrs[i].Run, nil
			}
			continue
		}
		switch e.State {
		case ledger.Accepted, ledger.Sent, ledger.Delivered, ledger.Read, ledger.Unknown:
			return addrs[i].Run, nil
		}
	}
	return "", nil
}

// RetryParked tries parked delivery events once (see ledger.RetryParked): events whose
// entry is now recorded as sent are applied (or found stale) and dropped; events still early
// stay until ParkFor has passed since they arrived, or, while their entry is still being sent
// (a paused run holds a dead worker's claim until it resumes), until ledger.ParkedMaxAge has.
// It returns how many events it dropped and how many it left parked.
func (rc *Receiver) RetryParked(ctx context.Context) (done, remaining int, err error) {
	then := func(ctx context.Context, o ledger.ParkedOutcome) error {
		if o.Event.State != ledger.Failed || !rc.windowClosed(o.Event.Code) {
			return nil
		}
		return rc.lateRefusal(ctx, o.Event, string(o.Delivery))
	}
	return rc.ledger.RetryParkedThen(ctx, rc.cfg.ParkFor, then, func(o ledger.ParkedOutcome) {
		if o.Verdict == ledger.ParkedExpired {
			rc.log.Warn().Str(logx.KeyRun, o.Event.Run).Str(logx.KeyRecipient, logx.Phone(o.Event.Recipient)).
				Str("state", string(o.Prior)).Str("status", string(o.Event.State)).Dur("parked_for", o.Age).
				Msg("delivery event expired: its send was never recorded")
		}
		if rc.m != nil {
			rc.m.Parked.WithLabelValues(string(o.Verdict)).Inc()
		}
	})
}

// Parked returns how many delivery events are waiting for their entry.
func (rc *Receiver) Parked(ctx context.Context) (int64, error) {
	return rc.ledger.ParkedCount(ctx)
}

// Start retries parked events every RetryEvery until Stop. It returns at once.
func (rc *Receiver) Start(ctx context.Context) {
	rc.lifeMu.Lock()
	defer rc.lifeMu.Unlock()
	if rc.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	rc.cancel, rc.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		tick.Every(ctx, rc.cfg.RetryEvery, func(ctx context.Context) {
			if _, _, err := rc.RetryParked(ctx); err != nil && ctx.Err() == nil {
				rc.log.Warn().Err(err).Msg("retrying parked delivery events")
			}
		})
	}(rc.done)
}

// Stop ends Start's loop and waits for it. It is safe to call twice, or without Start.
func (rc *Receiver) Stop() {
	rc.lifeMu.Lock()
	cancel, done := rc.cancel, rc.done
	rc.cancel, rc.done = nil, nil
	rc.lifeMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

var _ http.Handler = (*Receiver)(nil)
