package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/serve"
)

// TestCampaignSendKeepsTheBacklog sends a 1,200-row campaign with a backlog of 100 tasks: the
// command plans the first batch only, leaves the rest to an expansion step, and that step
// (as herald worker's or herald scheduler's expansion server runs it) reads the same file
// and finishes the run: every recipient queued once with one task. --json says the backlog
// under both its names (window is its older one).
func TestCampaignSendKeepsTheBacklog(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("first_name,phone,plan,account_id\n")
	const rows = 1200
	for i := range rows {
		fmt.Fprintf(&csv, "p%d,+1415555%04d,Pro,acc-%d\n", i, 2000+i, i)
	}
	yml, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("welcome.csv", csv.String())
	file := write("welcome.yaml", string(yml))
	cfg := write("herald.yaml", "scheduler:\n  min_backlog: 50\n  max_backlog: 100\n")

	var started struct {
		Run       string `json:"run"`
		Rows      int    `json:"rows"`
		Planned   int    `json:"planned"`
		Expanding bool   `json:"expanding"`
		Backlog   int    `json:"backlog"`
		Window    int    `json:"window"`
	}
	// At the default log level, --json prints the JSON and nothing else.
	defaultLevel := map[string]string{"HERALD_REDIS_URL": env["HERALD_REDIS_URL"]}
	code, out, errOut := herald(t, defaultLevel, "--config", cfg, "campaign", "send", "--json", file)
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
		t.Fatalf("send: %d %q %s", code, out, errOut)
	}
	if errOut != "" {
		t.Fatalf("send --json wrote to stderr: %q", errOut)
	}
	if !started.Expanding || started.Backlog != 100 || started.Window != 100 || started.Planned != 500 || started.Rows != rows {
		t.Fatalf("send: %+v, want the audience's %d rows, the first 500-row batch planned and the rest expanding", started, rows)
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()
	next, err := insp.GetTaskInfo(campaigns.ExpandQueue, campaigns.ExpandTaskID(started.Run, 1))
	if err != nil {
		t.Fatalf("no expansion step queued: %v", err)
	}

	// The expansion step, with no bound on the backlog so it runs to the end here.
	c := config.Default()
	h := expand.NewHandler(expand.Config{MaxBacklog: -1, Task: serve.ExpandTaskOptions(c)},
		serve.ExpandDeps(c, rdb, zerolog.Nop(), nil))
	if err := h.ProcessTask(ctx, asynq.NewTask(next.Type, next.Payload)); err != nil {
		t.Fatalf("expansion step: %v", err)
	}
	l := ledger.New(rdb, nil)
	run, err := l.GetRun(ctx, started.Run)
	if err != nil || !run.Expanded || run.Total != rows {
		t.Fatalf("run after the step: %+v, %v", run, err)
	}
	cn, err := l.Counters(ctx, started.Run)
	if err != nil || cn.States[ledger.Queued] != rows || cn.Sum() != rows {
		t.Fatalf("counters %v, %v; want %d queued", cn.States, err, rows)
	}
	q, err := insp.GetQueueInfo(campaigns.QueueFor("utility"))
	if err != nil || q.Pending != rows {
		t.Fatalf("queue %+v, %v; want %d pending tasks", q, err, rows)
	}

	// The run keeps the file as it started: a file that now holds another campaign changes
	// nothing for the rest of the run.
	code, out, errOut = herald(t, env, "--config", cfg, "campaign", "send", "--json", file)
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil || !started.Expanding {
		t.Fatalf("second send: %d %q %s", code, out, errOut)
	}
	if next, err = insp.GetTaskInfo(campaigns.ExpandQueue, campaigns.ExpandTaskID(started.Run, 1)); err != nil {
		t.Fatal(err)
	}
	write("welcome.yaml", strings.Replace(string(yml), "id: welcome", "id: other", 1))
	if err := h.ProcessTask(ctx, asynq.NewTask(next.Type, next.Payload)); err != nil {
		t.Fatalf("step after the file changed: %v", err)
	}
	if run, err = l.GetRun(ctx, started.Run); err != nil || !run.Expanded || run.Total != rows || run.Campaign != "welcome" {
		t.Fatalf("run after the file changed: %+v, %v; want it expanded as it started", run, err)
	}
}
