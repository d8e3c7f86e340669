package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// benchRecipients is the size of the run the benchmark's events are about.
const benchRecipients = 5000

// benchEvents seeds a run of accepted recipients straight into Redis and returns signed
// delivery_status bodies for them: sent, delivered and read for each, interleaved.
func benchEvents(b *testing.B, rdb redis.UniversalClient) [][]byte {
	b.Helper()
	ctx := context.Background()
	const runID = "bench"
	n := ledger.BucketsFor(benchRecipients)
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, rkeys.Run(runID), "id", runID, "status", "running", "buckets", n)
		p.HSet(ctx, rkeys.Counts(runID), "accepted", benchRecipients)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	sentAt := time.Now().Add(-2 * time.Second)
	var bodies [][]byte
	statuses := []string{StatusSent, StatusDelivered, StatusRead}
	for round := range statuses {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range benchRecipients {
				to := fmt.Sprintf("+1555%07d", i)
				id := ulidAt(sentAt, i)
				bucket := ledger.BucketOf(to, n)
				if round == 0 {
					p.HSet(ctx, rkeys.LedgerBucket(runID, bucket), to, "a|"+strconv.Itoa(i+1)+"|1||"+id)
				}
				body := statusBody(runID, to, bucket, id, statuses[round], time.Now())
				bodies = append(bodies, body)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return bodies
}

// benchRedis returns a real Redis from HERALD_TEST_REDIS, on the package's own database
// (testredis.OffsetWebhooks below the one named; it is flushed), or nil.
func benchRedis(b *testing.B) redis.UniversalClient {
	b.Helper()
	if os.Getenv(testredis.Env) == "" {
		return nil
	}
	rdb, err := redisx.Open(testredis.URL(b, testredis.OffsetWebhooks))
	if err != nil {
		b.Fatal(err)
	}
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		rdb.FlushDB(context.Background())
		rdb.Close()
	})
	return rdb
}

// runEvents drives handler with the bodies from many goroutines and reports events/s.
func runEvents(b *testing.B, bodies [][]byte, handle func(body []byte) int) {
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if code := handle(bodies[i%int64(len(bodies))]); code != http.StatusOK {
				b.Errorf("status %d", code)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

func serve(rc *Receiver, body []byte) int {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set(SignatureHeader, Sign(body, testSecret))
	w := httptest.NewRecorder()
	rc.ServeHTTP(w, req)
	return w.Code
}

// BenchmarkReceiver measures the events per second the receiver records, next to two
// baselines measured in the same run: the signature check and JSON parse alone (no Redis),
// and the same plus one plain HSET per event. "redis" variants need HERALD_TEST_REDIS; "http"
// variants go through a loopback HTTP server and client in this process.
func BenchmarkReceiver(b *testing.B) {
	type target struct {
		name string
		rdb  func(b *testing.B) redis.UniversalClient
	}
	targets := []target{{"miniredis", func(b *testing.B) redis.UniversalClient {
		mr := miniredis.RunT(b)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: 32})
		b.Cleanup(func() { rdb.Close() })
		return rdb
	}}}
	if os.Getenv("HERALD_TEST_REDIS") != "" {
		targets = append(targets, target{"redis", benchRedis})
	}
	newReceiver := func(b *testing.B, rdb redis.UniversalClient) *Receiver {
		rc, err := New(Config{Secrets: []string{testSecret}}, Deps{Redis: rdb, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		return rc
	}

	b.Run("baseline=verify+parse", func(b *testing.B) {
		mr := miniredis.RunT(b)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		defer rdb.Close()
		bodies := benchEvents(b, rdb)
		rc := newReceiver(b, rdb)
		runEvents(b, bodies, func(body []byte) int {
			if !rc.Verify(body, Sign(body, testSecret)) {
				return http.StatusUnauthorized
			}
			if _, err := Parse(body); err != nil {
				return http.StatusBadRequest
			}
			return http.StatusOK
		})
	})
	for _, tg := range targets {
		b.Run("baseline=verify+parse+hset/"+tg.name, func(b *testing.B) {
			rdb := tg.rdb(b)
			bodies := benchEvents(b, rdb)
			rc := newReceiver(b, rdb)
			ctx := context.Background()
			runEvents(b, bodies, func(body []byte) int {
				if !rc.Verify(body, Sign(body, testSecret)) {
					return http.StatusUnauthorized
				}
				ev, err := Parse(body)
				if err != nil {
					return http.StatusBadRequest
				}
				if err := rdb.HSet(ctx, "bench:plain", ev.Callback.Recipient, ev.Status).Err(); err != nil {
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			})
		})
		b.Run("receiver/"+tg.name, func(b *testing.B) {
			rdb := tg.rdb(b)
			bodies := benchEvents(b, rdb)
			rc := newReceiver(b, rdb)
			runEvents(b, bodies, func(body []byte) int { return serve(rc, body) })
		})
		b.Run("receiver-http/"+tg.name, func(b *testing.B) {
			rdb := tg.rdb(b)
			bodies := benchEvents(b, rdb)
			rc := newReceiver(b, rdb)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &http.Server{Handler: rc}
			go srv.Serve(ln) //nolint:errcheck // ends with Close
			defer srv.Close()
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = 64
			hc := &http.Client{Transport: tr}
			url := "http://" + ln.Addr().String() + "/"
			runEvents(b, bodies, func(body []byte) int {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "text/plain; charset=utf-8")
				req.Header.Set(SignatureHeader, Sign(body, testSecret))
				resp, err := hc.Do(req)
				if err != nil {
					return 0
				}
				_, _ = io.Copy(io.Discard, resp.Body) // read to the end so the connection is reused
				resp.Body.Close()
				return resp.StatusCode
			})
		})
	}
}
