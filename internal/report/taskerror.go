package report

import "strings"

// TaskErrorCode reads the provider's error code from a send task's last error, as the
// worker's send handler writes it (worker/settle.go): the code first, then ": " and the
// provider's error, " (attempt n of m): ..." or " after n attempts: ...". The code is a
// Connectly error code (ERROR_...), a numeric code (Meta's, such as 131026, as the ledger
// records it), a gRPC status (GRPC_INVALID_ARGUMENT), "HTTP_<status>", "NO_RESPONSE" or
// "NOT_SENT"; ok is false
// for any other last error (a throttle, a held run, an error not from the provider).
func TaskErrorCode(lastErr string) (code string, ok bool) {
	fields := strings.FieldsFunc(lastErr, func(r rune) bool { return r == ' ' || r == ':' })
	if len(fields) == 0 {
		return "", false
	}
	code = fields[0]
	if numeric(code) || strings.HasPrefix(code, "ERROR_") || strings.HasPrefix(code, "HTTP_") || strings.HasPrefix(code, "GRPC_") || code == "NO_RESPONSE" || code == "NOT_SENT" {
		return code, true
	}
	return "", false
}

// numeric says whether s is a run of ASCII digits.
func numeric(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
