package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynqmon"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/redisx"
)

// MaskedPayload shows send tasks in the dashboard without the recipient's full number, and
// masks phone-like digits in every other task's payload.
var MaskedPayload = asynqmon.PayloadFormatterFunc(func(taskType string, payload []byte) string {
	if taskType != campaigns.TypeSend {
		return logx.MaskDigits(string(payload))
	}
	p, err := campaigns.DecodeSend(payload)
	if err != nil {
		return "(undecodable payload)"
	}
	return fmt.Sprintf(`{"run": %q, "to": %q, "template": %q, "language": %q, "delivery": %q}`,
		p.Run, logx.Phone(p.To), p.Template, p.Language, p.Delivery)
})

// MaskedResult masks phone-like digits in the results tasks write (Herald's write none).
var MaskedResult = asynqmon.ResultFormatterFunc(func(_ string, result []byte) string {
	return logx.MaskDigits(asynqmon.DefaultResultFormatter.FormatResult("", result))
})

// MaskTaskErrors wraps asynqmon's handler h so that the task errors its JSON API answers with
// (error_message, asynq's LastErr, kept as the handler returned it) are masked as `task show`
// masks them (logx.MaskDigits): asynqmon formats payloads and results through hooks, but shows
// errors as stored. Answers outside the API (the web UI's files) pass through as they are.
func MaskTaskErrors(h http.Handler, root string) http.Handler {
	api := strings.TrimSuffix(root, "/") + "/api/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, api) {
			h.ServeHTTP(w, r)
			return
		}
		b := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(b, r)
		body := maskErrorMessages(b.body.Bytes())
		for k, v := range b.header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(b.status)
		_, _ = w.Write(body)
	})
}

// bufferedResponse holds an answer of asynqmon's API until its errors are masked.
type bufferedResponse struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if !b.wrote {
		b.status, b.wrote = status, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}

// maskErrorMessages masks every "error_message" string of a JSON answer. An answer that is
// not JSON (asynqmon's plain-text errors) is masked whole.
func maskErrorMessages(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []byte(logx.MaskDigits(string(body)))
	}
	if !maskErrorFields(v) {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return []byte(logx.MaskDigits(string(body)))
	}
	return append(out, '\n')
}

// maskErrorFields masks the "error_message" strings in a decoded JSON value, and reports
// whether it found any.
func maskErrorFields(v any) bool {
	found := false
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "error_message" {
				v[k] = logx.MaskDigits(s)
				found = true
			} else if maskErrorFields(x) {
				found = true
			}
		}
	case []any:
		for _, x := range v {
			if maskErrorFields(x) {
				found = true
			}
		}
	}
	return found
}

// DashboardParams say where RunDashboard serves.
type DashboardParams struct {
	// RedisURL is the Redis whose queues it shows (redis.url).
	RedisURL string
	// Listen is the address to serve on. It also answers /healthz and /readyz (below), so a
	// probe of the dashboard's own port checks the dashboard, not asynqmon's page.
	Listen string
	// Listening, when set, is told the address once it listens.
	Listening func(net.Addr)
}

// RunDashboard serves asynqmon's web UI for Herald's queues, read-only and with recipients
// masked (MaskedPayload, MaskedResult, MaskTaskErrors), until ctx is done: started in order
// (asynqmon, then its HTTP server) and stopped in reverse.
func RunDashboard(ctx context.Context, p DashboardParams) error {
	opt, err := redisx.ConnOpt(p.RedisURL)
	if err != nil {
		return fmt.Errorf("redis.url: %w", err)
	}
	rdb, err := redisx.Open(p.RedisURL)
	if err != nil {
		return fmt.Errorf("redis.url: %w", err)
	}
	// The dashboard only reads, so it is ready when Redis answers: a replica or a Redis that
	// refuses writes still serves it.
	ops := metrics.New().Mux(func(ctx context.Context) error { return redisx.Ping(ctx, rdb, 2*time.Second) })
	h := asynqmon.New(asynqmon.Options{RootPath: "/", RedisConnOpt: opt, ReadOnly: true, PayloadFormatter: MaskedPayload,
		ResultFormatter: MaskedResult})
	ui := MaskTaskErrors(h, h.RootPath())
	// asynqmon answers every path it does not know with its web page (status 200); the probes
	// get the ops endpoint's answers instead.
	mux := http.NewServeMux()
	mux.Handle("/", ui)
	mux.Handle("/healthz", ops)
	mux.Handle("/readyz", ops)
	g := lifecycle.New(lifecycle.Component{Name: "redis", Stop: rdb.Close}, lifecycle.Component{Name: "asynqmon", Stop: h.Close})
	g.Add(lifecycle.HTTP(lifecycle.Server{Name: "dashboard (--listen)", Addr: p.Listen,
		Server: &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}, Grace: 3 * time.Second,
		Listening: p.Listening, OnError: g.Fail}))
	return g.Run(ctx)
}
