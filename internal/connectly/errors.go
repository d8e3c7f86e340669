package connectly

import (
	"errors"
	"fmt"
	"strings"
)

// Error is an error answer from Connectly: an HTTP status and, when the body could be decoded,
// the documented error body. Reach it with errors.As.
type Error struct {
	StatusCode int
	ErrorBody
	// RetryAfterSeconds is the Retry-After header in seconds (a number, or an HTTP date counted
	// from the answer), at most MaxRetryAfter; zero when absent, unreadable or past (the
	// reference documents none).
	RetryAfterSeconds int
}

func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = e.Type
	}
	if code == "" {
		return fmt.Sprintf("connectly: HTTP %d", e.StatusCode)
	}
	if isNumeric(code) {
		// A numeric code (Meta's, such as 131026) written right after the status would read
		// as one phone-like run of digits ("400 131026") and be masked in logs and task
		// errors; a word between keeps both readable.
		code = "code " + code
		if k, ok := grpcKey(e.Code); ok {
			// The gRPC status it is read as (Decide), by name.
			code += " (gRPC " + strings.TrimPrefix(k, grpcPrefix) + ")"
		}
	}
	if e.Message != "" {
		return fmt.Sprintf("connectly: HTTP %d %s: %s", e.StatusCode, code, e.Message)
	}
	return fmt.Sprintf("connectly: HTTP %d %s", e.StatusCode, code)
}

// Key is the most specific identifier of the error: the body code (a gRPC status's key,
// GRPC_DEADLINE_EXCEEDED, for a top-level code from 0 to 16, as Decide reads it), else the
// body type, else "HTTP_<status>". A 429 is "HTTP_429": its status says throttle (reference 4.4). The
// ledger, the run's counters and limits.adaptive.codes use the key that decided the answer
// (Decision.Key), which for a 429 is the body's code or type when that names a throttle or a
// run-stopping answer (the pair limit's 131056, say), and HTTP_429 otherwise.
func (e *Error) Key() string {
	switch {
	case e.StatusCode == 429:
		return "HTTP_429"
	case e.Code != "":
		if k, ok := grpcKey(e.Code); ok {
			return k
		}
		return e.Code
	case e.Type != "":
		return e.Type
	default:
		return fmt.Sprintf("HTTP_%d", e.StatusCode)
	}
}

// TransportError is a send that got no HTTP answer: a refused connection, a timeout, a reset.
// Written reports whether the whole request had been written to the connection before the
// failure; when it is true Connectly may have accepted the message ("maybe sent"), when it is
// false (a refused connection, a DNS failure) the request was not taken.
type TransportError struct {
	Written bool
	Err     error
}

func (e *TransportError) Error() string {
	if e.Written {
		return "connectly: no response after the request was sent: " + e.Err.Error()
	}
	return "connectly: request not sent: " + e.Err.Error()
}

func (e *TransportError) Unwrap() error { return e.Err }

// Key names a transport failure for the ledger.
func (e *TransportError) Key() string {
	if e.Written {
		return "NO_RESPONSE"
	}
	return "NOT_SENT"
}

// ErrorKey returns the key the fields of any error returned by Client.SendTemplate or
// Client.SendSession name (Error.Key, TransportError.Key). The ledger records the key that
// decided the answer instead (Decision.Key), which differs for a catch-all code or type.
func ErrorKey(err error) string {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Key()
	}
	var te *TransportError
	if errors.As(err, &te) {
		return te.Key()
	}
	return clientErrorKey
}

// clientErrorKey names an error that is not an answer from Connectly: Herald could not build
// the request.
const clientErrorKey = "CLIENT_ERROR"

// isNumeric says whether s is a run of ASCII digits.
func isNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
