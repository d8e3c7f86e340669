package campaigns

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/heraldmsg/herald/internal/words"
)

// templateProblem words a problem of a template for the person who wrote it: a text that does
// not parse (Go's parser), one outside the sandbox (a *sandboxError) or a run that failed on a
// row (Execute's error). name is the name the template was compiled under, text its source.
// It is the one place these errors are worded; none of Go's "template: NAME:LINE:COL:" or
// "executing NAME at <...>" is left. Where Go gives the place, it is said as the action that
// holds it, as written, and its line and column in the text (1-based, in characters):
//
//	{{ index .name 5 }} at column 4 of the template: index 5 is out of range
//	{{ .a.b }} at line 2, column 6 of the template: cannot read field b of text
//
// Go's parser gives a line only: a text of one line is worded without it, one of several
// with "at line 2 of the template: ...".
func templateProblem(name, text string, err error) error {
	var se *sandboxError
	if errors.As(err, &se) {
		return errors.New(placeWords(text, int(se.pos)) + se.msg)
	}
	var ee template.ExecError
	if errors.As(err, &ee) {
		msg := strings.TrimPrefix(ee.Err.Error(), "template: "+name+":")
		if line, col, rest, ok := execParts(name, msg); ok {
			if off, ok := lineOffset(text, line, col); ok {
				return errors.New(placeWords(text, off) + execWords(rest))
			}
			return errors.New(execWords(rest))
		}
		return errors.New(execWords(strings.TrimSpace(msg)))
	}
	return errors.New(parseProblemWords(name, text, err.Error()))
}

// sandboxError is a node of a template outside the sandbox (sandboxCheck): its place in the
// text and what is not allowed. templateProblem words it.
type sandboxError struct {
	pos parse.Pos
	msg string
}

func (e *sandboxError) Error() string { return e.msg }

// execPlaceRE reads the place of an execution error, after "template: NAME:": the line and
// the byte of that line (0-based).
var execPlaceRE = regexp.MustCompile(`^(\d+):(\d+): `)

// execParts splits what follows "template: NAME:" in an execution error of template name
// into its line, the byte of that line and Go's message after the context it names
// ("executing "NAME" at <CONTEXT>: MESSAGE"). The context is a part of the template as Go
// prints it, and may hold ">: " itself: the first split whose message execWords knows is
// taken, else the first.
func execParts(name, msg string) (line, col int, rest string, ok bool) {
	m := execPlaceRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, 0, "", false
	}
	rest, found := strings.CutPrefix(msg[len(m[0]):], fmt.Sprintf("executing %q at <", name))
	if !found {
		return 0, 0, "", false
	}
	first := -1
	for i := 0; ; {
		j := strings.Index(rest[i:], ">: ")
		if j < 0 {
			break
		}
		i += j + len(">: ")
		if first < 0 {
			first = i
		}
		if knownExec(rest[i:]) {
			first = i
			break
		}
	}
	if first < 0 {
		return 0, 0, "", false
	}
	line, _ = strconv.Atoi(m[1])
	col, _ = strconv.Atoi(m[2])
	return line, col, rest[first:], true
}

// lineOffset is the offset in text of byte col (0-based) of line (1-based), as Go's errors
// give a place; false when text has no such place.
func lineOffset(text string, line, col int) (int, bool) {
	start := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(text[start:], '\n')
		if i < 0 {
			return 0, false
		}
		start += i + 1
	}
	if start+col > len(text) {
		return 0, false
	}
	return start + col, true
}

// maxActionRunes is the longest action a problem quotes whole; a longer one is cut.
const maxActionRunes = 60

// placeWords says where offset off of text is: the action ({{ ... }}) holding it, as written,
// and its line (when text has several) and column, counted in characters from 1.
func placeWords(text string, off int) string {
	off = max(0, min(off, len(text)))
	lineStart := strings.LastIndexByte(text[:off], '\n') + 1
	col := utf8.RuneCountInString(text[lineStart:off]) + 1
	where := fmt.Sprintf("at column %d of the template: ", col)
	if strings.Contains(text, "\n") {
		line := strings.Count(text[:off], "\n") + 1
		where = fmt.Sprintf("at line %d, column %d of the template: ", line, col)
	}
	if a := actionAt(text, off); a != "" {
		return a + " " + where
	}
	return where
}

// actionAt is the action of text that holds offset off, on one line (newlines and tabs are
// spaces); "" when off is in no action. An action of more than maxActionRunes characters is
// cut to the part around off: "{{ ... | title | index 99 }}".
func actionAt(text string, off int) string {
	start := strings.LastIndex(text[:min(off+2, len(text))], "{{")
	if start < 0 {
		return ""
	}
	n := strings.Index(text[start:], "}}")
	if n < 0 || start+n+2 <= off {
		return ""
	}
	r := []rune(text[start : start+n+2])
	for i, c := range r {
		if c == '\n' || c == '\r' || c == '\t' {
			r[i] = ' '
		}
	}
	if len(r) <= maxActionRunes {
		return string(r)
	}
	const cut = " ... "
	keep := maxActionRunes - 2*len(cut) - 4 // room for "{{ ... " and " ... }}"
	at := utf8.RuneCountInString(text[start:max(start, off)])
	from := max(0, min(at-keep/2, len(r)-keep))
	to := from + keep
	a := string(r[from:to])
	// The cut parts end at spaces, so no word is cut in two.
	if from > 0 {
		if i := strings.IndexByte(a, ' '); i >= 0 {
			a = a[i:]
		}
		a = "{{" + cut + strings.TrimLeft(a, " ")
	}
	if to < len(r) {
		if i := strings.LastIndexByte(a, ' '); i >= 0 {
			a = a[:i]
		}
		a = strings.TrimRight(a, " ") + cut + "}}"
	}
	return a
}

// parseLineRE reads the line Go's template parser puts before its message ("3: ...").
var parseLineRE = regexp.MustCompile(`(?s)^(\d+): (.*)$`)

// parseWords put Go's words for the parts of a template in plain ones: an action is what
// {{ ... }} holds.
var parseWords = strings.NewReplacer(
	" in operand", " in {{ ... }}",
	" in command", " in {{ ... }}",
	" in parenthesized pipeline", " in ( ... ) inside {{ ... }}",
	"unclosed action", "a {{ has no closing }}",
	"unexpected EOF", "the text ends before the {{ end }} of an {{ if }} or {{ with }}",
	"unclosed left paren", "a ( has no closing )",
	"unexpected right paren", "a ) has no opening (",
	"unterminated quoted string", `a quoted text has no closing "`,
	"unexpected {{end}}", "an {{ end }} closes nothing",
	"unexpected {{else}}", "an {{ else }} outside an {{ if }} or {{ with }}",
)

// undefinedVarRE and pipeStageRE read two of the parser's messages that need their parts moved.
var (
	undefinedVarRE = regexp.MustCompile(`^undefined variable "(.*)"$`)
	pipeStageRE    = regexp.MustCompile(`^non executable command in pipeline stage \d+$`)
)

// parseProblemWords is a parse error's message (Go's "template: NAME:LINE: ...") in plain
// words, with the line when the text has several. A function the sandbox does not have is
// named with those it has.
func parseProblemWords(name, text, msg string) string {
	msg = strings.TrimPrefix(msg, "template: "+name+":")
	msg = strings.TrimPrefix(msg, "template: ")
	line := ""
	if m := parseLineRE.FindStringSubmatch(msg); m != nil {
		line, msg = m[1], m[2]
	}
	// "unclosed action started at NAME:1": where it started is the line already named.
	if i := strings.Index(msg, "unclosed action started at "); i >= 0 {
		msg = msg[:i] + "unclosed action"
	}
	if fn, ok := strings.CutPrefix(msg, "function "); ok && strings.HasSuffix(fn, " not defined") {
		msg = fmt.Sprintf("function %s is not defined (allowed: %s)", strings.TrimSuffix(fn, " not defined"), allowedList)
	} else if m := undefinedVarRE.FindStringSubmatch(msg); m != nil {
		msg = m[1] + " is used before it is set"
	} else if pipeStageRE.MatchString(msg) {
		msg = "a | passes its value to something that is not a function"
	} else {
		msg = parseWords.Replace(msg)
	}
	if line != "" && strings.Contains(text, "\n") {
		msg = "at line " + line + " of the template: " + msg
	}
	return msg
}

// execRewrite is one of Go's execution messages and its plain words: re matches the message
// (after "error calling FUNC: ", when Go put it), and say words its submatches.
type execRewrite struct {
	re  *regexp.Regexp
	say func(m []string) string
}

var execRewrites = []execRewrite{
	{regexp.MustCompile(`^index out of range: (-?\d+)$`), func(m []string) string {
		return "index " + m[1] + " is out of range"
	}},
	{regexp.MustCompile(`^invalid slice index: (-?\d+) > (-?\d+)$`), func(m []string) string {
		return "the slice starts at " + m[1] + ", after its end at " + m[2]
	}},
	{regexp.MustCompile(`^wrong number of args for (\S+): want (at least )?(\d+) got (\d+)$`), func(m []string) string {
		want, _ := strconv.Atoi(m[3])
		return fmt.Sprintf("%s takes %s%s, not %s", m[1], m[2], words.Count(want, "argument", "arguments"), m[4])
	}},
	{regexp.MustCompile(`^expected string; found (.*)$`), func(m []string) string {
		return "expected text, found " + m[1]
	}},
	{regexp.MustCompile(`^wrong type for value; expected (\S+); got (\S+)$`), func(m []string) string {
		return "expected " + typeWords(m[1]) + ", got " + typeWords(m[2])
	}},
	{regexp.MustCompile(`^value has type (\S+); should be (\S+)$`), func(m []string) string {
		return "expected " + typeWords(m[2]) + ", got " + typeWords(m[1])
	}},
	{regexp.MustCompile(`^cannot assign nil to (\S+)$`), func(m []string) string {
		return "expected " + typeWords(m[1]) + ", got nil"
	}},
	{regexp.MustCompile(`^can't evaluate field (\S+) in type (\S+)$`), func(m []string) string {
		return "cannot read field " + m[1] + " of " + typeWords(m[2])
	}},
	{regexp.MustCompile(`^(\S+) is not a method but has arguments$`), func(m []string) string {
		return "." + m[1] + " is a value, not a function: it takes no arguments"
	}},
	{regexp.MustCompile(`^incompatible types for comparison: (\S+) and (\S+)$`), func(m []string) string {
		return "cannot compare " + typeWords(m[1]) + " with " + typeWords(m[2])
	}},
	{regexp.MustCompile(`^incompatible types for comparison$`), func([]string) string {
		return "cannot compare values of different kinds"
	}},
	{regexp.MustCompile(`^invalid type for comparison$`), func([]string) string {
		return "these values cannot be compared"
	}},
	{regexp.MustCompile(`^len of type (\S+)$`), func(m []string) string {
		return "cannot count the length of " + typeWords(m[1])
	}},
	{regexp.MustCompile(`^cannot index slice/array with type (\S+)$`), func(m []string) string {
		return "an index is a number, not " + typeWords(m[1])
	}},
	{regexp.MustCompile(`^can't index item of type (\S+)$`), func(m []string) string {
		return "cannot index " + typeWords(m[1])
	}},
	{regexp.MustCompile(`^can't slice item of type (\S+)$`), func(m []string) string {
		return "cannot slice " + typeWords(m[1])
	}},
	{regexp.MustCompile(`^nil is not a command$`), func([]string) string {
		return "nil is no value to write"
	}},
}

// callingRE reads the "error calling FUNC: " Go puts before a function's own error.
var callingRE = regexp.MustCompile(`(?s)^error calling (\S+): (.*)$`)

// knownExec reports whether execWords has words of its own for msg, Go's message of an
// execution error.
func knownExec(msg string) bool {
	if callingRE.MatchString(msg) {
		return true
	}
	for _, r := range execRewrites {
		if r.re.MatchString(msg) {
			return true
		}
	}
	return false
}

// execWords is the message of an execution error, after Go's place, in plain words. A
// function's own error keeps the function's name, once: "upper: input is ... bytes".
func execWords(msg string) string {
	fn := ""
	if m := callingRE.FindStringSubmatch(msg); m != nil {
		fn, msg = m[1], m[2]
	}
	for _, r := range execRewrites {
		if m := r.re.FindStringSubmatch(msg); m != nil {
			return r.say(m)
		}
	}
	if fn != "" && !strings.HasPrefix(msg, fn+": ") {
		return fn + ": " + msg
	}
	return msg
}

// typeWords names a Go type a template's values have as a person would: text, a number, the
// row.
func typeWords(t string) string {
	switch t {
	case "string":
		return "text"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "uintptr",
		"float32", "float64", "complex64", "complex128":
		return "a number"
	case "bool":
		return "true or false"
	case "map[string]string":
		return "the row"
	case "interface {}", "any":
		return "a value"
	}
	return "a value of type " + t
}
