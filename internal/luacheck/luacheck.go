// Package luacheck is the test support of a package's Redis scripts. Files checks that they
// follow Herald's layout: each script is one lua/<name>.lua file of the package, embedded
// (a go:embed string), with its KEYS/ARGV/reply contract in the comment at its top, and none
// is written as a Go string. RunCases plays the package's table of script cases on miniredis
// always, on real Redis when HERALD_TEST_REDIS is set and on a Redis Cluster when
// HERALD_TEST_REDIS_CLUSTER is set. Only _test.go files import it.
package luacheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Files checks the Lua layout of the package whose test calls it (a test runs in its
// package's folder): every redis.NewScript variable is built from exactly one embedded
// lua/*.lua file (the prelude aside) and from no Go string literal; every lua/*.lua file is
// embedded by one variable, used by one script; each opens with "-- <file name>: " and, the
// prelude's aside, documents KEYS[1] and its reply ("Returns") in the comment at its top.
//
// scripts must name exactly the package's redis.NewScript variables (so a table of the
// package's scripts cannot miss one). prelude names the variable of a lua/*.lua file that
// scripts may put before their own text, or is "" when there is none.
func Files(t testing.TB, prelude string, scripts []string) {
	t.Helper()
	for _, p := range problems(".", prelude, scripts) {
		t.Error(p)
	}
}

// sources is what the non-test Go files of a package say about its scripts.
type sources struct {
	// embeds maps each //go:embed variable to its file (relative to the package).
	embeds map[string]string
	// scripts maps each redis.NewScript variable to the identifiers its text is built from.
	scripts map[string][]string
	// literals lists the script variables whose text holds a Go literal.
	literals []string
}

// read parses the non-test Go files of the package in dir.
func read(dir string) (sources, error) {
	src := sources{embeds: map[string]string{}, scripts: map[string][]string{}}
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return src, err
	}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return src, err
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				src.add(gd, spec.(*ast.ValueSpec))
			}
		}
	}
	return src, nil
}

// add records one variable declaration: its //go:embed file, or the script it builds.
func (src *sources) add(gd *ast.GenDecl, vs *ast.ValueSpec) {
	doc := vs.Doc
	if doc == nil && len(gd.Specs) == 1 {
		doc = gd.Doc
	}
	if doc != nil {
		for _, c := range doc.List {
			if file, ok := strings.CutPrefix(c.Text, "//go:embed "); ok {
				for _, n := range vs.Names {
					src.embeds[n.Name] = strings.TrimSpace(file)
				}
			}
		}
	}
	for i, v := range vs.Values {
		call, ok := v.(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			continue
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "NewScript" {
			continue
		}
		name := vs.Names[i].Name
		var ids []string
		literal := false
		ast.Inspect(call.Args[0], func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Ident:
				ids = append(ids, n.Name)
			case *ast.BasicLit:
				literal = true
			}
			return true
		})
		if literal {
			src.literals = append(src.literals, name)
		}
		src.scripts[name] = ids
	}
}

// problems returns what is wrong with the Lua layout of the package in dir, one message each.
func problems(dir, prelude string, scripts []string) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	src, err := read(dir)
	if err != nil {
		return []string{err.Error()}
	}
	if len(src.literals) > 0 {
		slices.Sort(src.literals)
		bad("scripts written as Go string literals, not lua/*.lua files: %v", src.literals)
	}

	onDisk, err := filepath.Glob(filepath.Join(dir, "lua", "*.lua"))
	if err != nil {
		return []string{err.Error()}
	}
	for i, p := range onDisk {
		onDisk[i] = filepath.ToSlash(strings.TrimPrefix(p, filepath.Clean(dir)+string(filepath.Separator)))
	}
	embeddedBy := map[string][]string{}
	for v, file := range src.embeds {
		embeddedBy[file] = append(embeddedBy[file], v)
	}
	for _, file := range onDisk {
		if vs := embeddedBy[file]; len(vs) != 1 {
			bad("%s is embedded by %d variables %v, want 1", file, len(vs), vs)
		}
	}
	for file := range embeddedBy {
		if !slices.Contains(onDisk, file) {
			bad("%s is embedded but is not a lua/*.lua file", file)
		}
	}
	if prelude != "" && src.embeds[prelude] == "" {
		bad("the prelude %s is not an embedded lua/*.lua file", prelude)
	}

	usedBy := map[string][]string{}
	for s, ids := range src.scripts {
		var own []string
		for _, id := range ids {
			if _, ok := src.embeds[id]; ok && id != prelude {
				own = append(own, id)
			}
		}
		if len(own) != 1 {
			bad("%s is built from %d script files %v, want exactly 1", s, len(own), own)
		}
		for _, v := range own {
			usedBy[v] = append(usedBy[v], s)
		}
	}
	for v, file := range src.embeds {
		if v != prelude && len(usedBy[v]) != 1 {
			bad("%s (%s) is used by %d scripts %v, want exactly 1", v, file, len(usedBy[v]), usedBy[v])
		}
	}

	var declared []string
	for s := range src.scripts {
		declared = append(declared, s)
	}
	listed := slices.Clone(scripts)
	slices.Sort(declared)
	slices.Sort(listed)
	if !slices.Equal(declared, listed) {
		bad("redis.NewScript variables %v, the test lists %v", declared, listed)
	}

	for _, file := range onDisk {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return append(out, err.Error())
		}
		text := string(b)
		base := filepath.Base(file)
		if !strings.HasPrefix(text, "-- "+base+": ") {
			bad("%s does not open with %q", file, "-- "+base+": ")
		}
		if strings.ContainsRune(text, '\u201d') {
			bad("%s holds a typographic quote (\u201d): write '' in Lua", file)
		}
		if prelude != "" && file == src.embeds[prelude] {
			continue
		}
		var head strings.Builder
		for line := range strings.Lines(text) {
			if !strings.HasPrefix(line, "--") {
				break
			}
			head.WriteString(line)
		}
		for _, want := range []string{"KEYS[1]", "Returns"} {
			if !strings.Contains(head.String(), want) {
				bad("%s: the comment at its top does not document %s", file, want)
			}
		}
	}
	return out
}
