package luacheck

import (
	"slices"
	"strings"
	"testing"
)

// TestGoodLayout: a package laid out by the rules (a prelude, a script in a var block) has no
// problem.
func TestGoodLayout(t *testing.T) {
	if ps := problems("testdata/good", "luaLib", []string{"oneCmd", "twoCmd"}); len(ps) > 0 {
		t.Fatalf("problems in a good layout: %q", ps)
	}
	// The list of scripts must be the package's: one missing is a problem.
	ps := problems("testdata/good", "luaLib", []string{"oneCmd"})
	if len(ps) != 1 || !strings.Contains(ps[0], "the test lists [oneCmd]") {
		t.Fatalf("a script missing from the list: %q", ps)
	}
	// Without the prelude named, lib.lua counts as a script file: oneCmd is built from two,
	// and lib.lua documents neither KEYS nor a reply.
	if ps := problems("testdata/good", "", []string{"oneCmd", "twoCmd"}); len(ps) != 3 {
		t.Fatalf("no prelude named: %d problems %q, want 3", len(ps), ps)
	}
}

// TestBadLayout: each way a package breaks the rules is reported.
func TestBadLayout(t *testing.T) {
	ps := problems("testdata/bad", "luaLib", []string{"inlineCmd", "noContractCmd", "quoteCmd"})
	for _, want := range []string{
		"scripts written as Go string literals, not lua/*.lua files: [inlineCmd]",
		"inlineCmd is built from 0 script files",
		"lua/orphan.lua is embedded by 0 variables",
		"lua/orphan.lua does not open with \"-- orphan.lua: \"",
		"lua/orphan.lua: the comment at its top does not document KEYS[1]",
		"lua/orphan.lua: the comment at its top does not document Returns",
		"scripts.lua is embedded but is not a lua/*.lua file",
		"the prelude luaLib is not an embedded lua/*.lua file",
		"quoteCmd is built from 2 script files",
		"noContractLua (lua/nocontract.lua) is used by 2 scripts",
		"elsewhereLua (scripts.lua) is used by 0 scripts",
		"lua/nocontract.lua: the comment at its top does not document KEYS[1]",
		"lua/nocontract.lua: the comment at its top does not document Returns",
		"lua/quote.lua holds a typographic quote",
		"the test lists [inlineCmd noContractCmd quoteCmd]",
	} {
		found := false
		for _, p := range ps {
			found = found || strings.Contains(p, want)
		}
		if !found {
			t.Errorf("no problem says %q; problems:\n%s", want, strings.Join(ps, "\n"))
		}
	}
	if len(ps) != 15 {
		t.Errorf("%d problems, want 15:\n%s", len(ps), strings.Join(ps, "\n"))
	}
}

// TestCoverage: every listed script needs a case, and a case must play a listed script.
func TestCoverage(t *testing.T) {
	cases := []Case{{Script: "oneCmd", Name: "a"}, {Script: "oneCmd", Name: "b"}, {Script: "typoCmd", Name: "c"}}
	ps := coverage([]string{"oneCmd", "twoCmd"}, cases)
	want := []string{`case "c" plays typoCmd, which is not one of the scripts [oneCmd twoCmd]`, "script twoCmd has no case"}
	if !slices.Equal(ps, want) {
		t.Fatalf("coverage = %q, want %q", ps, want)
	}
	if ps := coverage([]string{"oneCmd"}, cases[:2]); len(ps) > 0 {
		t.Fatalf("covered scripts: %q", ps)
	}
}

// TestCaseID: a case's id is fresh each time and holds only letters, digits and dashes, so it
// is safe in a hash tag and a KEYS pattern.
func TestCaseID(t *testing.T) {
	c := Case{Script: "requeueCmd", Name: "stale lease {moved} *back*"}
	a, b := caseID(c), caseID(c)
	if a == b {
		t.Fatalf("two ids alike: %s", a)
	}
	if !strings.HasPrefix(a, "luacase-requeuecmd-stale-lease--moved---back--") {
		t.Fatalf("id %s does not start with the case's names", a)
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			t.Fatalf("id %s holds %q", a, r)
		}
	}
}
