package connectly_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

// defaultTable is the classification table with no overrides.
func defaultTable(tb testing.TB) *connectly.Table {
	tb.Helper()
	tbl, err := connectly.NewTable(nil)
	if err != nil {
		tb.Fatalf("NewTable(nil): %v", err)
	}
	return tbl
}

func apiErr(status int, typ, code string) error {
	return &connectly.Error{StatusCode: status, ErrorBody: connectly.ErrorBody{Type: typ, Code: code}}
}

// TestClassifyReferenceCodes pins every error code of reference section 4.3 to the class the
// reference recommends. CAMPAIGN-STOP is ClassStopRun.
func TestClassifyReferenceCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want connectly.Class
	}{
		{"ERROR_CODE_INVALID_SENDER_ID", connectly.ClassStopRun},
		{"ERROR_CODE_PHONE_NUMBER_BAD_FORMAT", connectly.ClassPermanent},
		{"ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID", connectly.ClassPermanent},
		{"ERROR_CODE_MESSAGE_TEXT_EMPTY", connectly.ClassPermanent},
		{"ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND", connectly.ClassStopRun},
		{"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID", connectly.ClassPermanent},
		{"ERROR_CODE_MESSAGE_ATTACHMENT_EMPTY", connectly.ClassPermanent},
		{"ERROR_CODE_MESSAGE_ATTACHMENT_INVALID", connectly.ClassPermanent},
		{"ERROR_CODE_BUSINESS_MISSES_MATCHING_CHANNEL", connectly.ClassStopRun},
		{"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", connectly.ClassPermanent},
		{"ERROR_CODE_BUSINESS_REACHED_LIMITS", connectly.ClassStopRun},
		{"ERROR_CODE_MESSAGE_SELF_INVALID", connectly.ClassPermanent},
		{"ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID", connectly.ClassPermanent},
		{"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT", connectly.ClassPermanent},
		{"ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION", connectly.ClassPermanent},
		{"ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT", connectly.ClassStopRun},
		{"ERROR_CODE_MESSAGE_TEMPLATE_DELETED", connectly.ClassStopRun},
		{"ERROR_CODE_UNSPECIFIED", connectly.ClassTransient},
	}
	if len(tests) != 18 {
		t.Fatalf("reference 4.3 lists 18 codes, table has %d", len(tests))
	}
	counts := map[connectly.Class]int{}
	tbl := defaultTable(t)
	for _, tc := range tests {
		counts[tc.want]++
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			if _, ok := connectly.DefaultTable[tc.code]; !ok {
				t.Fatalf("%s missing from DefaultTable", tc.code)
			}
			// 400 and 500 both carry codes in practice; the code must decide either way, but
			// for the catch-all, which says no more than the status (reference 4.4: "400
			// without a known code" is permanent).
			for _, status := range []int{400, 500} {
				got, rule := tbl.Classify(apiErr(status, "", tc.code))
				if want := tc.want; got != want && (tc.code != "ERROR_CODE_UNSPECIFIED" || got != connectly.StatusClass(status)) {
					t.Errorf("HTTP %d: Classify = %v, want %v", status, got, tc.want)
				}
				if rule.Class != got || rule.Why == "" {
					t.Errorf("HTTP %d: rule = %+v, want class %v and a reason", status, rule, got)
				}
			}
			wantOptOut := tc.code == "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"
			if _, rule := tbl.Classify(apiErr(400, "", tc.code)); rule.OptOut != wantOptOut {
				t.Errorf("OptOut = %v, want %v", rule.OptOut, wantOptOut)
			}
		})
	}
	// Reference counts: PERMANENT 11, CAMPAIGN-STOP 6, TRANSIENT 1.
	if counts[connectly.ClassPermanent] != 11 || counts[connectly.ClassStopRun] != 6 || counts[connectly.ClassTransient] != 1 {
		t.Errorf("class counts = %v, want 11 permanent, 6 stop-run, 1 transient", counts)
	}
}

// TestClassifyReferenceTypes covers the four error types of reference section 4.2, sent
// without a code.
func TestClassifyReferenceTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ  string
		want connectly.Class
	}{
		{"ERROR_TYPE_AUTHENTICATION", connectly.ClassStopRun},
		{"ERROR_TYPE_INVALID_REQUEST", connectly.ClassPermanent},
		{"ERROR_TYPE_DEADLINE_EXCEEDED", connectly.ClassPermanent},
		{"ERROR_TYPE_UNSPECIFIED", connectly.ClassTransient},
	}
	tbl := defaultTable(t)
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			// The catch-all type is read only at a status that is itself transient.
			status := 400
			if tc.typ == "ERROR_TYPE_UNSPECIFIED" {
				status = 500
			}
			if got, _ := tbl.Classify(apiErr(status, tc.typ, "")); got != tc.want {
				t.Errorf("Classify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		want    connectly.Class
		wantWhy string
	}{
		// HTTP-only fallbacks (reference 4.4): no code or type in the body.
		{"Status429Throttles", apiErr(429, "", ""), connectly.ClassThrottle, "HTTP 429"},
		{"Status401StopsRun", apiErr(401, "", ""), connectly.ClassStopRun, "HTTP 401"},
		{"Status403StopsRun", apiErr(403, "", ""), connectly.ClassStopRun, "HTTP 403"},
		{"Status404StopsRun", apiErr(404, "", ""), connectly.ClassStopRun, "HTTP 404"},
		{"Status409StopsRun", apiErr(409, "", ""), connectly.ClassStopRun, "HTTP 409"},
		{"Status400Permanent", apiErr(400, "", ""), connectly.ClassPermanent, "HTTP 400"},
		{"Status422Permanent", apiErr(422, "", ""), connectly.ClassPermanent, "HTTP 422"},
		{"Status408Transient", apiErr(408, "", ""), connectly.ClassTransient, "HTTP 408"},
		{"Status500Transient", apiErr(500, "", ""), connectly.ClassTransient, "HTTP 500"},
		{"Status502Transient", apiErr(502, "", ""), connectly.ClassTransient, "HTTP 502"},
		{"Status503Transient", apiErr(503, "", ""), connectly.ClassTransient, "HTTP 503"},
		{"Status504Transient", apiErr(504, "", ""), connectly.ClassTransient, "HTTP 504"},

		// The body wins over the status (reference 1: a mapped type may arrive as a 504).
		{"EligibilityWindowAt504", apiErr(504, "ERROR_TYPE_DEADLINE_EXCEEDED", "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"), connectly.ClassPermanent, "24-hour window"},
		{"DeadlineTypeAt504", apiErr(504, "ERROR_TYPE_DEADLINE_EXCEEDED", ""), connectly.ClassPermanent, "not a timeout"},
		{"TemplateNotFoundAt500", apiErr(500, "ERROR_TYPE_INVALID_REQUEST", "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"), connectly.ClassStopRun, "template"},
		{"InvalidRequestTypeAt500", apiErr(500, "ERROR_TYPE_INVALID_REQUEST", ""), connectly.ClassPermanent, "request content"},
		{"CodeBeatsType", apiErr(401, "ERROR_TYPE_AUTHENTICATION", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"), connectly.ClassPermanent, "recipient number invalid"},
		{"MetaCodeAsCode", apiErr(400, "", "131056"), connectly.ClassThrottle, "pair rate limit"},

		// An unknown code falls back to the type, an unknown type to the status.
		{"UnknownCodeKnownType", apiErr(400, "ERROR_TYPE_AUTHENTICATION", "ERROR_CODE_SOMETHING_NEW"), connectly.ClassStopRun, "API key"},
		{"UnknownCodeUnknownType", apiErr(503, "ERROR_TYPE_SOMETHING_NEW", "ERROR_CODE_SOMETHING_NEW"), connectly.ClassTransient, "HTTP 503"},
		{"UnknownTypeAt429", apiErr(429, "ERROR_TYPE_SOMETHING_NEW", ""), connectly.ClassThrottle, "HTTP 429"},

		// The _UNSPECIFIED values say nothing specific: they must not hide a specific type or a
		// status that says more (a bad key at 401, a rate limit at 429).
		{"UnspecifiedCodeWithAuthType", apiErr(401, "ERROR_TYPE_AUTHENTICATION", "ERROR_CODE_UNSPECIFIED"), connectly.ClassStopRun, "API key"},
		{"UnspecifiedCodeWithDeadlineType", apiErr(504, "ERROR_TYPE_DEADLINE_EXCEEDED", "ERROR_CODE_UNSPECIFIED"), connectly.ClassPermanent, "24-hour window"},
		{"UnspecifiedAt401", apiErr(401, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_UNSPECIFIED"), connectly.ClassStopRun, "HTTP 401"},
		{"UnspecifiedAt404", apiErr(404, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_UNSPECIFIED"), connectly.ClassStopRun, "HTTP 404"},
		{"UnspecifiedAt429", apiErr(429, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_UNSPECIFIED"), connectly.ClassThrottle, "HTTP 429"},
		{"UnspecifiedAt500", apiErr(500, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_UNSPECIFIED"), connectly.ClassTransient, "unexpected provider error"},
		// A 4xx whose body names no specific code is a request Connectly will not take
		// (reference 4.4, "400 without a known code"): retrying it gets the same answer.
		{"UnspecifiedAt400", apiErr(400, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_UNSPECIFIED"), connectly.ClassPermanent, "HTTP 400"},
		{"UnknownCodeAt400", apiErr(400, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_SOMETHING_NEW"), connectly.ClassPermanent, "HTTP 400"},
		{"UnspecifiedAt408", apiErr(408, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_UNSPECIFIED"), connectly.ClassTransient, "unexpected provider error"},
		{"UnspecifiedTypeWithKnownCode", apiErr(400, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"), connectly.ClassPermanent, "recipient number invalid"},
		// At a 429 the body's code or type decides when it agrees nothing was taken (reference
		// 1: the body first): a throttle code says which throttle, a run-stopping one pauses
		// the run. A permanent code contradicts the status, which decides: never given up.
		{"KnownCodeAt429", apiErr(429, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"), connectly.ClassThrottle, "HTTP 429"},
		{"StopRunTypeAt429", apiErr(429, "ERROR_TYPE_AUTHENTICATION", ""), connectly.ClassStopRun, "API key"},
		{"StopRunCodeAt429", apiErr(429, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_BUSINESS_REACHED_LIMITS"), connectly.ClassStopRun, "sender restricted"},
		{"PairCodeAt429", apiErr(429, "", "131056"), connectly.ClassThrottle, "pair rate limit"},
		{"MaintenanceCodeAt429", apiErr(429, "ERROR_TYPE_UNSPECIFIED", "131057"), connectly.ClassThrottle, "maintenance"},

		// Seen on session sends, in no doc: the 24-hour window is closed (reference 3.1).
		{"FailedPreconditionType", apiErr(400, "ERROR_TYPE_FAILED_PRECONDITION", "ERROR_CODE_UNSPECIFIED"), connectly.ClassPermanent, "24-hour window"},
		{"FailedPreconditionAt500", apiErr(500, "ERROR_TYPE_FAILED_PRECONDITION", ""), connectly.ClassPermanent, "24-hour window"},
		{"NoConversationInitiation", apiErr(400, "", "ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION"), connectly.ClassPermanent, "24-hour window"},

		// Errors that are not answers from Connectly.
		{"Nil", nil, connectly.ClassNone, ""},
		{"NotSent", &connectly.TransportError{Err: errors.New("connection refused")}, connectly.ClassTransient, "not sent"},
		{"NoResponse", &connectly.TransportError{Written: true, Err: io.EOF}, connectly.ClassTransient, "no answer"},
		{"WrappedAPIError", fmt.Errorf("recipient r-9: %w", apiErr(400, "", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT")), connectly.ClassPermanent, "opted out"},
		{"WrappedTransportError", fmt.Errorf("recipient r-9: %w", &connectly.TransportError{Err: io.EOF}), connectly.ClassTransient, "no answer"},
		{"RequestBuildError", errors.New("connectly: callbackData is 2000 bytes, limit 1024"), connectly.ClassPermanent, "could not be built"},
	}
	tbl := defaultTable(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, rule := tbl.Classify(tc.err)
			if got != tc.want {
				t.Errorf("Classify = %v, want %v", got, tc.want)
			}
			if rule.Class != got {
				t.Errorf("rule.Class = %v, returned class %v", rule.Class, got)
			}
			if !strings.Contains(rule.Why, tc.wantWhy) {
				t.Errorf("rule.Why = %q, want it to contain %q", rule.Why, tc.wantWhy)
			}
		})
	}
}

func TestClassifyOptOut(t *testing.T) {
	t.Parallel()
	tbl := defaultTable(t)
	_, rule := tbl.Classify(apiErr(400, "ERROR_TYPE_INVALID_REQUEST", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"))
	if !rule.OptOut {
		t.Error("OptOut = false for ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT")
	}
	for _, err := range []error{
		apiErr(400, "", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"),
		apiErr(400, "ERROR_TYPE_INVALID_REQUEST", ""),
		apiErr(400, "", ""),
		&connectly.TransportError{Err: io.EOF},
	} {
		if _, rule := tbl.Classify(err); rule.OptOut {
			t.Errorf("OptOut = true for %v", err)
		}
	}
}

func TestNewTableOverrides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		overrides  map[string]string
		err        error
		want       connectly.Class
		wantOptOut bool
		wantWhy    string
	}{
		{"NoOverride", nil, apiErr(400, "", "ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID"), connectly.ClassPermanent, false, "template parameters"},
		{"CodeToStopRun", map[string]string{"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID": "stop-run"},
			apiErr(400, "", "ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID"), connectly.ClassStopRun, false, "template parameters"},
		{"CaseInsensitiveClass", map[string]string{"ERROR_CODE_UNSPECIFIED": "PERMANENT"},
			apiErr(500, "", "ERROR_CODE_UNSPECIFIED"), connectly.ClassPermanent, false, "unexpected"},
		{"TypeOverride", map[string]string{"ERROR_TYPE_INVALID_REQUEST": "transient"},
			apiErr(400, "ERROR_TYPE_INVALID_REQUEST", ""), connectly.ClassTransient, false, "request content"},
		{"OptOutKeptWhenClassChanges", map[string]string{"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT": "stop-run"},
			apiErr(400, "", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"), connectly.ClassStopRun, true, "opted out"},
		{"HTTPStatus", map[string]string{"HTTP_404": "permanent"}, apiErr(404, "", ""), connectly.ClassPermanent, false, "class set by configuration"},
		{"HTTPStatusDoesNotBeatCode", map[string]string{"HTTP_404": "permanent"},
			apiErr(404, "", "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"), connectly.ClassStopRun, false, "template"},
		{"NewCode", map[string]string{"ERROR_CODE_SOMETHING_NEW": "throttle"},
			apiErr(400, "", "ERROR_CODE_SOMETHING_NEW"), connectly.ClassThrottle, false, "class set by configuration"},
		{"NotSent", map[string]string{"NOT_SENT": "throttle"}, &connectly.TransportError{Err: io.EOF}, connectly.ClassThrottle, false, "class set by configuration"},
		{"NoResponse", map[string]string{"NO_RESPONSE": "permanent"}, &connectly.TransportError{Written: true, Err: io.EOF}, connectly.ClassPermanent, false, "class set by configuration"},
		{"NoResponseOverrideLeavesNotSent", map[string]string{"NO_RESPONSE": "permanent"}, &connectly.TransportError{Err: io.EOF}, connectly.ClassTransient, false, "no answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tbl, err := connectly.NewTable(tc.overrides)
			if err != nil {
				t.Fatalf("NewTable: %v", err)
			}
			got, rule := tbl.Classify(tc.err)
			if got != tc.want {
				t.Errorf("Classify = %v, want %v", got, tc.want)
			}
			if rule.OptOut != tc.wantOptOut {
				t.Errorf("OptOut = %v, want %v", rule.OptOut, tc.wantOptOut)
			}
			if !strings.Contains(rule.Why, tc.wantWhy) {
				t.Errorf("Why = %q, want it to contain %q", rule.Why, tc.wantWhy)
			}
		})
	}
}

func TestNewTableOverrideDoesNotChangeDefaultTable(t *testing.T) {
	t.Parallel()
	const code = "ERROR_CODE_MESSAGE_TEMPLATE_DELETED"
	before := connectly.DefaultTable[code]
	if _, err := connectly.NewTable(map[string]string{code: "transient"}); err != nil {
		t.Fatal(err)
	}
	if after := connectly.DefaultTable[code]; after != before {
		t.Errorf("DefaultTable[%s] changed from %+v to %+v", code, before, after)
	}
	if got, _ := defaultTable(t).Classify(apiErr(400, "", code)); got != connectly.ClassStopRun {
		t.Errorf("a fresh table classifies %s as %v, want stop-run", code, got)
	}
}

func TestNewTableInvalidClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		overrides map[string]string
		wantErr   []string
	}{
		{"Unknown", map[string]string{"ERROR_CODE_UNSPECIFIED": "sometimes"}, []string{"ERROR_CODE_UNSPECIFIED", `"sometimes"`, "permanent, transient, throttle or stop-run"}},
		{"None", map[string]string{"HTTP_500": "none"}, []string{"HTTP_500", `"none"`}},
		{"Empty", map[string]string{"131056": ""}, []string{"131056", `""`}},
		{"Underscore", map[string]string{"HTTP_401": "stop_run"}, []string{"HTTP_401", `"stop_run"`}},
		// With several bad entries the error is deterministic: the first key in sorted order.
		{"FirstSortedKeyReported", map[string]string{"B_CODE": "bad", "A_CODE": "worse", "C_CODE": "worst"}, []string{"A_CODE", `"worse"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tbl, err := connectly.NewTable(tc.overrides)
			if err == nil {
				t.Fatalf("NewTable = %v, want an error", tbl)
			}
			if tbl != nil {
				t.Error("NewTable returned a table with an error")
			}
			for _, sub := range tc.wantErr {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("err = %q, want it to contain %q", err, sub)
				}
			}
		})
	}
}

func TestParseClassRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []connectly.Class{connectly.ClassTransient, connectly.ClassPermanent, connectly.ClassThrottle, connectly.ClassStopRun} {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			for _, s := range []string{c.String(), strings.ToUpper(c.String())} {
				got, err := connectly.ParseClass(s)
				if err != nil || got != c {
					t.Errorf("ParseClass(%q) = %v, %v, want %v", s, got, err, c)
				}
			}
		})
	}

	// "none" names the class of a nil error; it is not something an operator can choose.
	if got, err := connectly.ParseClass(connectly.ClassNone.String()); err == nil {
		t.Errorf("ParseClass(%q) = %v, want an error", connectly.ClassNone, got)
	}
	wantNames := map[connectly.Class]string{
		connectly.ClassNone: "none", connectly.ClassTransient: "transient", connectly.ClassPermanent: "permanent",
		connectly.ClassThrottle: "throttle", connectly.ClassStopRun: "stop-run", connectly.Class(99): "Class(99)",
	}
	for c, want := range wantNames {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

func TestStatusClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   connectly.Class
	}{
		{400, connectly.ClassPermanent},
		{401, connectly.ClassStopRun},
		{403, connectly.ClassStopRun},
		{404, connectly.ClassStopRun},
		{408, connectly.ClassTransient},
		{409, connectly.ClassStopRun},
		{413, connectly.ClassPermanent},
		{429, connectly.ClassThrottle},
		{500, connectly.ClassTransient},
		{502, connectly.ClassTransient},
		{503, connectly.ClassTransient},
		{504, connectly.ClassTransient},
	}
	for _, tc := range tests {
		if got := connectly.StatusClass(tc.status); got != tc.want {
			t.Errorf("StatusClass(%d) = %v, want %v", tc.status, got, tc.want)
		}
	}
}

func TestTableLookupAndRules(t *testing.T) {
	t.Parallel()
	tbl, err := connectly.NewTable(map[string]string{"HTTP_418": "permanent"})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := tbl.Lookup("ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"); !ok || r.Class != connectly.ClassPermanent || !r.OptOut {
		t.Errorf("Lookup(opted out) = %+v, %v", r, ok)
	}
	if r, ok := tbl.Lookup("HTTP_418"); !ok || r.Class != connectly.ClassPermanent {
		t.Errorf("Lookup(HTTP_418) = %+v, %v", r, ok)
	}
	if _, ok := tbl.Lookup("ERROR_CODE_SOMETHING_NEW"); ok {
		t.Error("Lookup found a key nobody defined")
	}

	rules := tbl.Rules()
	if len(rules) != len(connectly.DefaultTable)+1 {
		t.Errorf("Rules has %d entries, want %d", len(rules), len(connectly.DefaultTable)+1)
	}
	if !sort.SliceIsSorted(rules, func(i, j int) bool { return rules[i].Key < rules[j].Key }) {
		t.Error("Rules is not sorted by key")
	}
	for _, r := range rules {
		if r.Why == "" || r.Class == connectly.ClassNone {
			t.Errorf("rule %s = %+v, want a class and a reason", r.Key, r.Rule)
		}
	}
}

// TestDecide pins the one rule for ambiguity: every answer, by status, body and transport, is
// exactly one of accepted, refused, not taken or maybe sent, with its class and ledger key.
func TestDecide(t *testing.T) {
	t.Parallel()
	const (
		unspecCode = "ERROR_CODE_UNSPECIFIED"
		unspecType = "ERROR_TYPE_UNSPECIFIED"
	)
	// standard is Connectly's error body when nothing is more specific (reference 4.1).
	standard := func(status int) error { return apiErr(status, unspecType, unspecCode) }
	tests := []struct {
		name    string
		err     error
		outcome connectly.Outcome
		class   connectly.Class
		key     string
	}{
		{"Accepted", nil, connectly.OutcomeAccepted, connectly.ClassNone, ""},

		// Refused: a documented permanent or run-stopping answer, a 4xx.
		{"PermanentCode400", apiErr(400, "ERROR_TYPE_INVALID_REQUEST", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"), connectly.OutcomeRefused, connectly.ClassPermanent, "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
		{"OptOut400", apiErr(400, "", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"), connectly.OutcomeRefused, connectly.ClassPermanent, "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
		{"Bare400", apiErr(400, "", ""), connectly.OutcomeRefused, connectly.ClassPermanent, "HTTP_400"},
		{"Bare422", apiErr(422, "", ""), connectly.OutcomeRefused, connectly.ClassPermanent, "HTTP_422"},
		{"Auth401", apiErr(401, "ERROR_TYPE_AUTHENTICATION", ""), connectly.OutcomeRefused, connectly.ClassStopRun, "ERROR_TYPE_AUTHENTICATION"},
		{"Standard401", standard(401), connectly.OutcomeRefused, connectly.ClassStopRun, "HTTP_401"},
		{"Bare404", apiErr(404, "", ""), connectly.OutcomeRefused, connectly.ClassStopRun, "HTTP_404"},
		{"TemplateNotFoundAt500", apiErr(500, "ERROR_TYPE_INVALID_REQUEST", "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"), connectly.OutcomeRefused, connectly.ClassStopRun, "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"},
		{"WindowClosedAt504", apiErr(504, "ERROR_TYPE_DEADLINE_EXCEEDED", "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"), connectly.OutcomeRefused, connectly.ClassPermanent, "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"},
		{"FailedPrecondition", apiErr(400, "ERROR_TYPE_FAILED_PRECONDITION", unspecCode), connectly.OutcomeRefused, connectly.ClassPermanent, "ERROR_TYPE_FAILED_PRECONDITION"},
		{"RequestNotBuilt", errors.New("connectly: callbackData is 2000 bytes, limit 1024"), connectly.OutcomeRefused, connectly.ClassPermanent, "CLIENT_ERROR"},

		// Not taken: 429 whatever the body, throttle codes, 503, transient 4xx, not written. A
		// 429's throttle code is its key (the pair limit's backs off the person, not the
		// sender); any other body keys it HTTP_429.
		{"Bare429", apiErr(429, "", ""), connectly.OutcomeNotTaken, connectly.ClassThrottle, "HTTP_429"},
		{"Standard429", standard(429), connectly.OutcomeNotTaken, connectly.ClassThrottle, "HTTP_429"},
		{"429WithPermanentCode", apiErr(429, "", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"), connectly.OutcomeNotTaken, connectly.ClassThrottle, "HTTP_429"},
		{"429WithMetaCode", apiErr(429, "", "130429"), connectly.OutcomeNotTaken, connectly.ClassThrottle, "130429"},
		{"429WithPairCode", apiErr(429, "", "131056"), connectly.OutcomeNotTaken, connectly.ClassThrottle, "131056"},
		{"MetaThroughput400", apiErr(400, "", "130429"), connectly.OutcomeNotTaken, connectly.ClassThrottle, "130429"},
		{"MetaThroughputAt500", apiErr(500, "", "130429"), connectly.OutcomeNotTaken, connectly.ClassThrottle, "130429"},
		{"MetaWABALimit", apiErr(400, "", "80007"), connectly.OutcomeNotTaken, connectly.ClassThrottle, "80007"},
		{"PairLimit", apiErr(400, "", "131056"), connectly.OutcomeNotTaken, connectly.ClassThrottle, "131056"},
		// Reference 4.4 lists 503 with 500, 502 and 504 as a duplicate risk.
		{"Bare503", apiErr(503, "", ""), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_503"},
		{"Standard503", standard(503), connectly.OutcomeMaybeSent, connectly.ClassTransient, unspecCode},
		{"Bare408", apiErr(408, "", ""), connectly.OutcomeNotTaken, connectly.ClassTransient, "HTTP_408"},
		{"Standard400", standard(400), connectly.OutcomeRefused, connectly.ClassPermanent, "HTTP_400"},
		{"ConnectionRefused", &connectly.TransportError{Err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused")}, connectly.OutcomeNotTaken, connectly.ClassTransient, "NOT_SENT"},
		{"WrappedNotWritten", fmt.Errorf("r-1: %w", &connectly.TransportError{Err: io.EOF}), connectly.OutcomeNotTaken, connectly.ClassTransient, "NOT_SENT"},

		// Maybe sent: every other 5xx with or without Connectly's body, no answer after the
		// request was written.
		{"Bare500", apiErr(500, "", ""), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_500"},
		{"Standard500", standard(500), connectly.OutcomeMaybeSent, connectly.ClassTransient, unspecCode},
		{"CodeOnly500", apiErr(500, "", unspecCode), connectly.OutcomeMaybeSent, connectly.ClassTransient, unspecCode},
		{"Bare502", apiErr(502, "", ""), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_502"},
		{"Standard502", standard(502), connectly.OutcomeMaybeSent, connectly.ClassTransient, unspecCode},
		{"Bare504", apiErr(504, "", ""), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_504"},
		{"Standard504", standard(504), connectly.OutcomeMaybeSent, connectly.ClassTransient, unspecCode},
		{"Bare501", apiErr(501, "", ""), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_501"},
		{"Gateway520", apiErr(520, "", ""), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_520"},
		{"UnknownCodeAt500", apiErr(500, "ERROR_TYPE_SOMETHING_NEW", "ERROR_CODE_SOMETHING_NEW"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_500"},
		{"UnknownCodeAt400", apiErr(400, "ERROR_TYPE_SOMETHING_NEW", "ERROR_CODE_SOMETHING_NEW"), connectly.OutcomeRefused, connectly.ClassPermanent, "ERROR_CODE_SOMETHING_NEW"},
		{"StandardAuthAt500", apiErr(500, "ERROR_TYPE_AUTHENTICATION", unspecCode), connectly.OutcomeRefused, connectly.ClassStopRun, "ERROR_TYPE_AUTHENTICATION"},
		{"MetaTransientAt500", apiErr(500, "", "131000"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "131000"},
		{"Timeout", &connectly.TransportError{Written: true, Err: context.DeadlineExceeded}, connectly.OutcomeMaybeSent, connectly.ClassTransient, "NO_RESPONSE"},
		{"Reset", &connectly.TransportError{Written: true, Err: syscall.ECONNRESET}, connectly.OutcomeMaybeSent, connectly.ClassTransient, "NO_RESPONSE"},

		// A top-level code from 0 to 16 is a gRPC status (grpc-gateway's default error body,
		// reference 1), never Meta's short code of the same digits (4: a throttle, 3 and 0: stop
		// the run). Six have rows; the others leave the decision to the status.
		{"GRPCDeadlineAt504", apiErr(504, "", "4"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_504"},
		{"GRPCDeadlineAt400", apiErr(400, "", "4"), connectly.OutcomeRefused, connectly.ClassPermanent, "GRPC_DEADLINE_EXCEEDED"},
		{"GRPCInvalidArgument", apiErr(400, "", "3"), connectly.OutcomeRefused, connectly.ClassPermanent, "GRPC_INVALID_ARGUMENT"},
		{"GRPCInvalidArgumentAt500", apiErr(500, "", "3"), connectly.OutcomeRefused, connectly.ClassPermanent, "GRPC_INVALID_ARGUMENT"},
		{"GRPCFailedPrecondition", apiErr(400, "", "9"), connectly.OutcomeRefused, connectly.ClassPermanent, "GRPC_FAILED_PRECONDITION"},
		{"GRPCOutOfRange", apiErr(400, "", "11"), connectly.OutcomeRefused, connectly.ClassPermanent, "GRPC_OUT_OF_RANGE"},
		{"GRPCPermissionDenied", apiErr(403, "", "7"), connectly.OutcomeRefused, connectly.ClassStopRun, "GRPC_PERMISSION_DENIED"},
		{"GRPCUnauthenticated", apiErr(401, "", "16"), connectly.OutcomeRefused, connectly.ClassStopRun, "GRPC_UNAUTHENTICATED"},
		{"GRPCUnauthenticatedAt429", apiErr(429, "", "16"), connectly.OutcomeRefused, connectly.ClassStopRun, "GRPC_UNAUTHENTICATED"},
		// RESOURCE_EXHAUSTED is what the gateway answers 429 for: keyed HTTP_429 there, as
		// the sender's adaptive rate counts it.
		{"GRPCResourceExhaustedAt429", apiErr(429, "", "8"), connectly.OutcomeNotTaken, connectly.ClassThrottle, "HTTP_429"},
		{"GRPCResourceExhaustedAt503", apiErr(503, "", "8"), connectly.OutcomeNotTaken, connectly.ClassThrottle, "GRPC_RESOURCE_EXHAUSTED"},
		{"GRPCOKAt500", apiErr(500, "", "0"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_500"},
		{"GRPCOKAt400", apiErr(400, "", "0"), connectly.OutcomeRefused, connectly.ClassPermanent, "GRPC_OK"},
		{"GRPCUnknownAt500", apiErr(500, "", "2"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_500"},
		{"GRPCAbortedAt409", apiErr(409, "", "10"), connectly.OutcomeRefused, connectly.ClassStopRun, "HTTP_409"},
		{"GRPCNotFoundAt404", apiErr(404, "", "5"), connectly.OutcomeRefused, connectly.ClassStopRun, "HTTP_404"},
		{"GRPCUnavailableAt503", apiErr(503, "", "14"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_503"},
		{"GRPCInternalAt500", apiErr(500, "", "13"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_500"},
		{"GRPCUnimplementedAt501", apiErr(501, "", "12"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_501"},
		{"GRPCDataLossAt500", apiErr(500, "", "15"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_500"},
		// A type beside a gRPC status without a row still decides, as beside no code.
		{"GRPCDeadlineWithWindowType", apiErr(504, "ERROR_TYPE_DEADLINE_EXCEEDED", "4"), connectly.OutcomeRefused, connectly.ClassPermanent, "ERROR_TYPE_DEADLINE_EXCEEDED"},
		// Past the gRPC range, or not in its shortest form, a number is no gRPC status.
		{"NumberPastGRPC", apiErr(400, "", "17"), connectly.OutcomeRefused, connectly.ClassPermanent, "17"},
		{"NumberWithLeadingZero", apiErr(504, "", "04"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_504"},
		{"Meta368", apiErr(400, "", "368"), connectly.OutcomeRefused, connectly.ClassStopRun, "368"},
		{"Meta131026", apiErr(400, "", "131026"), connectly.OutcomeRefused, connectly.ClassPermanent, "131026"},
	}
	tbl := defaultTable(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := tbl.Decide(tc.err)
			if d.Outcome != tc.outcome || d.Class != tc.class || d.Key != tc.key {
				t.Errorf("Decide = %v/%v/%q, want %v/%v/%q", d.Outcome, d.Class, d.Key, tc.outcome, tc.class, tc.key)
			}
			if tc.err != nil && (d.Rule.Class != d.Class || d.Rule.Why == "") {
				t.Errorf("rule %+v, want class %v and a reason", d.Rule, d.Class)
			}
			// The ledger records d.Key; reports and `run retry --class` read its class back.
			if tc.err != nil && tbl.ClassOf(d.Key) != d.Class {
				t.Errorf("decided %v, recorded as %q, which reads back as %v", d.Class, d.Key, tbl.ClassOf(d.Key))
			}
			if got := connectly.Ambiguous(tc.err); got != (tc.outcome == connectly.OutcomeMaybeSent) {
				t.Errorf("Ambiguous = %v, want %v", got, !got)
			}
			if c, r := tbl.Classify(tc.err); c != d.Class || r != d.Rule {
				t.Errorf("Classify = %v, %+v; Decide says %v, %+v", c, r, d.Class, d.Rule)
			}
		})
	}
}

// DecideTemplate: no window governs a template, so a window-closed type with no specific code
// does not decide its answer (the status does); a window-closed code still refuses, and
// everything else reads as Decide reads it.
func TestDecideTemplate(t *testing.T) {
	t.Parallel()
	tbl := defaultTable(t)
	for _, tc := range []struct {
		name    string
		err     error
		outcome connectly.Outcome
		key     string
	}{
		{"DeadlineTypeAt504", apiErr(504, "ERROR_TYPE_DEADLINE_EXCEEDED", "ERROR_CODE_UNSPECIFIED"), connectly.OutcomeMaybeSent, "ERROR_CODE_UNSPECIFIED"},
		{"BareDeadlineTypeAt504", apiErr(504, "ERROR_TYPE_DEADLINE_EXCEEDED", ""), connectly.OutcomeMaybeSent, "HTTP_504"},
		{"DeadlineTypeAt400", apiErr(400, "ERROR_TYPE_DEADLINE_EXCEEDED", "ERROR_CODE_UNSPECIFIED"), connectly.OutcomeRefused, "ERROR_TYPE_DEADLINE_EXCEEDED"},
		{"FailedPreconditionAt500", apiErr(500, "ERROR_TYPE_FAILED_PRECONDITION", ""), connectly.OutcomeMaybeSent, "HTTP_500"},
		{"WindowCodeAt504", apiErr(504, "ERROR_TYPE_DEADLINE_EXCEEDED", "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"), connectly.OutcomeRefused, "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"},
		{"PermanentCode", apiErr(400, "", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"), connectly.OutcomeRefused, "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tbl.DecideTemplate(tc.err)
			if d.Outcome != tc.outcome || d.Key != tc.key {
				t.Errorf("DecideTemplate = %s %q, want %s %q", d.Outcome, d.Key, tc.outcome, tc.key)
			}
			if session := tbl.Decide(tc.err); tc.name != "PermanentCode" && !session.WindowClosed() {
				t.Errorf("Decide (a session send) = %+v, want the window closed", session)
			}
		})
	}
}

func TestDecideAmbiguousStatusesOverride(t *testing.T) {
	t.Parallel()
	standard := func(status int) error { return apiErr(status, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_UNSPECIFIED") }
	tbl := defaultTable(t)
	tbl.SetAmbiguousStatuses([]int{503, 504})
	for status, want := range map[int]connectly.Outcome{
		500: connectly.OutcomeNotTaken, 502: connectly.OutcomeNotTaken, 503: connectly.OutcomeMaybeSent,
		504: connectly.OutcomeMaybeSent, 501: connectly.OutcomeNotTaken,
	} {
		for _, err := range []error{apiErr(status, "", ""), standard(status)} {
			if got := tbl.Decide(err).Outcome; got != want {
				t.Errorf("override [503 504], %v: outcome %v, want %v", err, got, want)
			}
		}
	}
	// The override speaks of statuses only: no answer after the request was written stays
	// maybe sent, a refused connection stays not taken.
	if got := tbl.Decide(&connectly.TransportError{Written: true, Err: io.EOF}).Outcome; got != connectly.OutcomeMaybeSent {
		t.Errorf("written, no answer: %v, want maybe-sent", got)
	}
	if got := tbl.Decide(&connectly.TransportError{Err: io.EOF}).Outcome; got != connectly.OutcomeNotTaken {
		t.Errorf("not written: %v, want not-taken", got)
	}
	// Nil or empty restores the safe default.
	for _, reset := range [][]int{nil, {}} {
		tbl.SetAmbiguousStatuses(reset)
		if got := tbl.Decide(standard(500)).Outcome; got != connectly.OutcomeMaybeSent {
			t.Errorf("after SetAmbiguousStatuses(%v): 500 reads %v, want maybe-sent", reset, got)
		}
		if got := tbl.Decide(standard(503)).Outcome; got != connectly.OutcomeMaybeSent {
			t.Errorf("after SetAmbiguousStatuses(%v): 503 reads %v, want maybe-sent", reset, got)
		}
	}
}

// Class overrides move an answer between outcomes: a refusal never resends, a throttle does.
func TestDecideClassOverrides(t *testing.T) {
	t.Parallel()
	tbl, err := connectly.NewTable(map[string]string{
		"HTTP_500": "permanent", "NO_RESPONSE": "stop-run", "ERROR_CODE_UNSPECIFIED": "throttle", "HTTP_429": "transient",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err  error
		want connectly.Outcome
	}{
		{apiErr(500, "", ""), connectly.OutcomeRefused},
		{&connectly.TransportError{Written: true, Err: io.EOF}, connectly.OutcomeRefused},
		{apiErr(502, "", "ERROR_CODE_UNSPECIFIED"), connectly.OutcomeNotTaken},
		{apiErr(429, "", ""), connectly.OutcomeNotTaken},
		{apiErr(504, "", ""), connectly.OutcomeMaybeSent},
	} {
		if got := tbl.Decide(tc.err).Outcome; got != tc.want {
			t.Errorf("%v: outcome %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Every answer that says the customer's 24-hour window is closed carries WindowClosed, is
// permanent and names the window.
func TestWindowClosedRules(t *testing.T) {
	t.Parallel()
	want := map[string]bool{
		"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW":       true,
		"ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION": true,
		"ERROR_TYPE_DEADLINE_EXCEEDED":                           true,
		"ERROR_TYPE_FAILED_PRECONDITION":                         true,
		"GRPC_FAILED_PRECONDITION":                               true,
		"131047":                                                 true,
	}
	for _, r := range defaultTable(t).Rules() {
		if r.WindowClosed != want[r.Key] {
			t.Errorf("%s: WindowClosed = %v, want %v", r.Key, r.WindowClosed, want[r.Key])
		}
		if r.WindowClosed && (r.Class != connectly.ClassPermanent || !strings.Contains(r.Why, "24-hour window")) {
			t.Errorf("%s: %+v, want permanent with a reason naming the 24-hour window", r.Key, r.Rule)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	t.Parallel()
	for o, want := range map[connectly.Outcome]string{
		connectly.OutcomeAccepted: "accepted", connectly.OutcomeRefused: "refused", connectly.OutcomeNotTaken: "not-taken",
		connectly.OutcomeMaybeSent: "maybe-sent", connectly.Outcome(9): "Outcome(9)",
	} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

// An override cannot make a closed window retryable: the answer stays the same until the
// customer writes again.
func TestNewTableRefusesRetryingAClosedWindow(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", "ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION", "ERROR_TYPE_FAILED_PRECONDITION", "ERROR_TYPE_DEADLINE_EXCEEDED", "GRPC_FAILED_PRECONDITION", "131047"} {
		for _, class := range []string{"transient", "throttle"} {
			if _, err := connectly.NewTable(map[string]string{key: class}); err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "not retried") {
				t.Errorf("override %s=%s: err = %v, want a refusal naming the key", key, class, err)
			}
		}
		for _, class := range []string{"permanent", "stop-run"} {
			tbl, err := connectly.NewTable(map[string]string{key: class})
			if err != nil {
				t.Fatalf("override %s=%s: %v", key, class, err)
			}
			if r, _ := tbl.Lookup(key); !r.WindowClosed || r.Class.String() != class {
				t.Errorf("override %s=%s: rule %+v", key, class, r)
			}
		}
	}
}

// A refusal of the request itself (its number, its content) is one an earlier attempt of the
// same request got too; any other refusal may have come after it. Only the reference's number
// codes and session content codes are such refusals by default: not the template's parameters
// (the template may be edited between attempts), not the broad type or gRPC statuses, not a
// request Herald could not build, a code the table does not know, a stop-the-run code or
// anything not refused; SetRequestFaults replaces the list, nil restoring it.
func TestDecideRequestFault(t *testing.T) {
	t.Parallel()
	tbl := defaultTable(t)
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"InvalidNumber", apiErr(400, "ERROR_TYPE_INVALID_REQUEST", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"), true},
		{"BadFormat", apiErr(400, "", "ERROR_CODE_PHONE_NUMBER_BAD_FORMAT"), true},
		{"SelfInvalid", apiErr(400, "", "ERROR_CODE_MESSAGE_SELF_INVALID"), true},
		{"TextEmpty", apiErr(400, "", "ERROR_CODE_MESSAGE_TEXT_EMPTY"), true},
		{"AttachmentInvalid", apiErr(400, "", "ERROR_CODE_MESSAGE_ATTACHMENT_INVALID"), true},
		{"TemplateInput", apiErr(400, "", "ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID"), false},
		{"InvalidRequestType", apiErr(400, "ERROR_TYPE_INVALID_REQUEST", ""), false},
		{"GRPCInvalidArgument", apiErr(400, "", "3"), false},
		{"MetaParameterFormat", apiErr(400, "", "132012"), false},
		{"ClientError", errors.New("could not encode"), false},
		{"OptedOut", apiErr(400, "", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"), false},
		{"WindowClosed", apiErr(400, "ERROR_TYPE_DEADLINE_EXCEEDED", "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"), false},
		{"MetaUndeliverable", apiErr(400, "", "131026"), false},
		{"UnknownCode", apiErr(400, "", "ERROR_CODE_SOMETHING_NEW"), false},
		{"BareStatus", apiErr(400, "", ""), false},
		{"TemplateNotFoundStopsTheRun", apiErr(400, "", "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"), false},
		{"Transient", apiErr(500, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_UNSPECIFIED"), false},
	}
	check := func(when string) {
		for _, c := range cases {
			if got := tbl.Decide(c.err).RequestFault; got != c.want {
				t.Errorf("%s%s: request fault %v, want %v", when, c.name, got, c.want)
			}
		}
	}
	check("")
	tbl.SetRequestFaults([]string{"HTTP_400"})
	if !tbl.Decide(apiErr(400, "", "")).RequestFault || tbl.Decide(apiErr(400, "", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID")).RequestFault {
		t.Error("SetRequestFaults([HTTP_400]): want a bare 400 a request fault and an invalid number not")
	}
	tbl.SetRequestFaults([]string{})
	if tbl.Decide(apiErr(400, "", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID")).RequestFault {
		t.Error("SetRequestFaults([]): an invalid number is still a request fault")
	}
	tbl.SetRequestFaults(nil)
	check("after SetRequestFaults(nil), ")
}
