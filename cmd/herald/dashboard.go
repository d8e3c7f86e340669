package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynqmon"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/lifecycle"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/redisx"
)

// maskedPayload shows send tasks in the dashboard without the recipient's full number.
var maskedPayload = asynqmon.PayloadFormatterFunc(func(taskType string, payload []byte) string {
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

func (a *app) dashboardCmd() *cobra.Command {
	var listen string
	cmd := a.configCmd("dashboard", "Serve asynqmon's web UI for Herald's queues, read-only (steer with the CLI, which keeps the ledger and audit log)",
		cobra.NoArgs, func(ctx context.Context, c config.Config, _ []string) error {
			opt, err := redisx.ConnOpt(c.Redis.URL)
			if err != nil {
				return fmt.Errorf("redis.url: %w", err)
			}
			h := asynqmon.New(asynqmon.Options{RootPath: "/", RedisConnOpt: opt, ReadOnly: true, PayloadFormatter: maskedPayload})
			g := lifecycle.New(lifecycle.Component{Name: "asynqmon", Stop: h.Close})
			g.Add(lifecycle.HTTP(lifecycle.Server{Name: "dashboard (--listen)", Addr: listen,
				Server: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, Grace: 3 * time.Second,
				Listening: func(addr net.Addr) { fmt.Fprintf(a.stdout, "dashboard on http://%s (read-only)\n", addr) }, OnError: g.Fail}))
			return g.Run(ctx)
		})
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	return cmd
}
