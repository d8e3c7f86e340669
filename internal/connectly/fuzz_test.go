package connectly_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

// FuzzDecodeError sends a template through a real HTTP round trip whose answer is an error
// status with an arbitrary body. Whatever the body, the client must not panic and must return
// *connectly.Error with the status, and the error must classify and name itself.
func FuzzDecodeError(f *testing.F) {
	f.Add(uint8(0), []byte(documentedErrorBody))
	f.Add(uint8(1), []byte(`{"message":"Missing or invalid X-API-Key","type":"ERROR_TYPE_AUTHENTICATION"}`))
	f.Add(uint8(29), []byte(`{"message":"Too Many Requests"}`))
	f.Add(uint8(100), []byte(`{"type":"ERROR_TYPE_UNSPECIFIED","code":"ERROR_CODE_UNSPECIFIED","details":{"a":[1,2,{"b":null}]}}`))
	f.Add(uint8(102), []byte(`<html><body>502 Bad Gateway</body></html>`))
	f.Add(uint8(0), []byte(``))
	f.Add(uint8(0), []byte(`null`))
	f.Add(uint8(0), []byte(`{"code":12,"type":["x"],"details":"str"}`))
	f.Add(uint8(4), []byte("{\"message\":\"\xff\xfe\",\"code\":\"\\ud800\"}"))
	f.Add(uint8(0), []byte(`{"code":"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"`))

	// Each iteration uses its own business id; the handler looks the answer up by it.
	type answer struct {
		status int
		body   []byte
	}
	var answers sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/v1/businesses/")
		id, _, _ = strings.Cut(id, "/")
		v, ok := answers.Load(id)
		if !ok {
			http.Error(w, "unknown business", http.StatusTeapot)
			return
		}
		a := v.(answer)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	}))
	f.Cleanup(srv.Close)
	tbl := defaultTable(f)
	var seq atomic.Int64

	f.Fuzz(func(t *testing.T, s uint8, body []byte) {
		status := 400 + int(s)%200 // 4xx and 5xx
		id := "fuzz-" + strconv.FormatInt(seq.Add(1), 10)
		answers.Store(id, answer{status, body})
		defer answers.Delete(id)
		c := newClient(t, connectly.ClientConfig{BaseURL: srv.URL, BusinessID: id, HTTPClient: srv.Client()})

		_, err := c.SendTemplate(context.Background(), message())
		var ae *connectly.Error
		if !errors.As(err, &ae) {
			t.Fatalf("status %d body %q: err = %#v, want *connectly.Error", status, body, err)
		}
		if ae.StatusCode != status {
			t.Fatalf("StatusCode = %d, want %d", ae.StatusCode, status)
		}
		if !strings.HasPrefix(ae.Error(), "connectly: HTTP "+strconv.Itoa(status)) {
			t.Fatalf("Error() = %q", ae.Error())
		}
		if ae.Key() == "" || connectly.ErrorKey(err) != ae.Key() {
			t.Fatalf("Key = %q, ErrorKey = %q", ae.Key(), connectly.ErrorKey(err))
		}
		// A 4xx says the request was not taken; only a 5xx may be "maybe sent".
		if d := tbl.Decide(err); connectly.Ambiguous(err) != (d.Outcome == connectly.OutcomeMaybeSent) ||
			(status < 500 && d.Outcome == connectly.OutcomeMaybeSent) || d.Outcome == connectly.OutcomeAccepted {
			t.Fatalf("status %d body %q: Decide = %+v, Ambiguous = %v", status, body, d, connectly.Ambiguous(err))
		}
		if class, rule := tbl.Classify(err); class == connectly.ClassNone || rule.Class != class || rule.Why == "" {
			t.Fatalf("Classify = %v, %+v", class, rule)
		}
	})
}
