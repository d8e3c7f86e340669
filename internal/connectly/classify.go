package connectly

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heraldmsg/herald/internal/suggest"
)

// Class says what a send failure means for the recipient and for the run.
type Class int

const (
	// ClassNone is the class of a nil error.
	ClassNone Class = iota
	// ClassTransient: retry this recipient with exponential backoff, up to the attempt limit.
	ClassTransient
	// ClassPermanent: record the code for this recipient and never retry it.
	ClassPermanent
	// ClassThrottle: slow down and try again later; uses no attempt and is not a failure.
	ClassThrottle
	// ClassStopRun: the failure hits every recipient (credentials, template, sender):
	// pause the run with the reason instead of burning through the audience.
	ClassStopRun
)

var classNames = map[Class]string{
	ClassNone:      "none",
	ClassTransient: "transient",
	ClassPermanent: "permanent",
	ClassThrottle:  "throttle",
	ClassStopRun:   "stop-run",
}

func (c Class) String() string { return nameOf(classNames, "Class", c) }

// nameOf is v's name in names, or typ(v) for a value without one.
func nameOf[T ~int](names map[T]string, typ string, v T) string {
	if s, ok := names[v]; ok {
		return s
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}

// ParseClass parses "permanent", "transient", "throttle" or "stop-run".
func ParseClass(s string) (Class, error) {
	for c, name := range classNames {
		if c != ClassNone && strings.EqualFold(s, name) {
			return c, nil
		}
	}
	return ClassNone, fmt.Errorf("unknown error class %q (want permanent, transient, throttle or stop-run)", s)
}

// Rule is one row of the classification table.
type Rule struct {
	Class Class
	// OptOut marks codes that mean the person does not want these messages: the recipient is
	// added to the suppression list so later runs skip them.
	OptOut bool
	// MarketingOnly narrows an OptOut code to marketing messages: the person stopped marketing
	// messages from the business (Meta 131050, reference 9.2: "suppress for marketing") and
	// still gets utility and authentication templates. Every other opt-out stops every
	// message. Operators' overrides change a code's class, never this.
	MarketingOnly bool
	// WindowClosed marks answers that say the customer's 24-hour window is closed (a session
	// message outside it). They are permanent for this message: a resend gets the same answer
	// until the customer writes again.
	WindowClosed bool
	// PairBackoff marks the pair rate limit (Meta 131056): a throttle for one person only,
	// whose next send waits 4^X seconds, X growing with each refusal in a row (reference 9.1).
	PairBackoff bool
	// Wait is how long a throttle with it says nothing can be sent (Meta 131057: the number
	// is in maintenance, e.g. a throughput upgrade, "retry after ~1 min", reference 9.2): the
	// send waits at least this long, and the sends its Retry-After hold covers wait with it.
	Wait time.Duration
	// RequestFault marks a refusal of the request itself: the number it names or the content
	// it carries, which Connectly would have refused the same way on any earlier attempt of
	// the same request. Under at-least-once, a recipient whose earlier attempt may have gone
	// out (a 5xx, a lost answer) and whose retry gets such a refusal fails; any other
	// refusal then (an opt-out, a closed window, Meta's per-user marketing limit:
	// something that may have come after that attempt) leaves them unknown, as they may hold
	// the message. The reference does not say which refusals these are (its classes are
	// inferred, 4.3), so the table marks only those no time between two attempts can change:
	// the recipient's number (badly formatted, invalid, the sender's own) and a session
	// message's own content (empty text, attachments). Not the template's parameters (a
	// retry held by a paused run may go after the template was edited), not the broad types
	// and gRPC statuses (they come with other refusals too), not a code the table does not
	// know: those read the safe way, unknown. Table.SetRequestFaults replaces the list
	// (retry.request_faults).
	RequestFault bool
	// Why is the one-line reason shown to operators.
	Why string
}

func permanent(why string) Rule    { return Rule{Class: ClassPermanent, Why: why} }
func transient(why string) Rule    { return Rule{Class: ClassTransient, Why: why} }
func throttle(why string) Rule     { return Rule{Class: ClassThrottle, Why: why} }
func stopRun(why string) Rule      { return Rule{Class: ClassStopRun, Why: why} }
func optOut(why string) Rule       { return Rule{Class: ClassPermanent, OptOut: true, Why: why} }
func windowClosed(why string) Rule { return Rule{Class: ClassPermanent, WindowClosed: true, Why: why} }

// requestFault is a permanent refusal of the request itself (Rule.RequestFault).
func requestFault(why string) Rule { return Rule{Class: ClassPermanent, RequestFault: true, Why: why} }

// optOutMarketing is an opt-out of marketing messages only (Rule.MarketingOnly).
func optOutMarketing(why string) Rule {
	return Rule{Class: ClassPermanent, OptOut: true, MarketingOnly: true, Why: why}
}

// DefaultTable classifies every error code the provider reference documents (section 4.3),
// the Meta numeric codes it lists (section 9.2, matched when they surface as a code), and
// the documented error types (section 4.2). HTTP statuses are classified by StatusClass.
// Operators override single entries through NewTable.
var DefaultTable = map[string]Rule{
	// Connectly error codes (reference 4.3).
	"ERROR_CODE_INVALID_SENDER_ID":                           stopRun("sender number not valid: every message from it fails"),
	"ERROR_CODE_PHONE_NUMBER_BAD_FORMAT":                     requestFault("recipient number badly formatted"),
	"ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID":          requestFault("more than one attachment (session API)"),
	"ERROR_CODE_MESSAGE_TEXT_EMPTY":                          requestFault("message text empty (session API)"),
	"ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND":                  stopRun("no approved template for that name and language"),
	"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID":              permanent("template parameters invalid for this recipient"),
	"ERROR_CODE_MESSAGE_ATTACHMENT_EMPTY":                    requestFault("attachment URL empty"),
	"ERROR_CODE_MESSAGE_ATTACHMENT_INVALID":                  requestFault("attachment URL unparseable"),
	"ERROR_CODE_BUSINESS_MISSES_MATCHING_CHANNEL":            stopRun("business has no sender channel of the required type"),
	"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW":       windowClosed("24-hour window closed: the customer last wrote more than 24 hours ago (session API)"),
	"ERROR_CODE_BUSINESS_REACHED_LIMITS":                     stopRun("sender restricted: too many messages blocked or flagged"),
	"ERROR_CODE_MESSAGE_SELF_INVALID":                        requestFault("recipient is the sender"),
	"ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID":                requestFault("recipient number invalid"),
	"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT":                  optOut("customer opted out of template messages"),
	"ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION": windowClosed("no 24-hour window: the customer has not started a conversation (session API)"),
	"ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT":                  stopRun("business API secret not initialised"),
	"ERROR_CODE_MESSAGE_TEMPLATE_DELETED":                    stopRun("template is being deleted"),
	"ERROR_CODE_UNSPECIFIED":                                 transient("unexpected provider error"),

	// Meta codes (reference 9.2), for when they surface as the code. The short ones (0, 2,
	// 3, 4, 10) are never read from the top-level code of an answer to a request: a number
	// from 0 to 16 there is a gRPC status (grpcKey); they apply where Meta's codes are read
	// as such, a delivery_failed event's error.
	"130429": throttle("sender number throughput exceeded"),
	"131056": {Class: ClassThrottle, PairBackoff: true, Why: "pair rate limit: too many messages to this person"},
	"131048": stopRun("spam rate limit: sending restricted"),
	"131049": permanent("Meta chose not to deliver (per-user marketing limit)"),
	"131050": optOutMarketing("user stopped marketing messages from this business"),
	"130472": permanent("user is part of a marketing experiment"),
	"131026": permanent("message undeliverable to this number"),
	"131047": windowClosed("24-hour window closed: more than 24 hours since the last reply"),
	"130497": permanent("business restricted from messaging this country"),
	"131031": stopRun("business account locked"),
	"131042": stopRun("business eligibility or payment issue"),
	"368":    stopRun("temporarily blocked for policy violations"),
	"131062": permanent("BSUID recipients not supported for this message"),
	"132000": stopRun("template parameter count mismatch"),
	"132001": stopRun("template does not exist in that translation"),
	"132005": permanent("hydrated template text too long"),
	"132012": permanent("parameter format mismatch"),
	"132015": stopRun("template paused for low quality"),
	"132016": stopRun("template disabled"),
	"100":    permanent("invalid parameter"),
	"131008": permanent("required parameter missing"),
	"131009": permanent("parameter value invalid"),
	"131057": {Class: ClassThrottle, Wait: time.Minute, Why: "account in maintenance mode (a throughput upgrade): nothing is sent for about a minute"},
	"131000": transient("generic send failure"),
	"131016": transient("service temporarily unavailable"),
	"2":      transient("service temporarily unavailable"),
	"133004": transient("server temporarily unavailable"),
	"0":      stopRun("authentication failed"),
	"190":    stopRun("access token expired"),
	"3":      stopRun("capability missing"),
	"10":     stopRun("permission denied"),
	"4":      throttle("application API call rate limit"),
	"80007":  throttle("WABA API call rate limit"),

	// Error types (reference 4.2), used when the code is absent or not in the table.
	"ERROR_TYPE_AUTHENTICATION":    stopRun("API key missing or invalid"),
	"ERROR_TYPE_INVALID_REQUEST":   permanent("request content is wrong for this recipient"),
	"ERROR_TYPE_DEADLINE_EXCEEDED": windowClosed("24-hour window closed (not a timeout)"),
	"ERROR_TYPE_UNSPECIFIED":       transient("unexpected provider error"),
	// Seen on session sends in public client code, in no doc: "cannot send now" (reference 3.1).
	"ERROR_TYPE_FAILED_PRECONDITION": windowClosed("cannot send now: the customer's 24-hour window is closed (session send)"),

	// gRPC statuses, for an answer whose top-level code is a number from 0 to 16 (grpcKey).
	// (inferred) Reference 1 infers a Go + gRPC backend behind grpc-gateway, whose default
	// error body is {"code": <gRPC status>, "message": ..., "details": []} at the status
	// its default mapping gives (INVALID_ARGUMENT 400, DEADLINE_EXCEEDED 504, ...). These
	// say what the request was: a bad value of this recipient's (reference 4.4: "400
	// without a known code" is permanent), the key refused, the limit reached. The other
	// statuses say nothing the HTTP status does not (DEADLINE_EXCEEDED, UNAVAILABLE,
	// INTERNAL, UNKNOWN...: a 5xx after which the message may have gone out), or nothing
	// certain (NOT_FOUND, ABORTED, OK at an error status): they have no row, so the status
	// decides, unless an override gives them one.
	"GRPC_INVALID_ARGUMENT":   permanent("gRPC INVALID_ARGUMENT: a value in this recipient's request is invalid"),
	"GRPC_OUT_OF_RANGE":       permanent("gRPC OUT_OF_RANGE: a value in this recipient's request is out of range"),
	"GRPC_PERMISSION_DENIED":  stopRun("gRPC PERMISSION_DENIED: the API key may not send for this business"),
	"GRPC_UNAUTHENTICATED":    stopRun("gRPC UNAUTHENTICATED: API key missing or invalid"),
	"GRPC_RESOURCE_EXHAUSTED": throttle("gRPC RESOURCE_EXHAUSTED: a request limit or quota was reached"),
	// FAILED_PRECONDITION is what grpc-gateway makes of ERROR_TYPE_FAILED_PRECONDITION, which
	// reference 3.1 classifies with the window-closed codes: on a session send it is a closed
	// window (the fallback template goes, under the same claim); on a template send, which no
	// window governs, a plain refusal of this recipient.
	"GRPC_FAILED_PRECONDITION": windowClosed("gRPC FAILED_PRECONDITION: cannot send now (on a session send, the customer's 24-hour window is closed)"),
}

// grpcNames are the gRPC status codes, indexed by number (google.rpc.Code, 0 to 16).
var grpcNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// grpcPrefix begins the key of a gRPC status: GRPC_INVALID_ARGUMENT.
const grpcPrefix = "GRPC_"

// grpcKey returns the key an answer's top-level code is read under when it is a gRPC status:
// a number from 0 to 16, written without leading zeros ("4" is GRPC_DEADLINE_EXCEEDED). The
// reference documents the code as an ERROR_CODE_* string (4.1) and no numeric code passed
// through (9.2: Meta's numeric codes would come in details or messages); (inferred) a
// number in the gRPC range is the status grpc-gateway's default error body writes there
// (reference 1), not one of Meta's short codes of the same digits: read as Meta's 4 (an
// API call rate limit, a throttle), a gateway's 504 DEADLINE_EXCEEDED was sent again and
// again although the message may have gone out. Meta's long codes (131026, 130429) are
// outside the range and keep their rows.
func grpcKey(code string) (string, bool) {
	if !metaCode.MatchString(code) {
		return "", false
	}
	n, err := strconv.Atoi(code)
	if err != nil || n >= len(grpcNames) {
		return "", false
	}
	return grpcPrefix + grpcNames[n], true
}

// grpcKeys lists the keys of the gRPC statuses, GRPC_OK to GRPC_UNAUTHENTICATED: the table
// has rows for six of them, and an override gives any one a class.
func grpcKeys() []string {
	keys := make([]string, len(grpcNames))
	for i, n := range grpcNames {
		keys[i] = grpcPrefix + n
	}
	return keys
}

// StatusClass classifies an HTTP status when the body carries no known code or type
// (reference 4.4). 404 and 409 stop the run: a wrong business id or path fails every send.
func StatusClass(status int) Class {
	switch {
	case status == 429:
		return ClassThrottle
	case status == 401, status == 403, status == 404, status == 409:
		return ClassStopRun
	case status == 408:
		return ClassTransient
	case status >= 500:
		return ClassTransient
	case status >= 400:
		return ClassPermanent
	default:
		return ClassTransient
	}
}

// Outcome is what an answer to a send says about the message: whether it may have gone out.
// It is the one reading that decides between sending again and not (see Table.Decide).
type Outcome int

const (
	// OutcomeAccepted: a success answer with a message id.
	OutcomeAccepted Outcome = iota
	// OutcomeRefused: Connectly will not take this message (a documented permanent or
	// run-stopping code, a 4xx, a request that could not be built). Nothing went out, and
	// sending it again would get the same answer.
	OutcomeRefused
	// OutcomeNotTaken: the request was not taken and may be sent again safely: a throttle
	// (429, or a throttle code), a transient 4xx, or a failure before the whole request
	// was written (connection refused, DNS failure, cancelled while connecting).
	OutcomeNotTaken
	// OutcomeMaybeSent: the message may have gone out. Every other 5xx, with or without
	// Connectly's error body (a 500 with ERROR_CODE_UNSPECIFIED can follow an accepted send,
	// reference 4.4 and 10), no answer after the request was written (a timeout, a reset), or
	// a success answer without a usable id. Under at-most-once such a recipient becomes
	// unknown; under at-least-once it is sent again.
	OutcomeMaybeSent
)

var outcomeNames = map[Outcome]string{
	OutcomeAccepted:  "accepted",
	OutcomeRefused:   "refused",
	OutcomeNotTaken:  "not-taken",
	OutcomeMaybeSent: "maybe-sent",
}

func (o Outcome) String() string { return nameOf(outcomeNames, "Outcome", o) }

// Decision is the reading of one answer to a send: what it says about the message (Outcome)
// and what to do about the recipient and the run (Class and Rule).
type Decision struct {
	Outcome Outcome
	Class   Class
	Rule    Rule
	// Key names the answer in the ledger and in the run's counters, and is the key the
	// adaptive backoff looks up for a throttle: for a 429, the body's code or type when it
	// names a throttle or a run-stopping answer (131056, 130429...), else "HTTP_429"; for any
	// other status the body's code (GRPC_<name> for a gRPC status), else its type, else
	// "HTTP_<status>"; "NOT_SENT" or "NO_RESPONSE" for transport
	// failures; "CLIENT_ERROR" for a request that could not be built. Empty when accepted.
	Key string
	// RequestFault says a refusal (OutcomeRefused, ClassPermanent) is of the request itself
	// (Rule.RequestFault, or the table's list when Table.SetRequestFaults replaced it): an
	// earlier attempt of the same request would have got it too.
	RequestFault bool
}

// WindowClosed reports whether the answer says the customer's 24-hour window is closed: a
// session message refused because the customer has not written in the last 24 hours (or
// never). It is a refusal, never retried; the caller may send a template instead.
func (d Decision) WindowClosed() bool { return d.Rule.WindowClosed }

// Table is a classification table: DefaultTable plus operator overrides.
type Table struct {
	rules map[string]Rule
	// maybeSent, when not nil, lists the 5xx statuses read as "maybe sent"; every other 5xx
	// then reads as "not taken". Nil means the default: every 5xx (reference 4.4 lists 500,
	// 502, 503 and 504 alike as a duplicate risk).
	maybeSent map[int]bool
	// faults, when not nil, lists the keys whose permanent refusals are of the request
	// itself (Decision.RequestFault), in place of the rows' Rule.RequestFault.
	faults map[string]bool
}

// SetRequestFaults sets the keys (codes, types, gRPC statuses, HTTP_<status>) whose
// permanent refusal is of the request itself, its number or content (Rule.RequestFault):
// under at-least-once, a recipient whose earlier attempt may have gone out fails on such a
// refusal of a retry, and is unknown on any other. Nil restores the default, the rows marked
// in DefaultTable; an empty list means none, so every such recipient is unknown.
func (t *Table) SetRequestFaults(keys []string) {
	if keys == nil {
		t.faults = nil
		return
	}
	t.faults = make(map[string]bool, len(keys))
	for _, k := range keys {
		t.faults[k] = true
	}
}

// requestFault reports whether a permanent refusal recorded under key is of the request
// itself; byRow is what the table's row says.
func (t *Table) requestFault(key string, byRow bool) bool {
	if t.faults != nil {
		return t.faults[key]
	}
	return byRow
}

// SetAmbiguousStatuses sets the 5xx statuses that may follow an accepted send, with or
// without Connectly's error body: exactly those read as "maybe sent", and every other 5xx as
// "not taken". Nil or empty restores the default, which is safe for at-most-once: every 5xx
// is "maybe sent". The reference (4.4) lists 500, 502, 503 and 504 alike as a duplicate risk:
// behind grpc-gateway a 503 is gRPC's UNAVAILABLE, which a backend may answer after the
// message left. An operator who knows a status never follows a send drops it from the list.
func (t *Table) SetAmbiguousStatuses(statuses []int) {
	if len(statuses) == 0 {
		t.maybeSent = nil
		return
	}
	t.maybeSent = make(map[int]bool, len(statuses))
	for _, s := range statuses {
		t.maybeSent[s] = true
	}
}

// statusMayFollowSend reports whether an error status of a transient class may follow a
// message that went out. A 4xx says the request was not taken; a 5xx may come from a gateway
// or from Connectly after the message left; anything else is unexpected and read the safe way.
func (t *Table) statusMayFollowSend(status int) bool {
	switch {
	case status >= 400 && status < 500:
		return false
	case status >= 500 && status < 600 && t.maybeSent != nil:
		return t.maybeSent[status]
	default:
		return true
	}
}

// NewTable returns DefaultTable with overrides applied. An override key is an error code,
// a Meta code, an error type, a gRPC status ("GRPC_UNAVAILABLE"), "HTTP_<status>",
// "NOT_SENT" or "NO_RESPONSE"; its value is a
// class name. A window-closed answer may not be made transient or a throttle: the same
// message gets the same answer until the customer writes again, however often it is resent.
func NewTable(overrides map[string]string) (*Table, error) {
	t := &Table{rules: make(map[string]Rule, len(DefaultTable)+len(overrides))}
	for k, r := range DefaultTable {
		t.rules[k] = r
	}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c, err := ParseOverride(k, overrides[k])
		if err != nil {
			return nil, fmt.Errorf("override %s: %w", k, err)
		}
		r := t.rules[k]
		r.Class = c
		if r.Why == "" {
			r.Why = "class set by configuration"
		}
		t.rules[k] = r
	}
	return t, nil
}

// ParseOverride reads the class an operator gives key (ParseClass), and refuses one a key
// may not take: an answer that says the 24-hour window is closed is never retried.
func ParseOverride(key, class string) (Class, error) {
	c, err := ParseClass(class)
	if err != nil {
		return ClassNone, err
	}
	if DefaultTable[key].WindowClosed && (c == ClassTransient || c == ClassThrottle) {
		return ClassNone, fmt.Errorf("a closed 24-hour window is not retried (want permanent or stop-run, not %s)", c)
	}
	return c, nil
}

// CheckOverrideKey checks that key names an answer a class can be given to: a Connectly
// error code or error type of DefaultTable (the documented ones), a Meta numeric code
// (Meta has more than the table lists), a gRPC status (GRPC_INVALID_ARGUMENT...: every one,
// those the table has no row for included), HTTP_<status> for a status from 300 to 599, or
// a transport failure (NOT_SENT, NO_RESPONSE). Its error, for any other key, says which
// known key is closest (a code in another case, HTTP_500 for http_500). Unknown keys would
// do nothing: no answer is ever looked up under them.
func CheckOverrideKey(key string) error {
	if _, ok := DefaultTable[key]; ok || transportKeys[key] || metaCode.MatchString(key) || slices.Contains(grpcKeys(), key) {
		return nil
	}
	if n, ok := strings.CutPrefix(key, "HTTP_"); ok && httpStatus.MatchString(n) {
		return nil
	}
	msg := fmt.Sprintf("%q is not an error code, error type or HTTP_<status> Herald knows", key)
	if m := httpAnswer.FindStringSubmatch(key); m != nil {
		if httpStatus.MatchString(m[1]) {
			return fmt.Errorf("%s (did you mean %q?)", msg, "HTTP_"+m[1])
		}
		return fmt.Errorf("%s: want HTTP_ and a status from 300 to 599", msg)
	}
	if connectlyName.MatchString(key) {
		// The reference's list of codes may go on past what it shows, so a name of Connectly's
		// form is taken as a code the table does not list yet, unless it is a slip away from
		// one it does (up to three letters, which a new code would hardly be).
		if s := nearCode(key); s != "" {
			return fmt.Errorf("%s (did you mean %q?)", msg, s)
		}
		return nil
	}
	if s := suggest.Closest(key, overrideKeys()); s != "" {
		return fmt.Errorf("%s (did you mean %q?)", msg, s)
	}
	return fmt.Errorf("%s (the codes and types are in the provider reference and internal/connectly/classify.go)", msg)
}

// nearCode returns the table's code or type at most three letters away from key, or "".
func nearCode(key string) string {
	for _, k := range overrideKeys() {
		if suggest.EditDistance(key, k) <= 3 {
			return k
		}
	}
	return ""
}

// transportKeys name the failures without an answer (TransportError.Key).
var transportKeys = map[string]bool{"NOT_SENT": true, "NO_RESPONSE": true}

var (
	// metaCode is a Meta numeric error code: digits, without a leading zero (0 itself is one).
	metaCode = regexp.MustCompile(`^(0|[1-9][0-9]{0,6})$`)
	// connectlyName is a code or type written as Connectly writes them (reference 4.2, 4.3).
	connectlyName = regexp.MustCompile(`^ERROR_(CODE|TYPE)_[A-Z0-9]+(_[A-Z0-9]+)*$`)
	// httpStatus is a status an error answer can carry.
	httpStatus = regexp.MustCompile(`^[345][0-9][0-9]$`)
	// httpAnswer is a key written like an HTTP status, whatever its case or number.
	httpAnswer = regexp.MustCompile(`(?i)^https?[_ -]?([0-9]*)$`)
)

// overrideKeys lists, sorted and once each, the keys CheckOverrideKey knows by name.
func overrideKeys() []string {
	keys := grpcKeys()
	for k := range DefaultTable {
		keys = append(keys, k)
	}
	for k := range transportKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return slices.Compact(keys)
}

// Lookup returns the rule for a code, type or "HTTP_<status>" key.
func (t *Table) Lookup(key string) (Rule, bool) {
	r, ok := t.rules[key]
	return r, ok
}

// unspecified holds the catch-all values of the code and type enums. They carry no specific
// meaning (an error body may pair ERROR_CODE_UNSPECIFIED with ERROR_TYPE_AUTHENTICATION), so
// they must not hide a specific type or a status that says more.
var unspecified = map[string]bool{
	"ERROR_CODE_UNSPECIFIED": true,
	"ERROR_TYPE_UNSPECIFIED": true,
}

// CatchAll reports whether key is the catch-all value of the code or type enum
// (ERROR_CODE_UNSPECIFIED, ERROR_TYPE_UNSPECIFIED): it names no specific failure, so a
// specific code or type beside it says more.
func CatchAll(key string) bool { return unspecified[key] }

// Decide reads an error from Client.SendTemplate or Client.SendSession (nil for a success). It is the one place
// that decides what an answer means; the worker acts on its result.
//
// The class comes, for a 429, from a throttle or run-stopping code or type in the body, else
// from the status (a throttle: Connectly's error body always has a code,
// ERROR_CODE_UNSPECIFIED when nothing is more specific); otherwise from the body's code, then its type, then the status
// (a mapped error type may arrive with an unexpected status, so a specific body wins). The
// catch-all ERROR_CODE_UNSPECIFIED and ERROR_TYPE_UNSPECIFIED are consulted last, and only
// when the status is itself transient (a 5xx, a 408): a 4xx with no known code is permanent
// (reference 4.4, "400 without a known code"), and a status that stops the run stops it. An error that is not an answer from Connectly (the
// request could not be built) is permanent. A top-level code from 0 to 16 is a gRPC status,
// looked up as GRPC_<name> (grpcKey), never as Meta's short code of the same digits: a 504
// with grpc-gateway's {"code": 4} (DEADLINE_EXCEEDED, no row) is decided by its status,
// maybe sent.
//
// The outcome follows from the class: permanent and stop-run answers are refusals, throttles
// were not taken, and a transient answer was not taken when it is a 4xx or a failure before
// the request was written, and was maybe sent otherwise (see OutcomeMaybeSent and
// SetAmbiguousStatuses). An override that makes a maybe-sent key a throttle therefore makes
// it resend, even under at-most-once.
func (t *Table) Decide(err error) Decision { return t.decide(err, false) }

// DecideTemplate is Decide for the answer to a template send, which the 24-hour window does
// not govern (reference 2.5, 4.3 #10: "a template sender should never see it"). A
// window-closed error type with no specific code (ERROR_TYPE_DEADLINE_EXCEEDED with the
// catch-all code, say) cannot mean a closed window there, and a DEADLINE_EXCEEDED may be the
// timeout its name says, after the message went out: it does not decide, the status does
// (a 504 is maybe sent). A window-closed code still refuses, as it says nothing was sent.
func (t *Table) DecideTemplate(err error) Decision { return t.decide(err, true) }

func (t *Table) decide(err error, template bool) Decision {
	if err == nil {
		return Decision{Outcome: OutcomeAccepted, Class: ClassNone}
	}
	var ae *Error
	if errors.As(err, &ae) {
		class, rule, key := t.classifyAnswer(ae, template)
		return Decision{Outcome: outcomeOf(class, t.statusMayFollowSend(ae.StatusCode)), Class: class, Rule: rule, Key: key,
			RequestFault: class == ClassPermanent && t.requestFault(key, rule.RequestFault)}
	}
	var te *TransportError
	if errors.As(err, &te) {
		rule, ok := t.rules[te.Key()]
		if !ok {
			rule = transient("no answer from Connectly")
			if !te.Written {
				rule = transient("no answer from Connectly: the request was not sent")
			}
		}
		return Decision{Outcome: outcomeOf(rule.Class, te.Written), Class: rule.Class, Rule: rule, Key: te.Key(),
			RequestFault: rule.Class == ClassPermanent && t.requestFault(te.Key(), rule.RequestFault)}
	}
	return Decision{Outcome: OutcomeRefused, Class: ClassPermanent, Rule: permanent("request could not be built"), Key: clientErrorKey}
}

// outcomeOf is the outcome of a failed send of class c; mayHaveGone says whether the answer
// (or its absence) may follow a message that went out.
func outcomeOf(c Class, mayHaveGone bool) Outcome {
	switch {
	case c == ClassPermanent || c == ClassStopRun:
		return OutcomeRefused
	case c == ClassThrottle || !mayHaveGone:
		return OutcomeNotTaken
	default:
		return OutcomeMaybeSent
	}
}

// classifyAnswer returns the class and rule of an error answer (see Decide), and the key it
// is recorded under: the key whose rule decided, so that ClassOf of the recorded key reads
// back the class decided. A catch-all code or type that did not decide is not recorded; a
// specific code no rule knows is recorded when its status makes it permanent (ClassOf's
// answer for a key it does not know), else the status is.
//
// A top-level code from 0 to 16 is read as the gRPC status it is behind grpc-gateway
// (grpcKey), under its GRPC_ key: the table's rows for it decide like a code's, and a status
// without a row leaves the decision to the HTTP status.
func (t *Table) classifyAnswer(ae *Error, template bool) (Class, Rule, string) {
	statusKey := fmt.Sprintf("HTTP_%d", ae.StatusCode)
	code, grpc := grpcKey(ae.Code)
	if !grpc {
		code = ae.Code
	}
	if ae.StatusCode == 429 {
		// The body's code or type first (reference 1: by HTTP status only as a fallback),
		// where it says more than "too many requests" and agrees that nothing was taken: a
		// throttle code (the pair limit 131056 backs off this one person, not the sender; a
		// maintenance 131057 holds everything for a minute; a throughput 130429 slows the
		// sender) or a run-stopping one (the run pauses; nothing is lost). A permanent code
		// contradicts the status, and the status decides: a message is never given up on an
		// answer that says "not now". A catch-all code or type says nothing more, nor does
		// a gRPC throttle (RESOURCE_EXHAUSTED is what grpc-gateway answers 429 for): the
		// answer is keyed HTTP_429, as the sender's adaptive rate counts it.
		for _, k := range []string{code, ae.Type} {
			if k == "" || unspecified[k] {
				continue
			}
			if r, ok := t.rules[k]; ok && (r.Class == ClassStopRun || r.Class == ClassThrottle && !(grpc && k == code)) {
				return r.Class, r, k
			}
		}
		if r, ok := t.rules[statusKey]; ok {
			return r.Class, r, statusKey
		}
		return ClassThrottle, throttle("HTTP 429: Connectly's request limit"), statusKey
	}
	for _, k := range []string{code, ae.Type} {
		if k == "" || unspecified[k] {
			continue
		}
		if r, ok := t.rules[k]; ok && !(template && k == ae.Type && r.WindowClosed) {
			if template && grpc && k == code {
				// A gRPC status names no window: on a template it refuses this recipient.
				r.WindowClosed = false
			}
			return r.Class, r, k
		}
	}
	if r, ok := t.rules[statusKey]; ok {
		return r.Class, r, statusKey
	}
	c := StatusClass(ae.StatusCode)
	if c == ClassTransient {
		for _, k := range []string{code, ae.Type} {
			if r, ok := t.rules[k]; ok && unspecified[k] {
				return r.Class, r, k
			}
		}
	}
	key := statusKey
	if c == ClassPermanent {
		for _, k := range []string{code, ae.Type} {
			if k != "" && !unspecified[k] {
				key = k
				break
			}
		}
	}
	return c, Rule{Class: c, Why: fmt.Sprintf("HTTP %d", ae.StatusCode)}, key
}

// Classify returns the class and rule Decide gives err.
func (t *Table) Classify(err error) (Class, Rule) {
	d := t.Decide(err)
	return d.Class, d.Rule
}

// defaultTable is DefaultTable with the default ambiguity rule, for Ambiguous.
var defaultTable, _ = NewTable(nil)

// Ambiguous reports whether err leaves it unknown whether Connectly accepted the message
// under the default table: Decide's OutcomeMaybeSent. The worker uses its configured Table.
func Ambiguous(err error) bool {
	return defaultTable.Decide(err).Outcome == OutcomeMaybeSent
}

// IsWindowClosed reports whether err is an answer saying the customer's 24-hour window is
// closed, under the default table (see Decision.WindowClosed); code holding a configured
// Table asks its Decide. Overrides cannot make a window-closed answer retryable.
func IsWindowClosed(err error) bool {
	return defaultTable.Decide(err).WindowClosed()
}

// ClassOf returns the class of a recorded error key (a code, a type, "HTTP_<status>",
// "NO_RESPONSE" or "NOT_SENT"), as Decide would have decided it.
func (t *Table) ClassOf(key string) Class {
	if r, ok := t.rules[key]; ok {
		return r.Class
	}
	if strings.HasPrefix(key, "HTTP_") {
		if n, err := strconv.Atoi(key[5:]); err == nil {
			return StatusClass(n)
		}
	}
	switch key {
	case "NO_RESPONSE", "NOT_SENT":
		return ClassTransient
	}
	return ClassPermanent
}

// MarketingOnlyOptOut reports whether key (a recorded code) is an opt-out that stops
// marketing messages only (Rule.MarketingOnly). It reads DefaultTable: overrides change a
// code's class, never what the person opted out of.
func MarketingOnlyOptOut(key string) bool {
	r, ok := DefaultTable[key]
	return ok && r.OptOut && r.MarketingOnly
}

// Rules returns the table's keys and rules sorted by key, for documentation and `herald errors`.
func (t *Table) Rules() []struct {
	Key string
	Rule
} {
	out := make([]struct {
		Key string
		Rule
	}, 0, len(t.rules))
	for k, r := range t.rules {
		out = append(out, struct {
			Key string
			Rule
		}{k, r})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
