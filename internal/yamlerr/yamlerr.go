// Package yamlerr places a YAML syntax error on the line where it is.
//
// The YAML decoder words a syntax error as "yaml: line N: problem", but N is not always the
// line of the problem: the parser's errors (an unclosed "{" or "[", a missing key) give the
// zero-based line of the construct they were parsing, one less than its line in an editor;
// the scanner's errors (a character that cannot start a token, a tab) give the line itself;
// and an error on the first line has no "line N:" at all. Line reads the problem's wording to
// tell which, so every YAML file Herald reads (campaigns, message files, its config) reports
// a syntax error at the line a user's editor shows.
package yamlerr

import (
	"errors"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parserProblems are the problems the YAML parser reports (the rest are the scanner's). The
// parser gives the zero-based line of the construct it was in (or of the problem, when the
// construct starts on the first line).
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// scannerPrefixes begin the scanner's problems, which may come without a line (when on the
// first line); a message of neither kind without a line is not placed.
var scannerPrefixes = []string{
	"block sequence entries are not allowed", "could not find expected", "did not find expected",
	"did not find the expected", "exceeded max depth", "found ", "mapping keys are not allowed",
	"mapping values are not allowed",
}

// Line returns the one-based line of a YAML syntax error and its problem without the
// "yaml: line N:" prefix. Line is 0 for an error that is not a syntax error the decoder
// placed (a type error: its own lines are right; a read error). A type error's first problem
// is returned with its line as written.
func Line(err error) (line int, problem string) {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
		n, rest, ok := CutLine(msg)
		if !ok {
			return 0, msg
		}
		return n, rest
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	n, rest, ok := CutLine(msg)
	if !ok {
		// Both of the decoder's marks on the first line (line 0, which it leaves out).
		if parserProblems[msg] || scannerProblem(msg) {
			return 1, msg
		}
		return 0, msg
	}
	if parserProblems[rest] {
		n++
	}
	return n, rest
}

func scannerProblem(msg string) bool {
	for _, p := range scannerPrefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// CutLine splits one of the decoder's problems, "line 4: msg" (surrounding spaces aside), into
// 4 and msg; ok is false for a problem without a line. The line is as the decoder gives it.
func CutLine(msg string) (line int, problem string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(msg), "line ")
	if !ok {
		return 0, "", false
	}
	n, rest, ok := strings.Cut(rest, ": ")
	line, err := strconv.Atoi(n)
	if !ok || err != nil {
		return 0, "", false
	}
	return line, rest, true
}

// In is Line for an error decoding data: a problem the decoder met at the end of the stream,
// past the last line that holds anything (a file ends with a line break), is placed on that
// last line, and says it is at the end of the file (an unclosed "[" on the last line, say).
func In(err error, data []byte) (line int, problem string) {
	line, problem = Line(err)
	if last := lastLine(data); line > last && last > 0 {
		return last, problem + " (at the end of the file)"
	}
	return line, problem
}

// lastLine is the number of the last line of data holding anything but spaces and line
// breaks (YAML's breaks: "\r\n", "\r", "\n", and the next-line, line and paragraph
// separators), 0 when there is none.
func lastLine(data []byte) int {
	line, last := 1, 0
	s := string(data)
	for i, r := range s {
		switch r {
		case '\n':
			if i == 0 || s[i-1] != '\r' {
				line++
			}
		case '\r', '\u0085', '\u2028', '\u2029':
			line++
		case ' ', '\t', '\ufeff':
		default:
			last = line
		}
	}
	return last
}
