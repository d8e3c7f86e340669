//go:build unix

package campaigns

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadFileRefusesALinkOutOfTheRoot: with a campaigns root configured, a campaign file that
// is a symbolic link must lead inside it. Before, a link to a key file elsewhere was read, and
// its first 40 characters were quoted back in the problem ("got \\"sk_live_...\\"").
func TestReadFileRefusesALinkOutOfTheRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := filepath.Join(dir, "campaigns")
	secrets := filepath.Join(dir, "secrets")
	for _, d := range []string{root, secrets} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const secret = "sk_live_SUPERSECRETKEY_1234567890"
	if err := os.WriteFile(filepath.Join(secrets, "api_key"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "real.yaml"), []byte("id: c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "linked.yaml")
	if err := os.Symlink(filepath.Join("..", "secrets", "api_key"), out); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(root, "alias.yaml")
	if err := os.Symlink("real.yaml", in); err != nil {
		t.Fatal(err)
	}

	_, err := readFile(out, root)
	if !errors.Is(err, ErrOutsideRoot) || strings.Contains(err.Error(), "sk_live") {
		t.Errorf("readFile(link out of the root) = %v, want ErrOutsideRoot and nothing of the file", err)
	}
	if data, err := readFile(in, root); err != nil || string(data) != "id: c\n" {
		t.Errorf("readFile(link inside the root) = %q, %v", data, err)
	}
	if data, err := readFile(filepath.Join(root, "real.yaml"), root); err != nil || string(data) != "id: c\n" {
		t.Errorf("readFile(regular file) = %q, %v", data, err)
	}
	// Without a root, a link is followed, but what it leads to is not quoted back when it is
	// not a campaign mapping.
	data, err := readFile(out, "")
	if err != nil {
		t.Fatalf("readFile(link, no root) = %v", err)
	}
	if _, err := Parse(out, data); err == nil || strings.Contains(err.Error(), "sk_live") || !strings.Contains(err.Error(), "got a text") {
		t.Errorf("Parse(a key file) = %v, want a problem naming only its kind", err)
	}
}
