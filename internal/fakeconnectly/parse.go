package fakeconnectly

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// ParseRules reads a JSON list of rules (null or [] for none), the form of `herald
// fake-connectly --faults FILE`, as json.Unmarshal into a []Rule reads it. An error names the
// rule by its place in the list, counted from 0 as in a JSON path, and the place in data it
// is about, as a line and a column counted from 1 (a column in characters):
//
//	rules[2]: line 5, column 4: unknown field "bogus"
//
// An unknown or mistyped field is placed at its name, a value json cannot read (a latency
// that is no duration) at the start of its rule, a syntax error where the reading stopped.
// Like ParseConfig it does not validate the values: New does.
func ParseRules(data []byte) ([]Rule, error) {
	return parseRulesAt(data, 0, true)
}

// parseRulesAt reads the list of rules that starts at doc[start:] (after any white space),
// placing its errors in doc; whole says the list must be the last JSON value of doc.
func parseRulesAt(doc []byte, start int, whole bool) ([]Rule, error) {
	const name = "rules"
	dec := json.NewDecoder(bytes.NewReader(doc[start:]))
	at := func(off int64) int { return start + int(off) }
	tok, err := dec.Token()
	if err != nil {
		return nil, placed(name, doc, errorOffset(doc, dec, at, err), readError(err))
	}
	if tok != nil { // null is no rules
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return nil, placed(name, doc, skipSpace(doc, start), errors.New("want a JSON list of rules"))
		}
		var rules []Rule
		for i := 0; dec.More(); i++ {
			item := fmt.Sprintf("%s[%d]", name, i)
			begin := skipSeparator(doc, at(dec.InputOffset()), ',')
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, placed(item, doc, errorOffset(doc, dec, at, err), readError(err))
			}
			var r Rule
			if err := json.Unmarshal(raw, &r); err != nil {
				off, msg := ruleErrorPlace(raw, err)
				return nil, placed(item, doc, begin+off, msg)
			}
			rules = append(rules, r)
		}
		if _, err := dec.Token(); err != nil { // the closing ]
			return nil, placed(name, doc, errorOffset(doc, dec, at, err), readError(err))
		}
		if err := trailing(whole, dec, doc, at); err != nil {
			return nil, err
		}
		return rules, nil
	}
	if err := trailing(whole, dec, doc, at); err != nil {
		return nil, err
	}
	return nil, nil
}

// trailing reports a JSON value after the list, when the list is the whole document.
func trailing(whole bool, dec *json.Decoder, doc []byte, at func(int64) int) error {
	if !whole {
		return nil
	}
	off := skipSpace(doc, at(dec.InputOffset()))
	if _, err := dec.Token(); err != io.EOF {
		return placed("rules", doc, off, errors.New("more than one JSON value"))
	}
	return nil
}

// unknownField is encoding/json's error for a field name DisallowUnknownFields refuses.
var unknownField = regexp.MustCompile(`^json: unknown field ("(?:[^"\\]|\\.)*")$`)

// ruleErrorPlace returns where in raw, one rule's JSON object, the error err of reading it is
// (an offset into raw) and the error to tell: an unknown field at its name, a mistyped one at
// its name too, anything else at the rule's start.
func ruleErrorPlace(raw []byte, err error) (int, error) {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Field != "" {
		field, _, _ := strings.Cut(ute.Field, ".")
		msg := fmt.Errorf("%s: want %s, not a JSON %s", ute.Field, ute.Type, ute.Value)
		if off, ok := keyOffset(raw, field, strings.EqualFold); ok {
			return off, msg
		}
		return 0, msg
	}
	if m := unknownField.FindStringSubmatch(strings.TrimPrefix(err.Error(), "rule: ")); m != nil {
		var key string
		if json.Unmarshal([]byte(m[1]), &key) == nil {
			msg := fmt.Errorf("unknown field %s", m[1])
			if off, ok := keyOffset(raw, key, func(a, b string) bool { return a == b }); ok {
				return off, msg
			}
			return 0, msg
		}
	}
	return 0, err
}

// keyOffset returns the offset in raw, a JSON object, of the first of its own keys that
// same takes for key.
func keyOffset(raw []byte, key string, same func(a, b string) bool) (int, bool) {
	off, _, ok := member(raw, key, same)
	return off, ok
}

// member returns the offsets in raw, a JSON object, of the first of its own keys that same
// takes for key and of that key's value.
func member(raw []byte, key string, same func(a, b string) bool) (keyAt, valueAt int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, 0, false
	}
	for dec.More() {
		keyAt = skipSeparator(raw, int(dec.InputOffset()), ',')
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		if k, isKey := tok.(string); isKey && same(k, key) {
			return keyAt, skipSeparator(raw, int(dec.InputOffset()), ':'), true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// skipSeparator returns the offset of the first character at or after off in doc that is
// neither JSON white space nor, once, sep.
func skipSeparator(doc []byte, off int, sep byte) int {
	off = skipSpace(doc, off)
	if off < len(doc) && doc[off] == sep {
		off = skipSpace(doc, off+1)
	}
	return off
}

// errorOffset is where in doc a decoding error of dec is: the end of doc for an unexpected
// end, the character that stopped the reading for a syntax error, else where dec stopped. A
// Decoder's syntax errors are placed loosely (one character early or on the white space
// before); json.Unmarshal of the whole document places the same error exactly.
func errorOffset(doc []byte, dec *json.Decoder, at func(int64) int, err error) int {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return len(doc)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		var whole *json.SyntaxError
		if errors.As(json.Unmarshal(doc, new(json.RawMessage)), &whole) && whole.Error() == se.Error() && whole.Offset > 0 {
			return int(whole.Offset) - 1
		}
		return skipSpace(doc, at(se.Offset))
	}
	return skipSpace(doc, at(dec.InputOffset()))
}

// readError is a decoding error's words, without encoding/json's "json: " prefix.
func readError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of JSON input")
	}
	return err
}

// skipSpace returns the offset of the first character at or after off in doc that is not
// JSON white space (len(doc) when there is none).
func skipSpace(doc []byte, off int) int {
	for off < len(doc) && strings.IndexByte(" \t\r\n", doc[off]) >= 0 {
		off++
	}
	return min(off, len(doc))
}

// placed is err about name at offset off of doc: "name: line L, column C: err".
func placed(name string, doc []byte, off int, err error) error {
	line, col := lineColumn(doc, off)
	return fmt.Errorf("%s: line %d, column %d: %w", name, line, col, err)
}

// lineColumn turns an offset into doc into a line and a column, both counted from 1, the
// column in characters.
func lineColumn(doc []byte, off int) (line, col int) {
	off = max(0, min(off, len(doc)))
	before := doc[:off]
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte{'\n'}) + 1, utf8.RuneCount(before[lineStart:]) + 1
}

// configRulesError is the error of the "rules" list of a --fake-config document, placed in
// it (see ParseRules), or nil when the document has no such list or the list reads well.
func configRulesError(doc []byte) error {
	_, start, ok := member(doc, "rules", strings.EqualFold)
	if !ok {
		return nil
	}
	_, err := parseRulesAt(doc, start, false)
	return err
}
