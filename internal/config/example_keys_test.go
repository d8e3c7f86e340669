package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The example file is what operators copy: every key it shows, written or commented out, must
// load, and every key the loader takes must be shown in it.

var examplePath = filepath.Join("..", "..", "configs", "herald.example.yaml")

// exampleEnv gives the secrets from the environment, as a deployment would.
func exampleEnv(k string) string {
	return map[string]string{"CONNECTLY_API_KEY": "example-key", "CONNECTLY_WEBHOOK_SECRET": "example-secret"}[k]
}

func readExample(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(data), "\n")
}

// commentRE reads a comment line: its indentation and its text after "# ".
var commentRE = regexp.MustCompile(`^(\s*)# ?(.*)$`)

// keyLineRE reads a YAML line that starts with a key: its indentation, a list item's dash, the key.
var keyLineRE = regexp.MustCompile(`^(\s*)(- )?([A-Za-z0-9_]+):(?:\s|$)`)

// keyNameRE is what a key looks like, as opposed to a word of prose before a colon: a
// lower-case config key, or an upper-case answer code of the errors: section.
var keyNameRE = regexp.MustCompile(`^(?:[a-z][a-z0-9_]*|[A-Z][A-Z0-9_]*)$`)

// exampleLine is a line of the example read as YAML: its key and indentation (a list item's
// dash counted), uncommented when it is a commented-out key line. ok is false for any other line.
type exampleLine struct {
	key       string
	indent    int
	commented bool
	comment   string // the comment's own indentation, for a commented line
	text      string // the line uncommented
	ok        bool
}

func readLine(line string) exampleLine {
	l := exampleLine{text: line}
	if m := commentRE.FindStringSubmatch(line); m != nil {
		l.commented, l.comment, l.text = true, m[1], m[1]+m[2]
	}
	m := keyLineRE.FindStringSubmatch(l.text)
	if m == nil || !keyNameRE.MatchString(m[3]) {
		return l
	}
	l.key, l.indent, l.ok = m[3], len(m[1])+len(m[2]), true
	return l
}

// exampleKeys lists the dotted path of every key the example shows, written or commented out.
func exampleKeys(lines []string) []string {
	type level struct {
		indent int
		key    string
	}
	var stack []level
	var out []string
	for _, line := range lines {
		l := readLine(line)
		if !l.ok {
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= l.indent {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, level{l.indent, l.key})
		var path []string
		for _, s := range stack {
			path = append(path, s.key)
		}
		out = append(out, strings.Join(path, "."))
	}
	return out
}

// loaderKeys lists the dotted path of every key Load takes, "*" standing for a map's key (an
// error code, a template category, a language) and a list's items named as the list.
func loaderKeys() []string {
	var out []string
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		t = sectionType(t)
		switch t.Kind() {
		case reflect.Struct:
			for name, ft := range yamlFields(t) {
				p := name
				if path != "" {
					p = path + "." + name
				}
				out = append(out, p)
				walk(ft, p)
			}
		case reflect.Map:
			walk(t.Elem(), path+".*")
		case reflect.Slice:
			walk(t.Elem(), path)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	slices.Sort(out)
	return out
}

// notShown are keys the example need not show: older spellings that still load (the header
// says so) and a key that is only read to be refused.
var notShown = map[string]bool{
	"scheduler.window":         true,
	"scheduler.min_window":     true,
	"scheduler.max_window":     true,
	"limits.adaptive.off":      true,
	"limits.adaptive.cooldown": true,
}

func TestExampleShowsEveryKey(t *testing.T) {
	t.Parallel()
	shown := exampleKeys(readExample(t))
	keys := loaderKeys()
	if len(keys) < 50 {
		t.Fatalf("found only %d keys in Config: %v", len(keys), keys)
	}
	for old := range notShown {
		if !slices.Contains(keys, old) {
			t.Errorf("notShown lists %s, which Load no longer takes", old)
		}
	}
	for _, key := range keys {
		if notShown[key] {
			continue
		}
		re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(key), `\*`, `[^.]+`) + "$")
		if !slices.ContainsFunc(shown, re.MatchString) {
			t.Errorf("%s is not shown in %s, written or commented out", key, examplePath)
		}
	}
}

// exampleBlock is a commented-out key in the example with the commented lines under it (a
// section such as frequency_caps): lines first to last, uncommented.
type exampleBlock struct {
	key         string
	first, last int
}

// commentedBlocks finds the example's commented-out keys.
func commentedBlocks(lines []string) []exampleBlock {
	var out []exampleBlock
	for i := 0; i < len(lines); i++ {
		l := readLine(lines[i])
		if !l.ok || !l.commented {
			continue
		}
		b := exampleBlock{key: l.key, first: i, last: i}
		for j := i + 1; j < len(lines); j++ {
			n := readLine(lines[j])
			if !n.ok || !n.commented || n.comment != l.comment || n.indent <= l.indent {
				break
			}
			b.last = j
		}
		out = append(out, b)
		i = b.last
	}
	return out
}

// Each commented-out example, uncommented on its own where it stands, loads: no key the
// example suggests is unknown, misplaced or out of its range. A comment line that starts with
// a key and a colon (`# key: value`) is read as such an example, so prose in the file does not
// start that way.
func TestExampleCommentedKeysLoad(t *testing.T) {
	t.Parallel()
	lines := readExample(t)
	blocks := commentedBlocks(lines)
	if len(blocks) < 5 {
		t.Fatalf("found only %d commented-out keys in %s: %+v", len(blocks), examplePath, blocks)
	}
	base, err := Load(examplePath, exampleEnv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, b := range blocks {
		edited := slices.Clone(lines)
		for i := b.first; i <= b.last; i++ {
			edited[i] = readLine(lines[i]).text
		}
		path := filepath.Join(dir, "herald.yaml")
		if err := os.WriteFile(path, []byte(strings.Join(edited, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path, exampleEnv)
		if err != nil {
			t.Errorf("line %d (%s) uncommented: %v", b.first+1, b.key, err)
			continue
		}
		// A key that changed nothing was not read where it stands.
		if reflect.DeepEqual(c, base) && !slices.Contains(defaultExamples, b.key) {
			t.Errorf("line %d (%s) uncommented loads the same config as the example: is it in its section?", b.first+1, b.key)
		}
		t.Logf("line %d (%s): loads", b.first+1, b.key)
	}
}

// defaultExamples are commented-out keys that show their default.
var defaultExamples = []string{"retry_after_holds"}

// The example's values are the defaults, but for the senders it shows and the campaigns
// bounds it writes out (which Load keeps as 0, the campaigns package's defaults).
func TestExampleShowsDefaults(t *testing.T) {
	t.Parallel()
	ex, err := Load(examplePath, exampleEnv)
	if err != nil {
		t.Fatal(err)
	}
	def, err := Load("", exampleEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ex.Senders {
		if s.Rate != def.SenderRate(s.Number) {
			t.Errorf("sender %s rate %g, want the default %g", s.Number, s.Rate, def.SenderRate(s.Number))
		}
	}
	if ex.Suppression.SessionsNotMarketing() != def.Suppression.SessionsNotMarketing() {
		t.Errorf("suppression %+v differs from the default", ex.Suppression)
	}
	ex.Senders, ex.Campaigns, ex.Suppression = nil, Campaigns{}, Suppression{}
	def.Campaigns, def.Suppression = Campaigns{}, Suppression{}
	if !reflect.DeepEqual(ex, def) {
		t.Errorf("the example's values differ from the defaults:\n example %+v\n default %+v", ex, def)
	}
}
