package report_test

import (
	"testing"

	"github.com/heraldmsg/herald/internal/report"
)

func TestTaskErrorCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lastErr, want string
	}{
		// Ended for good (worker endTask): the code, then the provider's error.
		{"ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: connectly: HTTP 400 ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND: no such template: task skip retry", "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"},
		// A numeric (Meta) code, as the ledger records it.
		{"131026: connectly: HTTP 400 code 131026: Message undeliverable: task skip retry", "131026"},
		// A gRPC status of grpc-gateway's error body, by the key the ledger records.
		{"GRPC_INVALID_ARGUMENT: connectly: HTTP 400 code 3 (gRPC INVALID_ARGUMENT): invalid number: task skip retry", "GRPC_INVALID_ARGUMENT"},
		// Attempts used up, and a retry still to come.
		{"HTTP_503 after 5 attempts: connectly: HTTP 503: task skip retry", "HTTP_503"},
		{"NO_RESPONSE (attempt 2 of 5): connectly: no response after the request was sent: EOF", "NO_RESPONSE"},
		{"NOT_SENT (attempt 1 of 5): connectly: request not sent: connection refused", "NOT_SENT"},
		// Not a provider code.
		{"throttled (HTTP_429): retry in 2s", ""},
		{"run paused: ERROR_X: stop", ""},
		{"CLIENT_ERROR: build request", ""},
		{"", ""},
		{" : :", ""},
	}
	for _, tc := range tests {
		code, ok := report.TaskErrorCode(tc.lastErr)
		if code != tc.want || ok != (tc.want != "") {
			t.Errorf("TaskErrorCode(%q) = %q, %v; want %q", tc.lastErr, code, ok, tc.want)
		}
	}
}
