package report

import (
	"testing"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/testredis"
)

// queue stats' size leaves out the completed tasks, which asynq keeps for their retention and
// its own QueueInfo.Size counts: a queue with one task done and two waiting holds two.
func TestQueuesSizeLeavesOutCompletedTasks(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	const q = "herald:marketing"
	testredis.QueueWithCompleted(t, rdb, q, 2)
	in := asynq.NewInspectorFromRedisClient(rdb)
	qs, err := Queues(in, []string{"herald:utility"})
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].Queue != q || qs[0].Size != 2 || qs[0].Pending != 2 || qs[0].Completed != 1 {
		t.Fatalf("Queues = %+v, want %s with size 2 (2 pending, 1 completed) and herald:utility", qs, q)
	}
}
