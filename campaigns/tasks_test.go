package campaigns_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
)

// samplePayload is a send as the scheduler builds it, with every field set.
func samplePayload() campaigns.SendPayload {
	return campaigns.SendPayload{
		Run: "spring-sale-20260101T000000Z-a1b2c3", To: "+12015550123", Bucket: 7, Row: 42,
		Campaign: "spring-sale", Template: "spring_sale", Language: "en_US", Sender: "+14151111234",
		Params: []connectly.Parameter{
			{Name: "header_image", Value: "https://cdn.example.com/spring.png"},
			{Name: "body_1", Value: "Ana"},
		},
		Delivery: "at-most-once",
	}
}

func TestNewSendTask(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		client    *asynq.Client
		inspector *asynq.Inspector
		ids       ledger.TaskIDs
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		client := asynq.NewClientFromRedisClient(rdb)
		inspector := asynq.NewInspectorFromRedisClient(rdb)
		t.Cleanup(func() {
			client.Close()
			inspector.Close()
			rdb.Close()
		})
		ids, err := ledger.New(rdb, nil).TaskIDs(context.Background())
		if err != nil {
			t.Fatalf("TaskIDs: %v", err)
		}
		return &testBundle{client: client, inspector: inspector, ids: ids}
	}

	t.Run("OptionsApplied", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := samplePayload()
		task, err := campaigns.NewSendTask(p, b.ids, campaigns.TaskOptions{
			Queue: campaigns.QueueFor("utility"), MaxRetry: 12, Timeout: 30 * time.Second, Retention: time.Hour,
		})
		if err != nil {
			t.Fatalf("NewSendTask: %v", err)
		}
		wantEqual(t, "type", campaigns.TypeSend, task.Type())
		info, err := b.client.EnqueueContext(context.Background(), task)
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		wantEqual(t, "task id", b.ids.TaskID(p.Run, p.To), info.ID)
		wantEqual(t, "queue", "herald:utility", info.Queue)
		wantEqual(t, "max retry", 12, info.MaxRetry)
		wantEqual(t, "timeout", 30*time.Second, info.Timeout)
		wantEqual(t, "retention", time.Hour, info.Retention)

		stored, err := b.inspector.GetTaskInfo("herald:utility", info.ID)
		if err != nil {
			t.Fatalf("GetTaskInfo: %v", err)
		}
		got, err := campaigns.DecodeSend(stored.Payload)
		if err != nil {
			t.Fatalf("DecodeSend of the stored payload: %v", err)
		}
		wantEqual(t, "payload", p, got)
	})

	t.Run("SameRecipientConflicts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		opts := campaigns.TaskOptions{Queue: campaigns.QueueFor("marketing"), MaxRetry: 5}
		first, _ := campaigns.NewSendTask(samplePayload(), b.ids, opts)
		if _, err := b.client.Enqueue(first); err != nil {
			t.Fatalf("first Enqueue: %v", err)
		}
		p := samplePayload()
		p.Row = 43 // the same recipient on a later row of the same run
		second, _ := campaigns.NewSendTask(p, b.ids, opts)
		_, err := b.client.Enqueue(second)
		wantErrIs(t, err, asynq.ErrTaskIDConflict)
	})
}

func TestDecodeSend(t *testing.T) {
	t.Parallel()

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		for _, p := range []campaigns.SendPayload{
			samplePayload(),
			{Run: "r", To: "bsuid:US.13491208655302741918", Template: "t", Language: "en", Delivery: "at-least-once"},
		} {
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := campaigns.DecodeSend(b)
			if err != nil {
				t.Fatalf("DecodeSend(%s): %v", b, err)
			}
			wantEqual(t, "payload", p, got)
		}
	})

	tests := []struct {
		name    string
		json    string
		wantErr string
	}{
		{name: "MissingRun", json: `{"to":"+12015550123","tpl":"t"}`, wantErr: "run, to and tpl are required"},
		{name: "MissingTo", json: `{"run":"r","tpl":"t"}`, wantErr: "run, to and tpl are required"},
		{name: "MissingTemplate", json: `{"run":"r","to":"+12015550123"}`, wantErr: "run, to and tpl are required"},
		{name: "Empty", json: `{}`, wantErr: "run, to and tpl are required"},
		{name: "NotJSON", json: `run=r`, wantErr: "decode send payload"},
		{name: "WrongType", json: `{"run":"r","to":"+12015550123","tpl":"t","b":"seven"}`, wantErr: "decode send payload"},
		{name: "Truncated", json: `{"run":"r","to":"+1`, wantErr: "decode send payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.DecodeSend([]byte(tt.json))
			wantErrContains(t, err, tt.wantErr)
		})
	}
}

func TestCallback(t *testing.T) {
	t.Parallel()

	t.Run("Fields", func(t *testing.T) {
		t.Parallel()
		p := samplePayload()
		var got map[string]any
		if err := json.Unmarshal(p.Callback(), &got); err != nil {
			t.Fatalf("callback is not JSON: %v", err)
		}
		wantEqual(t, "callback", map[string]any{"herald_run": p.Run, "herald_to": p.To, "herald_b": float64(p.Bucket)}, got)
	})

	t.Run("WithinLimitForTheLongestRun", func(t *testing.T) {
		t.Parallel()
		// The longest run id: a 64-character slug, the timestamp and the random suffix; a
		// BSUID recipient; a bucket of an audience of a hundred million.
		p := samplePayload()
		p.Run = strings.Repeat("s", 64) + "-20260101T000000Z-a1b2c3"
		p.To = "bsuid:US.13491208655302741918"
		p.Bucket = 1_562_500
		cb := p.Callback()
		if len(cb) > connectly.MaxCallbackData {
			t.Fatalf("callback is %d bytes, limit %d: %s", len(cb), connectly.MaxCallbackData, cb)
		}
		for _, key := range []string{`"herald_run":`, `"herald_to":`, `"herald_b":`} {
			if !strings.Contains(string(cb), key) {
				t.Errorf("callback %s has no %s", cb, key)
			}
		}
		var back ledger.Address
		if err := json.Unmarshal(cb, &back); err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "decoded", ledger.Address{Run: p.Run, Recipient: p.To, Bucket: p.Bucket}, back)
	})
}

func TestQueueFor(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		category string
		want     string
	}{
		{name: "DefaultIsMarketing", category: "", want: "herald:marketing"},
		{name: "Marketing", category: "marketing", want: "herald:marketing"},
		{name: "Utility", category: "utility", want: "herald:utility"},
		{name: "Authentication", category: "authentication", want: "herald:authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantEqual(t, "queue", tt.want, campaigns.QueueFor(tt.category))
		})
	}

	t.Run("EveryCategoryHasAPriority", func(t *testing.T) {
		t.Parallel()
		wantEqual(t, "queue count", len(campaigns.Categories), len(campaigns.Queues))
		for _, c := range campaigns.Categories {
			if campaigns.Queues[campaigns.QueueFor(c)] <= 0 {
				t.Errorf("queue of %s has no priority", c)
			}
		}
		if !(campaigns.Queues["herald:authentication"] > campaigns.Queues["herald:utility"] &&
			campaigns.Queues["herald:utility"] > campaigns.Queues["herald:marketing"]) {
			t.Errorf("transactional queues do not come first: %v", campaigns.Queues)
		}
	})
}
