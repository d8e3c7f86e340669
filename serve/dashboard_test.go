package serve_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/testredis"
)

// The dashboard shows a task's error masked, as task show does: the error of a failed send
// names the customer's number (a provider's answer, an audience error quoting a row), and
// asynqmon shows error_message as stored.
func TestDashboardMasksTaskErrors(t *testing.T) {
	t.Parallel()
	mr, rdb := testredis.Mini(t)
	ctx := context.Background()
	const queue = "herald:test"
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{queue: 1},
		LogLevel: asynq.FatalLevel, TaskCheckInterval: 10 * time.Millisecond, ShutdownTimeout: 100 * time.Millisecond,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour }})
	mux := asynq.NewServeMux()
	mux.HandleFunc("t", func(context.Context, *asynq.Task) error {
		return errors.New(`send to +1 (415) 555-2671 refused; row "ana,(212) 555-0143,Pro"`)
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	cli := asynq.NewClientFromRedisClient(rdb)
	archived, err := cli.EnqueueContext(ctx, asynq.NewTask("t", []byte(`{"note":"call 415.555.2671"}`)), asynq.Queue(queue), asynq.MaxRetry(0), asynq.TaskID("archived-send"))
	if err != nil {
		t.Fatal(err)
	}
	retried, err := cli.EnqueueContext(ctx, asynq.NewTask("t", nil), asynq.Queue(queue), asynq.MaxRetry(5), asynq.TaskID("retried-send"))
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		a, errA := insp.GetTaskInfo(queue, archived.ID)
		r, errR := insp.GetTaskInfo(queue, retried.ID)
		if errA == nil && errR == nil && a.State == asynq.TaskStateArchived && r.State == asynq.TaskStateRetry && a.LastErr != "" && r.LastErr != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tasks did not fail within 10s")
		}
	}
	srv.Shutdown()
	cli.Close()

	dctx, stop := context.WithCancel(ctx)
	addr, done := startDashboard(dctx, t, mr.Addr())
	var seen strings.Builder
	for _, path := range []string{
		"/api/queues/" + queue + "/archived_tasks",
		"/api/queues/" + queue + "/retry_tasks",
		"/api/queues/" + queue + "/tasks/" + archived.ID,
		"/api/queues/" + queue + "/tasks/" + retried.ID,
	} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"error_message"`) ||
			!strings.Contains(resp.Header.Get("Content-Type"), "json") && !strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			t.Errorf("GET %s = %d %s", path, resp.StatusCode, body)
		}
		for _, number := range []string{"415) 555", "555-2671", "212) 555", "555-0143", "415.555"} {
			if strings.Contains(string(body), number) {
				t.Errorf("GET %s shows %q: %s", path, number, body)
			}
		}
		seen.Write(body)
	}
	// What is masked keeps its last 4 digits, and the rest of the error reads as it did.
	for _, s := range []string{"2671 refused", `0143,Pro`, "send to "} {
		if !strings.Contains(seen.String(), s) {
			t.Errorf("the dashboard's answers lack %q: %s", s, seen.String())
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("RunDashboard after its context ended: %v", err)
	}
}
