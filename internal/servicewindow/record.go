package servicewindow

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Record is everything Herald recorded of one customer's service windows: one window per
// business number they wrote to, and the one recorded with no number.
type Record struct {
	// Numbers are the customer's windows to each business number they wrote to (Window.To),
	// the latest of the customer's ids for each, ordered by number.
	Numbers []Window `json:"numbers"`
	// Unnamed is the window recorded with no business number (inbound events that named
	// none, and windows recorded before Herald told numbers apart); zero times when none.
	Unnamed Window `json:"unnamed"`
}

// Latest is the customer's latest window, to any number or none: the time of their last
// inbound message to the business.
func (r Record) Latest() Window {
	return Latest(append([]Window{r.Unnamed}, r.Numbers...))
}

// For is the window of r that counts for a send from business number sender (E.164; "" when
// the send names none) under p, as Tracker.Lookup reads it.
func (r Record) For(p Policy, sender string) Window {
	var ws []Window
	for _, n := range p.numbersFor(sender) {
		if n == "" {
			ws = append(ws, r.Unnamed)
			continue
		}
		for _, w := range r.Numbers {
			if w.To == numberOf(n) {
				ws = append(ws, w)
			}
		}
	}
	return Latest(ws)
}

// Record reads every window recorded of the customer known by ids in business: the whole
// bucket of each id (a few dozen fields, those of the customer's bucket mates included), in
// one round trip. It is for people (`window show`, `recipient explain`), not for the send
// path, which reads only the windows that count (Lookup, Policy.Sources).
func (t *Tracker) Record(ctx context.Context, business string, ids []string) (Record, error) {
	keys, fields := t.locateAll(business, ids)
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	if len(keys) > 0 {
		_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.HGetAll(ctx, k)
			}
			return nil
		})
		if err != nil {
			return Record{}, fmt.Errorf("servicewindow: record: %w", err)
		}
	}
	now := t.now()
	var r Record
	byNumber := map[string]Window{}
	for i, f := range fields {
		id := idOf(ids, f)
		for field, v := range cmds[i].Val() {
			w := Window{ID: id}
			switch rest, ok := strings.CutPrefix(field, f); {
			case !ok:
				continue
			case rest == "":
			case rest[0] == '>' && NumberDigits(rest[1:]) == rest[1:]:
				w.To = numberOf(rest[1:])
			default:
				continue
			}
			if w.set(v, now); w.ClosesAt.IsZero() {
				continue
			}
			if w.To == "" {
				r.Unnamed = Latest([]Window{r.Unnamed, w})
			} else {
				byNumber[w.To] = Latest([]Window{byNumber[w.To], w})
			}
		}
	}
	for _, w := range byNumber {
		r.Numbers = append(r.Numbers, w)
	}
	slices.SortFunc(r.Numbers, func(a, b Window) int { return cmp.Compare(a.To, b.To) })
	return r, nil
}

// idOf is the id of ids whose field is f.
func idOf(ids []string, f string) string {
	for _, id := range ids {
		if Field(id) == f {
			return id
		}
	}
	return f
}
