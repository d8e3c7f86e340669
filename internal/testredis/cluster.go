package testredis

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// ClusterEnv is the variable that selects the Redis Cluster tier: a redis-cluster:// URL as
// Herald's redis.url takes it (internal/redisx), e.g.
// redis-cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103. The cluster tier writes only
// keys holding a name of its own (UniqueName) and deletes them; it never flushes. Its tests
// share the send queues (campaigns.Queues) of the cluster: only one of them may consume them.
const ClusterEnv = "HERALD_TEST_REDIS_CLUSTER"

// ClusterURL returns HERALD_TEST_REDIS_CLUSTER, or skips the test when it is unset.
func ClusterURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(ClusterEnv)
	if url == "" {
		t.Skipf("cluster test: set %s=redis-cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 to run it against a Redis Cluster (.ci/run starts one)", ClusterEnv)
	}
	return url
}

// Cluster returns a client on the Redis Cluster HERALD_TEST_REDIS_CLUSTER names, opened the
// way Herald opens redis.url (redisx.Open), or skips the test when the variable is unset. The
// client carries a SlotCheck: the test fails if a script it ran had KEYS in more than one
// slot. It is closed when the test ends.
func Cluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	url := ClusterURL(t)
	c, err := redisx.Open(url)
	if err != nil {
		t.Fatalf("%s: %v", ClusterEnv, err)
	}
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		c.Close()
		t.Fatalf("%s=%s: not a redis-cluster:// URL (a %T)", ClusterEnv, redisx.Redact(url), c)
	}
	if err := redisx.Ping(context.Background(), cc, 5*time.Second); err != nil {
		cc.Close()
		t.Fatalf("%s=%s: %v", ClusterEnv, redisx.Redact(url), err)
	}
	check := NewSlotCheck()
	cc.AddHook(check)
	t.Cleanup(func() {
		for _, p := range check.Problems() {
			t.Error(p)
		}
		cc.Close()
	})
	return cc
}

// nameSeq makes the names of one test binary distinct within one clock tick.
var nameSeq atomic.Int64

// UniqueName returns a name no other test uses, for a business id, a run or a campaign whose
// keys a cluster test writes: kind, then the clock and a sequence number, in lower-case
// letters, digits and dashes (safe in a key, a hash tag and a SCAN pattern).
func UniqueName(kind string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(kind) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	fmt.Fprintf(&b, "-%x-%d", time.Now().UnixNano(), nameSeq.Add(1))
	return b.String()
}

// DeleteMatching deletes every key matching the glob pattern and returns how many it
// deleted. On a Cluster it scans each master (a SCAN or KEYS sent through a cluster client
// reaches one node) and deletes key by key (the keys may lie in different slots).
func DeleteMatching(ctx context.Context, rdb redis.UniversalClient, pattern string) (int, error) {
	var n atomic.Int64
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
			n.Add(1)
		}
		return iter.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, del)
	case *redis.Client:
		err = del(ctx, c)
	default:
		err = fmt.Errorf("testredis: delete %q: a %T is neither a client nor a cluster client", pattern, rdb)
	}
	return int(n.Load()), err
}

// DeleteAtCleanup deletes, when the test ends, every key holding name (see DeleteMatching).
func DeleteAtCleanup(t testing.TB, rdb redis.UniversalClient, name string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := DeleteMatching(ctx, rdb, "*"+name+"*"); err != nil {
			t.Errorf("delete the keys of %s: %v", name, err)
		}
	})
}

// Slot returns the Redis Cluster hash slot of key: the CRC16 of its hash tag (the text
// inside its first "{...}", when not empty) or of the whole key, mod 16384, as CLUSTER
// KEYSLOT answers.
func Slot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// ScriptCall is one script a client ran (EVAL, EVALSHA or their _RO forms): the SHA1 of the
// script (for EVAL, of its text) and its KEYS.
type ScriptCall struct {
	SHA  string
	Keys []string
}

// SlotCheck is a go-redis hook that records every script a client runs, alone or in a
// pipeline, and the problems of those whose KEYS do not all hash to one slot: a script a
// Redis Cluster refuses (CROSSSLOT). It works on any client, a Cluster's or a single Redis's.
type SlotCheck struct {
	mu       sync.Mutex
	calls    []ScriptCall
	problems []string
}

// NewSlotCheck returns an empty SlotCheck.
func NewSlotCheck() *SlotCheck { return &SlotCheck{} }

func (s *SlotCheck) DialHook(next redis.DialHook) redis.DialHook { return next }

func (s *SlotCheck) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		s.saw(cmd)
		return next(ctx, cmd)
	}
}

func (s *SlotCheck) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			s.saw(c)
		}
		return next(ctx, cmds)
	}
}

// saw records cmd when it runs a script.
func (s *SlotCheck) saw(cmd redis.Cmder) {
	args := cmd.Args()
	if len(args) < 3 {
		return
	}
	var sha string
	switch name := strings.ToLower(fmt.Sprint(args[0])); name {
	case "evalsha", "evalsha_ro":
		sha = fmt.Sprint(args[1])
	case "eval", "eval_ro":
		sha = redis.NewScript(fmt.Sprint(args[1])).Hash()
	default:
		return
	}
	var numKeys int
	if _, err := fmt.Sscan(fmt.Sprint(args[2]), &numKeys); err != nil || numKeys < 0 || 3+numKeys > len(args) {
		s.add(ScriptCall{SHA: sha}, fmt.Sprintf("script %.12s: cannot read its number of keys from %v", sha, args[2]))
		return
	}
	call := ScriptCall{SHA: sha, Keys: make([]string, numKeys)}
	for i := range numKeys {
		call.Keys[i] = fmt.Sprint(args[3+i])
	}
	problem := ""
	if len(call.Keys) > 0 {
		slot := Slot(call.Keys[0])
		for _, k := range call.Keys[1:] {
			if Slot(k) != slot {
				problem = fmt.Sprintf("script %.12s: KEYS in more than one Cluster slot (%s is in %d, %s in %d): %q",
					sha, call.Keys[0], slot, k, Slot(k), call.Keys)
				break
			}
		}
	}
	s.add(call, problem)
}

func (s *SlotCheck) add(call ScriptCall, problem string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
	if problem != "" {
		s.problems = append(s.problems, problem)
	}
}

// Calls returns the scripts run so far, in order.
func (s *SlotCheck) Calls() []ScriptCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ScriptCall(nil), s.calls...)
}

// Problems returns one message per script run whose KEYS lie in more than one slot.
func (s *SlotCheck) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// DeleteRunsAtCleanup deletes, when the test ends, the keys of runs of campaign and their
// places in the shared lists CreateRun writes beside them (the run list, the campaign's list,
// the resend set, the active runs) and their follow-up runs' places in the active follow-ups;
// the campaign leaves the campaign list once it has no run left. The run ids must be the
// test's own (UniqueName): every key holding one is deleted.
func DeleteRunsAtCleanup(t testing.TB, rdb redis.UniversalClient, campaign string, runs ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, run := range runs {
			if _, err := DeleteMatching(ctx, rdb, "*"+run+"*"); err != nil {
				t.Errorf("delete the keys of %s: %v", run, err)
			}
			rdb.ZRem(ctx, rkeys.Runs(), run)
			rdb.ZRem(ctx, rkeys.CampaignRuns(campaign), run)
			rdb.SRem(ctx, rkeys.ResendRuns(), run)
			rdb.ZRem(ctx, rkeys.ActiveRuns(), run)
			// Follow-up runs are named after their parent (ledger.FollowupRun: RUN~RULE).
			if fs, err := rdb.ZRange(ctx, rkeys.FollowupActive(), 0, -1).Result(); err == nil {
				for _, f := range fs {
					if strings.HasPrefix(f, run+"~") {
						rdb.ZRem(ctx, rkeys.FollowupActive(), f)
					}
				}
			}
		}
		if n, err := rdb.ZCard(ctx, rkeys.CampaignRuns(campaign)).Result(); err == nil && n == 0 {
			rdb.ZRem(ctx, rkeys.Campaigns(), campaign)
		}
	})
}
