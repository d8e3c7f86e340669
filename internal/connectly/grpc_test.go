package connectly_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

// grpc-gateway's default error body, {"code": <gRPC status>, "message": ..., "details": []},
// read through the client: the numeric code is a gRPC status, not Meta's code of the same
// digits. A 504 DEADLINE_EXCEEDED was read as Meta's 4 (a throttle, sent again without end,
// at-most-once or not); it is now maybe sent. A 400 INVALID_ARGUMENT was read as Meta's 3
// (stop the run); it is now this recipient's refusal.
func TestGatewayErrorBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		outcome  connectly.Outcome
		class    connectly.Class
		key      string
		errorKey string
	}{
		{"DeadlineExceeded504", 504, `{"code":4,"message":"context deadline exceeded","details":[]}`,
			connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_504", "GRPC_DEADLINE_EXCEEDED"},
		{"InvalidArgument400", 400, `{"code":3,"message":"invalid number","details":[]}`,
			connectly.OutcomeRefused, connectly.ClassPermanent, "GRPC_INVALID_ARGUMENT", "GRPC_INVALID_ARGUMENT"},
		{"OK500", 500, `{"code":0,"message":"","details":[]}`,
			connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_500", "GRPC_OK"},
		{"Aborted409", 409, `{"code":10,"message":"aborted","details":[]}`,
			connectly.OutcomeRefused, connectly.ClassStopRun, "HTTP_409", "GRPC_ABORTED"},
		{"Unauthenticated401", 401, `{"code":16,"message":"missing or invalid X-API-Key","details":[]}`,
			connectly.OutcomeRefused, connectly.ClassStopRun, "GRPC_UNAUTHENTICATED", "GRPC_UNAUTHENTICATED"},
		{"ResourceExhausted429", 429, `{"code":8,"message":"too many requests","details":[]}`,
			connectly.OutcomeNotTaken, connectly.ClassThrottle, "HTTP_429", "HTTP_429"},
		// The code as a string reads the same.
		{"DeadlineExceededAsString", 504, `{"code":"4","message":"context deadline exceeded"}`,
			connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_504", "GRPC_DEADLINE_EXCEEDED"},
		// Meta's long codes in the code keep their rows, a throughput throttle at a 500 included
		// (reference 9.2: "Rate limit hit", a refusal: nothing went out).
		{"Meta131026", 400, `{"code":131026,"message":"undeliverable"}`,
			connectly.OutcomeRefused, connectly.ClassPermanent, "131026", "131026"},
		{"Meta130429At500", 500, `{"code":130429,"message":"rate limit hit"}`,
			connectly.OutcomeNotTaken, connectly.ClassThrottle, "130429", "130429"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, replyJSON(tc.status, tc.body))
			_, tmplErr := b.client.SendTemplate(context.Background(), message())
			_, sessErr := b.client.SendSession(context.Background(), connectly.SessionMessage{To: "+16044441111", Content: connectly.SessionContent{Text: "hi"}})
			tbl := defaultTable(t)
			for _, d := range []connectly.Decision{tbl.DecideTemplate(tmplErr), tbl.Decide(sessErr)} {
				if d.Outcome != tc.outcome || d.Class != tc.class || d.Key != tc.key {
					t.Errorf("decision %v/%v/%q, want %v/%v/%q", d.Outcome, d.Class, d.Key, tc.outcome, tc.class, tc.key)
				}
				if tbl.ClassOf(d.Key) != d.Class {
					t.Errorf("recorded as %q, which reads back as %v, not %v", d.Key, tbl.ClassOf(d.Key), d.Class)
				}
			}
			if got := connectly.ErrorKey(tmplErr); got != tc.errorKey {
				t.Errorf("ErrorKey = %q, want %q", got, tc.errorKey)
			}
		})
	}
}

// The error's text names the gRPC status a small code is read as.
func TestGatewayErrorText(t *testing.T) {
	t.Parallel()
	b := setup(t, replyJSON(504, `{"code":4,"message":"context deadline exceeded","details":[]}`))
	_, err := b.client.SendTemplate(context.Background(), message())
	var ae *connectly.Error
	if !errors.As(err, &ae) || ae.Code != "4" {
		t.Fatalf("error %v, want a connectly.Error with code 4", err)
	}
	if want := "connectly: HTTP 504 code 4 (gRPC DEADLINE_EXCEEDED): context deadline exceeded"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

// A gRPC status takes an override under its GRPC_ key, those without a row included; Meta's
// short code of the same digits does not reach it.
func TestGatewayStatusOverrides(t *testing.T) {
	t.Parallel()
	tbl, err := connectly.NewTable(map[string]string{
		"GRPC_DEADLINE_EXCEEDED": "permanent",
		"GRPC_INVALID_ARGUMENT":  "stop-run",
		"3":                      "transient",
		"2":                      "throttle",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err     error
		outcome connectly.Outcome
		class   connectly.Class
		key     string
	}{
		{apiErr(504, "", "4"), connectly.OutcomeRefused, connectly.ClassPermanent, "GRPC_DEADLINE_EXCEEDED"},
		{apiErr(400, "", "3"), connectly.OutcomeRefused, connectly.ClassStopRun, "GRPC_INVALID_ARGUMENT"},
		{apiErr(500, "", "2"), connectly.OutcomeMaybeSent, connectly.ClassTransient, "HTTP_500"},
	} {
		d := tbl.Decide(tc.err)
		if d.Outcome != tc.outcome || d.Class != tc.class || d.Key != tc.key || tbl.ClassOf(d.Key) != d.Class {
			t.Errorf("%v: decision %v/%v/%q, want %v/%v/%q", tc.err, d.Outcome, d.Class, d.Key, tc.outcome, tc.class, tc.key)
		}
	}
	// Meta's short codes keep their rows where a code is read as Meta's (a delivery_failed
	// event's error, by ClassOf).
	if c := defaultTable(t).ClassOf("3"); c != connectly.ClassStopRun {
		t.Errorf("ClassOf(3) = %v, want Meta's capability error to stop the run", c)
	}
}

// Every gRPC status's key is one an override and limits.adaptive.codes take; a slip gets the
// closest.
func TestCheckOverrideKeyGRPC(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"GRPC_OK", "GRPC_CANCELLED", "GRPC_UNKNOWN", "GRPC_INVALID_ARGUMENT", "GRPC_DEADLINE_EXCEEDED",
		"GRPC_NOT_FOUND", "GRPC_ALREADY_EXISTS", "GRPC_PERMISSION_DENIED", "GRPC_RESOURCE_EXHAUSTED", "GRPC_FAILED_PRECONDITION",
		"GRPC_ABORTED", "GRPC_OUT_OF_RANGE", "GRPC_UNIMPLEMENTED", "GRPC_INTERNAL", "GRPC_UNAVAILABLE", "GRPC_DATA_LOSS",
		"GRPC_UNAUTHENTICATED"} {
		if err := connectly.CheckOverrideKey(k); err != nil {
			t.Errorf("CheckOverrideKey(%s): %v", k, err)
		}
	}
	for k, want := range map[string]string{
		"grpc_unavailable":      `did you mean "GRPC_UNAVAILABLE"`,
		"GRPC_DEADLINE_EXCEDED": `did you mean "GRPC_DEADLINE_EXCEEDED"`,
		"GRPC_CANCELED":         `did you mean "GRPC_CANCELLED"`,
		"GRPC_4":                "not an error code",
	} {
		if err := connectly.CheckOverrideKey(k); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckOverrideKey(%s) = %v, want an error saying %s", k, err, want)
		}
	}
}

// FAILED_PRECONDITION is grpc-gateway's form of ERROR_TYPE_FAILED_PRECONDITION, which
// reference 3.1 classifies with the window-closed codes: a session send refused so is a closed
// window (its fallback template may go); a template send, which no window governs, is refused
// for this recipient and nothing more.
func TestGatewayFailedPreconditionIsAClosedWindowOnSessionSends(t *testing.T) {
	t.Parallel()
	b := setup(t, replyJSON(400, `{"code":9,"message":"cannot send now","details":[]}`))
	_, tmplErr := b.client.SendTemplate(context.Background(), message())
	_, sessErr := b.client.SendSession(context.Background(), connectly.SessionMessage{To: "+16044441111", Content: connectly.SessionContent{Text: "hi"}})
	tbl := defaultTable(t)
	sess, tmpl := tbl.Decide(sessErr), tbl.DecideTemplate(tmplErr)
	if sess.Outcome != connectly.OutcomeRefused || sess.Key != "GRPC_FAILED_PRECONDITION" || !sess.WindowClosed() {
		t.Errorf("session send: %v %q window closed %v, want refused GRPC_FAILED_PRECONDITION, window closed", sess.Outcome, sess.Key, sess.WindowClosed())
	}
	if tmpl.Outcome != connectly.OutcomeRefused || tmpl.Class != connectly.ClassPermanent || tmpl.Key != "GRPC_FAILED_PRECONDITION" || tmpl.WindowClosed() {
		t.Errorf("template send: %v %v %q window closed %v, want a permanent refusal, no window", tmpl.Outcome, tmpl.Class, tmpl.Key, tmpl.WindowClosed())
	}
	// The row cannot be made a retry: the same message gets the same answer.
	if _, err := connectly.NewTable(map[string]string{"GRPC_FAILED_PRECONDITION": "transient"}); err == nil {
		t.Error("GRPC_FAILED_PRECONDITION overridden to transient: want refused")
	}
}
