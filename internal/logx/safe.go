package logx

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Safe makes text that came from outside Herald fit to print on an operator's terminal: a
// customer's reply or button label, a button's payload, an operator's --reason or --actor. Its
// phone numbers are masked to their last 4 digits (MaskDigits) and its control characters
// escaped (Escape), so the text can neither show a number in full, nor move the cursor, clear
// a line, colour the screen or start a new line that looks like Herald's own output. Every
// command prints such text through Safe, or through Escape where the command was asked to
// reveal numbers (--reveal) or has masked them already; JSON output masks the numbers
// (MaskDigits) and leaves the escaping to JSON.
func Safe(s string) string { return Escape(MaskDigits(s)) }

// Escape writes every character of s that a terminal would not print as itself (a control
// character such as ESC, a newline or a tab, a bidirectional override, invalid UTF-8) as the
// Go escape %q would give it (\x1b, \n, \t, \u202e, \xff), and a backslash as \\, so that an
// escape in the text itself cannot pass for one made here. Printable text, accents and
// emoji included, is left as it is; so are double quotes (use %q to quote).
func Escape(s string) string { return escape(s, escapeBackslash) }

// EscapeControl is Escape without the backslash rule: control characters, bidirectional
// overrides and invalid UTF-8 are escaped, a backslash is left as it is. It is for text
// Herald composed from parts it quoted itself (%q, Escape) where doubling their backslashes
// would only blur them, such as a campaign file's problem.
func EscapeControl(s string) string { return escape(s, 0) }

// EscapeLines is EscapeControl that keeps newlines: the last line of defence for an error
// Herald prints, whose lines (one per problem) are Herald's own while what it quotes in them
// must not start one.
func EscapeLines(s string) string { return escape(s, keepNewline) }

const (
	escapeBackslash = 1 << iota // write a backslash as two
	keepNewline                 // leave a newline as it is
)

func escape(s string, how int) string {
	if !needsEscape(s, how) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&15, 16))
		case r == '\\' && how&escapeBackslash != 0:
			b.WriteString(`\\`)
		case r == '\n' && how&keepNewline != 0, unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r) // '\n', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// needsEscape says whether escape(s, how) would change s.
func needsEscape(s string, how int) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < ' ' && !(c == '\n' && how&keepNewline != 0)) || c == 0x7f || (c == '\\' && how&escapeBackslash != 0) {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !unicode.IsPrint(r) {
			return true
		}
		i += n
	}
	return false
}
