package ledger

import (
	"context"
	"fmt"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// Ledger fields. A bucket maps a recipient's field to its entry. A run created by this
// version (its hash says fields = "digits") stores a phone number's field as its digits,
// without the "+": Redis keeps a canonical integer in a bucket's listpack as a number, 10
// bytes for a Brazilian mobile where "+5511987654321" takes 16, which is about 8 of the 64
// bytes a recipient costs in Redis (measured with MEMORY USAGE on 64-entry buckets). A BSUID
// recipient ("bsuid:...") keeps its text. Runs created before keep "+" in their fields and
// are read and written as they are, so an upgrade in the middle of a run changes nothing.
//
// Decoding needs no run: a field of digits only is a phone number; anything else is the
// recipient itself.

// fieldsDigits is the run hash's "fields" value for runs whose phone fields are digits.
const fieldsDigits = "digits"

// digitField returns a phone number's digits when recipient is "+" and 1 to 18 digits with
// no leading zero (what Redis stores as an integer), else ok false.
func digitField(recipient string) (string, bool) {
	if len(recipient) < 2 || len(recipient) > 19 || recipient[0] != '+' || recipient[1] == '0' {
		return "", false
	}
	for i := 1; i < len(recipient); i++ {
		if recipient[i] < '0' || recipient[i] > '9' {
			return "", false
		}
	}
	return recipient[1:], true
}

// recipientOf decodes a ledger field back into its recipient.
func recipientOf(field string) string {
	if field == "" || field[0] < '1' || field[0] > '9' {
		return field
	}
	for i := 1; i < len(field); i++ {
		if field[i] < '0' || field[i] > '9' {
			return field
		}
	}
	return "+" + field
}

// digitFields reports whether a run stores phone fields as digits. The answer never changes
// for a run, so it is read once per run and process. For a run that does not exist it is
// true (what CreateRun would make), and not remembered.
func (l *Ledger) digitFields(ctx context.Context, runID string) (bool, error) {
	if v, ok := l.fieldsOf.Load(runID); ok {
		return v.(bool), nil
	}
	vals, err := l.rdb.HMGet(ctx, rkeys.Run(runID), "fields", "status").Result()
	if err != nil {
		return false, fmt.Errorf("ledger: read run %s: %w", runID, err)
	}
	if vals[1] == nil {
		return true, nil
	}
	digits := vals[0] == fieldsDigits
	l.fieldsOf.Store(runID, digits)
	return digits, nil
}

// field returns the ledger field of a recipient in a run.
func (l *Ledger) field(ctx context.Context, runID, recipient string) (string, error) {
	f, ok := digitField(recipient)
	if !ok {
		return recipient, nil
	}
	digits, err := l.digitFields(ctx, runID)
	if err != nil {
		return "", err
	}
	if !digits {
		return recipient, nil
	}
	return f, nil
}

// fieldsFunc returns a function giving the fields of many recipients of one run.
func (l *Ledger) fieldsFunc(ctx context.Context, runID string) (func(string) string, error) {
	digits, err := l.digitFields(ctx, runID)
	if err != nil {
		return nil, err
	}
	return func(recipient string) string {
		if !digits {
			return recipient
		}
		if f, ok := digitField(recipient); ok {
			return f
		}
		return recipient
	}, nil
}
