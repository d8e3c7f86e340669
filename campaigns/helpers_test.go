package campaigns_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func wantEqual[T any](tb testing.TB, what string, want, got T) {
	tb.Helper()
	if !reflect.DeepEqual(want, got) {
		tb.Fatalf("%s mismatch (-want +got):\n- %#v\n+ %#v", what, want, got)
	}
}

func wantErrContains(tb testing.TB, err error, subs ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("error = nil, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			tb.Fatalf("error = %q, want it to contain %q", err, s)
		}
	}
}

func wantErrIs(tb testing.TB, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("error = %v, want one wrapping %v", err, target)
	}
}
