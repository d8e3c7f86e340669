package conversation_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
)

// FuzzMatchKeyword checks the keyword matcher's properties on any input: a keyword matches
// itself, in any case, and inside any text where it stands as whole words; a keyword never
// matches a text into whose words it is glued; it never panics.
func FuzzMatchKeyword(f *testing.F) {
	for _, s := range [][2]string{
		{"price", "What's the PRICE?"},
		{"how much", "how   much"},
		{"preço", "QUAL O PREÇO"},
		{"σοφος", "ΣΟΦΟΣ"},
		{"café", "cafe\u0301"},
		{"stop", "stopped"},
		{"", "anything"},
		{"?!", "?!"},
		{"\xff", "\xff"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, keyword, text string) {
		got := conversation.MatchKeyword(keyword, text)
		words := campaigns.KeywordWords(keyword)
		if len(words) == 0 {
			if got {
				t.Fatalf("keyword %q has no word but matched %q", keyword, text)
			}
			return
		}
		if !conversation.MatchKeyword(keyword, keyword) {
			t.Fatalf("keyword %q does not match itself", keyword)
		}
		if !conversation.MatchKeyword(keyword, "« "+strings.ToUpper(keyword)+" » and "+text) && utf8.ValidString(keyword) && sameFold(keyword) {
			t.Fatalf("keyword %q does not match its upper case standing apart", keyword)
		}
		if got != conversation.MatchKeyword(keyword, text+" .") {
			t.Fatalf("keyword %q: trailing punctuation changed the answer on %q", keyword, text)
		}
		// Glued to a letter on both sides, a one-word keyword is inside another word.
		if len(words) == 1 && conversation.MatchKeyword(keyword, "x"+strings.Join(words, "")+"x") && words[0] != "x"+words[0]+"x" {
			if w := campaigns.KeywordWords("x" + words[0] + "x"); len(w) == 1 {
				t.Fatalf("keyword %q matched inside the word %q", keyword, w[0])
			}
		}
	})
}

// sameFold reports whether upper-casing s keeps its words' folded forms (true for almost
// every script; not for a few letters whose upper case is several letters).
func sameFold(s string) bool {
	a, b := campaigns.KeywordWords(s), campaigns.KeywordWords(strings.ToUpper(s))
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
