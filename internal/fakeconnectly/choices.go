package fakeconnectly

import (
	"fmt"
	"slices"
	"strings"
)

// Strict turns on refusals the reference does not state. Each is off by default, and the
// fake then takes what the reference allows; a test that wants the stricter WhatsApp-side
// behaviour turns one on.
type Strict struct {
	// TextWhitespace refuses a header_text or body_N value with a new-line, a tab or more
	// than 4 consecutive spaces (ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID). That is Meta's
	// rule for template text parameters; the reference does not quote it (2.2 says only
	// "text", 9.2 lists 132012 "parameter format mismatch" without saying what mismatches).
	TextWhitespace bool `json:"textWhitespace,omitempty"`
	// HTTPSMedia refuses a header_image, header_video or header_document URL that is not
	// https. The reference says only "URL of an image" (2.2), so by default an absolute
	// http URL is taken too.
	HTTPSMedia bool `json:"httpsMedia,omitempty"`
	// DuplicateParams refuses a parameters list that names one key twice. The reference
	// says nothing of it; by default the send is taken (the last value is the one a
	// rendering would use).
	DuplicateParams bool `json:"duplicateParams,omitempty"`
	// ChannelType refuses a session recipient or sender object without channelType. The
	// reference shows channelType "whatsapp" in both objects (3) and marks only name
	// optional, but does not say a missing one is refused, and the business has no other
	// channel; by default it is taken as whatsapp.
	ChannelType bool `json:"channelType,omitempty"`
}

// How a template number or a session recipient written with punctuation is taken
// (Config.NumberPunctuation).
const (
	// NumbersNormalized is the default, and the reference's own guess: an old example sends
	// "+1(604) 585 2331", "(inferred: the server normalises punctuation; send clean E.164
	// anyway)" (2.1). A number that starts with + and is E.164 once its spaces, parentheses,
	// hyphens and dots are taken out is accepted as that E.164 number: the record, the
	// rules, the window and the webhooks know it by the clean form.
	NumbersNormalized = "normalize"
	// NumbersRefused refuses such a number with ERROR_CODE_PHONE_NUMBER_BAD_FORMAT, the
	// other reading.
	NumbersRefused = "refuse"
)

// numberPunctuations lists the values of Config.NumberPunctuation.
var numberPunctuations = choice{NumbersNormalized, NumbersRefused}

// numberPunctuation is the punctuation NumbersNormalized takes out of a number.
const numberPunctuation = " ()-."

// normalizeNumber returns n as the fake takes it: n itself, or, under NumbersNormalized, the
// E.164 number n is once its punctuation is taken out (n unchanged when that is not E.164).
func (s *Server) normalizeNumber(n string) string {
	if s.numberPunctuation == NumbersRefused || !strings.HasPrefix(n, "+") || !strings.ContainsAny(n, numberPunctuation) {
		return n
	}
	clean := strings.Map(func(r rune) rune {
		if strings.ContainsRune(numberPunctuation, r) {
			return -1
		}
		return r
	}, n)
	if validE164(clean) {
		return clean
	}
	return n
}

// StrictNames are the names ParseStrict takes, one per field of Strict, in its order.
var StrictNames = []string{"text-whitespace", "https-media", "duplicate-params", "channel-type"}

// ParseStrict turns a comma-separated list of StrictNames ("all" for every one, "" or "none"
// for none) into a Strict: the spelling of `herald fake-connectly --strict`.
func ParseStrict(list string) (Strict, error) {
	var s Strict
	fields := []*bool{&s.TextWhitespace, &s.HTTPSMedia, &s.DuplicateParams, &s.ChannelType}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		switch name {
		case "", "none":
			continue
		case "all":
			for _, f := range fields {
				*f = true
			}
			continue
		}
		i := slices.Index(StrictNames, name)
		if i < 0 {
			return Strict{}, fmt.Errorf("strict %q: want all, none or a list of %s", name, strings.Join(StrictNames, ", "))
		}
		*fields[i] = true
	}
	return s, nil
}
