package ledger

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/ulid"
)

// Ledger entry format. A run created by this version says format = "2" in its hash; its
// entries are smaller in two ways, each about 8 of the 64 bytes a recipient cost in Redis
// (MEMORY USAGE of 64-entry buckets of accepted entries):
//
//   - a phone recipient's field is its digits, without the "+": Redis keeps a canonical
//     integer in a listpack as a number, 10 bytes for "5511987654321" where
//     "+5511987654321" takes 16. A BSUID recipient ("bsuid:...") keeps its text.
//   - a message id that is a ULID (26 Crockford base-32 characters, what Connectly returns)
//     is kept as its 16 bytes behind a 0xFF byte: 17 bytes instead of 26. It is the entry's
//     last field, so the bytes may hold '|'; 0xFF never occurs in UTF-8 text, so other ids
//     stay as they are and reading needs no run.
//
// Runs created before keep "+" fields and text ids, and are read and written as they are,
// so an upgrade in the middle of a run changes nothing. Reading needs no run either way: a
// field of digits only is a phone number, anything else the recipient itself.

// format2 is the run hash's "format" value for runs with the compact entries above.
const format2 = "2"

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

// packedMarker starts a packed ULID.
const packedMarker = 0xFF

// packMessageID returns a ULID's 17-byte form; any other id is returned as it is.
func packMessageID(id string) string {
	hi, lo, ok := ulid.Parse(id)
	if !ok {
		return id
	}
	var b [17]byte
	b[0] = packedMarker
	binary.BigEndian.PutUint64(b[1:9], hi)
	binary.BigEndian.PutUint64(b[9:], lo)
	return string(b[:])
}

// unpackMessageID reverses packMessageID.
func unpackMessageID(v string) string {
	if len(v) != 17 || v[0] != packedMarker {
		return v
	}
	return ulid.Format(binary.BigEndian.Uint64([]byte(v[1:9])), binary.BigEndian.Uint64([]byte(v[9:])))
}

// runFormat tells how a run's entries are written.
type runFormat struct{ compact bool }

// field returns the ledger field of a recipient.
func (f runFormat) field(recipient string) string {
	if f.compact {
		if d, ok := digitField(recipient); ok {
			return d
		}
	}
	return recipient
}

// messageID returns a message id as the run's entries hold it.
func (f runFormat) messageID(id string) string {
	if f.compact {
		return packMessageID(id)
	}
	return id
}

// formatOf returns a run's entry format. It never changes for a run, so it is read once per
// run and process. For a run that does not exist it is the current format (what CreateRun
// would write), and not remembered.
func (l *Ledger) formatOf(ctx context.Context, runID string) (runFormat, error) {
	if v, ok := l.formats.Load(runID); ok {
		return v.(runFormat), nil
	}
	vals, err := l.rdb.HMGet(ctx, rkeys.Run(runID), "format", "status").Result()
	if err != nil {
		return runFormat{}, fmt.Errorf("ledger: read run %s: %w", runID, err)
	}
	if vals[1] == nil {
		return runFormat{compact: true}, nil
	}
	f := runFormat{compact: vals[0] == format2}
	l.formats.Store(runID, f)
	return f, nil
}

// field returns the ledger field of a recipient in a run.
func (l *Ledger) field(ctx context.Context, runID, recipient string) (string, error) {
	if _, ok := digitField(recipient); !ok {
		return recipient, nil
	}
	f, err := l.formatOf(ctx, runID)
	if err != nil {
		return "", err
	}
	return f.field(recipient), nil
}
