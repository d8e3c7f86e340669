package scheduler_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/defstore"
)

// testBundle is what a scheduler test works with: a fresh miniredis, an inspector on it, and a
// directory for campaign files and their audiences.
type testBundle struct {
	mr        *miniredis.Miniredis
	rdb       *redis.Client
	inspector *asynq.Inspector
	dir       string
}

func setup(tb testing.TB) *testBundle {
	tb.Helper()
	mr := miniredis.RunT(tb)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	tb.Cleanup(func() {
		inspector.Close()
		rdb.Close()
	})
	return &testBundle{mr: mr, rdb: rdb, inspector: inspector, dir: tb.TempDir()}
}

// audienceCSV returns a name,phone audience of n distinct valid Brazilian mobiles.
func audienceCSV(n int) string {
	var b strings.Builder
	b.WriteString("name,phone\n")
	for i := range n {
		fmt.Fprintf(&b, "user%d,+5511%09d\n", i, 900000000+i)
	}
	return b.String()
}

// submittedLongAgo is when submit stores campaigns: before any tick a test looks at, since a
// version's ticks count from when it was submitted.
var submittedLongAgo = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// submit stores a campaign file in the definition store, as submitted long ago.
func (b *testBundle) submit(tb testing.TB, def *campaigns.Definition) defstore.Submitted {
	tb.Helper()
	data, err := os.ReadFile(def.Path)
	if err != nil {
		tb.Fatal(err)
	}
	store := defstore.New(b.rdb, func() time.Time { return submittedLongAgo })
	v, _, err := store.Submit(context.Background(), def.ID, def.Path, data)
	if err != nil {
		tb.Fatal(err)
	}
	sub, err := store.Version(context.Background(), def.ID, v)
	if err != nil {
		tb.Fatal(err)
	}
	return sub
}
