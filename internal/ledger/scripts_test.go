package ledger

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// allScripts is every Lua script of the ledger, by its Go variable. TestScriptFiles checks that
// it names exactly the package's redis.NewScript variables.
var allScripts = map[string]*redis.Script{
	"planCmd":           planCmd,
	"queuedCmd":         queuedCmd,
	"expandedCmd":       expandedCmd,
	"claimCmd":          claimCmd,
	"finishCmd":         finishCmd,
	"pauseCmd":          pauseCmd,
	"skipCmd":           skipCmd,
	"createRunCmd":      createRunCmd,
	"resumeCmd":         resumeCmd,
	"cancelCmd":         cancelCmd,
	"sweepCancelledCmd": sweepCancelledCmd,
	"deliveryCmd":       deliveryCmd,
	"resendLeaseCmd":    resendLeaseCmd,
	"resendReleaseCmd":  resendReleaseCmd,
	"resendDoneCmd":     resendDoneCmd,
	"replyCmd":          replyCmd,
	"followupCmd":       followupCmd,
	"onceCampaignCmd":   onceCampaignCmd,
	"followupForgetCmd": followupForgetCmd,
}

// libVar is the prelude that scripts may put before their own file; it is no script itself.
const libVar = "luaLib"

// scriptSources reads the package's non-test Go files and returns the //go:embed variables
// (variable -> file under the package) and, for each redis.NewScript variable, the
// identifiers its text is built from. A script given as a Go string literal is reported in
// literals.
func scriptSources(t *testing.T) (embeds map[string]string, scripts map[string][]string, literals []string) {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	embeds, scripts = map[string]string{}, map[string][]string{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				doc := vs.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				if doc != nil {
					for _, c := range doc.List {
						if file, ok := strings.CutPrefix(c.Text, "//go:embed "); ok {
							for _, n := range vs.Names {
								embeds[n.Name] = strings.TrimSpace(file)
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
					var ids []string
					ast.Inspect(call.Args[0], func(n ast.Node) bool {
						switch n := n.(type) {
						case *ast.Ident:
							ids = append(ids, n.Name)
						case *ast.BasicLit:
							literals = append(literals, vs.Names[i].Name)
						}
						return true
					})
					scripts[vs.Names[i].Name] = ids
				}
			}
		}
	}
	return embeds, scripts, literals
}

// TestScriptFiles pins the layout of the ledger's Lua: every script is one lua/*.lua file,
// embedded, used by exactly one script variable (luaLib's prelude aside), with its contract
// at its top; no file in lua/ is left unused and no script is written inline in Go.
func TestScriptFiles(t *testing.T) {
	embeds, scripts, literals := scriptSources(t)
	if len(literals) > 0 {
		t.Errorf("scripts written as Go string literals, not lua/*.lua files: %v", literals)
	}

	onDisk, err := filepath.Glob("lua/*.lua")
	if err != nil {
		t.Fatal(err)
	}
	embeddedBy := map[string][]string{}
	for v, file := range embeds {
		embeddedBy[file] = append(embeddedBy[file], v)
	}
	for _, file := range onDisk {
		if vs := embeddedBy[file]; len(vs) != 1 {
			t.Errorf("%s is embedded by %d variables %v, want 1", file, len(vs), vs)
		}
	}
	for file := range embeddedBy {
		if !slices.Contains(onDisk, file) {
			t.Errorf("%s is embedded but is not a lua/*.lua file", file)
		}
	}
	if embeds[libVar] != "lua/lib.lua" {
		t.Errorf("%s embeds %q, want lua/lib.lua", libVar, embeds[libVar])
	}

	usedBy := map[string][]string{}
	for s, ids := range scripts {
		var own []string
		for _, id := range ids {
			if _, ok := embeds[id]; ok && id != libVar {
				own = append(own, id)
			}
		}
		if len(own) != 1 {
			t.Errorf("%s is built from %d script files %v, want exactly 1", s, len(own), own)
		}
		for _, v := range own {
			usedBy[v] = append(usedBy[v], s)
		}
	}
	for v, file := range embeds {
		if v == libVar {
			continue
		}
		if len(usedBy[v]) != 1 {
			t.Errorf("%s (%s) is used by %d scripts %v, want exactly 1", v, file, len(usedBy[v]), usedBy[v])
		}
	}

	var declared, listed []string
	for s := range scripts {
		declared = append(declared, s)
	}
	for s := range allScripts {
		listed = append(listed, s)
	}
	slices.Sort(declared)
	slices.Sort(listed)
	if !slices.Equal(declared, listed) {
		t.Errorf("redis.NewScript variables %v, allScripts lists %v", declared, listed)
	}

	for _, file := range onDisk {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		base := filepath.Base(file)
		if !strings.HasPrefix(text, "-- "+base+": ") {
			t.Errorf("%s does not open with %q", file, "-- "+base+": ")
		}
		if base == "lib.lua" {
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
				t.Errorf("%s: the comment at its top does not document %s", file, want)
			}
		}
		if strings.ContainsRune(text, '\u201d') {
			t.Errorf("%s holds a typographic quote (”): write '' in Lua", file)
		}
	}
}

// TestScriptsLoad loads every script with SCRIPT LOAD, which compiles it: on miniredis always,
// and on real Redis when HERALD_TEST_REDIS is set. The SHA Redis answers must be the one
// go-redis runs the script by, and a script that does not compile must be refused.
func TestScriptsLoad(t *testing.T) {
	load := func(t *testing.T, rdb *redis.Client) {
		t.Helper()
		ctx := context.Background()
		for name, s := range allScripts {
			sha, err := s.Load(ctx, rdb).Result()
			if err != nil {
				t.Errorf("%s: SCRIPT LOAD: %v", name, err)
				continue
			}
			if sha != s.Hash() {
				t.Errorf("%s: SCRIPT LOAD answered %s, want %s", name, sha, s.Hash())
			}
		}
		// The check can fail: a script that does not compile is refused.
		if err := redis.NewScript(luaLib+"local x = (\n").Load(ctx, rdb).Err(); err == nil {
			t.Error("SCRIPT LOAD accepted a script with a syntax error")
		}
	}
	t.Run("Miniredis", func(t *testing.T) { load(t, setup(t).rdb) })
	t.Run("RealRedis", func(t *testing.T) { load(t, realRedis(t).rdb) })
}
