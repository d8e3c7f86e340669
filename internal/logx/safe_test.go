package logx

import "testing"

func TestSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Yes, show me", "Yes, show me"},
		{"Yes, show me +14155466010", "Yes, show me ********6010"},
		{"customer +1 415 555 2671 complained", "customer ***********2671 complained"},
		{"PAY-+14155466010", "PAY-********6010"},
		// Control characters are escaped as %q would: nothing reaches the terminal raw.
		{"red\x1b[31mX\nforged row", `red\x1b[31mX\nforged row`},
		{"\x1b[2K\rroot", `\x1b[2K\rroot`},
		{"a\tb\x7f\x00", `a\tb\x7f\x00`},
		{"bidi \u202eevil", `bidi \u202eevil`},
		{"line\u2028sep", `line\u2028sep`},
		{"bad \xff utf8", `bad \xff utf8`},
		{`C:\n is not a newline`, `C:\\n is not a newline`},
		// Printable text stays as it is: accents, emoji, quotes.
		{`Oui, ça m'intéresse 👍 "now"`, `Oui, ça m'intéresse 👍 "now"`},
		{"", ""},
	} {
		if got := Safe(tc.in); got != tc.want {
			t.Errorf("Safe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Escape("call +14155466010\n"); got != `call +14155466010\n` {
		t.Errorf("Escape masks or misses: %q", got)
	}
}

// TestEscapeControlAndLines: EscapeControl escapes what Escape does but a backslash (text
// Herald already quoted keeps its escapes readable); EscapeLines keeps newlines too.
func TestEscapeControlAndLines(t *testing.T) {
	const in = "a \"b\\x1b\" \x1b[2J\r\nline 2\u202e\xff"
	if got, want := EscapeControl(in), `a "b\x1b" \x1b[2J\r\nline 2\u202e\xff`; got != want {
		t.Errorf("EscapeControl = %q, want %q", got, want)
	}
	if got, want := EscapeLines(in), "a \"b\\x1b\" \\x1b[2J\\r\nline 2\\u202e\\xff"; got != want {
		t.Errorf("EscapeLines = %q, want %q", got, want)
	}
	if got := EscapeLines("p1\np2"); got != "p1\np2" {
		t.Errorf("EscapeLines(plain lines) = %q", got)
	}
}
