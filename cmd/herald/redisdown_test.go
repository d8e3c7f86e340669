package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/testredis"
)

// An admin command run while Redis is down prints one error naming the setting to check, not
// go-redis's own log lines before it (one per dial attempt).
func TestRedisDownPrintsOneError(t *testing.T) {
	bin, err := buildHerald()
	if err != nil {
		t.Fatal(err)
	}
	// A port that refuses every connection. Not a closed listener's: another test process's
	// server may take the freed port before the command dials it.
	addr := testredis.RefusingAddr(t)
	cmd := exec.Command(bin, "run", "ls")
	cmd.Env = append(os.Environ(), "HERALD_CONFIG=", "HERALD_LOG_LEVEL=info", "HERALD_REDIS_URL=redis://"+addr+"/0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("run ls with Redis down succeeded:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "herald: redis: ") || !strings.Contains(lines[0], "HERALD_REDIS_URL") {
		t.Fatalf("want one line naming the Redis setting, got:\n%s", out)
	}
}
