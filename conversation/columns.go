package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// Audience columns for follow-ups. The receiver that renders a follow-up has no audience
// file, so the values of the columns a campaign's on_reply rules read
// (campaigns.OnReply.Columns) travel with each send (SendPayload.ReplyCols) and are stored
// for the recipient in the run just before the request, next to the index record:
//
//	herald:run:{RUN}:rc:N  hash, N the recipient's ledger bucket: recipient field (phone
//	                       digits, or the BSUID) → the values as a JSON array; "#" → the
//	                       column names as a JSON array, in the same order
//
// A bucket holds about 64 recipients, so it stays in Redis's compact listpack encoding while
// every value is under 64 bytes. Each key expires ColumnsMargin after the run's
// on_reply.until: no reply triggers a rule after it. Runs whose rules read no column store
// nothing.

// ColumnsMargin is how long the stored columns outlive the run's on_reply.until, for a reply
// sent before until whose webhook arrives (or is delivered again) after it.
const ColumnsMargin = 24 * time.Hour

// columnsHeader is the bucket field holding the column names.
const columnsHeader = "#"

// Columns stores and reads the recipients' audience columns of runs.
type Columns struct {
	rdb redis.UniversalClient
}

// NewColumns returns the column store on rdb.
func NewColumns(rdb redis.UniversalClient) *Columns { return &Columns{rdb: rdb} }

// Save stores cols for the recipient at a (its run, ledger bucket and ledger key), until
// expireAt. It is one round trip (one MULTI on one key); empty cols store nothing. It returns
// an error wrapping ErrNoRecipient for an empty recipient, or the Redis error.
func (c *Columns) Save(ctx context.Context, a ledger.Address, cols map[string]string, expireAt time.Time) error {
	if len(cols) == 0 {
		return nil
	}
	field := servicewindow.Field(a.Recipient)
	if field == "" || a.Run == "" {
		return fmt.Errorf("conversation: save columns: %w", ErrNoRecipient)
	}
	names := slices.Sorted(maps.Keys(cols))
	vals := make([]string, len(names))
	for i, n := range names {
		vals[i] = cols[n]
	}
	header, err := json.Marshal(names)
	if err != nil {
		return fmt.Errorf("conversation: save columns: %w", err)
	}
	row, err := json.Marshal(vals)
	if err != nil {
		return fmt.Errorf("conversation: save columns: %w", err)
	}
	key := rkeys.ReplyColumns(a.Run, a.Bucket)
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, field, row, columnsHeader, header)
		p.ExpireAt(ctx, key, expireAt)
		return nil
	})
	if err != nil {
		return fmt.Errorf("conversation: save columns: %w", err)
	}
	return nil
}

// Load returns the columns stored for the recipient at a, nil when none are (the run's rules
// read no column, the send never reached its request, or the key expired). It is one round
// trip.
func (c *Columns) Load(ctx context.Context, a ledger.Address) (map[string]string, error) {
	field := servicewindow.Field(a.Recipient)
	if field == "" {
		return nil, nil
	}
	v, err := c.rdb.HMGet(ctx, rkeys.ReplyColumns(a.Run, a.Bucket), field, columnsHeader).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("conversation: load columns: %w", err)
	}
	if len(v) < 2 {
		return nil, nil
	}
	row, _ := v[0].(string)
	header, _ := v[1].(string)
	if row == "" || header == "" {
		return nil, nil
	}
	var names, vals []string
	if json.Unmarshal([]byte(header), &names) != nil || json.Unmarshal([]byte(row), &vals) != nil || len(names) != len(vals) {
		// Written under other names (a campaign file changed in the middle of its run):
		// read as missing rather than give a column another's value.
		return nil, nil
	}
	out := make(map[string]string, len(names))
	for i, n := range names {
		out[n] = vals[i]
	}
	return out, nil
}
