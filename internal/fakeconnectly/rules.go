package fakeconnectly

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Endpoints a Rule applies to (Rule.Endpoint).
const (
	// EndpointSend is the two send endpoints (reference 2 and 3), the default.
	EndpointSend = "send"
	// EndpointWebhooks is the webhook registration endpoints (reference 5.2): create/webhooks,
	// webhooks (the listing), update/webhooks/{id} and delete/webhooks/{id}.
	EndpointWebhooks = "webhooks"
	// EndpointTemplates is the template endpoints (reference 7): get/templates and DELETE
	// templates/{name}.
	EndpointTemplates = "templates"
)

// Rule injects a fault into the sends it matches. A rule matches a send when every match
// field that is set matches; a rule with no match field set matches every send. Rules are
// tried in order and the first matching one applies. Rules only see sends that passed
// authentication, the rate limit and validation. A rule with an Endpoint of
// EndpointWebhooks or EndpointTemplates applies to the management calls instead (see
// Endpoint).
//
// The fault fields combine as follows. Sent takes the message on arrival (see below); then
// Latency is waited out; then LoseResponse, Code or Status decides the answer. Code sets the
// error body and its usual status, which Status overrides when set (for example Code
// "ERROR_TYPE_DEADLINE_EXCEEDED" with Status 504). A Status of 200..299 alone accepts the
// send and answers with that status. Body picks the error answer's body shape (BodyError,
// BodyEmpty, BodyGateway, BodyGRPC). A rule with no fault field accepts the send normally.
//
// Whether the message went out is always the rule's explicit choice, because reference 4.4
// lists "500, 502, 503, 504, connection reset, timeout" as TRANSIENT with a "duplicate risk:
// no idempotency key is documented, so retrying after a timeout may double-send": a client
// that saw no success cannot tell which happened, and the fake can play either.
//
//   - Sent ("sent": true): the message is taken on arrival, before any Latency. It gets its
//     id, counts as accepted (AcceptedCount, Stats.Accepted) and its delivery webhooks are
//     planned at once, so they may reach the receiver before the answer, or when no answer
//     ever comes: a client that gives up during the Latency (a timeout) leaves a message
//     that went out (recorded with ErrorCode CodeCanceled and the message id,
//     Stats.SentCanceled). The answer, for a client that waits, is the rule's error (500 and
//     above) or a success with the id.
//   - Not sent (the default of every rule but LoseResponse; "sent": false, NotSent, says it
//     explicitly): a client that gives up during the Latency leaves nothing sent (ErrorCode
//     CodeCanceled, no message id); an error answer says nothing was sent.
//   - LoseResponse: the connection is closed without an answer. By default the message was
//     taken first (when the Latency, if any, is over: a client gone before then leaves
//     nothing sent; with Sent, on arrival); with NotSent ("sent": false) the connection
//     drops before the message is taken and nothing is sent (ErrorCode CodeDropped).
//
// The answer shapes the contract allows on the send endpoint, by rule:
//
//	{Status: 500}                               500, JSON error body ("Internal server error",
//	                                            ERROR_TYPE_UNSPECIFIED, ERROR_CODE_UNSPECIFIED); not sent
//	{Status: 500, Sent: true}                   the same answer, but the message went out
//	{Status: 502, Body: BodyGateway}            502 with a non-JSON proxy page; not sent
//	{Status: 504, Body: BodyEmpty, Sent: true}  504 with no body; the message went out
//	{Status: 503}                               503, JSON error body; not sent
//	{Status: 429}                               429 with the JSON error body (ERROR_TYPE_UNSPECIFIED,
//	                                            ERROR_CODE_UNSPECIFIED), no Retry-After; not sent
//	{Status: 429, Body: BodyEmpty}              a bare 429; not sent
//	{LoseResponse: true}                        the message went out and no answer came
//	{LoseResponse: true, NotSent: true}         the connection dropped before the message was taken
//	{Latency: time.Minute, Sent: true}          taken on arrival; a client that times out first
//	                                            leaves it sent (a retry double-sends)
//	{Latency: time.Minute}                      a client that times out first leaves nothing sent
//	{Code: "DEADLINE_EXCEEDED", Body: BodyGRPC, Sent: true}
//	                                            504 {"code":4,"message":"context deadline exceeded",
//	                                            "details":[]}, grpc-gateway's default; the message went out
//	{Code: "INVALID_ARGUMENT", Body: BodyGRPC}  400 {"code":3,...}; not sent
type Rule struct {
	// Numbers matches these exact recipient numbers (the "number" field, "+15550001234" or
	// "bsuid:US.123").
	Numbers []string
	// Suffix matches numbers that end with it.
	Suffix string
	// Percent (0..100) matches the numbers whose HashBucket(Salt, number) is below
	// Percent*100, about Percent percent of all numbers, always the same ones. 0 means unused.
	Percent float64
	// Salt is mixed into the Percent hash so that different rules pick different people.
	Salt string
	// Template matches sends whose templateName equals it; a rule with a Template never
	// matches a session send, which has no template.
	Template string
	// Kind matches one endpoint: KindTemplate (send/whatsapp_templated_messages) or
	// KindSession (send/messages). Empty matches both.
	Kind string
	// Endpoint is what the rule applies to: EndpointSend (the default, "" too: the sends,
	// which the match fields above pick), EndpointWebhooks or EndpointTemplates (the
	// management endpoints: every call to them, after the X-API-Key and business checks).
	// The management endpoints fail like any other: reference 5.2 documents "Errors
	// 400/401/404/500" for update/webhooks and "errors 401/404/500" for delete/webhooks, and
	// 1 lists 500 as "internal error" for the API at large. A management rule takes no match
	// field and neither LoseResponse nor Sent/NotSent; it answers with Code or an error
	// Status (400 and above) in Body's shape (the standard JSON error body, none, or a proxy
	// page), with Type, Message, Details and RetryAfter as on a send, after its Latency (a
	// client that goes away meanwhile leaves the call undone; with no error the call is
	// then answered as usual). A failed call changes nothing. Times counts the calls to the
	// endpoint.
	Endpoint string

	// Code answers with this Connectly error code (or error type) and the documented body:
	// ERROR_TYPE_AUTHENTICATION and its codes with 401, ERROR_CODE_UNSPECIFIED and
	// ERROR_TYPE_UNSPECIFIED with 500, everything else with 400.
	Code string
	// Status answers with this HTTP status and a matching body: ERROR_TYPE_UNSPECIFIED /
	// ERROR_CODE_UNSPECIFIED for 5xx and for 429 (message "Too Many Requests"),
	// ERROR_TYPE_AUTHENTICATION for 401, ERROR_TYPE_INVALID_REQUEST for 400, and no code of
	// their own for these two nor type for other statuses (Config.UncodedBody says how the
	// body writes them: ERROR_CODE_UNSPECIFIED / ERROR_TYPE_UNSPECIFIED by default).
	Status int
	// Latency is waited before answering; the wait ends early when the client goes away
	// (a timeout or a reset on the client's side). Whether the message went out then is
	// Sent's choice: taken on arrival with Sent, not sent without (reference 4.4: "retrying
	// after a timeout may double-send").
	Latency time.Duration
	// LoseResponse closes the connection without writing any answer ("connection reset",
	// reference 4.4). By default the message is taken first (it is recorded as accepted with
	// a new id, Stats.Lost); with NotSent the connection drops before it is taken and
	// nothing is sent (ErrorCode CodeDropped, Stats.Dropped).
	LoseResponse bool
	// Body is the shape of the error answer's body: BodyError (the default: Connectly's JSON
	// error body), BodyEmpty (no body), BodyGateway (a non-JSON proxy page) or BodyGRPC
	// (grpc-gateway's default error body). It needs an error answer (Code or a Status of 400
	// and above); with Code only BodyError and BodyGRPC make sense. With BodyGRPC, Code names
	// the gRPC status, by name ("DEADLINE_EXCEEDED") or number ("4"), and is required; the
	// status is the gateway's default for it (GRPCStatuses) unless Status says otherwise, and
	// Message replaces the message (Type, Details, Omit and NumericCode do not apply).
	Body string
	// Sent ("sent": true) makes the message taken on arrival, before the Latency and
	// whatever the answer, as after a failure past the point of sending (reference 4.4:
	// "500, 502, 503, 504, connection reset, timeout | TRANSIENT | duplicate risk ...
	// retrying after a timeout may double-send"): it is given a message id, counted as
	// accepted (AcceptedCount, Stats.Accepted) and its delivery webhooks follow like any
	// accepted message's, also when the client went away during the Latency (Received has
	// the MessageID and ErrorCode CodeCanceled, Stats.SentCanceled) or the answer is an
	// error (Received has the MessageID and the ErrorCode, Stats.SentWithError). It needs an
	// answer of 500 and above, a Latency (the answer is then a success, if the client waits
	// for it) or LoseResponse (which sends by default; Sent takes the message before the
	// Latency rather than after).
	Sent bool
	// NotSent ("sent": false in the JSON form) says the message is not taken: the default
	// of every rule but LoseResponse, for which it means the connection drops before the
	// message is taken (reference 4.4's "connection reset" with nothing sent). Exclusive
	// with Sent.
	NotSent bool
	// Times limits the rule to the first Times matching sends of each recipient number;
	// later sends of that number skip the rule (and may match a later one). 0 means always.
	Times int
	// RetryAfter, when set, is sent as the error answer's Retry-After header, as is ("2",
	// "0", or an HTTP-date such as "Wed, 21 Oct 2026 07:28:00 GMT"). The reference documents
	// no Retry-After and leaves its presence open (4.4, 8, 10.13): by default there is none.
	RetryAfter string
	// Details, when set, is the JSON object sent as the error body's details, which the
	// reference says carries "extra structured info when available" (4.1; for example a Meta
	// error code, 10.4), or null ("details": null, json.RawMessage("null") in Go): "when
	// available" does not promise an object, (inferred) and a protobuf gateway writes an
	// unset message field as null or leaves it out. Empty means {}. It needs a JSON error
	// body.
	Details json.RawMessage
	// Omit names fields of the JSON error body to leave out (ErrorFields: "message",
	// "type", "code", "userTitle", "userMessage", "cntTraceId", "details"). Every documented
	// example carries all seven, but only details is said to come "when available" (4.1),
	// and (inferred) a gateway that leaves out unset fields writes none of the empty ones:
	// a client must not need one it does not use. It needs a JSON error body.
	Omit []string
	// Type and Message, when set, replace the error body's type and message that Code or
	// Status give (the code stays). The reference's bodies pair them freely: 3.1 says public
	// client code meets "type": "ERROR_TYPE_FAILED_PRECONDITION" on a session send where the
	// docs give ERROR_TYPE_DEADLINE_EXCEEDED with ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW
	// (4.2), 1 warns to "classify errors by the body's code/type first", and 9.2 says Meta's
	// numeric codes may reach a client in "details/messages", e.g. a message "(#131056)
	// (Business Account, Consumer Account) pair rate limit hit". The body's userTitle follows
	// Message unless the code has a title of its own ("Encountered unexpected error" for
	// ERROR_CODE_UNSPECIFIED). They need a JSON error body.
	Type    string
	Message string
	// NumericCode ("numericCode": true) writes the error body's code as a JSON number,
	// "code": 131056, where the reference documents a string (4.1: code is an
	// ERROR_CODE_* string, the default). Meta writes its codes as numbers (9.2: 131056,
	// 130429, ...), and the reference leaves open whether Connectly relays them (9.2, 10.4):
	// a client that reads the code as a string meets this body if it does. It needs a Code
	// that is a Meta code, a non-negative integer written without leading zeros ("131056"),
	// answered in the JSON error body. The record keys the answer by the same digits.
	NumericCode bool
}

// answer is the error answer of a rule whose Code is set or whose Status is 300 and above.
func (r Rule) answer() apiError {
	var e apiError
	if r.Body == BodyGRPC {
		e = grpcError(r.Code, r.Status)
	} else if r.Code != "" {
		e = codeError(r.Code, r.Status)
		e.Body = r.Body
	} else {
		e = statusError(r.Status, r.Body)
	}
	e.RetryAfter = r.RetryAfter
	return r.errorParts().apply(e)
}

// errorParts are the rule's fields of the error body beside the code.
func (r Rule) errorParts() errorParts {
	return errorParts{Type: r.Type, Message: r.Message, NumericCode: r.NumericCode, Details: r.Details, Omit: r.Omit}
}

// management reports whether the rule applies to a management endpoint, not to sends.
func (r Rule) management() bool { return r.Endpoint != "" && r.Endpoint != EndpointSend }

// isError reports whether the rule answers with an error: a Code, or a Status of 300 and
// above.
func (r Rule) isError() bool { return r.Code != "" || r.Status >= 300 }

// HashBucket is the stable bucket, 0..9999, that Percent rules compare against: the 32-bit
// FNV-1a hash of salt followed by number, modulo 10000.
func HashBucket(salt, number string) int {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(salt); i++ {
		h ^= uint32(salt[i])
		h *= prime32
	}
	for i := 0; i < len(number); i++ {
		h ^= uint32(number[i])
		h *= prime32
	}
	return int(h % 10000)
}

// Matches reports whether the rule's match fields select a template send of templateName to
// number. It ignores Times.
func (r Rule) Matches(number, templateName string) bool {
	return r.MatchesSend(KindTemplate, number, templateName)
}

// MatchesSend reports whether the rule's match fields select a send of kind (KindTemplate or
// KindSession) to number; templateName is "" for a session send. It ignores Times.
func (r Rule) MatchesSend(kind, number, templateName string) bool {
	if r.management() || r.Kind != "" && r.Kind != kind {
		return false
	}
	if len(r.Numbers) > 0 && !slices.Contains(r.Numbers, number) {
		return false
	}
	return r.matchesRest(number, templateName)
}

// matchesRest checks every match field except Numbers.
func (r Rule) matchesRest(number, templateName string) bool {
	if r.Suffix != "" && !strings.HasSuffix(number, r.Suffix) {
		return false
	}
	if r.Template != "" && r.Template != templateName {
		return false
	}
	if r.Percent > 0 && float64(HashBucket(r.Salt, number)) >= r.Percent*100 {
		return false
	}
	return true
}

// ValidateRules reports the first rule whose fields make no sense together.
func ValidateRules(rules []Rule) error { return validateEach("rule", rules) }

// validateEach returns the error of the first item that does not validate, prefixed with
// what and its index.
func validateEach[T interface{ validate() error }](what string, items []T) error {
	for i, it := range items {
		if err := it.validate(); err != nil {
			return fmt.Errorf("%s %d: %w", what, i, err)
		}
	}
	return nil
}

func (r Rule) validate() error {
	switch {
	case r.Percent < 0 || r.Percent > 100:
		return fmt.Errorf("percent %v is outside 0..100", r.Percent)
	case !sendKinds.allows(r.Kind):
		return fmt.Errorf("kind %q: want %s, %s or empty for both", r.Kind, KindTemplate, KindSession)
	case !ruleEndpoints.allows(r.Endpoint):
		return fmt.Errorf("endpoint %q: want %s", r.Endpoint, ruleEndpoints)
	case r.management() && (len(r.Numbers) > 0 || r.Suffix != "" || r.Percent != 0 || r.Salt != "" || r.Template != "" || r.Kind != ""):
		return fmt.Errorf("endpoint %s: numbers, suffix, percent, salt, template and kind pick sends; a %s rule applies to every call", r.Endpoint, r.Endpoint)
	case r.management() && (r.LoseResponse || r.Sent || r.NotSent):
		return fmt.Errorf("endpoint %s: loseResponse and sent are for sends", r.Endpoint)
	case r.management() && r.Status != 0 && r.Status < 400:
		return fmt.Errorf("endpoint %s: status %d: want an error status (400 and above); a call that succeeds keeps its answer", r.Endpoint, r.Status)
	case r.Times < 0:
		return fmt.Errorf("times %d is negative", r.Times)
	case r.Latency < 0:
		return fmt.Errorf("latency %v is negative", r.Latency)
	case r.Status != 0 && (r.Status < 200 || r.Status > 599):
		return fmt.Errorf("status %d is not an HTTP status in 200..599", r.Status)
	case r.Code != "" && r.Status != 0 && r.Status < 400:
		return fmt.Errorf("code %s with success status %d", r.Code, r.Status)
	case r.LoseResponse && (r.Code != "" || r.Status != 0):
		return errors.New("loseResponse cannot be combined with code or status")
	case r.Sent && r.NotSent:
		return errors.New("sent and notSent contradict each other")
	case !bodyShapes.allows(r.Body):
		return fmt.Errorf("body %q: want %s", r.Body, bodyShapes)
	case r.Body == BodyGRPC:
		return r.validateGRPC()
	case r.Body != "" && r.Code == "" && r.Status < 400:
		return fmt.Errorf("body %q needs an error status (400 and above) or a code", r.Body)
	case r.Body != "" && r.Body != BodyError && r.Code != "":
		return fmt.Errorf("code %s is answered in a JSON error body, not body %q", r.Code, r.Body)
	case r.Sent && r.isError() && r.answer().Status < 500:
		return errors.New("sent needs an answer of 500 and above (a 4xx or a 429 says the message was not taken)")
	case r.Sent && !r.isError() && r.Latency == 0 && !r.LoseResponse:
		return errors.New("sent needs, with a success answer, a latency (taken on arrival: a client that times out leaves it sent) or loseResponse")
	case r.RetryAfter != "" && r.Code == "" && r.Status < 400:
		return errors.New("retryAfter needs an error answer (a code, or a status of 400 and above)")
	case r.RetryAfter != "" && strings.ContainsAny(r.RetryAfter, "\r\n"):
		return errors.New("retryAfter must be one header line")
	case (len(r.Details) > 0 || len(r.Omit) > 0) && (r.Code == "" && r.Status < 400 || r.Body != "" && r.Body != BodyError):
		return errors.New("details and omit need a JSON error body (a code, or a status of 400 and above, and body error)")
	case (r.Type != "" || r.Message != "") && (!r.isError() || r.Body != "" && r.Body != BodyError):
		return errors.New("type and message need a JSON error body (a code, or a status of 400 and above, and body error)")
	}
	return r.errorParts().validate(r.Code)
}

// validateGRPC checks a rule with Body BodyGRPC, once the fields every rule shares are
// checked: its Code names a gRPC status, its answer is an error (OK takes an error Status:
// the gateway answers OK with 200), and it sets none of the fields of Connectly's error body
// but Message.
func (r Rule) validateGRPC() error {
	switch _, ok := grpcStatusOf(r.Code); {
	case !ok:
		return fmt.Errorf("body grpc: code %q: want a gRPC status by name (DEADLINE_EXCEEDED, INVALID_ARGUMENT...) or number (0 to 16)", r.Code)
	case r.Status != 0 && r.Status < 400:
		return fmt.Errorf("body grpc: status %d: want an error status (400 and above)", r.Status)
	case r.Status == 0 && grpcError(r.Code, 0).Status < 400:
		return fmt.Errorf("body grpc: code %s: grpc-gateway answers it with %d; give an error status", r.Code, grpcError(r.Code, 0).Status)
	case r.Type != "" || len(r.Details) > 0 || len(r.Omit) > 0 || r.NumericCode:
		return errors.New("body grpc: type, details, omit and numericCode are fields of Connectly's error body; the gateway's has code, message and details: []")
	case r.Sent && r.answer().Status < 500:
		return errors.New("sent needs an answer of 500 and above (a 4xx or a 429 says the message was not taken)")
	case r.RetryAfter != "" && strings.ContainsAny(r.RetryAfter, "\r\n"):
		return errors.New("retryAfter must be one header line")
	}
	return nil
}

// numericCode reports whether code can be written as a JSON number by Rule.NumericCode: a
// non-negative integer in its shortest decimal form.
func numericCode(code string) bool {
	v, err := strconv.ParseUint(code, 10, 64)
	return err == nil && strconv.FormatUint(v, 10) == code
}

// compiledRule is a Rule with its number set indexed and its per-number use counts.
type compiledRule struct {
	Rule
	numbers map[string]struct{}
	// uses counts, per number, the sends the rule has applied to; only kept when Times > 0.
	uses map[string]int
}

func compileRules(rules []Rule) []*compiledRule {
	out := make([]*compiledRule, len(rules))
	for i, r := range rules {
		r.Numbers = slices.Clone(r.Numbers)
		cr := &compiledRule{Rule: r}
		if len(r.Numbers) > 0 {
			cr.numbers = make(map[string]struct{}, len(r.Numbers))
			for _, n := range r.Numbers {
				cr.numbers[n] = struct{}{}
			}
		}
		if r.Times > 0 {
			cr.uses = make(map[string]int)
		}
		out[i] = cr
	}
	return out
}

func (cr *compiledRule) matches(kind, number, templateName string) bool {
	if cr.management() || cr.Kind != "" && cr.Kind != kind {
		return false
	}
	if cr.numbers != nil {
		if _, ok := cr.numbers[number]; !ok {
			return false
		}
	}
	return cr.Rule.matchesRest(number, templateName)
}

// pickLocked returns the rule that applies to a send of kind, counting the use against its
// Times, or false when none does. Times counts a number's sends on both endpoints unless the
// rule has a Kind. The caller holds s.mu.
func pickLocked(rules []*compiledRule, kind, number, templateName string) (Rule, bool) {
	for _, cr := range rules {
		if !cr.matches(kind, number, templateName) {
			continue
		}
		if cr.Times > 0 {
			if cr.uses[number] >= cr.Times {
				continue
			}
			cr.uses[number]++
		}
		return cr.Rule, true
	}
	return Rule{}, false
}

// pickManagementLocked returns the first rule for the management endpoint, counting the
// use against its Times, or false when none applies. The caller holds s.mu.
func pickManagementLocked(rules []*compiledRule, endpoint string) (Rule, bool) {
	for _, cr := range rules {
		if cr.Endpoint != endpoint {
			continue
		}
		if cr.Times > 0 {
			if cr.uses[""] >= cr.Times {
				continue
			}
			cr.uses[""]++
		}
		return cr.Rule, true
	}
	return Rule{}, false
}

// ruleJSON is the wire form of a Rule used by the control endpoints: camelCase names and the
// latency as a Go duration string ("250ms").
type ruleJSON struct {
	Numbers      []string `json:"numbers,omitempty"`
	Suffix       string   `json:"suffix,omitempty"`
	Percent      float64  `json:"percent,omitempty"`
	Salt         string   `json:"salt,omitempty"`
	Template     string   `json:"template,omitempty"`
	Kind         string   `json:"kind,omitempty"`
	Endpoint     string   `json:"endpoint,omitempty"`
	Code         string   `json:"code,omitempty"`
	Status       int      `json:"status,omitempty"`
	Latency      string   `json:"latency,omitempty"`
	LoseResponse bool     `json:"loseResponse,omitempty"`
	Body         string   `json:"body,omitempty"`
	// Sent is true for Rule.Sent, false for Rule.NotSent, absent for neither.
	Sent       *bool  `json:"sent,omitempty"`
	Times      int    `json:"times,omitempty"`
	RetryAfter string `json:"retryAfter,omitempty"`
	// Details is kept as sent.
	Details     json.RawMessage `json:"details,omitempty"`
	Type        string          `json:"type,omitempty"`
	Message     string          `json:"message,omitempty"`
	NumericCode bool            `json:"numericCode,omitempty"`
	Omit        []string        `json:"omit,omitempty"`
}

// MarshalJSON writes the rule with camelCase field names and Latency as a duration string.
func (r Rule) MarshalJSON() ([]byte, error) {
	w := ruleJSON{
		Numbers: r.Numbers, Suffix: r.Suffix, Percent: r.Percent, Salt: r.Salt, Template: r.Template, Kind: r.Kind,
		Endpoint: r.Endpoint, Code: r.Code, Status: r.Status, LoseResponse: r.LoseResponse, Body: r.Body, Times: r.Times,
		RetryAfter: r.RetryAfter, Details: r.Details, Type: r.Type, Message: r.Message, NumericCode: r.NumericCode, Omit: r.Omit,
	}
	if r.Sent || r.NotSent {
		w.Sent = &r.Sent
	}
	if r.Latency != 0 {
		w.Latency = r.Latency.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the form MarshalJSON writes; unknown field names are an error.
func (r *Rule) UnmarshalJSON(b []byte) error {
	var w ruleJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("rule: %w", err)
	}
	var lat time.Duration
	if w.Latency != "" {
		d, err := time.ParseDuration(w.Latency)
		if err != nil {
			return fmt.Errorf("rule latency: %w", err)
		}
		lat = d
	}
	*r = Rule{
		Numbers: w.Numbers, Suffix: w.Suffix, Percent: w.Percent, Salt: w.Salt, Template: w.Template, Kind: w.Kind,
		Endpoint: w.Endpoint, Code: w.Code, Status: w.Status, Latency: lat, LoseResponse: w.LoseResponse, Body: w.Body, Times: w.Times,
		RetryAfter: w.RetryAfter, Details: w.Details, Type: w.Type, Message: w.Message, NumericCode: w.NumericCode, Omit: w.Omit,
	}
	if w.Sent != nil {
		r.Sent, r.NotSent = *w.Sent, !*w.Sent
	}
	return nil
}
