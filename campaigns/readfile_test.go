//go:build unix

package campaigns

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadFileRefusesWhatIsNoCampaignFile: a campaign file is read as an audience is opened.
// Before, it was read with os.ReadFile: a named pipe put in its place blocked the reader (a
// worker or receiver reading a run's file again, run retry, campaign validate) and a link to
// /dev/zero ran it out of memory.
func TestReadFileRefusesWhatIsNoCampaignFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(good, []byte("id: c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(good); err != nil || string(data) != "id: c\n" {
		t.Fatalf("ReadFile(regular) = %q, %v", data, err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	if _, err := ReadFile(fifo); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadFile(named pipe) = %v, want ErrNotRegular", err)
	}
	zero := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(zero); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadFile(link to /dev/zero) = %v, want ErrNotRegular", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxCampaignFileBytes)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(big); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), big) {
		t.Errorf("ReadFile(%d bytes) = %v, want ErrTooLarge naming the file", MaxCampaignFileBytes+3, err)
	}
	if _, err := Load(fifo); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Load(named pipe) = %v, want ErrNotRegular", err)
	}
}
