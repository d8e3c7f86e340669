package campaigns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestReadAheadIsBoundedByBytes streams an audience of long rows without consuming it: the
// reader stops once the rows read ahead hold the flight's bytes, long before the 1,024 rows
// of a batch, and goes on as the consumer releases them.
func TestReadAheadIsBoundedByBytes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const rows = 400
	var b strings.Builder
	b.WriteString("phone,note\n")
	for i := range rows {
		fmt.Fprintf(&b, "+1201555%04d,%s\n", i, strings.Repeat("n", 4000))
	}
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Definition{Path: filepath.Join(dir, "c.yaml"), Audience: Audience{File: "a.csv", Phone: "phone"},
		Parameters: Parameters{Values: map[string]string{"body_1": "{{ slice .note 0 9 }}"}}}
	r, err := NewRenderer(d)
	if err != nil {
		t.Fatal(err)
	}
	ar, err := OpenAudience(d)
	if err != nil {
		t.Fatal(err)
	}
	defer ar.Close()
	done := make(chan struct{})
	defer close(done)
	const max = 64 << 10
	batches := resolveWithin(ar, r, done, max)
	first := <-batches
	if first.err != nil {
		t.Fatal(first.err)
	}
	// The reader waits for bytes once the first batches hold the flight's 64 KiB.
	deadline := time.Now().Add(10 * time.Second)
	for {
		first.flight.mu.Lock()
		waits := first.flight.waits
		first.flight.mu.Unlock()
		if waits > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reader never waited: %d rows read", ar.n)
		}
		runtime.Gosched()
	}
	// A row holds a 4,000-byte note: 64 KiB is 16 of them, and the reader may pass the
	// bound by a batch.
	if ar.n > 2*(max/4000+1) {
		t.Fatalf("%d rows read ahead, want at most %d", ar.n, 2*(max/4000+1))
	}
	n := len(first.items)
	first.release()
	for b := range batches {
		if b.err != nil {
			t.Fatal(b.err)
		}
		if b.items[0].row.N != n+1 {
			t.Fatalf("batch starts at row %d, want %d", b.items[0].row.N, n+1)
		}
		n += len(b.items)
		b.release()
	}
	if n != rows {
		t.Fatalf("%d rows, want %d", n, rows)
	}
}
