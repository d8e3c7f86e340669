package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A --faults file with a bad rule is refused before the fake listens, and the error names the
// rule by its place in the list and its line and column in the file.
func TestFakeConnectlyFaultsFileNamesTheBadRule(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "faults.json")
	rules := "[\n  {\"percent\": 1, \"salt\": \"a\", \"status\": 503},\n  {\"percent\": 2, \"salt\": \"b\"},\n" +
		"  {\"percent\": 3, \"salt\": \"c\",\n   \"bogus\": true}\n]\n"
	if err := os.WriteFile(file, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	// Were the file taken, the fake would serve until the context ends: the deadline ends a
	// failing test.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"fake-connectly", "--listen", "127.0.0.1:0", "--business-id", "b1", "--api-key", "k", "--faults", file},
		func(string) string { return "" }, &stdout, &stderr)
	out, errOut := stdout.String(), stderr.String()
	want := "--faults " + file + `: rules[2]: line 5, column 4: unknown field "bogus"`
	if code != exitError || !strings.Contains(errOut, want) || strings.Contains(out, "listening") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, exitError, want)
	}
}
