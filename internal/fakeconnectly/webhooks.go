package fakeconnectly

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldmsg/herald/internal/connectly"
)

// Webhook statuses of the provider reference, section 5.1.
const (
	HookSent           = "sent"
	HookDelivered      = "delivered"
	HookRead           = "read"
	HookDeliveryFailed = "delivery_failed"
)

// hookRank orders statuses the way a recipient's truth moves: a failure ranks above sent
// (it ends a message that was never delivered) and is never sent after delivered.
var hookRank = map[string]int{HookSent: 1, HookDeliveryFailed: 2, HookDelivered: 2, HookRead: 3}

// WebhookConfig makes the fake call webhooks for the messages it accepts, as Connectly does
// (reference 5): delivery_status events for every accepted message (sent, then delivered and
// read, or delivery_failed), and inbound messages (button replies, typed texts) from some of
// their recipients, each signed with x-connectly-hmac-sha256 and sent as text/plain.
type WebhookConfig struct {
	// URL receives both topics, unless a registration made through the webhook API gives a
	// topic another address. Empty: only registered addresses receive calls.
	URL string
	// Secret signs every call. No webhook is sent without one.
	Secret string
	// Fates decide each accepted message's last status; the first matching one applies, and a
	// message no fate matches is read.
	Fates []Fate
	// Replies make some recipients answer after reading: the first matching reply applies.
	Replies []Reply
	// DuplicatePercent (0..100) of events are sent a second time.
	DuplicatePercent float64
	// ReorderPercent (0..100) of messages have their events sent in a shuffled order.
	ReorderPercent float64
	// Delay spaces a message's events: each comes a random 0..2×Delay after the previous one
	// (after the accept for the first). 0 sends them as fast as the calls go.
	Delay time.Duration
	// Concurrency is the number of calls in flight. Default 8.
	Concurrency int
	// Attempts is how many times a call that got no 2xx answer is tried, 100 ms apart and
	// doubling. Default 5.
	Attempts int
	// Seed makes the random choices (duplicates, order, delays) repeatable; 0 picks one.
	Seed uint64
	// HTTPClient makes the calls; default a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Fate picks messages by recipient, like a Rule, and says how their story ends.
type Fate struct {
	Numbers []string
	Suffix  string
	Percent float64
	Salt    string
	// Status is the last status: sent, delivered, read or delivery_failed.
	Status string
	// Code is the error code of a delivery_failed (default ERROR_CODE_UNSPECIFIED).
	Code string
}

// Reply picks recipients of read messages by a stable hash (Percent, Salt) and sends an
// inbound message from them once the read event is out.
type Reply struct {
	Percent float64
	Salt    string
	// Button is the text of a quick-reply button pressed (with Payload); the reply then carries
	// the message's callbackData, as documented for button replies.
	Button  string
	Payload string
	// Text is a typed message, e.g. "STOP"; it references no message and carries no callbackData.
	Text string
}

func (f Fate) matches(number string) bool {
	return Rule{Numbers: f.Numbers, Suffix: f.Suffix, Percent: f.Percent, Salt: f.Salt}.Matches(number, "")
}

// ValidateWebhooks reports the first problem with a webhook configuration.
func ValidateWebhooks(c WebhookConfig) error {
	for i, f := range c.Fates {
		if _, ok := hookRank[f.Status]; !ok {
			return fmt.Errorf("fate %d: status %q: want sent, delivered, read or delivery_failed", i, f.Status)
		}
		if f.Percent < 0 || f.Percent > 100 {
			return fmt.Errorf("fate %d: percent %v is outside 0..100", i, f.Percent)
		}
	}
	for i, r := range c.Replies {
		if r.Percent < 0 || r.Percent > 100 || (r.Button == "") == (r.Text == "") {
			return fmt.Errorf("reply %d: want a percent in 0..100 and exactly one of button and text", i)
		}
	}
	if c.DuplicatePercent < 0 || c.DuplicatePercent > 100 || c.ReorderPercent < 0 || c.ReorderPercent > 100 {
		return errors.New("webhooks: duplicate and reorder percents must be within 0..100")
	}
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("webhooks: URL %q is not an http(s) URL", c.URL)
		}
	}
	return nil
}

// WebhookStats are the totals of the webhook calls since New.
type WebhookStats struct {
	// Events counts events planned (duplicates included); Pending those not yet answered 2xx
	// or given up.
	Events  int `json:"events"`
	Pending int `json:"pending"`
	// Delivered counts events answered 2xx; Retries calls tried again; GaveUp events dropped
	// after Attempts; NoAddress events with no address to go to.
	Delivered int `json:"delivered"`
	Retries   int `json:"retries"`
	GaveUp    int `json:"gaveUp"`
	NoAddress int `json:"noAddress"`
	// ByStatus counts delivered events by status ("reply" for inbound messages).
	ByStatus map[string]int `json:"byStatus"`
}

// WebhookOutcome is what one accepted message's receiver was told.
type WebhookOutcome struct {
	Number    string `json:"number"`
	MessageID string `json:"messageId"`
	// Planned is the message's fate; Highest the highest status answered 2xx ("" for none).
	Planned string `json:"planned"`
	Highest string `json:"highest"`
}

// hookEvent is one planned webhook call.
type hookEvent struct {
	due   time.Time
	seq   uint64
	topic string
	body  []byte
	msgID string
	// status is the delivery status, or "reply".
	status string
}

type hookHeap []*hookEvent

func (h hookHeap) Len() int { return len(h) }
func (h hookHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h hookHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *hookHeap) Push(x any)   { *h = append(*h, x.(*hookEvent)) }
func (h *hookHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// hookMessage is the fake's memory of one accepted message, for outcomes.
type hookMessage struct {
	number, planned, highest string
}

// emitter plans, schedules and sends webhook calls. Its mutex is taken after Server.mu,
// never before.
type emitter struct {
	cfg    WebhookConfig
	hc     *http.Client
	clock  func() time.Time
	ids    *idGen
	wake   chan struct{}
	work   chan *hookEvent
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	rng      *rand.Rand
	queue    hookHeap
	seq      uint64
	regs     map[string]connectly.Webhook // by topic
	messages map[string]*hookMessage      // by message id
	order    []string
	stats    WebhookStats
}

func newEmitter(cfg WebhookConfig, clock func() time.Time) *emitter {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Concurrency
		hc = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &emitter{
		cfg: cfg, hc: hc, clock: clock, ids: &idGen{}, wake: make(chan struct{}, 1), work: make(chan *hookEvent),
		cancel: cancel, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		regs: map[string]connectly.Webhook{}, messages: map[string]*hookMessage{},
		stats: WebhookStats{ByStatus: map[string]int{}},
	}
	e.wg.Add(1 + cfg.Concurrency)
	go e.dispatch(ctx)
	for range cfg.Concurrency {
		go e.send(ctx)
	}
	return e
}

func (e *emitter) close() {
	e.cancel()
	e.wg.Wait()
}

// fate returns a message's planned last status and failure code.
func (e *emitter) fate(number string) (string, string) {
	for _, f := range e.cfg.Fates {
		if f.matches(number) {
			code := f.Code
			if code == "" {
				code = CodeUnspecified
			}
			return f.Status, code
		}
	}
	return HookRead, ""
}

// accepted plans the webhook calls of an accepted message.
func (e *emitter) accepted(rec Received) {
	if e.cfg.Secret == "" {
		return
	}
	status, code := e.fate(rec.Number)
	seq := []string{HookSent}
	switch status {
	case HookDelivered:
		seq = append(seq, HookDelivered)
	case HookRead:
		seq = append(seq, HookDelivered, HookRead)
	case HookDeliveryFailed:
		seq = append(seq, HookDeliveryFailed)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.messages[rec.MessageID] = &hookMessage{number: rec.Number, planned: status}
	e.order = append(e.order, rec.MessageID)
	// Due times grow along the sequence; a reordered message hands them out shuffled.
	dues := make([]time.Time, len(seq))
	t := rec.At
	for i := range dues {
		if e.cfg.Delay > 0 {
			t = t.Add(time.Duration(e.rng.Int64N(int64(2 * e.cfg.Delay))))
		}
		dues[i] = t
	}
	reorder := e.rng.Float64()*100 < e.cfg.ReorderPercent
	if reorder {
		e.rng.Shuffle(len(dues), func(i, j int) { dues[i], dues[j] = dues[j], dues[i] })
	}
	var evs []*hookEvent
	for i, st := range seq {
		evs = append(evs, &hookEvent{due: dues[i], topic: connectly.TopicDeliveryStatus, msgID: rec.MessageID, status: st,
			body: statusBody(rec, st, code, dues[i])})
	}
	if status == HookRead {
		for _, r := range e.cfg.Replies {
			if (Rule{Percent: r.Percent, Salt: r.Salt}).Matches(rec.Number, "") {
				due := slices.MaxFunc(dues, func(a, b time.Time) int { return a.Compare(b) })
				evs = append(evs, &hookEvent{due: due, topic: connectly.TopicMessages, msgID: rec.MessageID, status: "reply",
					body: replyBody(rec, r, e.ids.next(due), due)})
				break
			}
		}
	}
	if reorder {
		e.rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	}
	for _, ev := range evs {
		e.pushLocked(ev)
		if e.rng.Float64()*100 < e.cfg.DuplicatePercent {
			dup := *ev
			if e.cfg.Delay > 0 {
				dup.due = dup.due.Add(time.Duration(e.rng.Int64N(int64(2 * e.cfg.Delay))))
			}
			e.pushLocked(&dup)
		}
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *emitter) pushLocked(ev *hookEvent) {
	e.seq++
	ev.seq = e.seq
	heap.Push(&e.queue, ev)
	e.stats.Events++
	e.stats.Pending++
}

// dispatch hands events to the senders when they fall due.
func (e *emitter) dispatch(ctx context.Context) {
	defer e.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.mu.Lock()
		var next *hookEvent
		wait := time.Hour
		if len(e.queue) > 0 {
			if d := e.queue[0].due.Sub(e.clock()); d <= 0 {
				next = heap.Pop(&e.queue).(*hookEvent)
			} else {
				wait = d
			}
		}
		e.mu.Unlock()
		if next != nil {
			select {
			case e.work <- next:
				continue
			case <-ctx.Done():
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-timer.C:
		}
	}
}

// send makes the calls, trying each up to Attempts times.
func (e *emitter) send(ctx context.Context) {
	defer e.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-e.work:
			e.deliver(ctx, ev)
		}
	}
}

func (e *emitter) address(topic string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w, ok := e.regs[topic]; ok {
		return w.Address
	}
	return e.cfg.URL
}

func (e *emitter) deliver(ctx context.Context, ev *hookEvent) {
	addr := e.address(ev.topic)
	if addr == "" {
		e.finish(ev, false, true, 0)
		return
	}
	sig := Sign(ev.body, e.cfg.Secret)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ok := e.post(ctx, addr, ev.body, sig)
		if ok || attempt >= e.cfg.Attempts || ctx.Err() != nil {
			e.finish(ev, ok, false, attempt-1)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff *= 2
	}
}

func (e *emitter) post(ctx context.Context, addr string, body []byte, sig string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr, bytes.NewReader(body))
	if err != nil {
		return false
	}
	// The headers of the documented example call.
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", "go-resty/2.6.0")
	req.Header.Set("X-Connectly-Hmac-Sha256", sig)
	resp, err := e.hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

func (e *emitter) finish(ev *hookEvent, ok, noAddress bool, retries int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.Pending--
	e.stats.Retries += retries
	switch {
	case ok:
		e.stats.Delivered++
		e.stats.ByStatus[ev.status]++
		if m := e.messages[ev.msgID]; m != nil && hookRank[ev.status] > hookRank[m.highest] {
			m.highest = ev.status
		}
	case noAddress:
		e.stats.NoAddress++
	default:
		e.stats.GaveUp++
	}
}

func (e *emitter) snapshot() WebhookStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.stats
	st.ByStatus = make(map[string]int, len(e.stats.ByStatus))
	for k, v := range e.stats.ByStatus {
		st.ByStatus[k] = v
	}
	return st
}

func (e *emitter) outcomes() []WebhookOutcome {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]WebhookOutcome, 0, len(e.order))
	for _, id := range e.order {
		m := e.messages[id]
		out = append(out, WebhookOutcome{Number: m.number, MessageID: id, Planned: m.planned, Highest: m.highest})
	}
	return out
}

// Sign returns the x-connectly-hmac-sha256 value for body: Base64 (standard, padded) of
// HMAC-SHA256 over the raw body, keyed with the webhook secret (reference 5.3).
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// hookParty is a sender or recipient object of a webhook body.
type hookParty struct {
	ID          string  `json:"id"`
	ChannelType string  `json:"channelType"`
	Name        *string `json:"name"`
}

type hookStatusUpdate struct {
	ID       string            `json:"id"`
	Status   string            `json:"status"`
	Error    *errorBody        `json:"error"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type hookStatusBody struct {
	Topic        string            `json:"topic"`
	Timestamp    string            `json:"timestamp"`
	Sender       hookParty         `json:"sender"`
	Recipient    hookParty         `json:"recipient"`
	StatusUpdate hookStatusUpdate  `json:"statusUpdate"`
	Metadata     map[string]string `json:"metadata"`
	CallbackData json.RawMessage   `json:"callbackData,omitempty"`
}

// businessNumber is the sender of a message: its sender field, or the fake's stand-in.
func businessNumber(m connectly.TemplateMessage) string {
	if m.Sender != "" {
		return m.Sender
	}
	return "+14155550100"
}

// statusBody renders a delivery_status event like the reference's examples. The campaign
// name goes, by the message id, to either documented place: top-level
// metadata.campaign_name, or statusUpdate.metadata.campaignName with a null metadata.
func statusBody(rec Received, status, code string, at time.Time) []byte {
	name := "connectlyai"
	b := hookStatusBody{
		Topic: connectly.TopicDeliveryStatus, Timestamp: strconv.FormatInt(at.Unix(), 10),
		Sender:       hookParty{ID: businessNumber(rec.Message), ChannelType: "whatsapp", Name: &name},
		Recipient:    hookParty{ID: rec.Number, ChannelType: "whatsapp"},
		StatusUpdate: hookStatusUpdate{ID: rec.MessageID, Status: status},
		CallbackData: rec.Message.CallbackData,
	}
	if campaign := rec.Message.CampaignName; campaign != "" {
		if rec.MessageID[len(rec.MessageID)-1]%2 == 0 {
			b.Metadata = map[string]string{"campaign_name": campaign}
		} else {
			b.StatusUpdate.Metadata = map[string]string{"campaignName": campaign}
		}
	}
	if status == HookDeliveryFailed {
		e := codeError(code, 0).body()
		b.StatusUpdate.Error = &e
	}
	out, _ := json.Marshal(b)
	return out
}

// replyBody renders an inbound message from the recipient of rec (messages topic; the
// documented examples carry no topic field).
func replyBody(rec Received, r Reply, id string, at time.Time) []byte {
	type button struct {
		Text    string `json:"text"`
		Payload string `json:"payload"`
	}
	b := struct {
		Timestamp      string          `json:"timestamp"`
		Sender         hookParty       `json:"sender"`
		Recipient      hookParty       `json:"recipient"`
		Message        map[string]any  `json:"message"`
		Context        map[string]any  `json:"context,omitempty"`
		ButtonResponse *button         `json:"buttonResponse,omitempty"`
		CallbackData   json.RawMessage `json:"callbackData,omitempty"`
	}{
		Timestamp: strconv.FormatInt(at.Unix(), 10),
		Sender:    hookParty{ID: rec.Number, ChannelType: "whatsapp"},
		Recipient: hookParty{ID: businessNumber(rec.Message), ChannelType: "whatsapp"},
		Message:   map[string]any{"id": id, "text": r.Text},
	}
	if r.Button != "" {
		b.Message["text"] = r.Button
		b.Context = map[string]any{"replyToId": rec.MessageID}
		b.ButtonResponse = &button{Text: r.Button, Payload: r.Payload}
		b.CallbackData = rec.Message.CallbackData
	}
	out, _ := json.Marshal(b)
	return out
}

// WebhookStats returns the totals of the webhook calls.
func (s *Server) WebhookStats() WebhookStats {
	s.mu.Lock()
	e := s.hooks
	s.mu.Unlock()
	if e == nil {
		return WebhookStats{ByStatus: map[string]int{}}
	}
	return e.snapshot()
}

// WebhookOutcomes returns, for every accepted message in the order accepted, its planned
// fate and the highest status its receiver answered 2xx to.
func (s *Server) WebhookOutcomes() []WebhookOutcome {
	s.mu.Lock()
	e := s.hooks
	s.mu.Unlock()
	if e == nil {
		return nil
	}
	return e.outcomes()
}

// serveWebhookAPI answers the webhook registration endpoints of reference 5.2 and reports
// whether verb was one of them:
//
//	POST   /v1/businesses/{businessId}/create/webhooks
//	GET    /v1/businesses/{businessId}/webhooks
//	PUT    /v1/businesses/{businessId}/update/webhooks/{webhookId}
//	DELETE /v1/businesses/{businessId}/delete/webhooks/{webhookId}
func (s *Server) serveWebhookAPI(w http.ResponseWriter, r *http.Request, business, verb string) bool {
	method, id := "", ""
	switch {
	case verb == "create/webhooks":
		method = http.MethodPost
	case verb == "webhooks":
		method = http.MethodGet
	case strings.HasPrefix(verb, "update/webhooks/"):
		method, id = http.MethodPut, strings.TrimPrefix(verb, "update/webhooks/")
	case strings.HasPrefix(verb, "delete/webhooks/"):
		method, id = http.MethodDelete, strings.TrimPrefix(verb, "delete/webhooks/")
	default:
		return false
	}
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	}
	switch {
	case r.Method != method:
		w.Header().Set("Allow", method)
		writeError(w, apiError{Status: http.StatusMethodNotAllowed, Message: "Method Not Allowed"})
		return true
	case !s.authorized(r):
		writeError(w, unauthorized())
		return true
	case business != s.businessID:
		writeError(w, s.wrongBusiness(business))
		return true
	}
	// A fake without webhooks still keeps registrations.
	s.mu.Lock()
	if s.hooks == nil {
		s.hooks = newEmitter(WebhookConfig{}, s.clock)
	}
	e := s.hooks
	s.mu.Unlock()
	if id, err := url.PathUnescape(id); err == nil {
		return e.serveRegistration(w, method, id, body)
	}
	writeError(w, apiError{Status: http.StatusNotFound, Message: "Not Found"})
	return true
}

func (e *emitter) serveRegistration(w http.ResponseWriter, method, id string, body []byte) bool {
	bad := func(msg string) bool {
		writeError(w, apiError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: msg})
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	find := func() (string, bool) {
		for topic, reg := range e.regs {
			if reg.ID == id {
				return topic, true
			}
		}
		return "", false
	}
	switch method {
	case http.MethodGet:
		list := []connectly.Webhook{}
		for _, topic := range []string{connectly.TopicDeliveryStatus, connectly.TopicMessages} {
			if reg, ok := e.regs[topic]; ok {
				list = append(list, reg)
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"entity": map[string]any{"businessId": "", "webhooks": list}})
	case http.MethodPost:
		var reg connectly.Webhook
		if err := json.Unmarshal(body, &reg); err != nil {
			return bad("invalid request body: " + err.Error())
		}
		if reg.Topic != connectly.TopicDeliveryStatus && reg.Topic != connectly.TopicMessages {
			return bad(fmt.Sprintf("topic %q: want messages or delivery_status", reg.Topic))
		}
		if !validAddress(reg.Address) {
			return bad(fmt.Sprintf("address %q is not an http(s) URL", reg.Address))
		}
		if reg.Type == "" {
			reg.Type = "custom"
		}
		reg.ID = "wh_" + e.ids.next(e.clock())
		e.regs[reg.Topic] = reg // one address per topic: a new registration replaces the old
		writeJSON(w, http.StatusOK, map[string]any{"entity": reg})
	case http.MethodPut:
		topic, ok := find()
		if !ok {
			writeError(w, apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("webhook %q not found", id)})
			return true
		}
		var upd struct {
			Topic         string                          `json:"topic"`
			Address       string                          `json:"address"`
			Configuration *connectly.WebhookConfiguration `json:"configuration"`
		}
		if err := json.Unmarshal(body, &upd); err != nil {
			return bad("invalid request body: " + err.Error())
		}
		if upd.Topic != "" && upd.Topic != topic {
			return bad("the topic of a webhook cannot change")
		}
		reg := e.regs[topic]
		if upd.Address != "" {
			if !validAddress(upd.Address) {
				return bad(fmt.Sprintf("address %q is not an http(s) URL", upd.Address))
			}
			reg.Address = upd.Address
		}
		if upd.Configuration != nil {
			reg.Configuration = upd.Configuration
		}
		e.regs[topic] = reg
		writeJSON(w, http.StatusOK, map[string]any{"entity": reg})
	case http.MethodDelete:
		topic, ok := find()
		if !ok {
			writeError(w, apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("webhook %q not found", id)})
			return true
		}
		delete(e.regs, topic)
		writeJSON(w, http.StatusOK, struct{}{})
	}
	return true
}

func validAddress(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
