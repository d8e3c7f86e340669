package ledger

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// The suppression list.
//
// One hash, recipient -> "reason|unix ms|scope": who opted out, why (the opt-out code, or
// what opted them out: a STOP, an on_reply rule), since when, and of what (Scope). A person
// who stopped marketing messages (Meta 131050) is suppressed for marketing only and still
// gets utility and authentication templates; every other opt-out stops every message. The
// classification table decides which (connectly.Rule.MarketingOnly, read by ScopeOf). An
// entry written before scopes ("reason|unix ms") reads with its reason's scope: every
// message, but marketing only for 131050, which is what that code means. New entries keep
// the shape old readers took for "on the list" (any value is).

// SkipSuppressed is the skip reason of a recipient on the suppression list (Suppress): at
// expansion (planned skipped, no task), for a reply's follow-up, and at send time, when the
// person opted out after the task was planned (no request was made).
const SkipSuppressed = "suppressed"

// Scope is what an entry of the suppression list blocks.
type Scope string

const (
	// ScopeAll blocks every message: the person opted out of the business's messages (an
	// opt-out answer, a STOP, an on_reply rule with suppress: true).
	ScopeAll Scope = "all"
	// ScopeMarketing blocks marketing messages only: the person stopped marketing messages
	// (Meta 131050). Utility and authentication templates still go.
	ScopeMarketing Scope = "marketing"
)

// ScopeOf is the scope of an entry put on the list for reason: marketing only for an opt-out
// code the classification table marks so (connectly.Rule.MarketingOnly: Meta 131050), every
// message for any other reason.
func ScopeOf(reason string) Scope {
	if connectly.MarketingOnlyOptOut(reason) {
		return ScopeMarketing
	}
	return ScopeAll
}

// MarketingCategory reports whether a template of category counts as marketing for the
// suppression list: every category but utility and authentication, so an empty or unknown
// one counts (the safe reading).
func MarketingCategory(category string) bool {
	return category != "utility" && category != "authentication"
}

// Suppression is a recipient's entry on the suppression list; the zero Suppression is no
// entry.
type Suppression struct {
	// Scope is what the entry blocks; "" when the recipient is not on the list.
	Scope Scope
	// Reason is the opt-out code, or what opted the person out.
	Reason string
	// At is when the entry was written (zero when it does not say).
	At time.Time
}

// Listed reports whether the recipient is on the list, for any message.
func (s Suppression) Listed() bool { return s.Scope != "" }

// Blocks reports whether the entry stops a send; marketing says whether the send counts as
// marketing (a template by its category, MarketingCategory).
func (s Suppression) Blocks(marketing bool) bool {
	return s.Scope == ScopeAll || (s.Scope == ScopeMarketing && marketing)
}

// Covers reports whether the entry blocks at least what an entry of scope sc blocks.
func (s Suppression) Covers(sc Scope) bool {
	return s.Scope == ScopeAll || (s.Scope == ScopeMarketing && sc == ScopeMarketing)
}

// String says what the entry blocks, why and since when, as `recipient explain` shows it:
// "for marketing (131050) since 2026-01-02T03:04:05Z".
func (s Suppression) String() string {
	if !s.Listed() {
		return "not suppressed"
	}
	out := "for every message"
	if s.Scope == ScopeMarketing {
		out = "for marketing"
	}
	if s.Reason != "" {
		out += " (" + s.Reason + ")"
	}
	if !s.At.IsZero() {
		out += " since " + s.At.UTC().Format(time.RFC3339)
	}
	return out
}

// parseSuppression reads a value of the list: "reason|ms|scope", or, written before scopes,
// "reason|ms" (the scope of its reason, ScopeOf). A scope this version does not know reads
// as every message.
func parseSuppression(v string) Suppression {
	rest, scope := v, Scope("")
	if i := strings.LastIndexByte(v, '|'); i >= 0 && strings.Count(v, "|") >= 2 {
		switch sc := Scope(v[i+1:]); sc {
		case ScopeAll, ScopeMarketing:
			rest, scope = v[:i], sc
		}
	}
	s := Suppression{Reason: rest}
	if i := strings.LastIndexByte(rest, '|'); i >= 0 {
		s.Reason = rest[:i]
		if ms, err := strconv.ParseInt(rest[i+1:], 10, 64); err == nil {
			s.At = time.UnixMilli(ms).UTC()
		}
	}
	if scope == "" {
		scope = ScopeOf(s.Reason)
	}
	s.Scope = scope
	return s
}

// suppressionOf reads one HMGET/HGET value of the list (nil: not on it).
func suppressionOf(v any) Suppression {
	s, ok := v.(string)
	if !ok {
		return Suppression{}
	}
	return parseSuppression(s)
}

//go:embed lua/suppress.lua
var suppressLua string

// suppressCmd puts a recipient on the suppression list, widening its entry and never
// narrowing it. Its KEYS, ARGV and reply are documented at the top of lua/suppress.lua.
var suppressCmd = redis.NewScript(suppressLua)

// Suppress puts recipient on the suppression list, which every later expansion, send and
// follow-up reads, with reason (the opt-out code, or what opted the person out) and the time.
// The entry's scope is reason's (ScopeOf): marketing only for Meta 131050, every message
// otherwise. An entry only widens: a recipient on the list keeps its entry (its reason and
// time) unless the new one blocks more, and concurrent writers cannot narrow it (one script).
func (l *Ledger) Suppress(ctx context.Context, recipient, reason string) error {
	scope := ScopeOf(reason)
	v := reason + "|" + strconv.FormatInt(l.nowMS(), 10) + "|" + string(scope)
	if err := suppressCmd.Run(ctx, l.rdb, []string{rkeys.Suppressed()}, recipient, v, string(scope)).Err(); err != nil {
		return fmt.Errorf("ledger: suppress: %w", err)
	}
	return nil
}

// Suppressions returns, for each recipient, its entry on the suppression list (the zero
// Suppression when it has none).
func (l *Ledger) Suppressions(ctx context.Context, recipients []string) ([]Suppression, error) {
	out := make([]Suppression, len(recipients))
	if len(recipients) == 0 {
		return out, nil
	}
	vals, err := l.rdb.HMGet(ctx, rkeys.Suppressed(), recipients...).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: read suppression list: %w", err)
	}
	for i, v := range vals {
		out[i] = suppressionOf(v)
	}
	return out, nil
}

// Suppressed reports, for each recipient, whether it is on the suppression list, for any
// message (Suppressions says for which).
func (l *Ledger) Suppressed(ctx context.Context, recipients []string) ([]bool, error) {
	ss, err := l.Suppressions(ctx, recipients)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ss))
	for i, s := range ss {
		out[i] = s.Listed()
	}
	return out, nil
}

// SuppressedCmd is a read of the suppression list queued in a pipeline (SuppressedIn); read
// it with Result after the pipeline ran.
type SuppressedCmd struct{ cmd *redis.StringCmd }

// SuppressedIn queues, in p, the read of recipient's entry (a ledger recipient: "+digits" or
// "bsuid:<id>") on the suppression list, so a send can learn it in the round trip of its
// claim. The list is one hash with no hash tag: on Redis Cluster it lives in a slot of its
// own, which a pipeline may mix with the claim's (a script could not read it).
func (l *Ledger) SuppressedIn(ctx context.Context, p redis.Pipeliner, recipient string) *SuppressedCmd {
	return &SuppressedCmd{cmd: p.HGet(ctx, rkeys.Suppressed(), recipient)}
}

// Result returns the recipient's entry on the suppression list (the zero Suppression when it
// has none).
func (c *SuppressedCmd) Result() (Suppression, error) {
	v, err := c.cmd.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return Suppression{}, nil
	case err != nil:
		return Suppression{}, fmt.Errorf("ledger: read suppression list: %w", err)
	}
	return parseSuppression(v), nil
}
