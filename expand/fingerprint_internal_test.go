package expand

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fingerprint sees a change of the size, the modification time, or the bytes of the
// first or last block; the same file, or the file put back as it was, passes.
func TestAudienceFingerprint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.csv")
	body := "phone,name\n" + strings.Repeat("+5511900000000,someone\n", 20000) // larger than two blocks
	write := func(s string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	mtime := time.Date(2026, 3, 20, 1, 0, 0, 0, time.UTC)
	write(body, mtime)
	fp, err := audienceFingerprint(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkAudience(path, fp.String()); err != nil {
		t.Fatalf("the same file: %v", err)
	}
	if err := checkAudience(path, ""); err != nil {
		t.Fatalf("no fingerprint recorded: %v", err)
	}
	for _, tc := range []struct {
		name, body string
		mtime      time.Time
		says       string
	}{
		{"Touched", body, mtime.Add(time.Second), "modified"},
		{"Longer", body + "+5511900000001,other\n", mtime, "bytes, was"},
		{"FirstBlock", strings.Replace(body, "someone", "someOne", 1), mtime, "other bytes"},
		{"LastBlock", body[:len(body)-8] + "someOne\n", mtime, "other bytes"},
	} {
		write(tc.body, tc.mtime)
		err := checkAudience(path, fp.String())
		if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v; want ErrAudienceChanged saying %q", tc.name, err, tc.says)
		}
	}
	write(body, mtime)
	if err := checkAudience(path, fp.String()); err != nil {
		t.Fatalf("the file put back as it was: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := checkAudience(path, fp.String()); err == nil || !Permanent(err) {
		t.Fatalf("file removed: %v; want an error that no retry cures", err)
	}
}

// A file held by a step is checked again as it is read: a rewrite in place shows in its size
// or modification time (checkStat, one fstat per batch); one that kept both (its time put
// back) shows in its bytes once the step reaches the end of the file (checkWhole). A file
// renamed over the held one leaves what the step reads as it was.
func TestHeldAudience(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.csv")
	body := "phone,name\n" + strings.Repeat("+5511900000000,someone\n", 100)
	mtime := time.Date(2026, 3, 20, 1, 0, 0, 0, time.UTC)
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(path, body)
	fp, err := audienceFingerprint(path)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := holdAudience(path, ""); h != nil || err != nil || h.checkStat() != nil || h.checkWhole() != nil {
		t.Fatalf("no fingerprint recorded: %v, %v", h, err)
	}
	h, err := holdAudience(path, fp.String())
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()

	// Rewritten in place: truncated, then written again with the same size and time.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.checkStat(); !errors.Is(err, ErrAudienceChanged) || !strings.Contains(err.Error(), "0 bytes") {
		t.Fatalf("truncated: %v", err)
	}
	write(path, strings.Replace(body, "someone", "someOne", 1))
	if err := h.checkStat(); err != nil {
		t.Fatalf("size and time as recorded: %v", err)
	}
	if err := h.checkWhole(); !errors.Is(err, ErrAudienceChanged) || !strings.Contains(err.Error(), "other bytes") {
		t.Fatalf("other bytes, same size and time: %v", err)
	}

	// Put back, then replaced by a rename: the held file is the one the step reads.
	write(path, body)
	next := filepath.Join(filepath.Dir(path), "next.csv")
	write(next, "phone,name\n+5511900000001,other\n")
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(h.checkStat(), h.checkWhole()); err != nil {
		t.Fatalf("the held file, after another was renamed over its name: %v", err)
	}
}

// BenchmarkAudienceFingerprint: what each expansion step pays to check its audience file,
// whatever the file's size (here 256 MiB).
func BenchmarkAudienceFingerprint(b *testing.B) {
	path := filepath.Join(b.TempDir(), "a.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 63) + "\n")
	chunk := []byte(strings.Repeat(string(line), 1<<14))
	for range 256 {
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	for b.Loop() {
		if _, err := audienceFingerprint(path); err != nil {
			b.Fatal(err)
		}
	}
}
