package fakeconnectly

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestReference1GatewayBody: reference 1 infers a Go + gRPC backend behind grpc-gateway whose
// default mapping could answer a DEADLINE_EXCEEDED "as HTTP 504". A rule with Body "grpc"
// answers in the gateway's default error body, {"code": <number>, "message": ..., "details":
// []} as application/json, at the gateway's default status for the gRPC status (or the
// rule's), named by name or number. The record keys it GRPC_<name>; Sent takes the message
// as for any 5xx.
func TestReference1GatewayBody(t *testing.T) {
	t.Parallel()
	const (
		deadline  = "+15550007001"
		invalid   = "+15550007002"
		unauth    = "+15550007003"
		exhausted = "+15550007004"
		ok500     = "+15550007005"
		byNumber  = "+15550007006"
		worded    = "+15550007007"
	)
	rules := []Rule{
		{Numbers: []string{deadline}, Code: "DEADLINE_EXCEEDED", Body: BodyGRPC, Sent: true},
		{Numbers: []string{invalid}, Code: "INVALID_ARGUMENT", Body: BodyGRPC},
		{Numbers: []string{unauth}, Code: "UNAUTHENTICATED", Body: BodyGRPC},
		{Numbers: []string{exhausted}, Code: "RESOURCE_EXHAUSTED", Body: BodyGRPC},
		{Numbers: []string{ok500}, Code: "OK", Body: BodyGRPC, Status: 500},
		{Numbers: []string{byNumber}, Code: "10", Body: BodyGRPC},
		{Numbers: []string{worded}, Code: "FAILED_PRECONDITION", Body: BodyGRPC, Message: "recipient cannot be messaged", Status: 412},
	}
	s, base := newFake(t, Config{RateLimit: -1, Rules: rules})
	c := newClient(t, base)
	for _, tc := range []struct {
		number  string
		status  int
		code    float64
		message string
		key     string
		sent    bool
	}{
		{deadline, 504, 4, "context deadline exceeded", "GRPC_DEADLINE_EXCEEDED", true},
		{invalid, 400, 3, "invalid argument", "GRPC_INVALID_ARGUMENT", false},
		{unauth, 401, 16, authMessage, "GRPC_UNAUTHENTICATED", false},
		{exhausted, 429, 8, "resource exhausted", "GRPC_RESOURCE_EXHAUSTED", false},
		{ok500, 500, 0, "", "GRPC_OK", false},
		{byNumber, 409, 10, "aborted", "GRPC_ABORTED", false},
		{worded, 412, 9, "recipient cannot be messaged", "GRPC_FAILED_PRECONDITION", false},
	} {
		a, err := c.send(context.Background(), message(tc.number))
		if err != nil {
			t.Fatalf("%s: %v", tc.number, err)
		}
		// Exactly the gateway's three fields, in its order, details an empty list.
		var m map[string]any
		if a.status != tc.status || a.header.Get("Content-Type") != "application/json" || json.Unmarshal(a.body, &m) != nil ||
			len(m) != 3 || m["code"] != tc.code || m["message"] != tc.message || !strings.HasPrefix(string(a.body), `{"code":`) ||
			!strings.HasSuffix(string(a.body), `"details":[]}`) {
			t.Errorf("%s: %d %q %s, want %d with {\"code\":%v,\"message\":%q,\"details\":[]}", tc.number, a.status,
				a.header.Get("Content-Type"), a.body, tc.status, tc.code, tc.message)
		}
		if got := a.header.Get("WWW-Authenticate"); (tc.number == unauth) != (got != "") {
			t.Errorf("%s: WWW-Authenticate %q; the gateway sets it for UNAUTHENTICATED only", tc.number, got)
		}
		if n := s.AcceptedCount(tc.number); n != map[bool]int{true: 1}[tc.sent] {
			t.Errorf("%s: accepted %d times, want sent=%v", tc.number, n, tc.sent)
		}
	}
	keys := map[string]Received{}
	for _, r := range s.Received() {
		keys[r.Number] = r
	}
	for number, want := range map[string]string{deadline: "GRPC_DEADLINE_EXCEEDED", invalid: "GRPC_INVALID_ARGUMENT", byNumber: "GRPC_ABORTED"} {
		if r := keys[number]; r.ErrorCode != want || r.Body != BodyGRPC {
			t.Errorf("%s: recorded %q in body %q, want %s in %s", number, r.ErrorCode, r.Body, want, BodyGRPC)
		}
	}
	if !keys[deadline].SentDespiteError() {
		t.Errorf("the 504 with Sent: %+v, want the message taken despite the error", keys[deadline])
	}
}

// The management endpoints answer in the gateway's body too, and the rule's JSON form keeps it.
func TestGatewayBodyManagementAndJSON(t *testing.T) {
	t.Parallel()
	rule := Rule{Endpoint: EndpointTemplates, Code: "UNAVAILABLE", Body: BodyGRPC}
	raw, err := json.Marshal(rule)
	if err != nil {
		t.Fatal(err)
	}
	var back Rule
	if err := json.Unmarshal(raw, &back); err != nil || back.Code != rule.Code || back.Body != rule.Body || back.Endpoint != rule.Endpoint {
		t.Fatalf("rule %s read back as %+v (%v)", raw, back, err)
	}
	_, base := newFake(t, Config{RateLimit: -1, Rules: []Rule{back}})
	status, ctype, body := post(t, base, "/v1/businesses/"+testBusiness+"/get/templates", testKey, `{}`)
	if status != http.StatusServiceUnavailable || ctype != "application/json" || string(body) != `{"code":14,"message":"service unavailable","details":[]}` {
		t.Errorf("get/templates: %d %q %s, want 503 with the gateway's UNAVAILABLE body", status, ctype, body)
	}
}

// A gateway rule names a gRPC status, answers an error, and takes none of the fields of
// Connectly's body but message.
func TestGatewayBodyRuleValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{Rule{Body: BodyGRPC, Status: 504}, "want a gRPC status"},
		{Rule{Body: BodyGRPC, Code: "ERROR_CODE_UNSPECIFIED"}, "want a gRPC status"},
		{Rule{Body: BodyGRPC, Code: "17"}, "want a gRPC status"},
		{Rule{Body: BodyGRPC, Code: "deadline_exceeded"}, "want a gRPC status"},
		{Rule{Body: BodyGRPC, Code: "OK"}, "answers it with 200"},
		{Rule{Body: BodyGRPC, Code: "INTERNAL", Status: 200}, "success status"},
		{Rule{Body: BodyGRPC, Code: "INVALID_ARGUMENT", Sent: true}, "sent needs an answer of 500"},
		{Rule{Body: BodyGRPC, Code: "INTERNAL", Type: TypeUnspecified}, "fields of Connectly's error body"},
		{Rule{Body: BodyGRPC, Code: "INTERNAL", Details: json.RawMessage(`{}`)}, "fields of Connectly's error body"},
		{Rule{Body: BodyGRPC, Code: "4", NumericCode: true}, "fields of Connectly's error body"},
		{Rule{Body: BodyGRPC, Code: "INTERNAL", RetryAfter: "1\r\nX: y"}, "one header line"},
	} {
		if err := ValidateRules([]Rule{tc.rule}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error saying %q", tc.rule, err, tc.want)
		}
	}
	for _, ok := range []Rule{
		{Body: BodyGRPC, Code: "DEADLINE_EXCEEDED", Sent: true},
		{Body: BodyGRPC, Code: "4", Status: 500, Message: "deadline"},
		{Body: BodyGRPC, Code: "OK", Status: 500},
		{Body: BodyGRPC, Code: "RESOURCE_EXHAUSTED", RetryAfter: "2", Times: 1},
	} {
		if err := ValidateRules([]Rule{ok}); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}
