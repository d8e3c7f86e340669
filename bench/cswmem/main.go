// Command cswmem measures the Redis memory of open customer service windows: it records -n
// customers' last inbound message in each of several layouts, reads INFO memory's used_memory
// before and after, and prints the bytes per customer, then deletes what it wrote.
//
//	go build -o ./bin/cswmem ./bench/cswmem && ./bin/cswmem -redis redis://127.0.0.1:6379/13 -n 1000000
//
// Layouts:
//   - plain: one string key per customer, no TTL (the baseline: what a key costs at all);
//   - string: one string key per customer with the window's TTL;
//   - hash-N: N hash buckets (customer digits → unix seconds), a bucket TTL, written with
//     plain HSET/PEXPIRE;
//   - tracker: servicewindow.Tracker.Touch itself (the Lua script, rkeys.ServiceWindowBuckets
//     buckets), called from -workers goroutines;
//   - kept: ledger.KeepFallback, what a worker keeps per session message with a fallback
//     template for a late refusal (a utility template with two parameters, one run of n
//     recipients in ledger buckets of about 64), called from -workers goroutines.
//
// used_memory is the whole server's, so other databases' traffic shows up as noise: each
// layout runs -rounds times and the median is printed. Only keys this program writes are
// deleted (never a FLUSHDB); nothing outside the URL's database is written. Traffic goes
// only to 127.0.0.1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/bench/internal/benchkit"
	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

const business = "bench-business"

func main() {
	var (
		url     = flag.String("redis", "redis://127.0.0.1:6379/13", "Redis to use (only keys this program writes are deleted)")
		n       = flag.Int("n", 1000000, "customers")
		rounds  = flag.Int("rounds", 3, "rounds of each layout")
		layouts = flag.String("layouts", "plain,string,hash-4096,hash-16384,hash-65536,tracker", "layouts to measure, in order")
		workers = flag.Int("workers", 32, "concurrent Touch calls in the tracker layout")
	)
	flag.Parse()
	benchkit.Exit("cswmem", run(*url, *n, *rounds, strings.Split(*layouts, ","), *workers))
}

// phone is customer i's number.
func phone(i int) string { return "+5511" + strconv.Itoa(900000000+i) }

// stringKey is customer i's key in the string layouts (under the bench business's tag).
func stringKey(i int) string {
	return rkeys.Prefix + "csw:{" + business + "}:c:" + strconv.Itoa(5511900000000+i)
}

func run(url string, n, rounds int, layouts []string, workers int) error {
	ctx := context.Background()
	rdb, err := benchkit.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ver, _ := rdb.Info(ctx, "server").Result()
	for _, line := range strings.Split(ver, "\n") {
		if strings.HasPrefix(line, "redis_version:") {
			fmt.Println(strings.TrimSpace(line))
		}
	}
	// Keys left by an interrupted run of this program (its business only).
	if err := deleteMatching(ctx, rdb, rkeys.Prefix+"csw:{"+business+"}:*"); err != nil {
		return err
	}
	first, err := settle(ctx, rdb, 0)
	if err != nil {
		return err
	}
	now := time.Now()
	// Inbound times spread over the last 23 hours: every window open.
	at := func(i int) time.Time { return now.Add(-time.Duration(i%82800) * time.Second) }
	ttl := func(i int) time.Duration { return at(i).Add(servicewindow.Length).Sub(now) }
	pop := population{n: n, at: at, ttl: ttl, workers: workers}
	fmt.Printf("%d customers, %d rounds; bytes per customer = (used_memory after - before) / n\n", n, rounds)
	for _, layout := range layouts {
		var per []float64
		var secs []float64
		for r := 0; r < rounds; r++ {
			before, err := benchkit.UsedMemory(ctx, rdb)
			if err != nil {
				return err
			}
			began := time.Now()
			cleanup, err := write(ctx, rdb, layout, pop)
			if err != nil {
				return fmt.Errorf("%s: %w", layout, err)
			}
			took := time.Since(began)
			after, err := benchkit.UsedMemory(ctx, rdb)
			if err != nil {
				return err
			}
			// A cross-check no other database disturbs: MEMORY USAGE of the tracker's buckets
			// (key, value and object; not the keyspace's own table entries).
			if layout == "tracker" {
				sum, err := bucketUsage(ctx, rdb)
				if err != nil {
					return err
				}
				fmt.Printf("  %-11s round %d: MEMORY USAGE of the buckets %.1f bytes/customer\n", layout, r+1, float64(sum)/float64(n))
			}
			if err := cleanup(); err != nil {
				return fmt.Errorf("%s: delete: %w", layout, err)
			}
			// Redis shrinks the keyspace's hash tables a little after the keys go; the next
			// round starts once used_memory is back near where the first one started.
			if _, err := settle(ctx, rdb, first); err != nil {
				return err
			}
			per = append(per, float64(after-before)/float64(n))
			secs = append(secs, took.Seconds())
			fmt.Printf("  %-11s round %d: before %.1f MB, after %.1f MB, %.1f bytes/customer, written in %.1f s\n",
				layout, r+1, mb(before), mb(after), per[len(per)-1], took.Seconds())
		}
		fmt.Printf("%-11s median %.1f bytes/customer (%.1f MB per 1,000,000), median write %.1f s\n",
			layout, median(per), median(per), median(secs))
	}
	return nil
}

// population is the customers a round writes: n of them, customer i's inbound message at
// at(i), its window's time left ttl(i); the tracker layout writes them from workers
// goroutines.
type population struct {
	n       int
	at      func(int) time.Time
	ttl     func(int) time.Duration
	workers int
}

// write records the customers of pop in layout and returns how to delete them.
func write(ctx context.Context, rdb redis.UniversalClient, layout string, pop population) (func() error, error) {
	n, at, ttl, workers := pop.n, pop.at, pop.ttl, pop.workers
	const batch = 1000
	switch {
	case layout == "plain" || layout == "string":
		for lo := 0; lo < n; lo += batch {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := lo; i < min(n, lo+batch); i++ {
					exp := time.Duration(0)
					if layout == "string" {
						exp = ttl(i)
					}
					p.Set(ctx, stringKey(i), at(i).Unix(), exp)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		return func() error { return deleteKeys(ctx, rdb, n, stringKey) }, nil
	case strings.HasPrefix(layout, "hash-"):
		buckets, err := strconv.Atoi(strings.TrimPrefix(layout, "hash-"))
		if err != nil || buckets <= 0 {
			return nil, fmt.Errorf("layout %q: want hash-<buckets>", layout)
		}
		key := func(field string) string {
			return rkeys.Prefix + "csw:{" + business + "}:h" + strconv.Itoa(buckets) + ":" + strconv.Itoa(fnv(field)%buckets)
		}
		for lo := 0; lo < n; lo += batch {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := lo; i < min(n, lo+batch); i++ {
					f := servicewindow.Field(phone(i))
					k := key(f)
					p.HSet(ctx, k, f, at(i).Unix())
					p.PExpire(ctx, k, servicewindow.Length+time.Minute)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		return func() error {
			return deleteKeys(ctx, rdb, buckets, func(b int) string {
				return rkeys.Prefix + "csw:{" + business + "}:h" + strconv.Itoa(buckets) + ":" + strconv.Itoa(b)
			})
		}, nil
	case layout == "kept":
		l := ledger.New(rdb, nil)
		buckets := max(1, n/64)
		err := parallel(n, workers, func(i int) error {
			to := phone(i)
			a := ledger.AddressIn(keptRun, to, buckets)
			// As the worker keeps it: the run, recipient, campaign, bucket and row left out.
			p := campaigns.SendPayload{Template: "order_update", Language: "en_US", Sender: "+14155550100", Delivery: "at-most-once", Category: "utility",
				Params: []connectly.Parameter{{Name: "body_1", Value: "Ana"}, {Name: "body_2", Value: "A-" + strconv.Itoa(10000+i)}},
				Kind:   campaigns.KindFallback, Expires: at(i).Add(48 * time.Hour).Unix()}
			return l.KeepFallback(ctx, a, campaigns.EncodeSend(p), ttl(i))
		})
		if err != nil {
			return nil, err
		}
		return func() error {
			return deleteKeys(ctx, rdb, buckets, func(b int) string { return rkeys.KeptFallback(keptRun, b) })
		}, nil
	case layout == "tracker":
		tr := servicewindow.New(rdb, nil)
		err := parallel(n, workers, func(i int) error {
			_, err := tr.Touch(ctx, business, []string{phone(i)}, at(i))
			return err
		})
		if err != nil {
			return nil, err
		}
		return func() error {
			return deleteKeys(ctx, rdb, rkeys.ServiceWindowBuckets, func(b int) string { return rkeys.ServiceWindow(business, b) })
		}, nil
	}
	return nil, fmt.Errorf("unknown layout %q", layout)
}

// keptRun is the run of the kept layout.
const keptRun = "order-shipped-20261207T120000Z-k3j9x2"

// parallel calls f(i) for every i below n from workers goroutines and returns the first error.
func parallel(n, workers int, f func(int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// bucketUsage sums MEMORY USAGE over the tracker's buckets of the bench business.
func bucketUsage(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	cmds := make([]*redis.IntCmd, rkeys.ServiceWindowBuckets)
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for b := range cmds {
			cmds[b] = p.MemoryUsage(ctx, rkeys.ServiceWindow(business, b))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	var sum int64
	for _, c := range cmds {
		sum += c.Val()
	}
	return sum, nil
}

// settle waits (up to 60 s) for used_memory to come within 1 MB of target, or to stop
// falling when target is 0, and returns it.
func settle(ctx context.Context, rdb redis.UniversalClient, target int64) (int64, error) {
	deadline := time.Now().Add(60 * time.Second)
	prev := int64(-1)
	for {
		m, err := benchkit.UsedMemory(ctx, rdb)
		if err != nil {
			return 0, err
		}
		done := target > 0 && m <= target+1<<20 || target == 0 && prev >= 0 && m >= prev
		if done || time.Now().After(deadline) {
			return m, nil
		}
		prev = m
		time.Sleep(500 * time.Millisecond)
	}
}

func deleteMatching(ctx context.Context, rdb redis.UniversalClient, pattern string) error {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			if err := rdb.Del(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return rdb.Del(ctx, keys...).Err()
	}
	return nil
}

// deleteKeys deletes key(0) to key(n-1), a thousand at a time.
func deleteKeys(ctx context.Context, rdb redis.UniversalClient, n int, key func(int) string) error {
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		keys := make([]string, 0, batch)
		for b := lo; b < min(n, lo+batch); b++ {
			keys = append(keys, key(b))
		}
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			return err
		}
	}
	return nil
}

// fnv is FNV-1a 32 of s, as servicewindow.BucketOf uses.
func fnv(s string) int {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return int(h)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
