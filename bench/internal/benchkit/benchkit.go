// Package benchkit holds what the benchmark programs share: the Redis and the fake
// Connectly they run against, a generated campaign and the start or expansion of a run from
// it, and the worker child processes some of them run.
package benchkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/redisx"
)

// Env is what a benchmark program's parent process sets up: a Redis, the fake Connectly on
// 127.0.0.1 and a folder for the campaign.
type Env struct {
	RDB  redis.UniversalClient
	Fake *fakeconnectly.Server
	// Base is the fake's base URL.
	Base string
	Dir  string
}

// Config says what Open sets up.
type Config struct {
	RedisURL   string
	BusinessID string
	APIKey     string
	// Prefix names the temporary folder.
	Prefix string
	// MaxReceived bounds the fake's record of messages (fakeconnectly.Config.MaxReceived; 0
	// keeps everything); long runs that only count set 1.
	MaxReceived int
}

// Open connects to the Redis, starts the fake for the business with no rate limit and makes
// a temporary folder. Close undoes all three.
func Open(ctx context.Context, c Config) (*Env, error) {
	rdb, err := Connect(ctx, c.RedisURL)
	if err != nil {
		return nil, err
	}
	e := &Env{RDB: rdb}
	if e.Fake, err = fakeconnectly.New(fakeconnectly.Config{BusinessID: c.BusinessID, APIKey: c.APIKey, RateLimit: -1,
		MaxReceived: c.MaxReceived}); err != nil {
		e.Close()
		return nil, err
	}
	if e.Base, err = e.Fake.Start("127.0.0.1:0"); err != nil {
		e.Close()
		return nil, err
	}
	if e.Dir, err = os.MkdirTemp("", c.Prefix+"-"); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// WithEnv opens the Env of c, runs f with it and closes it.
func WithEnv(c Config, f func(ctx context.Context, env *Env) error) error {
	ctx := context.Background()
	env, err := Open(ctx, c)
	if err != nil {
		return err
	}
	defer env.Close()
	return f(ctx, env)
}

// Reset gives a round a clean start: it flushes the Redis database and makes the fake forget
// its record and counters.
func (e *Env) Reset(ctx context.Context) error {
	if err := e.RDB.FlushDB(ctx).Err(); err != nil {
		return err
	}
	e.Fake.Reset()
	return nil
}

// Close removes the folder, stops the fake and closes the Redis client.
func (e *Env) Close() {
	if e.Dir != "" {
		os.RemoveAll(e.Dir)
	}
	if e.Base != "" {
		e.Fake.Close()
	}
	e.RDB.Close()
}

// Client returns a Connectly client for the fake with conns connections.
func (e *Env) Client(businessID, apiKey string, conns int) (*connectly.Client, error) {
	return connectly.NewClient(connectly.ClientConfig{BaseURL: e.Base, BusinessID: businessID, APIKey: apiKey, MaxConns: conns})
}

// Connect opens the Redis at url and checks that it answers within 3 s.
func Connect(ctx context.Context, url string) (redis.UniversalClient, error) {
	rdb, err := redisx.Open(url)
	if err != nil {
		return nil, err
	}
	if err := redisx.Ping(ctx, rdb, 3*time.Second); err != nil {
		rdb.Close()
		return nil, err
	}
	return rdb, nil
}

// Exit ends the program with status 1 after printing err, prefixed with its name, when err
// is not nil.
func Exit(prog string, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, prog+":", err)
		os.Exit(1)
	}
}

// Main runs parent, or child when the program runs as one of its own worker processes, and
// ends the program as Exit does.
func Main(prog string, isChild bool, parent, child func() error) {
	if isChild {
		Exit(prog, child())
	} else {
		Exit(prog, parent())
	}
}

// StartChild starts this program again as one of its own worker processes: with the
// arguments this process was given (so it parses the same flags to the same values) followed
// by extra, which come last and so win. Its output goes to this process's.
func StartChild(extra ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := exec.Command(self, append(slices.Clone(os.Args[1:]), extra...)...)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	return c, c.Start()
}

// ChildConfig says what a worker child process connects to.
type ChildConfig struct {
	RedisURL string
	// FakeURL is the fake's base URL, as the parent's Env.Base.
	FakeURL    string
	BusinessID string
	APIKey     string
	// Concurrency is the Connectly client's connections.
	Concurrency int
}

// Child is what a worker child process works with: the Redis and a Connectly client for the
// fake.
type Child struct {
	RDB    redis.UniversalClient
	Client *connectly.Client
}

// RunChild runs work as a worker child process: it opens the Child of c, calls work with a
// context that ends on SIGTERM or an interrupt (SIGKILL ends the process at once), and closes
// the Redis client when work returns.
func RunChild(c ChildConfig, work func(ctx context.Context, ch Child) error) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	rdb, err := redisx.Open(c.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: c.FakeURL, BusinessID: c.BusinessID, APIKey: c.APIKey,
		MaxConns: c.Concurrency})
	if err != nil {
		return err
	}
	return work(ctx, Child{RDB: rdb, Client: client})
}

// WriteCampaign writes an audience of n generated Brazilian mobile numbers (Phone) and a
// utility campaign `id` from sender for it into dir, and loads the campaign.
func WriteCampaign(dir, id, sender string, n int) (*campaigns.Definition, error) {
	return writeCampaign(dir, id, sender, n, "template: {name: bench_tpl, language: en, category: utility}\n"+
		"parameters:\n  body_1: \"{{ .name }}\"\n")
}

// WriteSessionCampaign writes the audience of WriteCampaign and a session campaign `id`
// (a text message rendered per recipient, no fallback template) and loads the campaign.
func WriteSessionCampaign(dir, id, sender string, n int) (*campaigns.Definition, error) {
	return writeCampaign(dir, id, sender, n, sessionMessage)
}

// WriteSessionFallbackCampaign is WriteSessionCampaign with a fallback template (the
// template campaign's, with its parameter), which the worker keeps for a late refusal before
// each session message.
func WriteSessionFallbackCampaign(dir, id, sender string, n int) (*campaigns.Definition, error) {
	return writeCampaign(dir, id, sender, n, sessionMessage+
		"fallback_template:\n  name: bench_tpl\n  language: en\n  category: utility\n  parameters: {body_1: \"{{ .name }}\"}\n")
}

// sessionMessage is the session campaigns' message.
const sessionMessage = "message:\n  text: \"Hello {{ .name }}, your order has shipped.\"\n"

// Modes reads a -mode flag: "both" means the modes of both, in that order; anything else is a
// comma-separated list.
func Modes(flag string, both ...string) []string {
	if flag == "both" {
		return both
	}
	return strings.Split(flag, ",")
}

// Phone is the generated audience's number of row i (from 0).
func Phone(i int) string { return fmt.Sprintf("+5511%09d", 900000000+i) }

func writeCampaign(dir, id, sender string, n int, message string) (*campaigns.Definition, error) {
	f, err := os.Create(filepath.Join(dir, "audience.csv"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(f, "name,phone")
	for i := 0; i < n; i++ {
		fmt.Fprintf(f, "user%d,%s\n", i, Phone(i))
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	yaml := []byte("id: " + id + "\nsender: \"" + sender + "\"\n" + message + "audience: {file: audience.csv, phone: phone}\n")
	path := filepath.Join(dir, "campaign.yaml")
	if err := os.WriteFile(path, yaml, 0o644); err != nil {
		return nil, err
	}
	return campaigns.Load(path)
}

// Expand creates a run of def from sender and expands its whole audience into the queue.
func Expand(ctx context.Context, rdb redis.UniversalClient, def *campaigns.Definition, sender string) (ledger.Run, error) {
	exp := expand.NewExpander(expand.Options{Ledger: ledger.New(rdb, nil), Tasks: asynqbatch.New(rdb),
		Task: campaigns.TaskOptions{MaxRetry: 25}})
	run, err := exp.CreateRun(ctx, def, sender, "")
	if err != nil {
		return run, err
	}
	_, err = exp.Expand(ctx, def, run)
	return run, err
}

// StartRun submits the campaign file def was loaded from to the definition store and starts
// a manual run of the version submitted (its first task retained an hour), for an expansion
// server to expand; it returns the run's ID.
func StartRun(ctx context.Context, rdb redis.UniversalClient, def *campaigns.Definition) (string, error) {
	data, err := os.ReadFile(def.Path)
	if err != nil {
		return "", err
	}
	v, _, err := defstore.New(rdb, nil).Submit(ctx, def.ID, def.Path, data)
	if err != nil {
		return "", err
	}
	started, err := expand.NewRuns(expand.Config{}, expand.Deps{Redis: rdb}).StartRun(ctx,
		expand.StartParams{Campaign: def.ID, Version: v, Trigger: "manual", Retention: time.Hour})
	return started.RunID, err
}

// UsedMemory returns the whole server's used_memory from INFO memory, in bytes.
func UsedMemory(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

// Median returns the median of xs.
func Median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
