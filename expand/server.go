package expand

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/backoff"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/sendpolicy"
)

// Defaults of an expansion server.
const (
	// DefaultShutdownTimeout is how long Shutdown waits for expansions to stop
	// (ServerConfig.ShutdownTimeout) when the caller gives no time: a server started from
	// the config file gets worker.shutdown_timeout, and this only when that is 0.
	DefaultShutdownTimeout = 10 * time.Second
)

// retryBackoff is the wait before an expansion task that failed is tried again: 1 s doubling
// to a minute, with jitter, so a Redis blip does not stall a run long.
var retryBackoff = backoff.Backoff{Base: time.Second, Cap: time.Minute}

// ServerConfig configures a Server. Zero values take the defaults shown.
type ServerConfig struct {
	// Concurrency is the number of runs this process expands at once. Default
	// sendpolicy.DefaultExpandConcurrency.
	Concurrency int
	// ShutdownTimeout is how long Shutdown waits for expansions to stop (they stop at the
	// next row and resume elsewhere from the ledger's cursor). Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// DelayedTaskCheckInterval is how often asynq moves due continuation tasks back to
	// pending. Default sendpolicy.DefaultPollInterval.
	DelayedTaskCheckInterval time.Duration
	// TaskCheckInterval is how often an idle server polls the expansion queue. Default
	// sendpolicy.DefaultPollInterval.
	TaskCheckInterval time.Duration
	Expand            Config
}

// Server is an asynq server on the expansion queue only, so expansions never wait
// behind sends (or hold a send slot) and the send worker needs no change to serve them.
// `herald scheduler` runs one by default; a worker process may run one too.
type Server struct {
	srv     *asynq.Server
	handler *Handler
	log     zerolog.Logger
}

// NewServer returns an expansion server; Start runs it.
func NewServer(cfg ServerConfig, deps Deps) *Server {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = sendpolicy.DefaultExpandConcurrency
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.DelayedTaskCheckInterval <= 0 {
		cfg.DelayedTaskCheckInterval = sendpolicy.DefaultPollInterval
	}
	if cfg.TaskCheckInterval <= 0 {
		cfg.TaskCheckInterval = sendpolicy.DefaultPollInterval
	}
	h := NewHandler(cfg.Expand, deps)
	s := &Server{handler: h, log: deps.Logger.With().Str(logx.KeyComponent, "expand").Logger()}
	s.srv = asynq.NewServerFromRedisClient(deps.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{campaigns.ExpandQueue: 1},
		ShutdownTimeout:          cfg.ShutdownTimeout,
		DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
		TaskCheckInterval:        cfg.TaskCheckInterval,
		IsFailure:                expandIsFailure,
		RetryDelayFunc: func(n int, _ error, _ *asynq.Task) time.Duration {
			return retryBackoff.Delay(n)
		},
		Logger:   logx.Asynq{L: deps.Logger.With().Str(logx.KeyComponent, "asynq-expand").Logger()},
		LogLevel: asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			lvl := zerolog.ErrorLevel
			if !expandIsFailure(err) {
				lvl = zerolog.DebugLevel
			}
			s.log.WithLevel(lvl).Str(logx.KeyTaskID, id).Str("error", logx.MaskDigits(err.Error())).Msg("expansion task did not finish")
		}),
	})
	return s
}

// expandIsFailure: a shutdown or a lease lost to a crash does not use a retry.
func expandIsFailure(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, asynq.ErrLeaseExpired) && !errors.Is(err, errRunStarting)
}

// Handler returns the server's task handler.
func (s *Server) Handler() *Handler { return s.handler }

// Start starts taking expansion tasks.
func (s *Server) Start() error {
	mux := asynq.NewServeMux()
	Register(mux, s.handler)
	if err := s.srv.Start(mux); err != nil {
		return fmt.Errorf("expansion server: %w", err)
	}
	s.log.Info().Msg("expansion server started")
	return nil
}

// Stop stops taking tasks (first step of a graceful shutdown).
func (s *Server) Stop() { s.srv.Stop() }

// Shutdown waits for expansions in flight (up to ShutdownTimeout) and returns.
func (s *Server) Shutdown() { s.srv.Shutdown() }
