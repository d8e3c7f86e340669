//go:build linux

package campaigns_test

import (
	"bufio"
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
// in its bounded error (or, for an audience inside every bound, in its plan), and no child
// grows past 200 MB.
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
		// 1,000 rows of 16,001 columns (16 MB, every line under 16 KiB): inside every bound,
		// the plan reads the columns the campaign uses, not a map of 16,001 a row (1.2 GB).
		{name: "WideAudience", file: "a.csv", body: `{{ .aab | default "x" }}`, want: "plan: <nil>", setup: writeWide},
		// A template reading the row as a whole keeps every column: the rows read ahead are
		// bounded by their bytes, not their count.
		{name: "WideAudienceWholeRow", file: "a.csv", body: "{{ len . }}", want: "plan: <nil>", setup: writeWide},
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
	rep, err := campaigns.Plan(d, "", campaigns.PlanOptions{})
	fmt.Println("plan:", err)
	if err == nil && rep.Rows > 0 {
		fmt.Println("rows:", rep.Rows)
		return // an audience inside every bound: the parent checks the output and the memory
	}
	if !errors.Is(err, campaigns.ErrTooLarge) && !errors.Is(err, campaigns.ErrEncoding) && !errors.Is(err, campaigns.ErrNotRegular) {
		t.Fatalf("plan ended with %v, want a bounded error", err)
	}
}

// writeWide writes a.csv: a phone column and 16,000 columns named aaa, aab, ..., then 1,000
// rows holding a phone number and 16,000 empty values (16 MB, 16,013 bytes a line). It
// writes line by line: the test process's own memory counts in its children's peak.
func writeWide(t *testing.T, dir string) {
	t.Helper()
	const cols, rows = 16000, 1000
	f, err := os.Create(filepath.Join(dir, "a.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("phone")
	for i := range cols {
		w.WriteString("," + string(rune('a'+i/676)) + string(rune('a'+i/26%26)) + string(rune('a'+i%26)))
	}
	w.WriteByte('\n')
	empty := strings.Repeat(",", cols)
	for i := range rows {
		fmt.Fprintf(w, "+1201555%04d%s\n", i, empty)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
}
