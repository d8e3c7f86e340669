package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestTaskIDs: a send task's id names its run and hides its recipient behind the deployment's
// key; every producer on one Redis (here, ledgers on three connections, asking at once on a
// Redis with no key yet) names a send alike.
func TestTaskIDs(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	const run, to = "spring-sale-20260101T000000Z-a1b2c3", "+12015550123"

	ids := make([]string, 3)
	var wg sync.WaitGroup
	for i := range ids {
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		wg.Go(func() {
			id, err := New(rdb, nil).TaskID(ctx, run, to)
			if err != nil {
				t.Errorf("TaskID: %v", err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	id := ids[0]
	if ids[1] != id || ids[2] != id {
		t.Fatalf("producers on one Redis named one send %v", ids)
	}
	if !strings.HasPrefix(id, run+"/") || len(strings.TrimPrefix(id, run+"/")) != 24 {
		t.Fatalf("task id %q: want the run id, a slash and 24 hex digits", id)
	}
	for _, leak := range []string{"+12015550123", "12015550123", "2015550123", "5550123"} {
		if strings.Contains(id, leak) {
			t.Errorf("task id %q contains the phone number (%q)", id, leak)
		}
	}
	// The unkeyed hash (what anyone can compute from a guessed number) is not the id.
	h := sha256.Sum256([]byte(to))
	if strings.HasSuffix(id, hex.EncodeToString(h[:12])) {
		t.Errorf("task id %q is the unkeyed SHA-256 of the number", id)
	}

	b := setup(t)
	k, err := b.l.TaskIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k.TaskID(run, to) == id {
		t.Error("two deployments (two Redis) name one send alike: the key is not random")
	}
	if first, again := k.TaskID(run, to), NewTaskIDs(k.key).TaskID(run, to); first != again {
		t.Error("task ids are not deterministic")
	}
	if k.TaskID(run, "+12015550124") == k.TaskID(run, to) {
		t.Error("two recipients share a task id")
	}
	other := k.TaskID("other-run", to)
	if other == k.TaskID(run, to) || strings.TrimPrefix(other, "other-run/") == strings.TrimPrefix(k.TaskID(run, to), run+"/") {
		t.Error("one recipient's ids in two runs share their hash: a person could be followed across runs")
	}
}

// TestTaskIDsRefuseABadKey: a stored key that is not 32 hex bytes is refused, naming the key,
// rather than used (a short key would make ids guessable again).
func TestTaskIDsRefuseABadKey(t *testing.T) {
	b := setup(t)
	if err := b.rdb.Set(context.Background(), rkeys.TaskIDKey(), "abcd", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := b.l.TaskIDs(context.Background())
	if err == nil || !strings.Contains(err.Error(), rkeys.TaskIDKey()) {
		t.Fatalf("TaskIDs with a 2-byte key: %v, want an error naming %s", err, rkeys.TaskIDKey())
	}
}
