// Package golden compares test output with golden files under testdata/. It is imported by
// tests only: importing it registers the -update flag, which rewrites the files with what the
// code produces now.
package golden

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with what the code produces now")

// Updating reports whether the test binary runs with -update.
func Updating() bool { return *update }

// Check compares got with the golden file at path; with -update it rewrites the file.
func Check(tb testing.TB, path string, got []byte) {
	tb.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(want, got) {
		tb.Errorf("output differs from %s (run with -update if the change is intended)\n--- want\n%s\n+++ got\n%s", path, want, got)
	}
}
