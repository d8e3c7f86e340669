// Command expandbench measures expansion throughput on a real Redis: Herald's expansion of a
// run (audience read and normalised, parameters rendered, ledger entries written, one send
// task per recipient, in batches with pipelined task writes) against a plain loop of asynq
// Client.Enqueue calls enqueuing the same number of send tasks, in alternating rounds of one
// run.
//
//	go build -o ./bin/expandbench ./bench/expandbench && ./bin/expandbench -redis redis://127.0.0.1:6379/13 -n 100000 -rounds 3
//
// Each round also reports the CPU Redis and this process spent per recipient while it was
// timed (INFO cpu and getrusage around it); -cpuprofile and -memprofile profile the first
// expansion round.
//
// The Redis database named in the URL is flushed before every round and at the end (never
// any other database).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/bench/internal/benchkit"
	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

const sender = "+14155550100"

// benchBatch is the expansion batch size (0: the expander's default).
var benchBatch int

// profile, when set, receives a CPU profile of the first expansion round; memProfile, an
// allocation profile taken at the end of that round.
var profile, memProfile *os.File

func main() {
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/13", "Redis to use (its database is flushed)")
	n := flag.Int("n", 100000, "recipients (tasks) per round")
	rounds := flag.Int("rounds", 3, "rounds of each mode")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the expansion rounds to this file")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the first expansion round to this file")
	modes := flag.String("modes", "enqueue,expand", "modes to run each round, comma-separated")
	flag.IntVar(&benchBatch, "batch", 0, "expansion batch size (0: the expander's default)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		benchkit.Exit("expandbench", err)
		profile = f
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		benchkit.Exit("expandbench", err)
		memProfile = f
		runtime.MemProfileRate = 4096
	}
	benchkit.Exit("expandbench", run(*redisURL, *n, *rounds, strings.Split(*modes, ",")))
}

func run(redisURL string, n, rounds int, modes []string) error {
	ctx := context.Background()
	rdb, err := benchkit.Connect(ctx, redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	dir, err := os.MkdirTemp("", "expandbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	def, err := benchkit.WriteCampaign(dir, "bench", sender, n)
	if err != nil {
		return err
	}
	results := map[string][]float64{}
	for r := 1; r <= rounds; r++ {
		for _, mode := range modes {
			if err := rdb.FlushDB(ctx).Err(); err != nil {
				return err
			}
			before, err := redisCPU(ctx, rdb)
			if err != nil {
				return err
			}
			var rate float64
			var self time.Duration
			switch mode {
			case "enqueue":
				rate, self, err = enqueueRound(ctx, rdb, n)
			case "expand":
				rate, self, err = expandRound(ctx, rdb, def, n)
			default:
				return fmt.Errorf("unknown mode %q", mode)
			}
			if err != nil {
				return fmt.Errorf("%s round %d: %w", mode, r, err)
			}
			after, err := redisCPU(ctx, rdb)
			if err != nil {
				return err
			}
			fmt.Printf("round %d %-7s %9.0f recipients/s, Redis CPU %.1f us/recipient, process CPU %.1f us/recipient\n", r, mode, rate,
				(after-before).Seconds()*1e6/float64(n), self.Seconds()*1e6/float64(n))
			results[mode] = append(results[mode], rate)
		}
	}
	if len(results["enqueue"]) == 0 || len(results["expand"]) == 0 {
		return rdb.FlushDB(ctx).Err()
	}
	e, x := benchkit.Median(results["enqueue"]), benchkit.Median(results["expand"])
	fmt.Printf("median enqueue loop %.0f tasks/s, expansion %.0f recipients/s, ratio %.1fx (n=%d, rounds=%d)\n", e, x, x/e, n, rounds)
	return rdb.FlushDB(ctx).Err()
}

// redisCPU is the Redis server's CPU time so far (user and system, INFO cpu).
func redisCPU(ctx context.Context, rdb redis.UniversalClient) (time.Duration, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}

// processCPU is this process's CPU time so far (user and system, every thread); a round
// reports its share while timed.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// enqueueRound enqueues n send tasks, one asynq Client.Enqueue call each, in one loop. The
// tasks (payload and options as Herald's) are built before the clock starts.
func enqueueRound(ctx context.Context, rdb redis.UniversalClient, n int) (float64, time.Duration, error) {
	client := asynq.NewClientFromRedisClient(rdb)
	ids, err := ledger.New(rdb, nil).TaskIDs(ctx)
	if err != nil {
		return 0, 0, err
	}
	tasks := make([]*asynq.Task, n)
	for i := range tasks {
		p := campaigns.SendPayload{Run: "bench-run", To: fmt.Sprintf("+5511%09d", 900000000+i), Bucket: i % 1563, Row: i + 1,
			Campaign: "bench", Template: "bench_tpl", Language: "en", Sender: sender, Delivery: "at-most-once",
			Params: []connectly.Parameter{{Name: "body_1", Value: fmt.Sprintf("user%d", i)}}}
		t, err := campaigns.NewSendTask(p, ids, campaigns.TaskOptions{Queue: campaigns.QueueFor("utility"), MaxRetry: 25, Timeout: 41 * time.Second})
		if err != nil {
			return 0, 0, err
		}
		tasks[i] = t
	}
	start, cpu := time.Now(), processCPU()
	for _, t := range tasks {
		if _, err := client.EnqueueContext(ctx, t); err != nil {
			return 0, 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), processCPU() - cpu, nil
}

// expandRound creates a run and expands it whole (no window), timed from the start of the
// expansion to the end, and checks every recipient has its task.
func expandRound(ctx context.Context, rdb redis.UniversalClient, def *campaigns.Definition, n int) (float64, time.Duration, error) {
	l := ledger.New(rdb, nil)
	exp := expand.NewExpander(expand.Options{Ledger: l, Tasks: asynqbatch.New(rdb),
		Task: campaigns.TaskOptions{MaxRetry: 25, Timeout: 41 * time.Second}, Logger: zerolog.Nop(), BatchSize: benchBatch})
	run, err := exp.CreateRun(ctx, def, sender, "")
	if err != nil {
		return 0, 0, err
	}
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err != nil {
			return 0, 0, err
		}
		defer func() { pprof.StopCPUProfile(); profile = nil }()
	}
	start, cpu := time.Now(), processCPU()
	st, err := exp.Expand(ctx, def, run)
	if err != nil {
		return 0, 0, err
	}
	d, self := time.Since(start), processCPU()-cpu
	if memProfile != nil {
		err := pprof.Lookup("allocs").WriteTo(memProfile, 0)
		memProfile = nil
		if err != nil {
			return 0, 0, err
		}
	}
	if st.Planned != n || st.Enqueued != n {
		return 0, 0, fmt.Errorf("planned %d, enqueued %d, want %d", st.Planned, st.Enqueued, n)
	}
	return float64(n) / d.Seconds(), self, nil
}
