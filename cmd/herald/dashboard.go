package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynqmon"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
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
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve asynqmon's web UI for Herald's queues, read-only (steer with the CLI, which keeps the ledger and audit log)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			opt, err := redisx.ConnOpt(c.Redis.URL)
			if err != nil {
				return fmt.Errorf("redis.url: %w", err)
			}
			h := asynqmon.New(asynqmon.Options{RootPath: "/", RedisConnOpt: opt, ReadOnly: true, PayloadFormatter: maskedPayload})
			defer h.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
			fmt.Fprintf(a.stdout, "dashboard on http://%s (read-only)\n", ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-cmd.Context().Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	return cmd
}
