package redisx_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/redisx"
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
