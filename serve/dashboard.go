package serve

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynqmon"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/logx"
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

// DashboardParams say where RunDashboard serves.
type DashboardParams struct {
	// RedisURL is the Redis whose queues it shows (redis.url).
	RedisURL string
	// Listen is the address to serve on.
	Listen string
	// Listening, when set, is told the address once it listens.
	Listening func(net.Addr)
}

// RunDashboard serves asynqmon's web UI for Herald's queues, read-only and with recipients
// masked (MaskedPayload), until ctx is done: started in order (asynqmon, then its HTTP
// server) and stopped in reverse.
func RunDashboard(ctx context.Context, p DashboardParams) error {
	opt, err := redisx.ConnOpt(p.RedisURL)
	if err != nil {
		return fmt.Errorf("redis.url: %w", err)
	}
	h := asynqmon.New(asynqmon.Options{RootPath: "/", RedisConnOpt: opt, ReadOnly: true, PayloadFormatter: MaskedPayload})
	g := lifecycle.New(lifecycle.Component{Name: "asynqmon", Stop: h.Close})
	g.Add(lifecycle.HTTP(lifecycle.Server{Name: "dashboard (--listen)", Addr: p.Listen,
		Server: &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout}, Grace: 3 * time.Second,
		Listening: p.Listening, OnError: g.Fail}))
	return g.Run(ctx)
}
