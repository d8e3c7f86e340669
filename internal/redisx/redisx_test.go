package redisx_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/redisx"
	"github.com/heraldmsg/herald/internal/testredis"
)

const secret = "S3cretPW"

// Errors about a Redis URL never show its password, whatever form the URL has and however
// it is mistyped.
func TestConnOptErrorsHidePassword(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"redis://:" + secret + "@127.0.0.1:63x79/0",
		"redis://user:" + secret + "@127.0.0.1:6379/x",
		"rediss://:" + secret + "@host:port/0",
		"redis-sentinel://:" + secret + "@h1:26379,h2:2x6379?master=m",
		"redis-cluster://:" + secret + "@h1:7000,h2:7x001",
		"redis://:" + secret + "@[::1/0",
		"redis://:S3c/retPW@127.0.0.1:6379/0",
		"redis://:" + secret + "%zz@127.0.0.1:6379/0",
		"redis-socket://:" + secret + "@",
		"redis-cluster://:" + secret + "@",
	} {
		_, err := redisx.ConnOpt(raw)
		if err == nil {
			t.Errorf("ConnOpt(%s) passed", redisx.Redact(raw))
			continue
		}
		if strings.Contains(err.Error(), "S3c") {
			t.Errorf("ConnOpt: %v: shows the password", err)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:" + secret + "@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"rediss://herald:" + secret + "@redis.internal:6380/2", "rediss://herald:xxxxx@redis.internal:6380/2"},
		{"redis-sentinel://:" + secret + "@s1:26379,s2:26379?master=mymaster", "redis-sentinel://:xxxxx@s1:26379,s2:26379?master=mymaster"},
		{"redis-cluster://u:" + secret + "@h1:7000,h2:7001", "redis-cluster://u:xxxxx@h1:7000,h2:7001"},
		{"redis://:" + secret + "@127.0.0.1:63x79/0", "redis://:xxxxx@127.0.0.1:63x79/0"},
		{"redis://:S3c/ret@PW@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"redis://" + secret + "@127.0.0.1:6379/0", "redis://xxxxx@127.0.0.1:6379/0"},
		{":" + secret + "@127.0.0.1:6379", ":xxxxx@127.0.0.1:6379"},
		{"redis://127.0.0.1:6379/0?password=" + secret, "redis://127.0.0.1:6379/0?password=xxxxx"},
	}
	for _, tc := range tests {
		if got := redisx.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHasPassword(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]bool{
		"redis://127.0.0.1:6379/0":                     false,
		"redis://herald@127.0.0.1:6379/0":              false,
		"redis://:pw@127.0.0.1:6379/0":                 true,
		"redis://herald:pw@127.0.0.1:6379/0":           true,
		"redis://:p/w@127.0.0.1:6379/0":                true,
		"redis-sentinel://:pw@s1:26379?master=m":       true,
		"redis-cluster://u:pw@h1:7000,h2:7001":         true,
		"redis://127.0.0.1:6379/0?password=pw":         true,
		"redis-sentinel://s1:26379?master=m&password=": false,
		"redis-socket:///run/redis.sock?db=1":          false,
		"redis://:xxxxx@127.0.0.1:6379/0":              true,
	} {
		if got := redisx.HasPassword(raw); got != want {
			t.Errorf("HasPassword(%q) = %v, want %v", raw, got, want)
		}
	}
}

// A user name in the URL (a Redis ACL user) is kept in every form that takes one; without it
// Herald would log in as the default user and Redis would answer WRONGPASS.
func TestConnOptKeepsUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, user, password string
	}{
		{"redis://herald@127.0.0.1:6379/0", "herald", ""},
		{"redis://herald:" + secret + "@127.0.0.1:6379/0", "herald", secret},
		{"rediss://herald:" + secret + "@redis.internal:6380/2", "herald", secret},
		{"redis-socket://herald:" + secret + "@/run/redis.sock?db=1", "herald", secret},
		{"redis-sentinel://herald:" + secret + "@s1:26379,s2:26379?master=m", "herald", secret},
		{"redis-cluster://herald:" + secret + "@h1:7000,h2:7001", "herald", secret},
		{"redis://127.0.0.1:6379/0", "", ""},
		{"redis://:" + secret + "@127.0.0.1:6379/0", "", secret},
	}
	for _, tc := range tests {
		opt, err := redisx.ConnOpt(tc.url)
		if err != nil {
			t.Errorf("ConnOpt(%s): %v", redisx.Redact(tc.url), err)
			continue
		}
		var user, password string
		switch o := opt.(type) {
		case asynq.RedisClientOpt:
			user, password = o.Username, o.Password
		case asynq.RedisFailoverClientOpt:
			// A Sentinel URL's credentials are the sentinels'.
			user, password = o.SentinelUsername, o.SentinelPassword
		case asynq.RedisClusterClientOpt:
			user, password = o.Username, o.Password
		default:
			t.Fatalf("ConnOpt(%s) = %T", redisx.Redact(tc.url), opt)
		}
		if user != tc.user || password != tc.password {
			t.Errorf("ConnOpt(%s): user %q, password given %v; want user %q, password %v", redisx.Redact(tc.url), user,
				password == tc.password, tc.user, tc.password != "")
		}
		if o, ok := opt.(asynq.RedisClientOpt); ok && strings.HasPrefix(tc.url, "rediss://") && o.TLSConfig == nil {
			t.Errorf("ConnOpt(%s): no TLS", redisx.Redact(tc.url))
		}
	}
}

// Against a real Redis (HERALD_TEST_REDIS), a URL naming an ACL user logs in as that user. The
// test makes a user of its own and deletes it; the default user is left alone.
func TestOpenLogsInAsACLUser(t *testing.T) {
	t.Parallel()
	opts := testredis.Options(t, testredis.OffsetShared)
	admin := redis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	user := testredis.UniqueName("herald-acl-test")
	const password = "acl-test-" + secret
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "reset", "on", ">"+password, "~"+user+":*", "+ping", "+select", "+client", "+acl|whoami", "+set", "+get").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Do(context.Background(), "ACL", "DELUSER", user).Err(); err != nil {
			t.Errorf("ACL DELUSER %s: %v", user, err)
		}
	})

	base := fmt.Sprintf("redis://%s:%s@%s/%d", user, password, opts.Addr, opts.DB)
	c, err := redisx.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := redisx.Ping(ctx, c, 5*time.Second); err != nil {
		t.Fatalf("Ping as %s: %v", user, err)
	}
	who, err := c.Do(ctx, "ACL", "WHOAMI").Text()
	if err != nil || who != user {
		t.Fatalf("ACL WHOAMI = %q, %v; want %q", who, err, user)
	}
	key := user + ":k"
	if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET as %s: %v", user, err)
	}
	t.Cleanup(func() { admin.Del(context.Background(), key) })

	// A wrong password is refused, and the error does not show it.
	bad, err := redisx.Open(fmt.Sprintf("redis://%s:wrong-%s@%s/%d", user, secret, opts.Addr, opts.DB))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bad.Close() })
	err = redisx.Ping(ctx, bad, 5*time.Second)
	if err == nil {
		t.Fatal("Ping with a wrong password passed")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("err = %v shows the password", err)
	}
}
