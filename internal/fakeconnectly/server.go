package fakeconnectly

import (
	"cmp"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Template statuses of the provider reference, section 7.
const (
	TemplateApproved = "MESSAGE_TEMPLATE_STATUS_APPROVED"
	TemplatePending  = "MESSAGE_TEMPLATE_STATUS_PENDING"
	TemplateRejected = "MESSAGE_TEMPLATE_STATUS_REJECTED"
)

// DefaultRateLimit is Connectly's documented limit on each send endpoint, in requests/second.
const DefaultRateLimit = 200

// maxBody bounds a request body the fake reads.
const maxBody = 1 << 20

// Config configures a Server.
type Config struct {
	// BusinessID is the business id the API answers for; other ids in the path get 404.
	// Required.
	BusinessID string `json:"businessId,omitempty"`
	// APIKey is the X-API-Key value the API accepts; a missing or different key gets 401.
	// Required.
	APIKey string `json:"apiKey,omitempty"`
	// RateLimit is the number of sends per second the business may make, as a token bucket
	// holding one second's worth (burst == RateLimit); excess sends get 429. Template and
	// session sends take from the same bucket. 0 means DefaultRateLimit, -1 disables the
	// limit.
	RateLimit int `json:"rateLimit,omitempty"`
	// RateLimitBody is the body shape of the rate limit's 429: BodyError (the default:
	// Connectly's JSON error body with ERROR_TYPE_UNSPECIFIED / ERROR_CODE_UNSPECIFIED) or
	// BodyEmpty (a bare 429).
	RateLimitBody string `json:"rateLimitBody,omitempty"`
	// RateLimitRetryAfter adds a Retry-After header to the rate limit's 429: the whole
	// seconds until the bucket holds a token again, at least 1. The reference documents no
	// Retry-After (4.4, 8) and leaves its presence open (10.13), so by default there is none.
	RateLimitRetryAfter bool `json:"rateLimitRetryAfter,omitempty"`
	// Rules inject faults; the first matching rule applies. See Rule.
	Rules []Rule `json:"rules,omitempty"`
	// DeletedTemplateFailure is the error code of the delivery_failed event of a message
	// whose template is deleted (DELETE …/templates/{name}) before it is delivered: "in-flight
	// sends using it fail at delivery" (reference 7), with no code given. Default
	// ERROR_CODE_MESSAGE_TEMPLATE_DELETED (4.3 #17), (inferred) the code whose meaning is
	// nearest.
	DeletedTemplateFailure string `json:"deletedTemplateFailure,omitempty"`
	// Templates are the templates that exist. When empty, every template name and language
	// exists and is approved.
	Templates []Template `json:"templates,omitempty"`
	// Senders are the business's WhatsApp numbers. When set, a send's sender must be one of
	// them, and is required when there are several (ERROR_CODE_INVALID_SENDER_ID). When
	// empty, any E.164 sender is accepted and it may be omitted.
	Senders []string `json:"senders,omitempty"`
	// MaxReceived caps how many sends Received keeps (the first ones); later sends still
	// count in Stats and AcceptedCount. 0 keeps everything. Long benchmarks should set it.
	// When it is set, no conversations are kept either (Conversations answers an error).
	MaxReceived int `json:"maxReceived,omitempty"`
	// Clock is the time source of the rate limit, message ids and Received.At. Default
	// time.Now. Rule latency always waits in real time.
	Clock func() time.Time `json:"-"`
	// Webhooks makes the fake call signed webhooks for accepted messages (see WebhookConfig).
	// Nothing is sent while its Secret is empty.
	Webhooks WebhookConfig `json:"webhooks"`
	// WindowAnswer is how a session send to a customer whose 24-hour window is closed is
	// answered: refused at once with WindowAnswerCodes (the default, "" too),
	// WindowAnswerOutsideWindow, WindowAnswerNoConversation, WindowAnswerDeadline504 or
	// WindowAnswerPrecondition; or accepted and failed at delivery, by a delivery_failed
	// event, with WindowAnswerAtDelivery, WindowAnswerAtDelivery131047 or
	// WindowAnswerAtDelivery131047String (WindowAnswers lists them all).
	WindowAnswer string `json:"windowAnswer,omitempty"`
	// IgnoreWindow accepts session sends whatever the window (for benchmarks of the send
	// path), and delivers them, whatever WindowAnswer says. The record still flags those made
	// outside a window (Received.OutsideWindow).
	IgnoreWindow bool `json:"ignoreWindow,omitempty"`
	// Strict turns on refusals the reference does not state (see Strict); all are off by
	// default.
	Strict Strict `json:"strict"`
	// NumberPunctuation is how a number written with punctuation ("+1(604) 585 2331") is
	// taken: NumbersNormalized (the default, "" too: the reference's guess, 2.1) or
	// NumbersRefused.
	NumberPunctuation string `json:"numberPunctuation,omitempty"`
	// RefuseBSUIDSessions answers a session send to a BSUID-only recipient (a BSUID in
	// recipient.id or recipient.userId, no E.164 id) with 400, ERROR_TYPE_INVALID_REQUEST and
	// no code, after the body checks and before the window: the GitBook's "sending to
	// BSUID-only customers is not available yet and returns 400" (reference 3.1, 6, 10.9).
	// By default such a send is accepted, as the newer page says.
	RefuseBSUIDSessions bool `json:"refuseBsuidSessions,omitempty"`
	// DefaultLanguage, when set, is the language a template send without one is taken in:
	// "en" gives the GitBook's reading ("language" optional, "in most cases the default is
	// en", reference 2.1). The send then succeeds when that translation exists and is
	// approved, and is answered ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND when it does not, as
	// for a language given. By default ("") a send without a language is refused with
	// ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID ("language is required"): the newer page
	// marks it required. The record keeps the body as sent (Received.Message.Language "").
	DefaultLanguage string `json:"defaultLanguage,omitempty"`
	// DedupeMessageID plays a Connectly that deduplicates session sends on message.id, per
	// business: a valid session send whose message.id is that of a message already taken as
	// sent is answered 200 with that message's id, at once (before the window check and the
	// rules), and sends nothing: no message in the record's accepted counts or the
	// conversations, no delivery webhooks (Received.DuplicateOf, Stats.Deduplicated). It
	// holds whatever the recipient and content of the repeat; a send whose message was not
	// taken (refused, dropped) leaves its id free. By default message.id deduplicates nothing, and two sends
	// with one id are two messages: reference 3.1 calls it "an optional client-chosen id;
	// nothing says it deduplicates", and 10.6 leaves idempotency open. The template API has
	// no such field. Reset forgets the ids taken.
	DedupeMessageID bool `json:"dedupeMessageId,omitempty"`
	// CampaignFlowMessages, when above 0, makes a send carrying a campaignName start a
	// Flow-Builder flow as well, the GitBook's reading ("adding campaignName to a Message
	// Service call can trigger a whole Flow-Builder sequence", reference 2.1, 10.8): each
	// send whose message is taken, on either endpoint, also sends this many messages of the
	// flow to its recipient, from its sender, at the same time. They are in the record as
	// KindFlow messages of the conversation (SentMessage.StartedBy names the send), the
	// send's Received.Flow and Stats.Flows and FlowMessages, and each has its own id and
	// delivery webhooks by Fates, with the campaign name and no callbackData; they are not
	// replied to, and AcceptedCount and Stats.Accepted count the sends' messages only. By
	// default (0) campaignName is an analytics tag only, the newer page's reading: it is kept
	// with the message (Received.Message, SentMessage.CampaignName) and in its webhooks'
	// metadata, and starts nothing.
	CampaignFlowMessages int `json:"campaignFlowMessages,omitempty"`
	// UncodedBody is what an error body carries where the fake has no documented code or
	// type for its answer: UncodedUnspecified (the default, "" too: ERROR_CODE_UNSPECIFIED
	// and ERROR_TYPE_UNSPECIFIED), UncodedEmpty ("code": "") or UncodedAbsent (the field
	// left out). The answers it concerns: the 401 for the X-API-Key (no documented code),
	// the 404 for another business id or an unknown path and the 405 for a wrong method
	// (neither), a session send's 400 for a rule no documented code names, the webhook
	// API's own 400s and 404s, and a Rule or Fate whose Code is an error type or whose
	// Status has no code of its own (400, 401, 409...). It applies to delivery_failed
	// errors too, not to the control endpoints. The record keys such an answer
	// HTTP_<status> whatever the body says (Received.ErrorCode).
	UncodedBody string `json:"uncodedBody,omitempty"`
}

// Received is the record of one request to a send endpoint.
type Received struct {
	// At is the Clock time the request arrived.
	At time.Time `json:"at"`
	// Kind is the endpoint: KindTemplate or KindSession.
	Kind string `json:"kind"`
	// Number is the request's recipient ("" when the body could not be read). A session
	// send's BSUID recipient is written "bsuid:CC.id", as a template send writes it.
	Number string `json:"number"`
	// Message is the decoded body (best effort for requests refused before validation). For
	// a session send it holds what both endpoints share: number (the recipient), sender
	// (sender.id), callbackData and campaignName; the whole body is in Session.
	Message TemplateMessage `json:"message"`
	// Session is a session send's decoded body (best effort for requests refused before
	// validation); nil for a template send.
	Session *SessionMessage `json:"session,omitempty"`
	// Content is a validated session send's content kind (ContentText, ContentAttachments...).
	Content string `json:"content,omitempty"`
	// OutsideWindow is set on a session send made when its recipient had no open 24-hour
	// window, whatever the answer: the window's own refusal, or an earlier 401, 404, 429 or
	// 400. A sender that respects the window never has one.
	OutsideWindow bool `json:"outsideWindow,omitempty"`
	// WindowOpen is set on a send (template or session) made while its recipient's 24-hour
	// window was open. Meta does not charge utility templates sent into an open window, and
	// the daily messaging limit counts only people messaged outside one (reference 3.1).
	WindowOpen bool `json:"windowOpen,omitempty"`
	// WindowFailure is set on a session message accepted outside its recipient's window under
	// a WindowAnswer that fails it at delivery (WindowAnswerAtDelivery...): the code of the
	// error its delivery_failed event carries, ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW
	// or CodeMetaReengagement. The message never reaches the customer.
	WindowFailure string `json:"windowFailure,omitempty"`
	// windowRefused marks a session send refused because the window was closed.
	windowRefused bool
	// windowFail is the delivery error of a session send outside its recipient's window
	// under a WindowAnswer that fails it at delivery (Status 0 otherwise); takeLocked sets
	// WindowFailure from it when the message is taken.
	windowFail apiError
	// taken marks a send whose message was taken (takeLocked) before it was recorded.
	taken bool
	// template is the template a template send named, when the fake has it configured.
	template *Template
	// Status is the HTTP status answered; 0 when no answer was written (LoseResponse, or the
	// client went away during a rule's Latency).
	Status int `json:"status"`
	// MessageID is the id given to a message the fake took as sent: an accepted one, one
	// whose answer was lost, and one sent although the answer was an error (Rule.Sent).
	MessageID string `json:"messageId,omitempty"`
	// Flow lists the ids of the messages of the flow the send's campaignName started
	// (Config.CampaignFlowMessages), sent with its message.
	Flow []string `json:"flow,omitempty"`
	// DuplicateOf is set on a session send that repeated the message.id of a message already
	// taken, under Config.DedupeMessageID: it is that message's id, which the answer gave.
	// Nothing was sent for it (MessageID is empty).
	DuplicateOf string `json:"duplicateOf,omitempty"`
	// ErrorCode is set when the answer was an error: the body's code, "HTTP_<status>" when
	// the body has none (or is not a JSON error body), CodeCanceled when the client went
	// away during a rule's Latency, or CodeDropped when the connection was closed before the
	// message was taken. With a MessageID as well, the message went out despite the error
	// (Rule.Sent), or despite the client's giving up.
	ErrorCode string `json:"errorCode,omitempty"`
	// Body is the shape of an error answer's body (BodyError, BodyEmpty, BodyGateway, BodyGRPC);
	// empty for a success and for no answer.
	Body string `json:"body,omitempty"`
}

// Accepted reports whether the fake took the message as sent (it has a message id and its
// delivery webhooks follow), whatever the answer said.
func (r Received) Accepted() bool { return r.MessageID != "" }

// SentDespiteError reports whether the message went out although the answer was an error.
func (r Received) SentDespiteError() bool { return r.MessageID != "" && r.ErrorCode != "" }

// Stats are the totals of the send endpoints since New or the last Reset.
type Stats struct {
	// Requests counts every request to either send path, whatever the answer.
	Requests int `json:"requests"`
	// Sessions counts the requests to send/messages among Requests, SessionsAccepted the
	// session messages among Accepted, and OutsideWindow the session requests made outside
	// the recipient's window (Received.OutsideWindow).
	Sessions         int `json:"sessions"`
	SessionsAccepted int `json:"sessionsAccepted"`
	OutsideWindow    int `json:"outsideWindow"`
	// WindowRefused counts the session sends refused because the recipient's window was
	// closed (never opened or expired); AcceptedOutsideWindow the session messages accepted
	// outside a window, which only Config.IgnoreWindow, a skipped check or a WindowAnswer
	// that fails them at delivery allows; WindowFailedAtDelivery those of them that fail at
	// delivery for the window (Received.WindowFailure), whether or not a webhook tells it.
	WindowRefused          int `json:"windowRefused"`
	AcceptedOutsideWindow  int `json:"acceptedOutsideWindow"`
	WindowFailedAtDelivery int `json:"windowFailedAtDelivery"`
	// TemplatesInWindow counts the template messages accepted while their recipient's window
	// was open.
	TemplatesInWindow int `json:"templatesInWindow"`
	// Accepted counts the messages taken as sent, including those whose answer was lost and
	// those sent despite an error answer. A message taken on arrival (Rule.Sent) counts from
	// then, as AcceptedCount does, while its request joins Requests and Received only once
	// it is answered or its client has gone.
	Accepted int `json:"accepted"`
	// DistinctAccepted counts the distinct numbers with at least one accepted message.
	DistinctAccepted int `json:"distinctAccepted"`
	// Errors counts refused requests (not sent) by Received.ErrorCode.
	Errors map[string]int `json:"errors"`
	// SentWithError counts messages sent although the answer was an error (Rule.Sent with an
	// error answer); they count in Accepted, not in Errors.
	SentWithError int `json:"sentWithError"`
	// Statuses counts answers by HTTP status (requests answered with nothing are not counted).
	Statuses map[int]int `json:"statuses"`
	// Throttled counts 429 answers, from the rate limit or from rules.
	Throttled int `json:"throttled"`
	// Lost counts messages accepted with the answer dropped on purpose (LoseResponse, the
	// message taken).
	Lost int `json:"lost"`
	// Canceled counts requests whose client went away during a rule's Latency, whether or not
	// their message had been taken; SentCanceled those of them whose message had (Rule.Sent:
	// taken on arrival), which count in Accepted, not in Errors.
	Canceled     int `json:"canceled"`
	SentCanceled int `json:"sentCanceled"`
	// Dropped counts requests whose connection was closed before the message was taken
	// (Rule.LoseResponse with NotSent); they count in Errors too, keyed CodeDropped.
	Dropped int `json:"dropped"`
	// Deduplicated counts the session sends that repeated the message.id of a message
	// already taken (Config.DedupeMessageID), which sent nothing; answered with the first
	// message's id, they are in neither Accepted nor Errors.
	Deduplicated int `json:"deduplicated"`
	// Flows counts the flows started by a send's campaignName, FlowMessages the messages
	// they sent (Config.CampaignFlowMessages); those messages are not in Accepted.
	Flows        int `json:"flows"`
	FlowMessages int `json:"flowMessages"`
}

// Server is a fake Connectly API. It is safe for concurrent use.
type Server struct {
	businessID string
	apiKey     []byte
	rateLimit  int
	rateBody   string
	// strict is Config.Strict, numberPunctuation Config.NumberPunctuation.
	strict            Strict
	numberPunctuation string
	// rateRetryAfter is Config.RateLimitRetryAfter.
	rateRetryAfter bool
	// refuseBSUIDSessions is Config.RefuseBSUIDSessions.
	refuseBSUIDSessions bool
	// defaultLanguage is Config.DefaultLanguage.
	defaultLanguage string
	// dedupe is Config.DedupeMessageID.
	dedupe bool
	// flowMessages is Config.CampaignFlowMessages.
	flowMessages int
	// deletedFailure is Config.DeletedTemplateFailure.
	deletedFailure string
	// uncoded is Config.UncodedBody.
	uncoded string
	// anyTemplate is set when no templates are configured: a send may name any template.
	anyTemplate bool
	senders     map[string]struct{}
	maxRecords  int
	clock       func() time.Time
	handler     http.Handler
	// windows holds the customers' inbound message times; its lock is a leaf.
	windows      *windowStore
	windowAnswer string
	ignoreWindow bool

	mu    sync.Mutex
	rules []*compiledRule
	// tmplList is the configured templates not deleted, templateIndex their index by name
	// and language, and deletedTemplates the names deleted through the API.
	tmplList         []Template
	templateIndex    map[templateKey]int
	deletedTemplates map[string]bool
	received         []Received
	accepted         map[string]int
	// convs is the record by customer (customerKey); nil when MaxReceived is set.
	convs map[string]*convLog
	// taken maps the message.id of every session message taken to the message's id, under
	// Config.DedupeMessageID.
	taken map[string]string
	stats Stats
	ids   idGen
	// The rate limit's token bucket, in units of 1e-9 token.
	bucket     int64
	bucketTime time.Time
	srv        *http.Server
	// hooks sends webhooks and keeps webhook registrations; nil until configured or used.
	hooks *emitter
}

// New validates cfg and returns a Server. It does not listen; use Handler or Start.
func New(cfg Config) (*Server, error) {
	if cfg.BusinessID == "" {
		return nil, errors.New("fakeconnectly: business id is empty")
	}
	if cfg.APIKey == "" {
		return nil, errors.New("fakeconnectly: API key is empty")
	}
	switch {
	case cfg.RateLimit == 0:
		cfg.RateLimit = DefaultRateLimit
	case cfg.RateLimit < -1:
		return nil, fmt.Errorf("fakeconnectly: rate limit %d (want > 0, 0 for the default or -1 for none)", cfg.RateLimit)
	}
	if err := ValidateRules(cfg.Rules); err != nil {
		return nil, fmt.Errorf("fakeconnectly: %w", err)
	}
	if !rateLimitBodies.allows(cfg.RateLimitBody) {
		return nil, fmt.Errorf("fakeconnectly: rate limit body %q: want %s", cfg.RateLimitBody, rateLimitBodies)
	}
	if !numberPunctuations.allows(cfg.NumberPunctuation) {
		return nil, fmt.Errorf("fakeconnectly: number punctuation %q: want %s", cfg.NumberPunctuation, numberPunctuations)
	}
	if !uncodedBodies.allows(cfg.UncodedBody) {
		return nil, fmt.Errorf("fakeconnectly: uncoded body %q: want %s", cfg.UncodedBody, uncodedBodies)
	}
	if !windowAnswers.allows(cfg.WindowAnswer) {
		return nil, fmt.Errorf("fakeconnectly: window answer %q: want %s", cfg.WindowAnswer, windowAnswers)
	}
	if cfg.CampaignFlowMessages < 0 {
		return nil, fmt.Errorf("fakeconnectly: campaign flow messages %d (want 0 for none, or more)", cfg.CampaignFlowMessages)
	}
	if l := cfg.DefaultLanguage; l != "" && (strings.TrimSpace(l) == "" || strings.ContainsAny(l, " \t\r\n\"")) {
		return nil, fmt.Errorf("fakeconnectly: default language %q: want a language code such as en, or none", l)
	}
	s := &Server{
		businessID:          cfg.BusinessID,
		apiKey:              []byte(cfg.APIKey),
		rateLimit:           cfg.RateLimit,
		rateBody:            cfg.RateLimitBody,
		rateRetryAfter:      cfg.RateLimitRetryAfter,
		refuseBSUIDSessions: cfg.RefuseBSUIDSessions,
		defaultLanguage:     cfg.DefaultLanguage,
		dedupe:              cfg.DedupeMessageID,
		flowMessages:        cfg.CampaignFlowMessages,
		deletedFailure:      cmp.Or(cfg.DeletedTemplateFailure, CodeTemplateDeleted),
		uncoded:             cfg.UncodedBody,
		strict:              cfg.Strict,
		numberPunctuation:   cfg.NumberPunctuation,
		anyTemplate:         len(cfg.Templates) == 0,
		deletedTemplates:    map[string]bool{},
		senders:             make(map[string]struct{}, len(cfg.Senders)),
		maxRecords:          cfg.MaxReceived,
		clock:               cfg.Clock,
		rules:               compileRules(cfg.Rules),

		windows:      newWindowStore(),
		windowAnswer: cfg.WindowAnswer,
		ignoreWindow: cfg.IgnoreWindow,
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	tmpls, err := checkTemplates(cfg.Templates)
	if err != nil {
		return nil, fmt.Errorf("fakeconnectly: %w", err)
	}
	s.tmplList = tmpls
	s.indexTemplatesLocked()
	for _, n := range cfg.Senders {
		if !validE164(n) {
			return nil, fmt.Errorf("fakeconnectly: sender %q is not an E.164 number", n)
		}
		s.senders[n] = struct{}{}
	}
	if err := ValidateWebhooks(cfg.Webhooks); err != nil {
		return nil, fmt.Errorf("fakeconnectly: %w", err)
	}
	if cfg.Webhooks.Secret != "" {
		s.hooks = newEmitter(cfg.Webhooks, s.clock, s.windows, s.uncoded)
	}
	s.resetLocked()
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s, nil
}

// Handler serves the API and the control endpoints.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on addr (for example "127.0.0.1:0") and serves in the background until
// Close. It returns the base URL, "http://127.0.0.1:PORT".
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("fakeconnectly: %w", err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.mu.Lock()
	if s.srv != nil {
		s.mu.Unlock()
		ln.Close()
		return "", errors.New("fakeconnectly: server already started")
	}
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln) //nolint:errcheck // returns http.ErrServerClosed after Close
	tcp := ln.Addr().(*net.TCPAddr)
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port)), nil
}

// Close stops the server started by Start, closing every connection (requests waiting out
// a rule's Latency end as canceled). It is a no-op when the server was not started.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	hooks := s.hooks
	s.mu.Unlock()
	if hooks != nil {
		hooks.close()
	}
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// Received returns a copy of the record of every send request, in the order they were
// answered.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, len(s.received))
	copy(out, s.received)
	return out
}

// AcceptedCount returns how many times the fake took a message to number as sent: accepted,
// accepted with the answer lost, or sent despite an error answer.
func (s *Server) AcceptedCount(number string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted[number]
}

// AcceptedCounts returns AcceptedCount for every number taken as sent at least once. Unlike
// Received it is never capped by MaxReceived.
func (s *Server) AcceptedCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.accepted))
	for k, v := range s.accepted {
		out[k] = v
	}
	return out
}

// Stats returns the totals of the send endpoint.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.DistinctAccepted = len(s.accepted)
	st.Errors = make(map[string]int, len(s.stats.Errors))
	for k, v := range s.stats.Errors {
		st.Errors[k] = v
	}
	st.Statuses = make(map[int]int, len(s.stats.Statuses))
	for k, v := range s.stats.Statuses {
		st.Statuses[k] = v
	}
	return st
}

// SetRules replaces the rules and resets their per-number Times counts. It panics when
// ValidateRules rejects the rules.
func (s *Server) SetRules(rules []Rule) {
	if err := ValidateRules(rules); err != nil {
		panic("fakeconnectly: SetRules: " + err.Error())
	}
	compiled := compileRules(rules)
	s.mu.Lock()
	s.rules = compiled
	s.mu.Unlock()
}

// Rules returns a copy of the current rules.
func (s *Server) Rules() []Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Rule, len(s.rules))
	for i, cr := range s.rules {
		out[i] = cr.Rule
	}
	return out
}

// Reset forgets the record, the totals, the accepted counts, the conversations (also their
// inbound messages), the message.ids taken (Config.DedupeMessageID) and the rules' Times
// counts, and refills the rate limit's bucket. The rules and the customers' windows stay
// (ClearWindows forgets those).
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
	if s.hooks != nil {
		s.hooks.forgetInbound()
	}
}

func (s *Server) resetLocked() {
	s.received = nil
	s.accepted = make(map[string]int)
	s.taken = make(map[string]string)
	s.convs = nil
	if s.maxRecords <= 0 {
		s.convs = make(map[string]*convLog)
	}
	s.stats = Stats{Errors: make(map[string]int), Statuses: make(map[int]int)}
	s.bucket = int64(s.rateLimit) * 1e9
	s.bucketTime = time.Time{}
	for _, cr := range s.rules {
		if cr.uses != nil {
			cr.uses = make(map[string]int)
		}
	}
}

// allowLocked takes a token from the rate limit's bucket, refilled at RateLimit tokens a
// second up to RateLimit tokens.
func (s *Server) allowLocked(now time.Time) bool {
	if s.rateLimit < 0 {
		return true
	}
	capacity := int64(s.rateLimit) * 1e9
	if !s.bucketTime.IsZero() {
		if el := now.Sub(s.bucketTime); el > 0 {
			el = min(el, time.Second) // a second refills the whole bucket
			s.bucket = min(capacity, s.bucket+int64(el)*int64(s.rateLimit))
			s.bucketTime = now
		}
	} else {
		s.bucketTime = now
	}
	if s.bucket < 1e9 {
		return false
	}
	s.bucket -= 1e9
	return true
}

// refillWaitLocked is how long until the bucket holds a whole token again (0 when it holds
// one).
func (s *Server) refillWaitLocked() time.Duration {
	if s.rateLimit <= 0 || s.bucket >= 1e9 {
		return 0
	}
	return time.Duration((1e9 - s.bucket + int64(s.rateLimit) - 1) / int64(s.rateLimit))
}

// recordLocked adds a send to the record and the totals. A send whose message was taken
// (rec.MessageID set) must have gone through takeLocked first, which counted it accepted.
func (s *Server) recordLocked(rec Received) {
	s.stats.Requests++
	if rec.Kind == KindSession {
		s.stats.Sessions++
		if rec.MessageID != "" {
			s.stats.SessionsAccepted++
		}
		if rec.OutsideWindow {
			s.stats.OutsideWindow++
			if rec.MessageID != "" {
				s.stats.AcceptedOutsideWindow++
			}
			if rec.WindowFailure != "" {
				s.stats.WindowFailedAtDelivery++
			}
		}
		if rec.windowRefused {
			s.stats.WindowRefused++
		}
	} else if rec.WindowOpen && rec.MessageID != "" {
		s.stats.TemplatesInWindow++
	}
	if s.convs != nil && rec.Number != "" && (rec.MessageID != "" || rec.windowRefused) {
		s.logConversationLocked(rec)
	}
	if rec.Status != 0 {
		s.stats.Statuses[rec.Status]++
	}
	if rec.ErrorCode == CodeCanceled {
		s.stats.Canceled++
	}
	if rec.DuplicateOf != "" {
		s.stats.Deduplicated++
	}
	if rec.MessageID != "" {
		switch {
		case rec.ErrorCode == CodeCanceled:
			s.stats.SentCanceled++
		case rec.Status == 0:
			s.stats.Lost++
		case rec.ErrorCode != "":
			s.stats.SentWithError++
		}
	} else if rec.DuplicateOf == "" || rec.ErrorCode != "" {
		s.stats.Errors[rec.ErrorCode]++
		if rec.Status == http.StatusTooManyRequests {
			s.stats.Throttled++
		}
		if rec.ErrorCode == CodeDropped {
			s.stats.Dropped++
		}
	}
	rec.taken = false
	if s.maxRecords <= 0 || len(s.received) < s.maxRecords {
		s.received = append(s.received, rec)
	}
}

// serveHTTP routes a request.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, controlPrefix) {
		s.serveControl(w, r)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1/businesses/")
	if !ok {
		s.writeError(w, apiError{Status: http.StatusNotFound, Message: "Not Found"})
		return
	}
	escID, verb, ok := strings.Cut(rest, "/")
	business, err := url.PathUnescape(escID)
	if !ok || err != nil || business == "" {
		s.writeError(w, apiError{Status: http.StatusNotFound, Message: "Not Found"})
		return
	}
	switch verb {
	case "send/whatsapp_templated_messages":
		if !s.requirePost(w, r) {
			return
		}
		s.handleSend(w, r, business)
	case "send/messages":
		if !s.requirePost(w, r) {
			return
		}
		s.handleSession(w, r, business)
	case "get/templates":
		if !s.requirePost(w, r) {
			return
		}
		s.handleTemplates(w, r, business)
	default:
		if name, ok := strings.CutPrefix(verb, "templates/"); ok {
			if r.Method != http.MethodDelete {
				w.Header().Set("Allow", http.MethodDelete)
				s.writeError(w, apiError{Status: http.StatusMethodNotAllowed, Message: "Method Not Allowed"})
				return
			}
			s.handleDeleteTemplate(w, r, business, name)
			return
		}
		if s.serveWebhookAPI(w, r, business, verb) {
			return
		}
		s.writeError(w, apiError{Status: http.StatusNotFound, Message: "Not Found"})
	}
}

// requirePost answers a request with another method than POST 405 with an Allow header.
// (inferred) The reference documents no answer to a wrong method; 405 is what an HTTP
// gateway gives, with the error body (no code or type of its own: Config.UncodedBody).
func (s *Server) requirePost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodPost {
		return true
	}
	w.Header().Set("Allow", http.MethodPost)
	s.writeError(w, apiError{Status: http.StatusMethodNotAllowed, Message: "Method Not Allowed"})
	return false
}

func (s *Server) authorized(r *http.Request) bool {
	key := r.Header.Get("X-API-Key")
	return key != "" && subtle.ConstantTimeCompare([]byte(key), s.apiKey) == 1
}

// wrongBusiness is the 404 answer to a business id the fake does not answer for (4.4: "404 |
// wrong businessId/path/webhookId"); its message is the fake's and it has no documented
// code or type (Config.UncodedBody).
func (s *Server) wrongBusiness(business string) apiError {
	return apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("business %q not found", business)}
}

// refuseCaller answers a request without the API key 401 and one for another business 404,
// and says whether it did: the checks of the endpoints that take no rate-limit token.
func (s *Server) refuseCaller(w http.ResponseWriter, r *http.Request, business string) bool {
	switch {
	case !s.authorized(r):
		s.writeError(w, unauthorized())
	case business != s.businessID:
		s.writeError(w, s.wrongBusiness(business))
	default:
		return false
	}
	return true
}

// manage applies the first rule for a management endpoint (Rule.Endpoint) to a call that
// passed the key and business checks, and reports whether it answered the call (an error),
// or the client went away during the rule's Latency: the call is then left undone. When it
// reports false the call goes on as usual.
func (s *Server) manage(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	s.mu.Lock()
	rule, ok := pickManagementLocked(s.rules, endpoint)
	s.mu.Unlock()
	if !ok {
		return false
	}
	if !waitOut(r, rule.Latency) {
		return true
	}
	if !rule.isError() {
		return false
	}
	s.writeError(w, rule.answer())
	return true
}

// admit applies the checks made before the body is looked at: the API key, the business id
// and the rate limit, in that order. Only sends that pass the first two take a token.
func (s *Server) admit(r *http.Request, business string, now time.Time) (apiError, bool) {
	if !s.authorized(r) {
		return unauthorized(), true
	}
	if business != s.businessID {
		return s.wrongBusiness(business), true
	}
	s.mu.Lock()
	ok := s.allowLocked(now)
	wait := s.refillWaitLocked()
	s.mu.Unlock()
	if !ok {
		e := throttled(s.rateBody)
		if s.rateRetryAfter {
			e.RetryAfter = strconv.FormatInt(int64(max(1, (wait+time.Second-1)/time.Second)), 10)
		}
		return e, true
	}
	return apiError{}, false
}

// handleSend answers POST /v1/businesses/{businessId}/send/whatsapp_templated_messages.
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request, business string) {
	rec := Received{At: s.clock(), Kind: KindTemplate}
	raw, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))

	if e, refused := s.admit(r, business, rec.At); refused {
		if readErr == nil {
			rec.Message = decodeLoose(raw)
			rec.Number = rec.Message.Number
		}
		s.refuse(w, rec, e)
		return
	}

	if readErr != nil {
		s.refuse(w, rec, *invalid(CodeTemplateInputInvalid, "invalid request body: "+readErr.Error()))
		return
	}
	msg, bad := decodeSend(raw)
	rec.Message, rec.Number = msg, s.normalizeNumber(msg.Number)
	if rec.Number != "" {
		rec.WindowOpen = s.windows.get(rec.Number, businessNumber(msg), rec.At).Open
	}
	if bad == nil {
		rec.template, bad = s.validate(&msg)
	}
	if bad != nil {
		s.refuse(w, rec, *bad)
		return
	}
	s.answer(w, r, rec, msg.TemplateName)
}

// answer applies the rules to a valid send (templateName is "" for a session send) and
// accepts it, refuses it, delays it or loses its answer. A rule with Sent takes the message
// on arrival, before its Latency; otherwise the message is taken, if at all, when the
// answer is written (see Rule).
func (s *Server) answer(w http.ResponseWriter, r *http.Request, rec Received, templateName string) {
	s.mu.Lock()
	rule, _ := pickLocked(s.rules, rec.Kind, rec.Number, templateName) // the zero Rule when none matches
	if rule.Latency == 0 && !rule.LoseResponse && !rule.isError() {
		// The common case: accept under the same lock.
		s.acceptLocked(&rec, cmp.Or(rule.Status, http.StatusOK))
		s.mu.Unlock()
		writeJSON(w, rec.Status, sendResult{ID: rec.answeredID()})
		return
	}
	if rule.Sent {
		// Taken on arrival: whatever happens to the answer, the message went out.
		s.takeLocked(&rec)
	}
	s.mu.Unlock()

	if !waitOut(r, rule.Latency) {
		rec.ErrorCode = CodeCanceled
		s.mu.Lock()
		s.recordLocked(rec)
		s.mu.Unlock()
		return
	}

	switch {
	case rule.LoseResponse && rule.NotSent:
		rec.ErrorCode = CodeDropped
		s.mu.Lock()
		s.recordLocked(rec)
		s.mu.Unlock()
		dropConnection(w)
	case rule.LoseResponse:
		s.mu.Lock()
		s.acceptLocked(&rec, 0)
		s.mu.Unlock()
		dropConnection(w)
	case rule.isError() && rec.taken:
		// The message went out, then the answer failed.
		e := rule.answer()
		rec.Status, rec.ErrorCode, rec.Body = e.Status, e.key(), e.shape()
		s.mu.Lock()
		s.recordLocked(rec)
		s.mu.Unlock()
		s.writeError(w, e)
	case rule.isError():
		s.refuse(w, rec, rule.answer())
	default:
		s.mu.Lock()
		s.acceptLocked(&rec, cmp.Or(rule.Status, http.StatusOK))
		s.mu.Unlock()
		writeJSON(w, rec.Status, sendResult{ID: rec.answeredID()})
	}
}

// takeLocked takes the send's message: it gives it a message id, counts it as accepted
// (AcceptedCount, Stats.Accepted) and plans its webhooks. The record comes later, with
// the answer (recordLocked). It does nothing to a message already taken, nor, under
// Config.DedupeMessageID, to one whose message.id another send took since the send was
// checked (while a rule's Latency was waited out): that one becomes a duplicate of it
// (DuplicateOf). The caller holds s.mu.
func (s *Server) takeLocked(rec *Received) {
	if rec.taken {
		return
	}
	key := s.dedupeKey(*rec)
	if first, ok := s.taken[key]; ok && key != "" {
		rec.DuplicateOf = first
		return
	}
	rec.taken = true
	rec.MessageID = s.ids.next(rec.At)
	if rec.windowFail.Status != 0 {
		rec.WindowFailure = rec.windowFail.key()
	}
	if key != "" {
		s.taken[key] = rec.MessageID
	}
	s.stats.Accepted++
	s.accepted[rec.Number]++
	if s.hooks != nil {
		s.hooks.accepted(*rec)
	}
	s.startFlowLocked(rec)
}

// startFlowLocked sends the messages of the flow a taken send's campaignName starts, under
// Config.CampaignFlowMessages: it gives each an id (rec.Flow), counts them and plans their
// webhooks. The conversation gets them with the send's message (logConversationLocked). The
// caller holds s.mu.
func (s *Server) startFlowLocked(rec *Received) {
	if s.flowMessages <= 0 || rec.Message.CampaignName == "" {
		return
	}
	s.stats.Flows++
	for range s.flowMessages {
		m := flowMessage(*rec, s.ids.next(rec.At))
		rec.Flow = append(rec.Flow, m.MessageID)
		s.stats.FlowMessages++
		if s.hooks != nil {
			s.hooks.accepted(m)
		}
	}
}

// flowMessage is a message with id of the flow a send's campaignName started, in the form
// the webhooks take: to the send's recipient, from its sender, with its campaign name and
// no callbackData.
func flowMessage(send Received, id string) Received {
	return Received{At: send.At, Kind: KindFlow, Number: send.Number, MessageID: id, WindowOpen: send.WindowOpen,
		Message: TemplateMessage{Number: send.Number, Sender: send.Message.Sender, CampaignName: send.Message.CampaignName}}
}

// dedupeKey is what Config.DedupeMessageID deduplicates rec on: its message.id, or "" when
// it is not deduplicated (the option is off, a template send, no message.id).
func (s *Server) dedupeKey(rec Received) string {
	if !s.dedupe || rec.Session == nil {
		return ""
	}
	return rec.Session.Message.ID
}

// duplicate answers a session send whose message.id a message already taken has, under
// Config.DedupeMessageID: 200 with that message's id, nothing sent. It reports false, and
// answers nothing, for any other send.
func (s *Server) duplicate(w http.ResponseWriter, rec Received) bool {
	key := s.dedupeKey(rec)
	if key == "" {
		return false
	}
	s.mu.Lock()
	first, ok := s.taken[key]
	if ok {
		rec.DuplicateOf, rec.Status = first, http.StatusOK
		s.recordLocked(rec)
	}
	s.mu.Unlock()
	if ok {
		writeJSON(w, http.StatusOK, sendResult{ID: first})
	}
	return ok
}

// answeredID is the id a successful answer to the send gives: its message's, or for a
// duplicate (Config.DedupeMessageID) the first message's.
func (r Received) answeredID() string { return cmp.Or(r.MessageID, r.DuplicateOf) }

// acceptLocked takes the send's message (if not yet taken) and records it as accepted,
// answered with status (0 for LoseResponse, whose answer is never written). The caller
// holds s.mu.
func (s *Server) acceptLocked(rec *Received, status int) {
	s.takeLocked(rec)
	rec.Status = status
	s.recordLocked(*rec)
}

// refuse records a send that was not accepted and writes its error answer.
func (s *Server) refuse(w http.ResponseWriter, rec Received, e apiError) {
	rec.Status = e.Status
	rec.ErrorCode = e.key()
	rec.Body = e.shape()
	s.mu.Lock()
	s.recordLocked(rec)
	s.mu.Unlock()
	s.writeError(w, e)
}

// dropConnection closes the client's connection without writing an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	// Not hijackable (HTTP/2, a recorder): abort the response instead.
	panic(http.ErrAbortHandler)
}

// writeError writes an error answer of the API with writeError, its body written as
// Config.UncodedBody says where it has no code or type.
func (s *Server) writeError(w http.ResponseWriter, e apiError) {
	e.uncoded = s.uncoded
	writeError(w, e)
}

// writeError writes an error answer in its body shape, with a Retry-After header only when
// the answer has one (Rule.RetryAfter, Config.RateLimitRetryAfter).
func writeError(w http.ResponseWriter, e apiError) {
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	switch e.shape() {
	case BodyEmpty:
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(e.Status)
	case BodyGRPC:
		n, _ := grpcStatusOf(e.Code)
		if e.Code == "UNAUTHENTICATED" {
			// The gateway's default handler names the failure in WWW-Authenticate too.
			w.Header().Set("WWW-Authenticate", e.Message)
		}
		writeJSON(w, e.Status, gatewayBody{Code: n, Message: e.Message, Details: []any{}})
	case BodyGateway:
		page := gatewayPage(e.Status)
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		w.WriteHeader(e.Status)
		_, _ = w.Write(page)
	default:
		writeJSON(w, e.Status, e.body())
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// waitOut waits a rule's latency d, and reports false when the client went away first.
func waitOut(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
