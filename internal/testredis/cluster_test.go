package testredis

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestSlot: the slots of the Cluster specification's examples, and of keys with a hash tag.
func TestSlot(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]int{
		"123456789":            12739, // CRC16 0x31C3, the specification's check value
		"foo":                  12182,
		"{user1000}.following": Slot("user1000"),
		"{user1000}.followers": Slot("user1000"),
		"foo{}{bar}":           Slot("foo{}{bar}"),
		"foo{{bar}}zap":        Slot("{bar"),
		"foo{bar}{zap}":        Slot("bar"),
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// TestSlotCheck: a script whose KEYS lie in two slots is a problem; one whose keys share a
// hash tag, or that has one key or none, is not; every call is recorded, alone or pipelined.
func TestSlotCheck(t *testing.T) {
	t.Parallel()
	_, rdb := Mini(t)
	check := NewSlotCheck()
	rdb.AddHook(check)
	ctx := context.Background()
	s := redis.NewScript("return #KEYS")
	same := []string{rkeys.SenderLimit("b1", "s"), rkeys.Tier("b1")}
	split := []string{rkeys.SenderLimit("b1", "s"), rkeys.Tier("b2")}
	if err := s.Run(ctx, rdb, same).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(ctx, rdb, []string{"a"}).Err(); err != nil {
		t.Fatal(err)
	}
	if p := check.Problems(); len(p) > 0 {
		t.Fatalf("problems of scripts in one slot: %q", p)
	}
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.EvalSha(ctx, p, split)
		return nil
	})
	p := check.Problems()
	if len(p) != 1 || !strings.Contains(p[0], "more than one Cluster slot") || !strings.Contains(p[0], rkeys.Tier("b2")) {
		t.Fatalf("problems = %q, want one naming %s", p, rkeys.Tier("b2"))
	}
	var keys [][]string
	for _, c := range check.Calls() {
		if c.SHA != s.Hash() {
			t.Errorf("call of %s, want %s", c.SHA, s.Hash())
		}
		keys = append(keys, c.Keys)
	}
	// Run tries EVALSHA, then EVAL after miniredis's NOSCRIPT: both are recorded.
	want := [][]string{same, same, {"a"}, split}
	if !slices.EqualFunc(keys, want, slices.Equal) {
		t.Errorf("calls with keys %q, want %q", keys, want)
	}
}

// TestClusterSlot: the Cluster answers CLUSTER KEYSLOT as Slot computes it.
func TestClusterSlot(t *testing.T) {
	cc := Cluster(t)
	ctx := context.Background()
	for _, key := range []string{"123456789", "foo", rkeys.Run("r1"), rkeys.LedgerBucket("r1", 3), rkeys.SenderLimit("b", "s"),
		rkeys.Reserved(rkeys.SenderLimit("b", "s"), "tok"), "foo{}{bar}", "foo{{bar}}zap"} {
		got, err := cc.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if int(got) != Slot(key) {
			t.Errorf("CLUSTER KEYSLOT %s = %d, Slot = %d", key, got, Slot(key))
		}
	}
}

// TestClusterProxy: a client on the proxy reads and writes keys of every node, runs scripts
// (SCRIPT LOAD reaches every master), pipelines, transactions and nil and error answers as on
// one Redis; DeleteMatching then finds and deletes the keys on every node.
func TestClusterProxy(t *testing.T) {
	cc := Cluster(t)
	rdb := ProxyClient(t, cc)
	ctx := context.Background()
	name := UniqueName(t.Name())
	DeleteAtCleanup(t, cc, name)

	keys := make([]string, 30) // spread over the slots, so over every node
	for i := range keys {
		keys[i] = name + ":" + string(rune('a'+i%26)) + strings.Repeat("x", i)
		if err := rdb.Set(ctx, keys[i], i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range keys {
		if n, err := rdb.Get(ctx, k).Int(); err != nil || n != i {
			t.Fatalf("GET %s = %d, %v; want %d", k, n, err, i)
		}
	}
	if err := rdb.Get(ctx, name+":none").Err(); err != redis.Nil {
		t.Fatalf("GET of no key: %v, want redis.Nil", err)
	}
	if err := rdb.HSet(ctx, keys[0], "f", 1).Err(); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("HSET on a string: %v, want WRONGTYPE", err)
	}
	// A script on a fresh SHA: EVALSHA's NOSCRIPT, then EVAL; after a load, EVALSHA at once
	// in a pipeline on any node.
	s := redis.NewScript("-- " + name + "\nreturn {redis.call('INCR', KEYS[1]), ARGV[1]}")
	res, err := s.Run(ctx, rdb, []string{keys[1]}, "x").Slice()
	if err != nil || len(res) != 2 || res[0] != int64(2) || res[1] != "x" {
		t.Fatalf("script = %v, %v", res, err)
	}
	if err := s.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	cmds := make([]*redis.Cmd, len(keys))
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = s.EvalSha(ctx, p, []string{k}, i)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tag := "{" + name + "}"
	var incr *redis.IntCmd
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, tag+":h", "a", 1, "b", 2)
		incr = p.HIncrBy(ctx, tag+":h", "a", 5)
		return nil
	}); err != nil || incr.Val() != 6 {
		t.Fatalf("transaction: HINCRBY = %d, %v", incr.Val(), err)
	}
	if h, err := rdb.HGetAll(ctx, tag+":h").Result(); err != nil || h["a"] != "6" || h["b"] != "2" {
		t.Fatalf("HGETALL = %v, %v", h, err)
	}
	if z, err := rdb.ZAdd(ctx, tag+":z", redis.Z{Score: 1.5, Member: "m"}).Result(); err != nil || z != 1 {
		t.Fatalf("ZADD = %d, %v", z, err)
	}
	if zs, err := rdb.ZRangeWithScores(ctx, tag+":z", 0, -1).Result(); err != nil || len(zs) != 1 || zs[0].Score != 1.5 {
		t.Fatalf("ZRANGE WITHSCORES = %v, %v", zs, err)
	}

	n, err := DeleteMatching(ctx, cc, "*"+name+"*")
	if err != nil || n != len(keys)+2 {
		t.Fatalf("DeleteMatching = %d, %v; want %d keys deleted", n, err, len(keys)+2)
	}
	if n, err := DeleteMatching(ctx, cc, "*"+name+"*"); err != nil || n != 0 {
		t.Fatalf("DeleteMatching again = %d, %v; want none", n, err)
	}
}

// TestUniqueName: names are distinct and safe in a key pattern.
func TestUniqueName(t *testing.T) {
	t.Parallel()
	a, b := UniqueName("Test/Cluster {x}*"), UniqueName("Test/Cluster {x}*")
	if a == b || !strings.HasPrefix(a, "test-cluster--x---") {
		t.Fatalf("names %q, %q", a, b)
	}
	if strings.ContainsAny(a, "{}*?[]\\ /") {
		t.Fatalf("name %q holds a glob or tag character", a)
	}
}
