package campaigns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"unicode/utf16"

	"github.com/heraldmsg/herald/internal/connectly"
)

// Message files. `herald message send --file` reads one session message from a file, with the
// keys of a campaign's message: block, decoded by the same decoder: each problem at its line
// and column with its field path (attachment.filename), a misspelt key with the closest known
// key. A JSON file is read as the YAML it also is. Its strings are sent as written, not run as
// templates, so the message is checked as it is against WhatsApp's limits
// (connectly.SessionContent.Validate), each problem at the field it names.

// ReadMessageFile reads a session message from a YAML or JSON file (ReadFile's rules: a
// regular file of at most MaxCampaignFileBytes) and decodes it (ParseMessage).
func ReadMessageFile(path string) (connectly.SessionContent, error) {
	data, err := ReadFile(path)
	if err != nil {
		return connectly.SessionContent{}, err
	}
	return ParseMessage(path, data)
}

// ParseMessage decodes and checks a session message written alone in a file at path, in YAML
// or JSON, with the keys of a campaign's message: block. Its error is Errors, every problem as
// "file:line:col: field: message"; the content is then empty.
func ParseMessage(path string, data []byte) (connectly.SessionContent, error) {
	if json.Valid(data) {
		data = jsonForYAML(data)
	}
	doc, errs := oneDocument(path, data, "a message file holds one message (remove the \"---\")")
	if doc == nil {
		return connectly.SessionContent{}, errs
	}
	errs = append(unknownKeys(path, doc, sessionContentType, ""), errs...)
	doc, bad := mappingOf(path, doc, "message keys (text: ..., or one of "+connectly.OtherKinds+")")
	if bad != nil {
		return connectly.SessionContent{}, sortErrors(append(errs, *bad))
	}
	var c connectly.SessionContent
	fd := newDecoder(path)
	fd.decode(doc, reflect.ValueOf(&c).Elem(), "")
	errs = append(errs, fd.errs...)
	// The message's checks weigh its parts together (one kind, text required without
	// another): a part that did not decode leaves the whole message unchecked.
	if len(fd.broken) == 0 {
		var ie *connectly.InvalidMessageError
		if err := c.Validate(); errors.As(err, &ie) {
			for _, p := range ie.Problems {
				n := locate(doc, p.Field)
				errs = append(errs, FieldError{File: path, Line: n.Line, Column: n.Column, Field: p.Field, Msg: p.Msg})
			}
		} else if err != nil {
			errs = append(errs, FieldError{File: path, Line: doc.Line, Column: doc.Column, Msg: err.Error()})
		}
	}
	if len(errs) > 0 {
		return connectly.SessionContent{}, sortErrors(errs)
	}
	return c, nil
}

// jsonForYAML rewrites the escapes of valid JSON that the YAML decoder does not read, in its
// strings: "\/" (a '/') and a UTF-16 surrogate pair ("\ud83d\ude00", the way many encoders
// write a character outside the Basic Multilingual Plane) as one "\U0001F600"; a lone
// surrogate becomes U+FFFD, as encoding/json reads it. Each string shorter for it is followed
// by as many spaces, so every line and column after it stays where the file has it.
func jsonForYAML(data []byte) []byte {
	if !bytes.Contains(data, []byte(`\`)) {
		return data
	}
	out := make([]byte, 0, len(data))
	inString, removed := false, 0
	for i := 0; i < len(data); i++ {
		ch := data[i]
		if !inString {
			out = append(out, ch)
			inString = ch == '"'
			continue
		}
		switch {
		case ch == '"':
			out = append(out, ch)
			out = append(out, bytes.Repeat([]byte{' '}, removed)...)
			inString, removed = false, 0
		case ch != '\\' || i+1 >= len(data):
			out = append(out, ch)
		case data[i+1] == '/':
			out = append(out, '/')
			removed++
			i++
		case data[i+1] == 'u':
			r, n := jsonEscapedRune(data[i:])
			switch {
			case n == 0: // not a surrogate: YAML reads it as it is
				out = append(out, data[i:i+6]...)
				i += 5
			default:
				esc := fmt.Sprintf(`\u%04X`, r)
				if r > 0xFFFF {
					esc = fmt.Sprintf(`\U%08X`, r)
				}
				out = append(out, esc...)
				removed += n - len(esc)
				i += n - 1
			}
		default:
			out = append(out, ch, data[i+1])
			i++
		}
	}
	return out
}

// jsonEscapedRune reads a "\uXXXX" escape that starts b (valid JSON) when it is a UTF-16
// surrogate: the character of a surrogate pair (12 bytes read), or U+FFFD for a lone one (6
// bytes). n is 0 when the escape is no surrogate.
func jsonEscapedRune(b []byte) (r rune, n int) {
	hi, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	if err != nil || !utf16.IsSurrogate(rune(hi)) {
		return 0, 0
	}
	if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
		if lo, err := strconv.ParseUint(string(b[8:12]), 16, 16); err == nil {
			if r := utf16.DecodeRune(rune(hi), rune(lo)); r != '\uFFFD' {
				return r, 12
			}
		}
	}
	return '\uFFFD', 6
}
