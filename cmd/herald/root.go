package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/serve"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks errors in how a command was called.
type usageError struct{ error }

// app is what every subcommand shares: the process environment and global flags.
type app struct {
	getenv     func(string) string
	stdout     io.Writer
	stderr     io.Writer
	configPath string
	// now is the clock of the commands that read state as of now (time.Now; tests set it).
	now func() time.Time
}

// run builds the command tree and executes it; it returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return (&app{getenv: getenv, stdout: stdout, stderr: stderr, now: time.Now}).run(ctx, args)
}

// run executes the command tree on a's streams, environment and clock.
func (a *app) run(ctx context.Context, args []string) int {
	stdout, stderr := a.stdout, a.stderr
	// Commands write through the guard, so a refusal under --json knows whether the command
	// printed its own JSON (jsonRefusal).
	guard := &outputGuard{w: stdout}
	a.stdout = guard
	defer func() { a.stdout = stdout }()
	root := a.rootCmd(guard, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	// The last line of defence: an error may quote what came from outside (a campaign file, a
	// server's answer). Its control characters are escaped; its newlines, between problems
	// Herald lists, are kept (what it quotes was escaped where it was quoted).
	fmt.Fprintln(stderr, "herald:", logx.EscapeLines(err.Error()))
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON && !guard.written {
		if werr := writeJSON(stdout, jsonRefusal(err)); werr != nil {
			fmt.Fprintln(stderr, "herald:", werr)
		}
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return exitUsage
	}
	return exitError
}

// rootCmd builds the command tree, writing its help to stdout and cobra's own messages to
// stderr.
func (a *app) rootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "herald",
		Short:         "Herald sends WhatsApp campaigns through Connectly (templates, session messages, answers to replies), never twice and never lost",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "config file (env HERALD_CONFIG); see configs/herald.example.yaml")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		a.demoCmd(),
		a.workerCmd(),
		a.schedulerCmd(),
		a.campaignCmd(),
		a.runCmd(),
		a.fakeConnectlyCmd(),
		a.queueCmd(),
		a.taskCmd(),
		a.auditCmd(),
		a.dashboardCmd(),
		a.recipientCmd(),
		a.limitsCmd(),
		a.webhooksCmd(),
		a.windowCmd(),
		a.messageCmd(),
	)
	argsWithUsage(root)
	return root
}

// refusal is what a command that failed under --json prints on stdout, when it printed
// nothing there itself (campaign plan and validate print their result with its problems): the
// error as stderr has it, and the problems of a campaign file, each with its place.
type refusal struct {
	Error    string                 `json:"error"`
	Problems []campaigns.FieldError `json:"problems,omitempty"`
}

// jsonRefusal is err as a refusal.
func jsonRefusal(err error) refusal {
	r := refusal{Error: err.Error()}
	var es campaigns.Errors
	if errors.As(err, &es) {
		r.Problems = es
	}
	return r
}

// outputGuard is a command's stdout, noting whether anything was written to it.
type outputGuard struct {
	w       io.Writer
	written bool
}

func (g *outputGuard) Write(p []byte) (int, error) {
	g.written = g.written || len(p) > 0
	return g.w.Write(p)
}

// Unwrap returns the writer underneath (isTerminal looks at it).
func (g *outputGuard) Unwrap() io.Writer { return g.w }

// group is a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	cmd.AddCommand(subs...)
	return cmd
}

// command declares a command by its use line, short help and arguments; run is called with
// the command's context. Set Long, Aliases and flags on the returned command.
func command(use, short string, args cobra.PositionalArgs, run func(ctx context.Context, args []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), args) }}
}

// configCmd is a command that needs the config: run is called with it loaded (see config).
func (a *app) configCmd(use, short string, args cobra.PositionalArgs,
	run func(ctx context.Context, c config.Config, args []string) error) *cobra.Command {
	return command(use, short, args, func(ctx context.Context, args []string) error {
		c, err := a.config()
		if err != nil {
			return err
		}
		return run(ctx, c, args)
	})
}

// redisCmd is a command that needs Redis: run is called with the config and the configured
// Redis, which is closed after (see withRedis).
func (a *app) redisCmd(use, short string, args cobra.PositionalArgs,
	run func(ctx context.Context, k conn, args []string) error) *cobra.Command {
	return command(use, short, args, func(ctx context.Context, args []string) error {
		return a.withRedis(ctx, func(k conn) error { return run(ctx, k, args) })
	})
}

// argsWithUsage makes a wrong number of arguments, in cmd and every command under it, a usage
// error that names the command, what it takes and its usage line, in place of cobra's bare
// "accepts 2 arg(s), received 1".
func argsWithUsage(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		argsWithUsage(sub)
	}
	check := cmd.Args
	if check == nil || !cmd.Runnable() {
		return // a group: cobra says which subcommands it has
	}
	cmd.Args = func(c *cobra.Command, args []string) error {
		if check(c, args) == nil {
			return nil
		}
		return usageError{argCountError(c, len(args))}
	}
}

// argCountError says that command c was given n arguments where it takes others.
func argCountError(c *cobra.Command, n int) error {
	usage := strings.TrimSuffix(c.UseLine(), " [flags]")
	takes := strings.TrimSpace(strings.TrimPrefix(c.Use, c.Name()))
	// The error line starts "herald: ", so the command is named without it.
	name := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
	got := "got " + serve.Count(n, "argument", "arguments")
	if n == 0 {
		got = "got none"
	}
	if takes == "" {
		return fmt.Errorf("%s: takes no arguments, %s (usage: %s)", name, got, usage)
	}
	return fmt.Errorf("%s: needs %s, %s (usage: %s)", name, takes, got, usage)
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "unknown flag", "unknown shorthand"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// config loads the config file (flag, else HERALD_CONFIG) with environment overrides.
func (a *app) config() (config.Config, error) {
	path := a.configPath
	if path == "" {
		path = a.getenv("HERALD_CONFIG")
	}
	c, err := config.Load(path, a.getenv)
	if err == nil {
		// Every campaign this process reads, however deep, is read under the config's rules.
		campaigns.SetDefaultFileRules(serve.FileRules(c))
	}
	return c, err
}

// logger builds the process logger on stderr. The logger on the process's own stderr also
// takes go-redis's log lines (once per process: go-redis has one logger); a run given other
// writers (a test's buffers) leaves go-redis's logger alone.
func (a *app) logger(c config.Config) (zerolog.Logger, error) {
	l, err := logx.New(a.stderr, logx.Options{Level: c.Log.Level, Format: c.Log.Format})
	if err == nil && a.stderr == io.Writer(os.Stderr) {
		logx.RouteRedis(l)
	}
	return l, err
}

// commandLogger is the logger of a command that prints its own report (campaign send, campaign
// run, run retry): at the default level, info, the library's info lines ("expansion
// finished") would only repeat the report, in the middle of it on a terminal, so only warnings
// and errors show; log.level debug (or trace) shows them all.
func (a *app) commandLogger(c config.Config) (zerolog.Logger, error) {
	l, err := a.logger(c)
	if err == nil && l.GetLevel() == zerolog.InfoLevel {
		l = l.Level(zerolog.WarnLevel)
	}
	return l, err
}

// quietRedisLogs keeps go-redis's own log lines (a pool that cannot dial, a connection
// dropped) out of a command's output when no process logger took them first (a.logger): the
// command's error already says what failed. At log.level debug they are shown, as log lines.
func (a *app) quietRedisLogs(c config.Config) {
	if a.stderr != io.Writer(os.Stderr) {
		return
	}
	l, err := logx.New(a.stderr, logx.Options{Level: c.Log.Level, Format: c.Log.Format})
	if err != nil {
		l = zerolog.New(a.stderr)
	}
	if l.GetLevel() > zerolog.DebugLevel {
		l = l.Level(zerolog.Disabled)
	}
	logx.RouteRedis(l)
}

// redis opens and pings the configured Redis.
func (a *app) redis(ctx context.Context, c config.Config) (redis.UniversalClient, error) {
	a.quietRedisLogs(c)
	rdb, err := redisx.Open(c.Redis.URL)
	if err != nil {
		return nil, &config.Error{Key: "redis.url", Msg: err.Error(), Err: err}
	}
	if err := redisx.Ping(ctx, rdb, 5*time.Second); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("%w (redis.url / HERALD_REDIS_URL)", err)
	}
	return rdb, nil
}

// connect opens the Redis of config c when a library call asks for it (a Connect parameter).
func (a *app) connect(c config.Config) func(context.Context) (redis.UniversalClient, error) {
	return func(ctx context.Context) (redis.UniversalClient, error) { return a.redis(ctx, c) }
}

// withRedis loads the config, connects to Redis and calls fn with both; Redis is closed after.
// For a command that checks its arguments first, and so cannot be a redisCmd.
func (a *app) withRedis(ctx context.Context, fn func(k conn) error) error {
	c, err := a.config()
	if err != nil {
		return err
	}
	return a.connected(ctx, c, func(rdb redis.UniversalClient) error { return fn(conn{c: c, rdb: rdb}) })
}

// connected connects to the Redis of config c and calls fn; Redis is closed after.
func (a *app) connected(ctx context.Context, c config.Config, fn func(redis.UniversalClient) error) error {
	rdb, err := a.redis(ctx, c)
	if err != nil {
		return err
	}
	defer rdb.Close()
	return fn(rdb)
}

// print writes v as JSON when asJSON, else renders it with text: the two forms of every
// report.
func (a *app) print(asJSON bool, v any, text func(io.Writer) error) error {
	if asJSON {
		return writeJSON(a.stdout, v)
	}
	return text(a.stdout)
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal (for progress output).
func isTerminal(w io.Writer) bool {
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok {
		w = u.Unwrap()
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
