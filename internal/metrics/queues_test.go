package metrics

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// asynq_queue_size leaves out the completed tasks, which asynq keeps for their retention and
// its own QueueInfo.Size counts: a queue with one task done and two waiting holds two.
func TestQueueSizeLeavesOutCompletedTasks(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	const q = "herald:marketing"
	testredis.QueueWithCompleted(t, rdb, q, 2)
	in := asynq.NewInspectorFromRedisClient(rdb)
	// The case at hand: asynq's own Size counts the completed task.
	if info, err := in.GetQueueInfo(q); err != nil || info.Size != 3 || info.Completed != 1 {
		t.Fatalf("GetQueueInfo = %+v, %v; want Size 3 with 1 completed", info, err)
	}
	want := `
# HELP asynq_queue_size Tasks in an asynq queue but the completed ones: pending, active, scheduled, retry, aggregating and archived.
# TYPE asynq_queue_size gauge
asynq_queue_size{queue="herald:marketing"} 2
`
	if err := testutil.CollectAndCompare(NewQueueCollector(in), strings.NewReader(want), "asynq_queue_size"); err != nil {
		t.Fatal(err)
	}
}
