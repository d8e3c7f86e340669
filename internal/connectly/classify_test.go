package connectly_test

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
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
			// 400 and 500 both carry codes in practice; the code must decide either way.
			for _, status := range []int{400, 500} {
				got, rule := tbl.Classify(apiErr(status, "", tc.code))
				if got != tc.want {
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
			if got, _ := tbl.Classify(apiErr(400, tc.typ, "")); got != tc.want {
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
		{"UnspecifiedAt400", apiErr(400, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_UNSPECIFIED"), connectly.ClassTransient, "unexpected provider error"},
		{"UnspecifiedTypeWithKnownCode", apiErr(429, "ERROR_TYPE_UNSPECIFIED", "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"), connectly.ClassPermanent, "recipient number invalid"},

		// Errors that are not answers from Connectly.
		{"Nil", nil, connectly.ClassNone, ""},
		{"NotSent", &connectly.TransportError{Err: errors.New("connection refused")}, connectly.ClassTransient, "no answer"},
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

func TestTableAmbiguous(t *testing.T) {
	t.Parallel()
	tbl, err := connectly.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"BareGateway504", &connectly.Error{StatusCode: 504}, true},
		{"Bare502", &connectly.Error{StatusCode: 502}, true},
		{"Bare503NotTaken", &connectly.Error{StatusCode: 503}, false},
		{"ConnectlyBody500IsARefusal", &connectly.Error{StatusCode: 500, ErrorBody: connectly.ErrorBody{Code: "ERROR_CODE_UNSPECIFIED"}}, false},
		{"WrittenNoAnswer", &connectly.TransportError{Written: true, Err: io.EOF}, true},
		{"NotWritten", &connectly.TransportError{Written: false, Err: io.EOF}, false},
		{"Permanent400", &connectly.Error{StatusCode: 400}, false},
	} {
		if got := tbl.Ambiguous(tc.err); got != tc.want {
			t.Errorf("%s: Ambiguous = %v, want %v", tc.name, got, tc.want)
		}
	}
	tbl.SetAmbiguousStatuses([]int{503})
	if !tbl.Ambiguous(&connectly.Error{StatusCode: 503}) || tbl.Ambiguous(&connectly.Error{StatusCode: 504}) {
		t.Fatal("SetAmbiguousStatuses not applied")
	}
}
