package expand

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
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

// PassingRetry is the wait, with up to half again of jitter, before an expansion task that
// failed of a passing cause (see passing) is tried again. Such a failure uses none of the
// task's retries, so the wait does not grow with them; a run's backlog (two minutes of
// sending by default) covers it.
const PassingRetry = 5 * time.Second

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
		RetryDelayFunc:           expandRetryDelay,
		Logger:                   logx.Asynq{L: deps.Logger.With().Str(logx.KeyComponent, "asynq-expand").Logger()},
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			lvl := zerolog.ErrorLevel
			switch {
			case expected(err):
				lvl = zerolog.DebugLevel
			case passing(err):
				// Not counted, but said: a run's expansion waits on it.
				lvl = zerolog.WarnLevel
			}
			s.log.WithLevel(lvl).Str(logx.KeyTaskID, id).Str("error", logx.MaskDigits(err.Error())).Msg("expansion task did not finish")
		}),
	})
	return s
}

// expandIsFailure is the expansion server's asynq IsFailure: only a failure counts against
// the task's retries (asynq archives the task once they are used up, and nothing enqueues a
// run's expansion again). A shutdown, a lease lost to a crash and a run its command is still
// storing are not failures (expected), nor is a failure of a passing cause: the chain of a run
// never dies of one, however long it lasts.
func expandIsFailure(err error) bool {
	return !expected(err) && !passing(err)
}

// expandRetryDelay is the expansion server's asynq RetryDelayFunc: a failure of a passing cause
// is tried again PassingRetry later (its retry count does not grow, so neither would a
// backoff), every other one after retryBackoff.
func expandRetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if passing(err) {
		return backoff.Jitter(PassingRetry, 2)
	}
	return retryBackoff.Delay(n)
}

// expected reports whether err is an expected end of an expansion task: a shutdown, a lease
// lost to a crash, or a step of a run its command has not stored yet.
func expected(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, asynq.ErrLeaseExpired) || errors.Is(err, errRunStarting)
}

// passing reports whether err is of a cause that passes without anyone acting on the run:
// Redis or the network failing (a node down or loading, a failover, a timeout, a full
// connection pool, Redis out of memory until sends drain the queues), the task's own time
// running out (the next try goes on from the cursors), or the audience file's storage failing
// to read. An error that says something the run needs is gone or changed (Permanent), or that
// the task is not to be tried again (asynq.SkipRetry), is not.
func passing(err error) bool {
	if err == nil || Permanent(err) || errors.Is(err, asynq.SkipRetry) {
		return false
	}
	var netErr net.Error
	var pathErr *fs.PathError
	var errno syscall.Errno
	switch {
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, redis.ErrPoolTimeout):
		return true
	case redis.IsLoadingError(err), redis.IsReadOnlyError(err), redis.IsClusterDownError(err), redis.IsTryAgainError(err),
		redis.IsMasterDownError(err), redis.IsMaxClientsError(err), redis.IsNoReplicasError(err), redis.IsOOMError(err):
		return true
	case errors.As(err, &pathErr), errors.As(err, &errno):
		return true
	}
	return false
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
