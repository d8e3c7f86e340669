package campaigns_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// TestOnReplyHiddenRules: a rule after one with any: true, and a button, row or keyword value
// an earlier rule always matches first, never match: validation reports each at its place. A
// suppress: true rule behind a rule without suppress is not reported (an opt-out still
// reaches it), nor a value only partly covered.
func TestOnReplyHiddenRules(t *testing.T) {
	t.Parallel()
	_, err := campaigns.Parse("c.yaml", []byte(onReplyHead+`on_reply:
  - name: yes
    button: ["Yes", Later]
    message: {text: "Here"}
  - name: again
    button: [" yes ", Other]
    message: {text: "Again"}
  - name: rows
    list_row: size_m
    message: {text: "M"}
  - name: rows2
    list_row: [" size_m"]
    message: {text: "M2"}
  - name: price
    keyword: price
    message: {text: "Price"}
  - name: price2
    keyword: ["Price please", pricey]
    message: {text: "Price2"}
  - name: thanks
    any: true
    message: {text: "Thanks"}
  - name: unsubscribe
    button: Unsubscribe
    suppress: true
    message: {text: "Bye"}
  - name: never
    keyword: hello
    message: {text: "Hi"}
`))
	want := []string{
		`c.yaml:9:14: on_reply[1].button: value 0 " yes " never matches: rule yes (on_reply[0]) before it matches "Yes" first`,
		`c.yaml:15:16: on_reply[3].list_row: value 0 " size_m" never matches: rule rows (on_reply[2])`,
		`c.yaml:21:15: on_reply[5].keyword: value 0 "Price please" never matches: rule price (on_reply[4])`,
		`c.yaml:30:5: on_reply[8]: never matches: rule thanks (on_reply[6]) before it has any: true`,
	}
	if err == nil {
		t.Fatal("Parse: no error, want the hidden rules reported")
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("errors:\n%s\nwant %d", err, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("error %d = %q, want it to start %q", i, got[i], w)
		}
	}
}

// A hostile file of thousands of keywords a rule (each over the bound of MaxReplyValues, an
// error of its own) is not compared value by value with every earlier rule's: the comparison
// is quadratic, and 30,000 keywords in two rules took validate minutes.
func TestOnReplyHiddenRulesBounded(t *testing.T) {
	kw := func(prefix string) string {
		vals := make([]string, 3000)
		for i := range vals {
			vals[i] = prefix + strconv.Itoa(i)
		}
		return strings.Join(vals, ", ")
	}
	file := []byte(onReplyHead + "on_reply:\n  - keyword: [" + kw("a") + "]\n    none: true\n  - keyword: [" + kw("b") + "]\n    none: true\n")
	var err error
	allocs := testing.AllocsPerRun(1, func() { _, err = campaigns.Parse("c.yaml", file) })
	if err == nil || !strings.Contains(err.Error(), "3000 values: at most 20") {
		t.Fatalf("error %v, want the values over the bound refused", err)
	}
	// Reading the file costs tens of thousands; comparing every value with every earlier
	// rule's costs two slices a comparison, nine million comparisons.
	if allocs > 1_000_000 {
		t.Errorf("validating 2 rules of 3,000 keywords took %.0f allocations, want the comparison bounded", allocs)
	}
}

// The hidden-rule check reads each value's keyword words once: 32 rules of 20 long
// keywords compared pairwise normalised each value again for every pair (7 s of validate
// on a 280 KB file of Greek words with combining accents).
func TestOnReplyHiddenRulesReadWordsOnce(t *testing.T) {
	greek := []rune("ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ")
	var b strings.Builder
	b.WriteString(onReplyHead + "on_reply:\n")
	for i := range campaigns.MaxReplyRules {
		vals := make([]string, campaigns.MaxReplyValues)
		for j := range vals {
			words := make([]string, 20)
			for k := range words {
				words[k] = string([]rune{greek[i%24], greek[j%24], greek[k%24]}) + "e\u0301" + strconv.Itoa(i*1000+j)
			}
			vals[j] = `"` + strings.Join(words, " ") + `"`
		}
		b.WriteString("  - keyword: [" + strings.Join(vals, ", ") + "]\n    none: true\n")
	}
	file := []byte(b.String())
	var err error
	allocs := testing.AllocsPerRun(1, func() { _, err = campaigns.Parse("c.yaml", file) })
	if err != nil {
		t.Fatalf("valid rules refused: %v", err)
	}
	if allocs > 400_000 {
		t.Errorf("validating 32 rules of 20 keywords took %.0f allocations, want each value's words read once", allocs)
	}
}

// OptOutOnly returns the suppress: true rules only an opt-out reaches: behind a rule without
// suppress that has any: true, or whose every value such a rule matches first; not one with
// any: true of its own, one partly covered, nor one before the rule without suppress.
func TestOnReplyOptOutOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, rules string
		want        string // "rule key before... any" of each returned, joined by ";"
	}{
		{"BehindAny", "  - {name: a, any: true, none: true}\n  - {name: b, keyword: x, suppress: true, none: true}\n", "b keyword a any"},
		{"AnyOfItsOwn", "  - {name: a, any: true, none: true}\n  - {name: b, any: true, suppress: true, none: true}\n", ""},
		{"Covered", "  - {name: a, button: [X, Y], none: true}\n  - {name: c, button: Z, none: true}\n" +
			"  - {name: b, button: [z, x], suppress: true, none: true}\n", "b button a c"},
		{"PartlyCovered", "  - {name: a, button: X, none: true}\n  - {name: b, button: [x, w], suppress: true, none: true}\n", ""},
		{"Before", "  - {name: b, keyword: x, suppress: true, none: true}\n  - {name: a, any: true, none: true}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := campaigns.Parse("c.yaml", []byte(onReplyHead+"on_reply:\n"+tc.rules))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range d.OnReply.OptOutOnly() {
				s := o.Rule.ID() + " " + o.Key
				for _, e := range o.Before {
					s += " " + e.ID()
				}
				if o.Any {
					s += " any"
				}
				got = append(got, s)
			}
			if g := strings.Join(got, ";"); g != tc.want {
				t.Errorf("OptOutOnly = %q, want %q", g, tc.want)
			}
		})
	}
}
