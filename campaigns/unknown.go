package campaigns

import (
	"fmt"
	"time"
)

// UnknownPolicy says what happens to recipients left unknown under at-most-once (the message
// may have gone out: a 5xx, or no answer after the request was written).
type UnknownPolicy struct {
	// ResendAfter is a quiet period (e.g. "30m", "1d"; ParseDuration): a recipient still unknown, with no delivery
	// event, this long after it became unknown is sent once more, and never again. Empty (the
	// default): unknown recipients are never resent.
	ResendAfter string `yaml:"resend_after"`
}

// MinResendAfter is the shortest quiet period unknown.resend_after accepts: delivery events
// for a message that did go out usually arrive within seconds, and a shorter wait would resend
// messages whose events are merely late.
const MinResendAfter = time.Minute

// ResendAfter returns the campaign's quiet period before an unknown recipient's one resend, or
// 0 when it never resends (no unknown.resend_after, or a value Parse refuses).
func (d *Definition) ResendAfter() time.Duration {
	if d.Unknown.ResendAfter == "" || d.Delivery == "at-least-once" {
		return 0
	}
	v, err := ParseDuration(d.Unknown.ResendAfter)
	if err != nil || v < MinResendAfter {
		return 0
	}
	return v
}

// validateUnknown checks the unknown section; it runs after delivery has its default.
func (d *Definition) validateUnknown(add func(field, msg string)) {
	s := d.Unknown.ResendAfter
	if s == "" {
		return
	}
	if v, err := ParseDuration(s); err != nil {
		add("unknown.resend_after", fmt.Sprintf("%q is not a duration (e.g. 30m, 2h, 1d)", s))
	} else if v < MinResendAfter {
		add("unknown.resend_after", fmt.Sprintf("%q: want at least 1m (delivery events for a message that went out can take that long)", s))
	}
	if d.Delivery == "at-least-once" {
		add("unknown.resend_after", "only with delivery: at-most-once (at-least-once already sends again every recipient whose answer was lost)")
	}
}
