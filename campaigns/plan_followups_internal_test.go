package campaigns

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// loadFollowups loads a campaign over a.csv (rows: its lines after the header) whose on_reply
// rules are rules (YAML list items).
func loadFollowups(t *testing.T, csv string, rules ...string) *Definition {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	src := "id: promo\ntemplate: {name: promo, language: en}\naudience: {file: a.csv}\non_reply:\n" + strings.Join(rules, "")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// heavyRule is a rule whose follow-up reads column a in more template parts than the check
// renders with every row (6 parameters of some 400 parts each).
func heavyRule(keyword string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - keyword: %s\n    template: {name: fu}\n    parameters:\n", keyword)
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&b, "      body_%d: %q\n", i, strings.Repeat("{{ .a }}", 100))
	}
	return b.String()
}

// The follow-ups rendered with every row have at most maxFollowupRowNodes parts together: a
// rule past it is rendered with the first recipient's row only, so a row's check does a
// bounded amount of work whatever the file holds.
func TestFollowupCheckBoundsRowWork(t *testing.T) {
	t.Parallel()
	light := "  - keyword: light\n    template: {name: fu}\n    parameters: {body_1: \"{{ .a }}\"}\n"
	d := loadFollowups(t, "phone,a\n+14155552671,x\n", light, heavyRule("heavy"), heavyRule("heavy2"), strings.Replace(light, "light", "light2", 1))
	fc := newFollowupCheck(d)
	if fc == nil || len(fc.rules) != 4 {
		t.Fatalf("check %+v, want 4 rules", fc)
	}
	if !fc.rules[0].perRow || !fc.rules[1].once || !fc.rules[2].once || !fc.rules[3].perRow {
		t.Errorf("per row %v %v %v %v, once %v %v %v %v; want the light rules per row, the heavy ones once",
			fc.rules[0].perRow, fc.rules[1].perRow, fc.rules[2].perRow, fc.rules[3].perRow,
			fc.rules[0].once, fc.rules[1].once, fc.rules[2].once, fc.rules[3].once)
	}
	if fc.rowNodes > maxFollowupRowNodes || fc.rules[1].nodes <= maxFollowupRowNodes/2 {
		t.Errorf("row nodes %d (at most %d), heavy rule %d nodes", fc.rowNodes, maxFollowupRowNodes, fc.rules[1].nodes)
	}
	// A row renders the rules within the bound only; a row of empty columns, or of the same
	// columns as the row before, none.
	w := fc.rows()
	for i, c := range []struct {
		a       string
		fails   uint64
		renders int
	}{{"", 1 | 1<<3, 0}, {"x", 0, 2}, {"x", 0, 2}, {"", 1 | 1<<3, 2}, {"x", 0, 2}, {"y", 0, 4}} {
		if fails := w.check(map[string]string{"a": c.a}); fails != c.fails || w.renders != c.renders {
			t.Errorf("check %d of a %q: fails %b, %d renders in all; want %b, %d", i, c.a, fails, w.renders, c.fails, c.renders)
		}
	}
	// Rendered with the first recipient's only: a later failing row is not seen, and the
	// plan says the rule was not rendered with every row.
	d = loadFollowups(t, "phone,a\n+14155552671,x\n+14155552672,\n+14155552673,\n", light, heavyRule("heavy"))
	rep, err := Plan(d, "", PlanOptions{Samples: -1, CheckFollowups: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.FollowupProblems; len(p) != 1 || p[0].Rule != "r1" || p[0].Failing != 2 || p[0].Recipients != 3 || p[0].FirstRowOnly {
		t.Errorf("follow-up problems %+v; want r1 failing for 2 of 3", p)
	}
	if !strings.Contains(rep.FollowupNote, "rule r2: rendered with the first recipient's row only") {
		t.Errorf("note %q", rep.FollowupNote)
	}
	// validate --rows says it too.
	if v := Validate(d.Path, ValidateOptions{Rows: true}); !slices.ContainsFunc(v.Notes, func(n string) bool {
		return strings.Contains(n, "rule r2: rendered with the first recipient's row only")
	}) {
		t.Errorf("validate --rows notes %q, want the follow-up note", v.Notes)
	}
	// The first recipient's row fails: a problem, of that row only.
	d = loadFollowups(t, "phone,a\n+14155552671,\n+14155552672,x\n", heavyRule("heavy"))
	rep, err = Plan(d, "", PlanOptions{Samples: -1, CheckFollowups: true})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.FollowupProblems
	if len(p) != 1 || !p[0].FirstRowOnly || p[0].Failing != 1 || p[0].Recipients != 1 || len(p[0].Examples) != 1 || p[0].Examples[0].Row != 1 {
		t.Fatalf("follow-up problems %+v; want r1 failing for the first recipient", p)
	}
	if err := rep.FollowupProblem(); err == nil || !strings.Contains(err.Error(), "would not render for the first recipient") {
		t.Errorf("problem %v", err)
	}
	if WithoutRows(p, []int32{1}, 1) != nil {
		t.Errorf("without the first row: still a problem")
	}
}

// The tally keeps a bit a row for a failing rule, not the row's number or its error, and
// renders again only the rows it gives as examples.
func TestFollowupTallyKeepsABitARow(t *testing.T) { // not parallel: AllocsPerRun
	var rules []string
	for i := range MaxReplyRules {
		rules = append(rules, fmt.Sprintf("  - keyword: k%d\n    template: {name: fu}\n    parameters: {body_1: \"{{ slice .a 0 1 }}\"}\n", i))
	}
	d := loadFollowups(t, "phone,a\n+14155552671,\n", rules...)
	fc := newFollowupCheck(d)
	cols := map[string]string{"a": ""}
	fails := fc.rows().check(cols)
	if fails != 1<<MaxReplyRules-1 {
		t.Fatalf("fails %b, want every rule", fails)
	}
	tally := newFollowupTally(fc, 3)
	const rows = 100_000
	n := 0
	add := func() {
		n++
		tally.add(Row{N: n, Line: n + 1, Cols: cols}, fails)
	}
	for range rows / 2 {
		add()
	}
	// Adding a row allocates only as the bits grow (a word a 64 rows a rule, doubling).
	if a := testing.AllocsPerRun(rows/2, add); a > 0.1 {
		t.Errorf("%.2f allocations a row", a)
	}
	if tally.w.renders != MaxReplyRules*3 {
		t.Errorf("%d renders by the tally, want %d (the examples)", tally.w.renders, MaxReplyRules*3)
	}
	probs := tally.problems(n)
	if len(probs) != MaxReplyRules {
		t.Fatalf("%d problems", len(probs))
	}
	for _, p := range probs {
		if p.Failing != n || p.Recipients != n || len(p.Examples) != 3 || p.Examples[2].Row != 3 ||
			!strings.Contains(p.Examples[0].Detail, "slice") {
			t.Fatalf("problem %+v", p)
		}
		if words := cap(p.rows.words); words > 2*(n/64+1) {
			t.Fatalf("%d words for %d rows", words, n)
		}
	}
}

// WithoutRows takes the gone rows out of a problem's failing rows and counts them again,
// leaving the problems it was given as they were.
func TestWithoutRowsBits(t *testing.T) {
	t.Parallel()
	var s rowSet
	for _, r := range []int{130, 1, 5, 64, 5} {
		s.add(r)
	}
	if s.n != 4 || !s.has(64) || s.has(63) || s.has(1000) {
		t.Fatalf("set %+v", s)
	}
	in := []FollowupProblem{
		{Rule: "a", Failing: 4, Recipients: 10, rows: s, Examples: []SkippedRow{{Row: 1}, {Row: 5}, {Row: 64}}},
		{Rule: "b", Failing: 1, Recipients: 10, rows: rowSet{words: []uint64{1 << 5}, n: 1}, Examples: []SkippedRow{{Row: 5}}},
	}
	out := WithoutRows(in, []int32{0, 5, 5, 64, 200, 1 << 30}, 6)
	if len(out) != 1 || out[0].Rule != "a" || out[0].Failing != 2 || out[0].Recipients != 6 || len(out[0].Examples) != 1 ||
		out[0].Examples[0].Row != 1 || !out[0].rows.has(130) || out[0].rows.has(5) {
		t.Errorf("WithoutRows: %+v", out)
	}
	if in[0].Failing != 4 || in[0].rows.n != 4 || !in[0].rows.has(5) || !in[1].rows.has(5) {
		t.Errorf("WithoutRows changed its input: %+v", in)
	}
}
