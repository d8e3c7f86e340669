//go:build linux

package campaigns_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// TestUntrustedAudienceMemory plans each hostile audience (and the range-loop parameter) in a
// child process (this test binary, run again) and reads the child's peak memory: each ends
// in its bounded error, and no child grows past 200 MB.
func TestUntrustedAudienceMemory(t *testing.T) {
	if os.Getenv("HERALD_RSS_CHILD") != "" {
		t.Skip("the child runs TestUntrustedAudienceMemoryChild")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory counts in RSS: run without -race to measure")
	}
	if testing.Short() {
		t.Skip("writes a 1 GB sparse file and runs four processes")
	}
	t.Parallel()
	const limitKB = 200 << 10
	tenMB := strings.Repeat("x", 10<<20)
	cases := []struct {
		name  string
		file  string
		root  string
		setup func(t *testing.T, dir string)
		want  string
		// body is the body_1 template; "" is a plain column.
		body string
	}{
		{name: "DevZero", file: "/dev/zero", root: "/", want: "not a regular file: it is a device"},
		{name: "LineOf10MB", file: "a.csv", want: "row 2: too large: a record is longer than 65536 bytes", setup: func(t *testing.T, dir string) {
			writeFile(t, dir, "a.csv", "phone,name\n+12015550123,ana\n+12015550124,"+tenMB+"\n")
		}},
		{name: "RangeLoopParameter", file: "a.csv", body: "{{ range 100000000 }}x{{ end }}", want: "{{range}} is not allowed",
			setup: func(t *testing.T, dir string) {
				writeFile(t, dir, "a.csv", "phone,name\n+12015550123,ana\n+12015550124,bo\n")
			}},
		{name: "Sparse1GB", file: "a.csv", want: "not UTF-8 text: the file starts with NUL bytes", setup: func(t *testing.T, dir string) {
			if err := os.Truncate(writeFile(t, dir, "a.csv", ""), 1<<30); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "Sparse1GBAfterRows", file: "a.csv", want: "row 101: too large: a record is longer than 65536 bytes", setup: func(t *testing.T, dir string) {
			if err := os.Truncate(writeFile(t, dir, "a.csv", "phone\n"+strings.Repeat("+12015550123\n", 100)), 1<<30); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			body := tc.body
			if body == "" {
				body = "{{ .name }}"
			}
			writeFile(t, dir, "c.yaml", fmt.Sprintf("id: rss\ntemplate: {name: t, language: en}\nparameters: {body_1: %q}\naudience: {file: %q}\n", body, tc.file))
			cmd := exec.Command(os.Args[0], "-test.run=^TestUntrustedAudienceMemoryChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "HERALD_RSS_CHILD="+filepath.Join(dir, "c.yaml"), "HERALD_RSS_ROOT="+tc.root)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("child output does not hold %q:\n%s", tc.want, out)
			}
			ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			if !ok {
				t.Fatal("no resource usage for the child")
			}
			t.Logf("%s: peak RSS %d MB", tc.name, ru.Maxrss>>10)
			if ru.Maxrss > limitKB {
				t.Errorf("peak RSS %d KB, want under %d KB", ru.Maxrss, limitKB)
			}
		})
	}
}

// TestUntrustedAudienceMemoryChild is the child of TestUntrustedAudienceMemory: it plans the
// campaign named in HERALD_RSS_CHILD and prints the error, which must wrap a bound.
func TestUntrustedAudienceMemoryChild(t *testing.T) {
	path := os.Getenv("HERALD_RSS_CHILD")
	if path == "" {
		t.Skip("run by TestUntrustedAudienceMemory")
	}
	d, err := campaigns.Load(path)
	if err != nil {
		// A hostile parameter template is refused when the file is read, before any row.
		fmt.Println("load:", err)
		if !strings.Contains(err.Error(), "is not allowed") {
			t.Fatalf("load ended with %v, want the template refused", err)
		}
		return
	}
	d.Files.Root = os.Getenv("HERALD_RSS_ROOT")
	_, err = campaigns.Plan(d, "", campaigns.PlanOptions{})
	fmt.Println("plan:", err)
	if !errors.Is(err, campaigns.ErrTooLarge) && !errors.Is(err, campaigns.ErrEncoding) && !errors.Is(err, campaigns.ErrNotRegular) {
		t.Fatalf("plan ended with %v, want a bounded error", err)
	}
}
