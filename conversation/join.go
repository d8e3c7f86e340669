package conversation

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/ulid"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// The join: which run entry a reply belongs to.
//
// A button or list reply to Herald's message carries the message's callbackData ({herald_run,
// herald_to, herald_b}), which names the entry exactly, unless it names another customer than
// the reply's sender (ForeignCallback): then the reply is joined as one without it. Plain text,
// media and replies whose callbackData was lost carry only the customer's number or BSUID, and
// perhaps the id of the message they answer (context.replyToId). For those, the worker records
// each send of a campaign with on_reply, and of its follow-ups under the run they follow, in a
// per-business index of recent sends, just before its request. The join's candidates are the
// runs there that messaged the customer and whose on_reply.until has not passed, the run that
// messaged the customer last first (see Join): a reply that names the message it answers joins
// the first candidate whose ledger entry for the customer recorded that message id
// (ViaReplyTo), and any other reply, or one naming no candidate's message, the first candidate
// (ViaRecent) that had messaged the customer when the reply was written (Join's lower bound).
//
// # The index
//
//	herald:conv:{BUSINESS}:r:N   hash, N of rkeys.ServiceWindowBuckets (the customer service
//	                             windows' buckets, same hash of the field): customer field
//	                             (phone digits, or BSUID) → "SEQ:LEDGERBUCKET +LEFT ...",
//	                             the run that messaged the customer last first, at most
//	                             MaxRecentRuns; LEFT is the seconds the run had left before its
//	                             until when it last messaged them (UNTIL less LEFT is when)
//	herald:conv:{BUSINESS}:runs  hash: run id → SEQ
//	herald:conv:{BUSINESS}:seq   hash: SEQ → "RUN|UNTIL" (unix s), "#" → the last SEQ
//
// Runs are numbered so a customer's entry stays a few bytes ("17:42 +259200 9:3 +86400") and
// its bucket in Redis's compact listpack encoding (values under 64 bytes) whatever the run
// ids' length; the time is kept as LEFT, at most 30 days (7 digits), for the same reason.
// LEFT is a token of its own so that each run's item stays SEQ:LEDGERBUCKET, all an older
// Herald reads: its receiver takes the text after an item's first ':' as the bucket and skips
// a token without ':', and in a rolling deploy the workers, which record, run the newer
// Herald before the receiver, which joins (see parseRecent). An older Herald's record keeps
// the items and drops the LEFT tokens; an item without LEFT ("17:42") counts as of its run's
// creation. Items written SEQ:LEDGERBUCKET:LEFT (one build did) are read too, and a record
// rewrites them.
// Memory is bounded by the customers messaged by runs still answerable: a record drops the
// customer's dead entries, a customer joining a bucket drops the bucket's dead customers, a
// new run drops the runs past their until, and every key expires a minute after the latest
// until it holds. The whole record is one script (lua/record.lua), one round trip, on keys that
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
	// ViaReplyTo: the reply named the message it answers (context.replyToId), and of the
	// customer's answerable runs in the index of recent sends, the one that messaged them last
	// whose ledger entry recorded that message id was taken.
	ViaReplyTo = "reply_to"
	// ViaRecent: the index of recent sends gave the customer's answerable run that messaged
	// them last.
	ViaRecent = "recent"
)

// Entry is the run entry a reply belongs to: the ledger's (run, bucket, recipient).
type Entry struct {
	Run string `json:"run"`
	// Bucket is the entry's ledger bucket.
	Bucket int `json:"bucket"`
	// Recipient is the entry's ledger key: "+" and digits, or "bsuid:<id>".
	Recipient string `json:"recipient"`
	// Via is ViaCallback, ViaReplyTo or ViaRecent.
	Via string `json:"via"`
}

//go:embed lua/record.lua
var recordLua string

// recordCmd records a run's accepted message to a customer in the index of recent sends
// (lua/record.lua; its KEYS/ARGV contract is at its top).
var recordCmd = redis.NewScript(recordLua)

// ErrNoRecipient is wrapped by Record when the recipient names no customer.
var ErrNoRecipient = errors.New("no recipient")

// Index is a business's index of recent sends, for the join.
type Index struct {
	rdb      redis.UniversalClient
	business string
	now      func() time.Time
	// ledger reads the candidate entries of a reply that names the message it answers.
	ledger *ledger.Ledger
}

// NewIndex returns the index of business on rdb; now is its clock (nil: time.Now).
func NewIndex(rdb redis.UniversalClient, business string, now func() time.Time) *Index {
	if now == nil {
		now = time.Now
	}
	return &Index{rdb: rdb, business: business, now: now, ledger: ledger.New(rdb, now)}
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

// Join returns the entry r belongs to: the one its callbackData names; else, among the
// answerable runs in the index of recent sends that messaged the customer under any of their
// ids, taken in the order they last messaged the customer (the order, below), the first whose
// entry recorded the message r answers (ReplyTo), else the first whose message reached the
// customer (Reached) before r was written (the lower bound, below), else the first whose
// request to them is still out (submitting). ok is false when none gives one. It costs no round
// trip for a callback join and three for any other (its third reads the candidates' ledger
// entries, all in one pipeline).
//
// The order: the run that messaged the customer last comes first, its follow-ups counted
// (the worker records a follow-up's send under the run it follows). Not the run started last:
// a customer messaged by runs D1 and then D2 who taps D1's button and is asked a question by
// D1's follow-up answers D1 when they type the answer, and D1's rules answer it; joined to
// D2, D2's rule would answer a question D2 never asked, and later have no answer left for
// D2's own. A phone's and a BSUID's runs are merged by those times. For a reply with a time, a
// run that last messaged the customer after the reply was written (a follow-up sent since)
// counts by the time of its own message (the ULID of its message id, else its run's creation),
// the latest of its messages the reply can have seen that the ledger knows of.
//
// A run whose message cannot have reached the customer is passed over: its entry failed (at
// the send or in delivery), was skipped, or waits for a request (planned, or queued for a
// retry). The index records a send just before its request, so a newer run's message that
// was then refused is in it; joined to that run, a typed answer to an older run's message
// would find nothing to answer (Followups.Reply answers only an entry that may have reached
// the customer), and the join is pinned for every copy of the reply.
//
// This is the one place that decides what a reply naming no message does with a run whose
// request to the customer is still out (its entry submitting: the request in flight, its
// accept not yet recorded, or its worker dead holding the claim). Its message is not known to
// have reached the customer: it may yet be refused. So such a run is passed over for an older
// one that did reach them, which answers the reply, and is taken only when no run reached
// them, since then it is the only one whose message the reply can answer (and if it is
// refused after all, no run had anything to answer). The reply is not held until the send
// settles: a typed answer to a message whose request is still out is rarely possible (the
// message has not been accepted yet, let alone delivered and read), so it answers an older
// message, and holding it would need the whole inbound message parked beside the delivery
// events, replayed through the reply handler and counted late. The cost is the rare reply to a
// message whose worker died after its request went out: it joins the older run that reached
// the customer, not the one it answers.
//
// The lower bound: a reply with a time (the webhook's timestamp, whole seconds) is not joined
// to a run whose message to the customer was sent after it, which it cannot answer (a copy of
// a webhook delivered again after a newer run messaged the customer, say). A message is sent
// after the reply when the creation time in its provider id (a ULID, as Connectly's are) is
// past the reply's second by more than ReplyClockSlack, or, for an entry whose message time
// is not known yet (its request out, or its accept not yet recorded), when its run was
// created after the reply (see sentAfter). An entry whose message id holds no time (not a
// ULID), and every entry for a reply without a time, are taken as before the lower bound: the
// run that messaged the customer last wins. A reply naming its message (ReplyTo) joins the run
// that sent that message whatever the times say.
//
// A callbackData that names another customer than the reply's sender (ForeignCallback) is
// not trusted: the reply is joined as if it had none, so the sender's own run, if any, gets
// it and the customer the callbackData names gets no follow-up they did not ask for.
func (x *Index) Join(ctx context.Context, r Reply) (e Entry, ok bool, err error) {
	if cb := r.Callback; cb != nil && !ForeignCallback(r) {
		return Entry{Run: cb.Run, Bucket: cb.Bucket, Recipient: cb.Recipient, Via: ViaCallback}, true, nil
	}
	cands, err := x.candidates(ctx, r.From.Keys())
	if err != nil || len(cands) == 0 {
		return Entry{}, false, err
	}
	entries, starts, err := x.entries(ctx, cands)
	if err != nil {
		return Entry{}, false, err
	}
	order := joinOrder(cands, entries, starts, r.At)
	if r.ReplyTo != "" {
		for _, i := range order {
			if entries[i].MessageID == r.ReplyTo {
				e = cands[i].Entry
				e.Via = ViaReplyTo
				return e, true, nil
			}
		}
	}
	// The first candidate that reached the customer, else the first still being sent.
	pick, sending := -1, -1
	for _, i := range order {
		le := entries[i]
		if !r.At.IsZero() && sentAfter(le, starts[i], r.At) {
			continue
		}
		if Reached(le) {
			pick = i
			break
		}
		if MayBeOut(le) && sending < 0 {
			sending = i
		}
	}
	if pick < 0 {
		pick = sending
	}
	if pick < 0 {
		return Entry{}, false, nil
	}
	e = cands[pick].Entry
	e.Via = ViaRecent
	return e, true, nil
}

// candidate is an answerable run of the index that messaged the customer, and when it last
// did (zero when the index does not say: an entry an older Herald wrote).
type candidate struct {
	Entry
	last time.Time
	// pos is the run's place in the customer's entry under its id (0: the last to message
	// them), and seq its number in the index.
	pos int
	seq int64
}

// joinOrder returns the indexes of cands in the order Join tries them (see its order): by the
// time each last messaged the customer, the latest first, as a reply written at at (zero: no
// time) can have seen it; entries[i] and starts[i] are cands[i]'s ledger entry and its run's
// creation. Times are whole seconds: within a second, runs go as each id's entry has them
// (recorded in the order they messaged the customer), then the run numbered last first (two
// ids, or entries of an older Herald, which have no time), then as the ids are given.
func joinOrder(cands []candidate, entries []ledger.Entry, starts []time.Time, at time.Time) []int {
	seen := make([]time.Time, len(cands))
	order := make([]int, len(cands))
	for i, c := range cands {
		order[i] = i
		seen[i] = c.last
		if seen[i].IsZero() {
			// Recorded by an older Herald, which ordered runs as they were numbered: the run's
			// creation orders it among the others much as its number did.
			seen[i] = starts[i]
		}
		if at.IsZero() || !seen[i].After(at.Add(time.Second+ReplyClockSlack)) {
			continue
		}
		// The run messaged the customer again after the reply was written: the reply answers
		// an earlier message of it, its own message at the latest that the ledger can date.
		if sent, ok := ulid.Time(entries[i].MessageID); ok && !MayBeOut(entries[i]) {
			seen[i] = sent
		} else {
			seen[i] = starts[i]
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(seen[b].Compare(seen[a]), cmp.Compare(cands[a].pos, cands[b].pos), cmp.Compare(cands[b].seq, cands[a].seq))
	})
	return order
}

// ForeignCallback reports whether r's callbackData names another customer than the one who
// sent r: webhooks.ForeignCallback, the one rule the webhook receiver also counts the reply's
// statistics by. Only a positive contradiction counts (the callbackData's recipient is a phone
// and the sender's phone is given and another, or a BSUID and the sender's BSUID is given and
// another); a sender known by one kind of id only contradicts nothing.
func ForeignCallback(r Reply) bool {
	return webhooks.ForeignCallback(r.From, r.Callback)
}

// Reached reports whether the message of ledger entry le reached the customer, as far as the
// ledger knows: it was accepted (accepted, sent, delivered, read) or may have gone out
// (unknown). An entry that failed (at the send or in delivery), was skipped, waits for its
// request (planned, queued), is still being sent (submitting: it may yet be refused) or is
// not found has not.
func Reached(le ledger.Entry) bool {
	switch le.State {
	case ledger.Unknown, ledger.Accepted, ledger.Sent, ledger.Delivered, ledger.Read:
		return true
	}
	return false
}

// Answerable reports whether a reply joined to ledger entry le may answer its message: the
// message reached the customer (Reached), or a request of it may have gone out with its outcome
// not final (MayBeOut). A reply joins such an entry only when it names it (its callbackData:
// the customer tapped the message itself) or when no run reached the customer (see Join);
// either way what the entry sent may be what the reply answers.
//
// named says the reply names the entry's message (joined ViaCallback or ViaReplyTo): the
// customer has it, which proves it reached them, so a delivery failure recorded for it (a
// failed entry with a message id: Connectly took the message, then reported it undelivered)
// does not make the reply unanswerable. A send that failed (no message id) still does.
func Answerable(le ledger.Entry, named bool) bool {
	return Reached(le) || MayBeOut(le) || (named && le.State == ledger.Failed && le.MessageID != "")
}

// MayBeOut reports whether a request of ledger entry le may have sent its message while the
// ledger records no final outcome: its request is in flight or its accept not yet recorded
// (submitting), or an earlier request's answer left it unknown whether the message went (a 5xx
// after Connectly sent it, say) and the entry waits for another attempt (queued with attempts:
// an at-least-once retry, or the resend of an unknown recipient). A customer may already hold
// that message and answer it; a reply that waited for the next attempt would get no answer if
// that attempt failed, and none at all once the receiver had said 200 to it.
func MayBeOut(le ledger.Entry) bool {
	return le.State == ledger.Submitting || (le.State == ledger.Queued && le.Attempts > 0)
}

// Named reports whether a reply joined via via names the message it answers: its callbackData
// (ViaCallback) or context.replyToId (ViaReplyTo).
func Named(via string) bool { return via == ViaCallback || via == ViaReplyTo }

// ReplyClockSlack is how far past a reply's second the message of a run may have been
// created and the reply still join the run: the webhook's timestamp and the creation time in
// a message id are read from clocks that need not agree to the second.
const ReplyClockSlack = 5 * time.Second

// sentAfter reports whether the message of ledger entry le (one that is Answerable), of a run
// created at created, is known to have been sent after a reply written in the second at (see
// Join's lower bound). Only what the ledger proves refuses a run: an entry with a message id
// holding its creation time (a ULID) was sent then; any other (MayBeOut: a request in
// flight, its accept not yet recorded, or one whose fate is not known) may have sent what the
// reply answers at any time since its run was created, so only a run created after the reply
// is refused. Refusing it on
// its state alone would lose a real reply, and the refusal would be pinned for every copy of
// it.
func sentAfter(le ledger.Entry, created, at time.Time) bool {
	bound := at.Add(time.Second + ReplyClockSlack)
	if !MayBeOut(le) {
		if sent, ok := ulid.Time(le.MessageID); ok {
			return sent.After(bound)
		}
		return false
	}
	return !created.IsZero() && created.After(bound)
}

// candidates returns the answerable runs of the index that messaged the customer under any of
// ids, as entries without Via, each with when it last messaged them: ids in their order, each
// id's runs as the index keeps them (the run that messaged the customer last first; joinOrder
// merges the ids'). It costs two round trips, none without ids.
func (x *Index) candidates(ctx context.Context, ids []string) ([]candidate, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	fields := make([]string, 0, len(ids))
	cmds := make([]*redis.StringCmd, 0, len(ids))
	_, err := x.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			field := servicewindow.Field(id)
			fields = append(fields, field)
			cmds = append(cmds, p.HGet(ctx, rkeys.ConversationRecent(x.business, servicewindow.BucketOf(field)), field))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("conversation: join: %w", err)
	}
	type item struct {
		recentItem
		field string
		pos   int
	}
	var items []item
	var seqs []string
	for i, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("conversation: join: %w", err)
		}
		for pos, it := range parseRecent(v) {
			items = append(items, item{it, fields[i], pos})
			seqs = append(seqs, strconv.FormatInt(it.seq, 10))
		}
	}
	if len(items) == 0 {
		return nil, nil
	}
	runs, err := x.rdb.HMGet(ctx, rkeys.ConversationSeqs(x.business), seqs...).Result()
	if err != nil {
		return nil, fmt.Errorf("conversation: join: %w", err)
	}
	now := x.now().Unix()
	var out []candidate
	for i, it := range items {
		v, _ := runs[i].(string)
		run, until, found := strings.Cut(v, "|")
		u, err := strconv.ParseInt(until, 10, 64)
		if !found || err != nil || u <= now || run == "" {
			continue
		}
		c := candidate{Entry: Entry{Run: run, Bucket: it.bucket, Recipient: recipientOf(it.field)}, pos: it.pos, seq: it.seq}
		if it.left >= 0 {
			c.last = time.Unix(u-it.left, 0)
		}
		out = append(out, c)
	}
	return out, nil
}

// recentItem is one run of a customer's entry in the index: its SEQ, its ledger bucket, and
// the seconds it had left before its until when it last messaged the customer (-1: the
// entry does not say).
type recentItem struct {
	seq    int64
	bucket int
	left   int64
}

// parseRecent reads a customer's entry in the index, its runs in their order. An item is
// SEQ:LEDGERBUCKET, and a token +LEFT right after it gives its LEFT. The item keeps that shape,
// and LEFT a token without ':', so that an older Herald's receiver (which splits an item at its
// first ':' and skips a token without one) reads what a newer worker writes: a rolling deploy
// upgrades the workers first. Also read: SEQ:LEDGERBUCKET:LEFT, which one build wrote. A +LEFT
// token with no item just before it (an older Herald's record drops them, it makes none) and
// a token that is neither are skipped.
func parseRecent(v string) []recentItem {
	var items []recentItem
	open := false // the token just read is an item without its LEFT
	for _, tok := range strings.Fields(v) {
		if l, ok := strings.CutPrefix(tok, "+"); ok {
			if n, ok := digits(l); ok && open {
				items[len(items)-1].left = n
			}
			open = false
			continue
		}
		open = false
		parts := strings.Split(tok, ":")
		if len(parts) < 2 || len(parts) > 3 {
			continue
		}
		seq, ok1 := digits(parts[0])
		bucket, ok2 := digits(parts[1])
		if !ok1 || !ok2 {
			continue
		}
		it := recentItem{seq: seq, bucket: int(bucket), left: -1}
		if len(parts) == 3 {
			if n, ok := digits(parts[2]); ok {
				it.left = n
			}
		} else {
			open = true
		}
		items = append(items, it)
	}
	return items
}

// digits parses s, decimal digits only (no sign), as an int64.
func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// entries returns the ledger entries of cands, in their order (a zero Entry for one not
// found), and their runs' creation times. It is one round trip.
func (x *Index) entries(ctx context.Context, cands []candidate) ([]ledger.Entry, []time.Time, error) {
	addrs := make([]ledger.Address, len(cands))
	for i, c := range cands {
		addrs[i] = ledger.Address{Run: c.Run, Recipient: c.Recipient, Bucket: c.Bucket}
	}
	entries, starts, err := x.ledger.EntriesOfRuns(ctx, addrs)
	if err != nil {
		return nil, nil, fmt.Errorf("conversation: join: %w", err)
	}
	return entries, starts, nil
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
