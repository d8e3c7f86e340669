//go:build linux

package campaigns_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/heraldmsg/herald/internal/golden"

	"github.com/heraldmsg/herald/campaigns"
)

// untrustedCampaign is the campaign of every probe: its audience.file is on line 4, column 9.
const untrustedCampaign = "id: untrusted\ntemplate: {name: t, language: en}\naudience:\n  file: %q\n  bsuid: bsuid\n"

// probeMarker is in every secret and value the stored probes hold: no error may show it.
const probeMarker = "probe-"

// probeError returns what Herald says of a campaign's audience: the header check of
// campaign validate, else the plan's error, else its invalid-share verdict (which lists
// examples of skipped rows).
func probeError(t *testing.T, dir, file string, rules campaigns.FileRules) string {
	t.Helper()
	path := filepath.Join(dir, "c.yaml")
	d, err := campaigns.Parse(path, fmt.Appendf(nil, untrustedCampaign, file))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	d.Files = rules
	err = campaigns.CheckAudience(d)
	if err == nil {
		var rep campaigns.PlanReport
		rep, err = campaigns.Plan(d, "", campaigns.PlanOptions{Samples: -1})
		if err == nil {
			err = rep.CheckInvalidShare(d.Audience.MaxInvalidShare)
		}
	} else {
		var ae *campaigns.AudienceError
		if !errors.As(err, &ae) {
			t.Errorf("CheckAudience error %T is not an *AudienceError: %v", err, err)
		}
	}
	if err == nil {
		return "no error\n"
	}
	msg := err.Error()
	if strings.Contains(msg, probeMarker) {
		t.Errorf("error quotes the file: %q", msg)
	}
	for _, c := range []byte(msg) {
		if (c < 0x20 && c != '\n') || c > 0x7e {
			t.Errorf("error holds byte %#x: %q", c, msg)
			break
		}
	}
	return strings.ReplaceAll(msg, dir, "DIR") + "\n"
}

// TestUntrustedAudience opens each probe of a hostile campaign (stored bad files under
// testdata/untrusted, and files, links, pipes and devices made here) and compares what Herald
// says with the case's .golden file (run with -update to rewrite them).
func TestUntrustedAudience(t *testing.T) {
	t.Parallel()

	type probe struct {
		name  string
		file  string
		setup func(t *testing.T, dir string)
		rules campaigns.FileRules
	}
	write := func(name string, b []byte) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	sparse := func(name string, head string, size int64) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(head), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, size); err != nil {
				t.Fatal(err)
			}
		}
	}
	tenMB := strings.Repeat("x", 10<<20)
	probes := []probe{
		{name: "proc-self-environ", file: "/proc/self/environ"},
		{name: "proc-self-environ-root-slash", file: "/proc/self/environ", rules: campaigns.FileRules{Root: "/"}},
		{name: "etc-shadow", file: "/etc/shadow"},
		{name: "dotdot-etc-passwd", file: "../../../../etc/passwd"},
		{name: "symlink-out", file: "link.csv", setup: func(t *testing.T, dir string) {
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link.csv")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "symlinked-folder-out", file: "etc/passwd", setup: func(t *testing.T, dir string) {
			if err := os.Symlink("/etc", filepath.Join(dir, "etc")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "symlink-inside", file: "link.csv", setup: func(t *testing.T, dir string) {
			write("a.csv", []byte("phone\n+12015550123\n"))(t, dir)
			if err := os.Symlink("a.csv", filepath.Join(dir, "link.csv")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "fifo", file: "pipe.csv", setup: func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "pipe.csv"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "dev-zero", file: "/dev/zero"},
		{name: "dev-zero-root-slash", file: "/dev/zero", rules: campaigns.FileRules{Root: "/"}},
		{name: "directory", file: "sub.csv", setup: func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, "sub.csv"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "missing", file: "nope.csv"},
		{name: "root-missing", file: "a.csv", setup: write("a.csv", []byte("phone\n")), rules: campaigns.FileRules{Root: "/nonexistent-campaigns-root"}},
		{name: "header-line-10mb", file: "a.csv", setup: write("a.csv", []byte(tenMB+"\n"))},
		{name: "row-line-10mb", file: "a.csv", setup: write("a.csv", []byte("phone,name\n+12015550123,ana\n+12015550124,"+tenMB+"\n"))},
		{name: "quoted-record-over-bound", file: "a.csv", setup: write("a.csv", []byte("phone,note\n+12015550123,\""+strings.Repeat("probe-line\n", 10_000)+"\"\n"))},
		{name: "jsonl-line-10mb", file: "a.jsonl", setup: write("a.jsonl", []byte(`{"phone": "+12015550123"}`+"\n"+`{"phone": "`+tenMB+`"}`+"\n"))},
		{name: "sparse-1gb", file: "a.csv", setup: sparse("a.csv", "", 1<<30)},
		{name: "sparse-1gb-after-rows", file: "a.csv", setup: sparse("a.csv", "phone\n+12015550123\n"+strings.Repeat("+12015550124\n", 100), 1<<30)},
		{name: "too-many-rows", file: "a.csv", setup: write("a.csv", []byte("phone\n+12015550121\n+12015550122\n+12015550123\n+12015550124\n")), rules: campaigns.FileRules{MaxRows: 3}},
		{name: "file-over-bound", file: "a.csv", setup: write("a.csv", bytes.Repeat([]byte("+12015550123\n"), 20)), rules: campaigns.FileRules{MaxFileBytes: 100}},
	}
	stored, err := filepath.Glob(filepath.Join("testdata", "untrusted", "*.*sv"))
	if err != nil {
		t.Fatal(err)
	}
	jsonl, _ := filepath.Glob(filepath.Join("testdata", "untrusted", "*.jsonl"))
	for _, p := range append(stored, jsonl...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(p)
		probes = append(probes, probe{name: strings.TrimSuffix(base, filepath.Ext(base)), file: base, setup: write(base, b)})
	}
	if len(probes) < 40 {
		t.Fatalf("%d probes: the stored ones under testdata/untrusted are missing", len(probes))
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if p.setup != nil {
				p.setup(t, dir)
			}
			got := probeError(t, dir, p.file, p.rules)
			golden.Check(t, filepath.Join("testdata", "untrusted", p.name+".golden"), []byte(got))
		})
	}
}
