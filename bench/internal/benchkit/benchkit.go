// Package benchkit holds what the benchmark programs share: a generated campaign and the
// expansion of a run from it.
package benchkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/scheduler"
)

// WriteCampaign writes an audience of n generated Brazilian mobile numbers and a utility
// campaign `id` from sender for it into dir, and loads the campaign.
func WriteCampaign(dir, id, sender string, n int) (*campaigns.Definition, error) {
	f, err := os.Create(filepath.Join(dir, "audience.csv"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(f, "name,phone")
	for i := 0; i < n; i++ {
		fmt.Fprintf(f, "user%d,+5511%09d\n", i, 900000000+i)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	yaml := "id: " + id + "\nsender: \"" + sender + "\"\ntemplate: {name: bench_tpl, language: en, category: utility}\n" +
		"parameters:\n  body_1: \"{{ .name }}\"\naudience: {file: audience.csv, phone: phone}\n"
	path := filepath.Join(dir, "campaign.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	return campaigns.Load(path)
}

// Expand creates a run of def from sender and expands its whole audience into the queue.
func Expand(ctx context.Context, rdb redis.UniversalClient, def *campaigns.Definition, sender string) (ledger.Run, error) {
	exp := scheduler.NewExpander(scheduler.ExpanderConfig{Ledger: ledger.New(rdb, nil),
		Enqueuer: asynq.NewClientFromRedisClient(rdb), Parallel: 32, Task: campaigns.TaskOptions{MaxRetry: 25}})
	run, err := exp.CreateRun(ctx, def, sender, "")
	if err != nil {
		return run, err
	}
	_, err = exp.Expand(ctx, def, run)
	return run, err
}

// Median returns the median of xs.
func Median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
