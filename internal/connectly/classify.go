package connectly

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
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

func (c Class) String() string {
	if s, ok := classNames[c]; ok {
		return s
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
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
	// Why is the one-line reason shown to operators.
	Why string
}

// DefaultTable classifies every error code the provider reference documents (section 4.3),
// the Meta numeric codes it lists (section 9.2, matched when they surface as a code), and
// the documented error types (section 4.2). HTTP statuses are classified by StatusClass.
// Operators override single entries with Table.Override.
var DefaultTable = map[string]Rule{
	// Connectly error codes (reference 4.3).
	"ERROR_CODE_INVALID_SENDER_ID":                           {ClassStopRun, false, "sender number not valid: every message from it fails"},
	"ERROR_CODE_PHONE_NUMBER_BAD_FORMAT":                     {ClassPermanent, false, "recipient number badly formatted"},
	"ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID":          {ClassPermanent, false, "more than one attachment (session API)"},
	"ERROR_CODE_MESSAGE_TEXT_EMPTY":                          {ClassPermanent, false, "message text empty (session API)"},
	"ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND":                  {ClassStopRun, false, "no approved template for that name and language"},
	"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID":              {ClassPermanent, false, "template parameters invalid for this recipient"},
	"ERROR_CODE_MESSAGE_ATTACHMENT_EMPTY":                    {ClassPermanent, false, "attachment URL empty"},
	"ERROR_CODE_MESSAGE_ATTACHMENT_INVALID":                  {ClassPermanent, false, "attachment URL unparseable"},
	"ERROR_CODE_BUSINESS_MISSES_MATCHING_CHANNEL":            {ClassStopRun, false, "business has no sender channel of the required type"},
	"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW":       {ClassPermanent, false, "24-hour window closed (session API)"},
	"ERROR_CODE_BUSINESS_REACHED_LIMITS":                     {ClassStopRun, false, "sender restricted: too many messages blocked or flagged"},
	"ERROR_CODE_MESSAGE_SELF_INVALID":                        {ClassPermanent, false, "recipient is the sender"},
	"ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID":                {ClassPermanent, false, "recipient number invalid"},
	"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT":                  {ClassPermanent, true, "customer opted out of template messages"},
	"ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION": {ClassPermanent, false, "customer has not started a conversation (session API)"},
	"ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT":                  {ClassStopRun, false, "business API secret not initialised"},
	"ERROR_CODE_MESSAGE_TEMPLATE_DELETED":                    {ClassStopRun, false, "template is being deleted"},
	"ERROR_CODE_UNSPECIFIED":                                 {ClassTransient, false, "unexpected provider error"},

	// Meta codes (reference 9.2), for when they surface as the code.
	"130429": {ClassThrottle, false, "sender number throughput exceeded"},
	"131056": {ClassThrottle, false, "pair rate limit: too many messages to this person"},
	"131048": {ClassStopRun, false, "spam rate limit: sending restricted"},
	"131049": {ClassPermanent, false, "Meta chose not to deliver (per-user marketing limit)"},
	"131050": {ClassPermanent, true, "user stopped marketing messages from this business"},
	"130472": {ClassPermanent, false, "user is part of a marketing experiment"},
	"131026": {ClassPermanent, false, "message undeliverable to this number"},
	"131047": {ClassPermanent, false, "more than 24 hours since the last reply"},
	"130497": {ClassPermanent, false, "business restricted from messaging this country"},
	"131031": {ClassStopRun, false, "business account locked"},
	"131042": {ClassStopRun, false, "business eligibility or payment issue"},
	"368":    {ClassStopRun, false, "temporarily blocked for policy violations"},
	"131062": {ClassPermanent, false, "BSUID recipients not supported for this message"},
	"132000": {ClassStopRun, false, "template parameter count mismatch"},
	"132001": {ClassStopRun, false, "template does not exist in that translation"},
	"132005": {ClassPermanent, false, "hydrated template text too long"},
	"132012": {ClassPermanent, false, "parameter format mismatch"},
	"132015": {ClassStopRun, false, "template paused for low quality"},
	"132016": {ClassStopRun, false, "template disabled"},
	"100":    {ClassPermanent, false, "invalid parameter"},
	"131008": {ClassPermanent, false, "required parameter missing"},
	"131009": {ClassPermanent, false, "parameter value invalid"},
	"131057": {ClassTransient, false, "account in maintenance mode"},
	"131000": {ClassTransient, false, "generic send failure"},
	"131016": {ClassTransient, false, "service temporarily unavailable"},
	"2":      {ClassTransient, false, "service temporarily unavailable"},
	"133004": {ClassTransient, false, "server temporarily unavailable"},
	"0":      {ClassStopRun, false, "authentication failed"},
	"190":    {ClassStopRun, false, "access token expired"},
	"3":      {ClassStopRun, false, "capability missing"},
	"10":     {ClassStopRun, false, "permission denied"},
	"4":      {ClassThrottle, false, "application API call rate limit"},
	"80007":  {ClassThrottle, false, "WABA API call rate limit"},

	// Error types (reference 4.2), used when the code is absent or not in the table.
	"ERROR_TYPE_AUTHENTICATION":    {ClassStopRun, false, "API key missing or invalid"},
	"ERROR_TYPE_INVALID_REQUEST":   {ClassPermanent, false, "request content is wrong for this recipient"},
	"ERROR_TYPE_DEADLINE_EXCEEDED": {ClassPermanent, false, "24-hour window closed (not a timeout)"},
	"ERROR_TYPE_UNSPECIFIED":       {ClassTransient, false, "unexpected provider error"},
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

// Table is a classification table: DefaultTable plus operator overrides.
type Table struct {
	rules map[string]Rule
	// ambiguous are the HTTP statuses that, without a Connectly error body, may come from a
	// gateway after Connectly accepted the message (see Ambiguous).
	ambiguous map[int]bool
}

// DefaultAmbiguousStatuses are the bare 5xx answers treated as "maybe sent": a gateway's 500,
// 502 or 504 can follow an accepted request. 503 means the request was not taken.
var DefaultAmbiguousStatuses = []int{500, 502, 504}

// SetAmbiguousStatuses replaces the statuses Ambiguous treats as "maybe sent" when they
// carry no Connectly error body.
func (t *Table) SetAmbiguousStatuses(statuses []int) {
	t.ambiguous = make(map[int]bool, len(statuses))
	for _, s := range statuses {
		t.ambiguous[s] = true
	}
}

// Ambiguous reports whether a failed send may have been accepted anyway: no answer after the
// request was written, or a bare gateway error (a status from the ambiguous set with no
// Connectly error code or type in the body). An answer carrying Connectly's error body is a
// refusal: the message was not accepted.
func (t *Table) Ambiguous(err error) bool {
	if Ambiguous(err) {
		return true
	}
	var ae *Error
	return errors.As(err, &ae) && ae.Code == "" && ae.Type == "" && t.ambiguous[ae.StatusCode]
}

// NewTable returns DefaultTable with overrides applied. An override key is an error code,
// a Meta code, an error type or "HTTP_<status>"; its value is a class name.
func NewTable(overrides map[string]string) (*Table, error) {
	t := &Table{rules: make(map[string]Rule, len(DefaultTable)+len(overrides))}
	t.SetAmbiguousStatuses(DefaultAmbiguousStatuses)
	for k, r := range DefaultTable {
		t.rules[k] = r
	}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c, err := ParseClass(overrides[k])
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

// Classify returns the class of an error from Client.SendTemplate: by the body's code first,
// then its type, then the HTTP status (the reference warns a mapped error type may arrive with
// an unexpected status, so the body wins). The catch-all ERROR_CODE_UNSPECIFIED and
// ERROR_TYPE_UNSPECIFIED are consulted last, and not at all when the status throttles or stops
// the run (a 429 or 401 with an unspecified body is still a 429 or 401). Transport failures
// are transient; whether they are also ambiguous is reported by Ambiguous. Any other error
// (a bug on our side) is permanent.
func (t *Table) Classify(err error) (Class, Rule) {
	if err == nil {
		return ClassNone, Rule{}
	}
	var ae *Error
	if errors.As(err, &ae) {
		for _, k := range []string{ae.Code, ae.Type} {
			if k == "" || unspecified[k] {
				continue
			}
			if r, ok := t.rules[k]; ok {
				return r.Class, r
			}
		}
		if r, ok := t.rules[fmt.Sprintf("HTTP_%d", ae.StatusCode)]; ok {
			return r.Class, r
		}
		c := StatusClass(ae.StatusCode)
		if c != ClassThrottle && c != ClassStopRun {
			for _, k := range []string{ae.Code, ae.Type} {
				if r, ok := t.rules[k]; ok && unspecified[k] {
					return r.Class, r
				}
			}
		}
		return c, Rule{Class: c, Why: fmt.Sprintf("HTTP %d", ae.StatusCode)}
	}
	var te *TransportError
	if errors.As(err, &te) {
		if r, ok := t.rules[te.Key()]; ok {
			return r.Class, r
		}
		return ClassTransient, Rule{Class: ClassTransient, Why: "no answer from Connectly"}
	}
	return ClassPermanent, Rule{Class: ClassPermanent, Why: "request could not be built"}
}

// ClassOf returns the class of a recorded error key (a code, a type, "HTTP_<status>",
// "NO_RESPONSE" or "NOT_SENT"), as Classify would have decided it.
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
