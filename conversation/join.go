package conversation

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// The join: which run entry a reply belongs to.
//
// A button or list reply to Herald's message carries the message's callbackData
// ({herald_run, herald_to, herald_b}), which names the entry exactly. Plain text, media and
// replies whose callbackData was lost carry only the customer's number or BSUID. For those,
// the worker records each accepted send of a campaign with on_reply in a per-business index
// of recent sends, and the join takes the newest run there that messaged the customer and
// whose on_reply.until has not passed.
//
// # The index
//
//	herald:conv:{BUSINESS}:r:N   hash, N of rkeys.ServiceWindowBuckets (the customer service
//	                             windows' buckets, same hash of the field): customer field
//	                             (phone digits, or BSUID) → "SEQ:LEDGERBUCKET ...", newest
//	                             first, at most MaxRecentRuns
//	herald:conv:{BUSINESS}:runs  hash: run id → SEQ
//	herald:conv:{BUSINESS}:seq   hash: SEQ → "RUN|UNTIL" (unix s), "#" → the last SEQ
//
// Runs are numbered so a customer's entry stays a few bytes ("17:42 9:3") and its bucket in
// Redis's compact listpack encoding (values under 64 bytes) whatever the run ids' length.
// Memory is bounded by the customers messaged by runs still answerable: a record drops the
// customer's dead entries, a customer joining a bucket drops the bucket's dead customers, a
// new run drops the runs past their until, and every key expires a minute after the latest
// until it holds. The whole record is one script (record.lua), one round trip, on keys that
// share the business hash tag.
//
// Only the recipient the run sent to is recorded (its phone, or its BSUID for a BSUID-only
// row); a reply that names the customer only by the other id is not joined through the
// index.

// MaxRecentRuns is how many runs the index keeps per customer.
const MaxRecentRuns = 3

// How a reply was joined to its entry.
const (
	// ViaCallback: Herald's callbackData in the reply named the entry.
	ViaCallback = "callback"
	// ViaRecent: the index of recent sends gave the customer's newest answerable run.
	ViaRecent = "recent"
)

// Entry is the run entry a reply belongs to: the ledger's (run, bucket, recipient).
type Entry struct {
	Run string `json:"run"`
	// Bucket is the entry's ledger bucket.
	Bucket int `json:"bucket"`
	// Recipient is the entry's ledger key: "+" and digits, or "bsuid:<id>".
	Recipient string `json:"recipient"`
	// Via is ViaCallback or ViaRecent.
	Via string `json:"via"`
}

//go:embed record.lua
var recordLua string

var recordCmd = redis.NewScript(recordLua)

// ErrNoRecipient is wrapped by Record when the recipient names no customer.
var ErrNoRecipient = errors.New("no recipient")

// Index is a business's index of recent sends, for the join.
type Index struct {
	rdb      redis.UniversalClient
	business string
	now      func() time.Time
}

// NewIndex returns the index of business on rdb; now is its clock (nil: time.Now).
func NewIndex(rdb redis.UniversalClient, business string, now func() time.Time) *Index {
	if now == nil {
		now = time.Now
	}
	return &Index{rdb: rdb, business: business, now: now}
}

// Record notes that run's message to recipient (its ledger key, in ledger bucket bucket) was
// accepted, so that replies until until join to it. A until not after now records nothing.
// It is one round trip; it returns an error wrapping ErrNoRecipient for an empty recipient,
// or the Redis error.
func (x *Index) Record(ctx context.Context, run string, bucket int, recipient string, until time.Time) error {
	field := servicewindow.Field(recipient)
	if field == "" || run == "" {
		return fmt.Errorf("conversation: record: %w", ErrNoRecipient)
	}
	keys := []string{
		rkeys.ConversationRecent(x.business, servicewindow.BucketOf(field)),
		rkeys.ConversationRuns(x.business),
		rkeys.ConversationSeqs(x.business),
	}
	err := recordCmd.Run(ctx, x.rdb, keys, field, run, until.Unix(), x.now().Unix(), bucket, MaxRecentRuns).Err()
	if err != nil {
		return fmt.Errorf("conversation: record: %w", err)
	}
	return nil
}

// Join returns the entry r belongs to: the one its callbackData names, else the newest
// answerable run in the index of recent sends that messaged the customer under any of their
// ids (the run numbered last wins). ok is false when neither gives one. It costs no round
// trip for a callback join and two otherwise.
func (x *Index) Join(ctx context.Context, r Reply) (e Entry, ok bool, err error) {
	if cb := r.Callback; cb != nil {
		return Entry{Run: cb.Run, Bucket: cb.Bucket, Recipient: cb.Recipient, Via: ViaCallback}, true, nil
	}
	ids := r.From.Keys()
	if len(ids) == 0 {
		return Entry{}, false, nil
	}
	fields := make([]string, 0, len(ids))
	cmds := make([]*redis.StringCmd, 0, len(ids))
	_, err = x.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			field := servicewindow.Field(id)
			fields = append(fields, field)
			cmds = append(cmds, p.HGet(ctx, rkeys.ConversationRecent(x.business, servicewindow.BucketOf(field)), field))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Entry{}, false, fmt.Errorf("conversation: join: %w", err)
	}
	type cand struct {
		seq    int64
		bucket int
		field  string
	}
	var cands []cand
	var seqs []string
	for i, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return Entry{}, false, fmt.Errorf("conversation: join: %w", err)
		}
		for _, item := range strings.Fields(v) {
			s, b, found := strings.Cut(item, ":")
			seq, err1 := strconv.ParseInt(s, 10, 64)
			bucket, err2 := strconv.Atoi(b)
			if !found || err1 != nil || err2 != nil {
				continue
			}
			cands = append(cands, cand{seq, bucket, fields[i]})
			seqs = append(seqs, s)
		}
	}
	if len(cands) == 0 {
		return Entry{}, false, nil
	}
	runs, err := x.rdb.HMGet(ctx, rkeys.ConversationSeqs(x.business), seqs...).Result()
	if err != nil {
		return Entry{}, false, fmt.Errorf("conversation: join: %w", err)
	}
	now := x.now().Unix()
	var best *cand
	for i := range cands {
		v, _ := runs[i].(string)
		run, until, found := strings.Cut(v, "|")
		u, err := strconv.ParseInt(until, 10, 64)
		if !found || err != nil || u <= now || run == "" {
			continue
		}
		if best == nil || cands[i].seq > best.seq {
			best = &cands[i]
			e = Entry{Run: run, Bucket: best.bucket, Recipient: recipientOf(best.field), Via: ViaRecent}
		}
	}
	return e, best != nil, nil
}

// recipientOf returns the ledger key of an index field: "+" and the digits of a phone, or
// "bsuid:" and a BSUID.
func recipientOf(field string) string {
	for i := 0; i < len(field); i++ {
		if field[i] < '0' || field[i] > '9' {
			return "bsuid:" + field
		}
	}
	return "+" + field
}
