package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/worker"
)

func (a *app) workerCmd() *cobra.Command {
	var concurrency int
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker: take send tasks from Redis and deliver them through Connectly",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			if err := c.RequireConnectly(); err != nil {
				return err
			}
			if concurrency > 0 {
				c.Worker.Concurrency = concurrency
			}
			return a.runWorker(cmd.Context(), c)
		},
	}
	cmd.Flags().IntVar(&concurrency, "concurrency", 0, "sends in flight in this process (default worker.concurrency)")
	return cmd
}

// workerConfig maps the config file onto the worker's typed config.
func workerConfig(c config.Config) worker.Config {
	return worker.Config{
		Concurrency:       c.Worker.Concurrency,
		MaxAttempts:       c.Retry.MaxAttempts,
		Backoff:           worker.Backoff{Base: c.Retry.Base.D(), Cap: c.Retry.Cap.D()},
		ThrottleDelay:     c.Retry.ThrottleDelay.D(),
		HoldDelay:         c.Retry.HoldDelay.D(),
		MaxPaceWait:       c.Retry.MaxPaceWait.D(),
		RequestTimeout:    c.Connectly.Timeout.D(),
		ShutdownTimeout:   c.Worker.ShutdownTimeout.D(),
		BusinessID:        c.Connectly.BusinessID,
		BusinessRate:      c.Connectly.BusinessRate,
		SenderRates:       c.SenderRates(),
		DefaultSenderRate: 80,
		BurstWindow:       burstWindow(c.StopRun.BurstWindow),
		BurstShare:        c.StopRun.BurstShare,
	}
}

func (a *app) runWorker(ctx context.Context, c config.Config) error {
	log, err := a.logger(c)
	if err != nil {
		return err
	}
	rdb, err := a.redis(ctx, c)
	if err != nil {
		return err
	}
	client, err := connectly.NewClient(connectly.ClientConfig{
		BaseURL: c.Connectly.BaseURL, BusinessID: c.Connectly.BusinessID, APIKey: c.APIKey,
		Timeout: c.Connectly.Timeout.D(), MaxConns: c.Worker.Concurrency,
	})
	if err != nil {
		rdb.Close()
		return err
	}
	table, err := connectly.NewTable(c.Errors)
	if err != nil {
		rdb.Close()
		return &config.Error{Key: "errors", Msg: err.Error()}
	}
	w := worker.New(workerConfig(c), worker.Deps{Redis: rdb, Sender: client, Table: table, Logger: log})
	if err := w.Start(); err != nil {
		rdb.Close()
		return err
	}
	<-ctx.Done()
	// Shutdown order: stop taking tasks, let sends in flight finish (up to the shutdown
	// timeout; unstarted tasks go back to the queue), then close Redis last.
	w.Stop()
	w.Shutdown()
	return rdb.Close()
}

// burstWindow maps the config's 0 (off) onto the worker's negative "off".
func burstWindow(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
