package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/report"
)

// An --interval that is not positive is wrong usage (exit 2), said before anything is read;
// it used to panic in the ticker, with Go's exit code 2 for a crash.
func TestWatchRefusesNonPositiveInterval(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	for _, iv := range []string{"0", "0s", "-1s"} {
		code, out, errOut := herald(t, env, "run", "show", "RUN", "--watch", "--interval", iv)
		if code != exitUsage || out != "" || !strings.Contains(errOut, "--interval") || !strings.Contains(errOut, "positive") {
			t.Errorf("--interval %s: %d %q %q; want exit 2 saying the interval must be positive", iv, code, out, errOut)
		}
	}
	// Without --watch the interval is not used.
	if code, _, errOut := herald(t, env, "run", "show", "no-such-run", "--interval", "0"); code != exitError ||
		!strings.Contains(errOut, `no run "no-such-run" (recent runs: herald run ls)`) {
		t.Errorf("run show of no run: %d %q", code, errOut)
	}
}

// run show --watch --json prints one JSON object per refresh, one per line, each the report
// run show --json prints, until the run has ended; with --verify the last one carries the
// recount.
func TestWatchJSONLines(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	code, out, errOut := herald(t, env, "campaign", "send", "--json", filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	var started struct{ Run string }
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
		t.Fatalf("campaign send: %d %q %s", code, out, errOut)
	}
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errb strings.Builder
	go func() {
		defer pw.Close()
		done <- run(context.Background(), []string{"run", "show", started.Run, "--watch", "--json", "--verify", "--interval", "5ms"},
			func(k string) string { return env[k] }, pw, &errb)
	}()
	lines := bufio.NewScanner(pr)
	var reps []report.Run
	for lines.Scan() {
		var rep report.Run
		if err := json.Unmarshal(lines.Bytes(), &rep); err != nil {
			t.Fatalf("line %d is not one JSON object: %v: %s", len(reps)+1, err, lines.Text())
		}
		if len(reps) == 0 {
			// The run goes on until cancelled: the watch prints it while it waits.
			if code, _, errOut := herald(t, env, "run", "cancel", started.Run); code != 0 {
				t.Fatalf("cancel: %s", errOut)
			}
		}
		reps = append(reps, rep)
	}
	if code := <-done; code != 0 {
		t.Fatalf("watch exited %d: %s", code, errb.String())
	}
	if len(reps) < 2 {
		t.Fatalf("%d lines; want one per refresh: the running run, then the cancelled one", len(reps))
	}
	first, last := reps[0], reps[len(reps)-1]
	if first.Run != started.Run || first.Status != "running" || first.Verify != nil {
		t.Errorf("first line %+v; want the running run as run show --json has it, not verified", first)
	}
	if last.Status != "cancelled" || last.Verify == nil || len(last.Verify.Mismatches) != 0 || last.Sum != int64(last.Recipients) {
		t.Errorf("last line %+v; want the cancelled run, verified", last)
	}
}
