package layers

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/heraldmsg/herald/"

// rank orders Herald's top-level packages: a package may import only packages of a lower
// rank (and internal/ ones, rank 0). Packages of one rank do not import each other.
var rank = map[string]int{
	"internal":     0,
	"campaigns":    1,
	"expand":       2,
	"worker":       2,
	"conversation": 2,
	"tasks":        2, // queue administration: decodes campaigns' payloads, marks the ledger
	"scheduler":    3,
	"serve":        4, // a process's parts: worker, scheduler, expansion, webhooks
	"bench":        5,
	"demo":         5, // the embedded demo, a process of serve's parts
	"cmd":          6,
}

// top is the first element of a path inside the module: "internal", "campaigns", ...
func top(rel string) string {
	first, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return first
}

// TestImportsPointDown reads every non-test Go file of the module and checks that no package
// imports one of its own rank or above: internal/* imports no top-level package, campaigns
// imports only internal/, and so on. A new top-level folder must be given a rank here.
func TestImportsPointDown(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		from := top(rel)
		fromRank, ok := rank[from]
		if !ok {
			t.Errorf("%s: top-level folder %q has no rank in this test", rel, from)
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			inner, ok := strings.CutPrefix(p, module)
			if !ok {
				continue
			}
			to := top(inner)
			if to == from {
				if from == "internal" || from == "bench" || from == "cmd" {
					continue // within internal/, bench/ or cmd/: packages of one layer
				}
				continue // the same package or a subpackage of it
			}
			if toRank, ok := rank[to]; !ok || toRank >= fromRank {
				t.Errorf("%s imports %s: %s (rank %d) may import only lower layers, %s has rank %d",
					rel, p, from, fromRank, to, rank[to])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("read only %d Go files from %s: the walk did not find the module", files, root)
	}
}
