package connectly_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

// A redirect is never followed, by any call the client makes: Go's client would follow it to
// another host with the X-API-Key header (it drops only Authorization and Cookie there) and
// take that host's {"id": ...} for an accepted message. The 3xx is the answer: a send reads
// it as maybe sent (a proxy may have passed the request on), keyed HTTP_3xx.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	var leakedKey atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		if k := r.Header.Get("X-API-Key"); k != "" {
			leakedKey.Store(k)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","entity":{"id":"w"},"data":[]}`)
	}))
	t.Cleanup(other.Close)

	ctx := context.Background()
	calls := map[string]func(c *connectly.Client) error{
		"SendTemplate": func(c *connectly.Client) error { _, err := c.SendTemplate(ctx, message()); return err },
		"SendSession": func(c *connectly.Client) error {
			_, err := c.SendSession(ctx, connectly.SessionMessage{To: "+16044441111", Content: connectly.SessionContent{Text: "hi"}})
			return err
		},
		"ListTemplates": func(c *connectly.Client) error { _, err := c.ListTemplates(ctx); return err },
		"ListWebhooks":  func(c *connectly.Client) error { _, err := c.ListWebhooks(ctx); return err },
		"CreateWebhook": func(c *connectly.Client) error {
			_, err := c.CreateWebhook(ctx, connectly.Webhook{Topic: "delivery_status", Address: "https://example.com/hook"})
			return err
		},
		"UpdateWebhook": func(c *connectly.Client) error { return c.UpdateWebhook(ctx, "w1", "https://example.com/hook", nil) },
		"DeleteWebhook": func(c *connectly.Client) error { return c.DeleteWebhook(ctx, "w1") },
	}
	for _, status := range []int{301, 302, 303, 307, 308} {
		for name, call := range calls {
			t.Run(strconv.Itoa(status)+"/"+name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
					http.Redirect(w, r, other.URL+r.URL.Path, status)
				})
				// Production's client, and one a caller hands in without a CheckRedirect. Its
				// transport is its own: on http.DefaultTransport, another test's
				// httptest.Server.Close (which closes that transport's idle connections) could
				// break this request mid-way ("CloseIdleConnections called"), as it did in CI.
				tr := &http.Transport{}
				t.Cleanup(tr.CloseIdleConnections)
				given := &http.Client{Transport: tr}
				for _, c := range []*connectly.Client{b.client, newClient(t, connectly.ClientConfig{BaseURL: b.srv.URL, HTTPClient: given})} {
					err := call(c)
					var ae *connectly.Error
					if !errors.As(err, &ae) || ae.StatusCode != status {
						t.Fatalf("error %v, want the %d as Connectly's answer", err, status)
					}
					if name == "SendTemplate" || name == "SendSession" {
						d := defaultTable(t).Decide(err)
						if d.Outcome != connectly.OutcomeMaybeSent || d.Class != connectly.ClassTransient || d.Key != "HTTP_"+strconv.Itoa(status) {
							t.Errorf("decision %+v, want maybe sent (transient) under HTTP_%d", d, status)
						}
					}
				}
				if given.CheckRedirect != nil {
					t.Error("the caller's http.Client was changed")
				}
			})
		}
	}
	t.Cleanup(func() {
		if n := elsewhere.Load(); n != 0 {
			t.Errorf("the other host got %d requests (key sent: %v)", n, leakedKey.Load() != nil)
		}
	})
}
