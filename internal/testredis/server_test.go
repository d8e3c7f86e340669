package testredis

import (
	"os"
	"strings"
	"testing"
)

// TestStartServerOwnPort: StartServer returns a server that answers as the process it
// started; a port where another server already answers (as when two runs of a test pick the
// same port at once) is given up for another, and the other server is left alone.
func TestStartServerOwnPort(t *testing.T) {
	if os.Getenv(Env) == "" {
		t.Skipf("integration test: set %s (it also needs redis-server on PATH)", Env)
	}
	dir := t.TempDir()
	conf := "bind 127.0.0.1\nsave \"\"\nappendonly no\ndir " + dir + "\n"
	first := StartServer(t, dir, "first", conf)
	if pid, err := processID(first.Addr); err != nil || pid != first.Process.Pid {
		t.Fatalf("%s answers as process %d (%v), want %d", first.Addr, pid, err, first.Process.Pid)
	}

	// The next server is offered the first one's port before any other.
	pick := pickPort
	t.Cleanup(func() { pickPort = pick })
	offered := []int{}
	pickPort = func() int {
		if len(offered) == 0 {
			offered = append(offered, first.Port)
			return first.Port
		}
		p := pick()
		offered = append(offered, p)
		return p
	}
	second := StartServer(t, dir, "second", conf)
	if len(offered) < 2 || second.Port == first.Port {
		t.Fatalf("the second server is on port %d after offers %v, want another port than the first's %d",
			second.Port, offered, first.Port)
	}
	for _, s := range []*Server{first, second} {
		if pid, err := processID(s.Addr); err != nil || pid != s.Process.Pid {
			t.Fatalf("%s answers as process %d (%v), want %d", s.Addr, pid, err, s.Process.Pid)
		}
	}
	log, err := os.ReadFile(dir + "/second.log")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "Ready to accept connections") {
		t.Fatalf("the second server's log says it did not start:\n%s", log)
	}
}
