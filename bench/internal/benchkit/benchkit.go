// Package benchkit holds what the benchmark programs share: a generated campaign and the
// expansion of a run from it.
package benchkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/connectly"
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

// Open connects to redisURL, starts the fake for businessID and apiKey with no rate limit and
// makes a temporary folder named after prefix. Close undoes all three.
func Open(ctx context.Context, redisURL, businessID, apiKey, prefix string) (*Env, error) {
	rdb, err := redisx.Open(redisURL)
	if err != nil {
		return nil, err
	}
	e := &Env{RDB: rdb}
	if err := redisx.Ping(ctx, rdb, 3*time.Second); err != nil {
		e.Close()
		return nil, err
	}
	if e.Fake, err = fakeconnectly.New(fakeconnectly.Config{BusinessID: businessID, APIKey: apiKey, RateLimit: -1}); err != nil {
		e.Close()
		return nil, err
	}
	if e.Base, err = e.Fake.Start("127.0.0.1:0"); err != nil {
		e.Close()
		return nil, err
	}
	if e.Dir, err = os.MkdirTemp("", prefix+"-"); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
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

// OpenChild opens what a worker child process needs: the Redis at redisURL and a Connectly
// client for the fake at fakeURL with concurrency connections.
func OpenChild(redisURL, fakeURL, businessID, apiKey string, concurrency int) (redis.UniversalClient, *connectly.Client, error) {
	rdb, err := redisx.Open(redisURL)
	if err != nil {
		return nil, nil, err
	}
	client, err := connectly.NewClient(connectly.ClientConfig{BaseURL: fakeURL, BusinessID: businessID, APIKey: apiKey,
		MaxConns: concurrency})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return rdb, client, nil
}

// WriteCampaignFiles writes an audience of n generated Brazilian mobile numbers and a utility
// campaign `id` from sender for it into dir, and returns the campaign file's path and text.
func WriteCampaignFiles(dir, id, sender string, n int) (string, []byte, error) {
	f, err := os.Create(filepath.Join(dir, "audience.csv"))
	if err != nil {
		return "", nil, err
	}
	fmt.Fprintln(f, "name,phone")
	for i := 0; i < n; i++ {
		fmt.Fprintf(f, "user%d,+5511%09d\n", i, 900000000+i)
	}
	if err := f.Close(); err != nil {
		return "", nil, err
	}
	yaml := []byte("id: " + id + "\nsender: \"" + sender + "\"\ntemplate: {name: bench_tpl, language: en, category: utility}\n" +
		"parameters:\n  body_1: \"{{ .name }}\"\naudience: {file: audience.csv, phone: phone}\n")
	path := filepath.Join(dir, "campaign.yaml")
	return path, yaml, os.WriteFile(path, yaml, 0o644)
}

// WriteCampaign writes the files of WriteCampaignFiles and loads the campaign.
func WriteCampaign(dir, id, sender string, n int) (*campaigns.Definition, error) {
	path, _, err := WriteCampaignFiles(dir, id, sender, n)
	if err != nil {
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
