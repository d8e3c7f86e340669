package servicewindow

import (
	"fmt"
	"slices"
	"strings"
)

// Scope says what an inbound message that names no business number opens: on WhatsApp a
// customer opens a window by writing to one business phone number, and that number alone may
// answer them with session messages (and send them templates outside the daily tier), so a
// window Herald recorded without knowing the number cannot be placed. The reference shows
// the business number in an inbound event's recipient only by symmetry with the status
// events (reference 5.4, inferred), so such events may come.
type Scope string

const (
	// ScopeSender (the default): a window recorded with no business number counts for a
	// send only when Herald sends from a single number (Policy.Senders lists one, and the send
	// is from it, or none); with several, it counts for none of them. A session message then goes as its fallback
	// template, and a template books its room in the daily tier: never more people messaged
	// outside a window than the tier allows, at the price of a template (and tier room) that
	// an open window would have spared.
	ScopeSender Scope = "sender"
	// ScopeBusiness: a window recorded with no business number counts for a send from every
	// number, as Herald did before it told numbers apart. For a business whose webhooks do not
	// name the number and that accepts the risk: a customer who wrote to one number counts as
	// in a window for a send from another, whose session message Connectly then refuses (one
	// request, then the fallback) and whose template, counted in a window, books no tier room
	// that Meta will count.
	ScopeBusiness Scope = "business"
)

// Scopes lists the scopes, the default first.
var Scopes = []Scope{ScopeSender, ScopeBusiness}

// ParseScope reads a scope as written in the config file; "" is the default, ScopeSender.
func ParseScope(s string) (Scope, error) {
	switch Scope(strings.ToLower(strings.TrimSpace(s))) {
	case "", ScopeSender:
		return ScopeSender, nil
	case ScopeBusiness:
		return ScopeBusiness, nil
	}
	return "", fmt.Errorf("%q: want %s or %s", s, ScopeSender, ScopeBusiness)
}

// Policy is how a business's windows are recorded and which of them count for a send. The
// zero Policy is ScopeSender with no sender numbers known.
//
// A window is recorded per business number the customer wrote to when the inbound event
// names it (its recipient), and with no number when the event names none, or when Policy
// lists no sender numbers (Herald then has no numbers to tell apart, and its sends name no
// number either). A send from number S counts S's window, and a window with no number only
// when UnnamedCounts(S). Windows recorded before Herald told numbers apart have no number.
type Policy struct {
	// Scope is what a window with no business number opens (UnnamedCounts). "" is
	// ScopeSender.
	Scope Scope
	// Senders are the business numbers Herald sends from (the config's senders), E.164.
	Senders []string
}

// UnnamedCounts reports whether a window recorded with no business number counts for a send
// from sender (E.164; "" when the send names none): with ScopeBusiness, or when Herald sends
// from a single number and sender is it (one sender configured, or none). It is the one place
// that decides it.
func (p Policy) UnnamedCounts(sender string) bool {
	switch {
	case p.Scope == ScopeBusiness || len(p.Senders) == 0:
		return true
	case len(p.Senders) == 1:
		n := NumberDigits(sender)
		return n == "" || n == NumberDigits(p.Senders[0])
	}
	return false
}

// recordedNumber is the number an inbound event addressed to to is recorded under: its
// digits (NumberDigits), or "" (no number) when to names none or p lists no senders.
func (p Policy) recordedNumber(to string) string {
	if len(p.Senders) == 0 {
		return ""
	}
	return NumberDigits(to)
}

// numbersFor returns the recorded numbers whose windows count for a send from sender (E.164;
// "" when the send names none, which is the only sender when p lists one): the sender's own,
// and "" (no number) when UnnamedCounts. A send that names no number while p lists several
// counts no window (but with ScopeBusiness the one with no number). Sources and Record.For read windows through it alone.
func (p Policy) numbersFor(sender string) []string {
	n := NumberDigits(sender)
	if n == "" && len(p.Senders) == 1 {
		n = NumberDigits(p.Senders[0])
	}
	if len(p.Senders) == 0 {
		// Nothing was recorded under a number: the sender's number is not told apart.
		n = ""
	}
	var out []string
	if n != "" {
		out = append(out, n)
	}
	if p.UnnamedCounts(sender) {
		out = append(out, "")
	}
	return out
}

// Source is where one recorded window that counts for a send is kept: a bucket key and a
// field, whose value is unix seconds of the customer's last inbound message.
type Source struct {
	Key, Field string
}

// Sources returns where the windows that count for a send from sender to the customer known
// by ids are kept, for a script that decides on them (the daily tier's reservation: the keys
// share the business hash tag with the limit keys). A window is open while any of them is.
func (p Policy) Sources(business, sender string, ids ...string) []Source {
	var out []Source
	for _, n := range p.numbersFor(sender) {
		for _, id := range ids {
			key, f := Locate(business, id)
			if f == "" {
				continue
			}
			s := Source{Key: key, Field: FieldTo(f, n)}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// NumberDigits returns a business number's digits, as a window records it: an E.164 number
// with or without its '+' (spaces around it ignored); "" for anything else (no number).
func NumberDigits(number string) string {
	d := strings.TrimPrefix(strings.TrimSpace(number), "+")
	if d == "" || len(d) > 15 || !allDigits(d) {
		return ""
	}
	return d
}

// FieldTo returns the hash field of a customer's window to a business number: the
// customer's field (Field), '>' and the number's digits (NumberDigits); the customer's field
// alone when number is "" (no number known). Neither a phone's digits nor a BSUID holds a
// '>', so no customer's field is another's window to a number.
func FieldTo(customerField, number string) string {
	if number == "" {
		return customerField
	}
	return customerField + ">" + number
}
