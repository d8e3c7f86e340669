package conversation

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// The conversation record: what each recipient sent back, for `recipient explain`.
//
// Every reply joined to a run entry (Index.Join) is kept in a string of its own per (run,
// recipient), rkeys.Conversation: one small JSON object a line, in the order received (the
// message id first, then the time in unix ms, the kind, the button or row id, the text, the
// follow-up rule when the reply answered a follow-up, and how it was joined). A reply to one
// of the run's follow-ups is kept under the run it follows, so one key holds the whole
// conversation of a recipient with a campaign run. Read sorts by time.
//
// A string, not a sorted set or a list: a reply is over the 64 bytes a sorted set keeps in
// its compact encoding, and a string costs the least per replier. Measured with MEMORY USAGE
// on Redis 7.0.15 (TestHistoryMemory, 1,000 repliers, provider ids of 60 bytes): one button
// tap costs 264 bytes a replier, three typed replies of 85 characters about 1,000 bytes; one
// tap kept in a sorted set costs 1,128 bytes, in a list 392. Only repliers have a key.
//
// A copy of an inbound message (a repeated webhook, a second receiver replica) is recorded
// once: the message is named by its provider id, else by a digest of what it says. The key
// keeps the last MaxConversation replies received, texts cut to MaxReplyText runes, and
// expires Retention after the last reply recorded. No phone number is written into a line:
// the recipient is the key, as everywhere in Herald's keys.

// DefaultRetention is how long a recipient's conversation is kept after their last reply:
// on_reply's default until (7 days) and a week to look at it.
const DefaultRetention = 14 * 24 * time.Hour

// MaxConversation is how many replies a recipient's conversation keeps, the last received.
const MaxConversation = 50

// MaxReplyText is the most runes of a reply's text (and of a button's or row's id or text)
// kept; a longer text is cut and ends in "…".
const MaxReplyText = 280

// maxMessageID is the longest provider message id kept as is; a longer one is kept as a
// digest ("h:<hex>").
const maxMessageID = 128

// Kinds of a recorded reply (report.Reply.Kind).
const (
	SaidButton  = "button"
	SaidListRow = "list_row"
	SaidText    = "text"
	SaidOther   = "other"
)

// History records and reads recipients' conversations.
type History struct {
	rdb redis.UniversalClient
	now func() time.Time
	// Retention is how long a conversation is kept after its last reply; 0 is
	// DefaultRetention.
	Retention time.Duration
}

// NewHistory returns the conversations on rdb; now is its clock (nil: time.Now).
func NewHistory(rdb redis.UniversalClient, now func() time.Time) *History {
	if now == nil {
		now = time.Now
	}
	return &History{rdb: rdb, now: now}
}

//go:embed lua/history.lua
var historyLua string

// historyCmd records one reply in a recipient's conversation, once per inbound message
// (lua/history.lua; its KEYS/ARGV contract is at its top).
var historyCmd = redis.NewScript(historyLua)

// Record adds reply r, joined to entry e, to the recipient's conversation with e's run (the
// run it follows, for a follow-up run). messageID is the inbound message's provider id ("":
// the message is named by a digest of what it says). A reply without a time, or with one
// after now, is recorded at now. rule is the on_reply rule the reply matched ("" for none),
// which places the rule's follow-up after this reply in recipient explain's timeline. It
// returns false, changing nothing, for a copy of a message already recorded. One round trip.
func (h *History) Record(ctx context.Context, e Entry, r Reply, messageID, rule string) (bool, error) {
	return h.RecordNote(ctx, e, r, messageID, rule, "")
}

// RecordNote is Record with a note on what the reply did not do (NoteOf: "once per campaign:
// answered in run X"), shown beside it in recipient explain.
func (h *History) RecordNote(ctx context.Context, e Entry, r Reply, messageID, rule, note string) (bool, error) {
	if e.Run == "" || e.Recipient == "" {
		return false, fmt.Errorf("conversation: history: %w", ErrNoRecipient)
	}
	run, answering := e.Run, ""
	if p, fr, ok := ledger.FollowupOf(run); ok {
		run, answering = p, fr
	}
	at := r.At
	if now := h.now(); at.IsZero() || at.After(now) {
		at = now
	}
	s := saidOf(r)
	s.M, s.T, s.F, s.V, s.R, s.O, s.N = messageName(messageID, r), at.UnixMilli(), answering, e.Via, rule, r.OptOut, note
	member, err := json.Marshal(s)
	if err != nil {
		return false, fmt.Errorf("conversation: history: %w", err)
	}
	prefix, err := json.Marshal(said{M: s.M})
	if err != nil {
		return false, fmt.Errorf("conversation: history: %w", err)
	}
	// {"m":"ID","k":""... → {"m":"ID",
	prefix = prefix[:bytes.IndexByte(prefix, ',')+1]
	keep := cmp.Or(h.Retention, DefaultRetention)
	n, err := historyCmd.Run(ctx, h.rdb, []string{rkeys.Conversation(run, e.Recipient)},
		member, prefix, MaxConversation, keep.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("conversation: history of run %s: %w", run, err)
	}
	return n == 1, nil
}

// Read returns recipient's replies in run (its ledger key; replies to the run's follow-ups
// included), oldest first (two at the same time in the order received). A line it cannot
// read is left out.
func (h *History) Read(ctx context.Context, run, recipient string) ([]report.Reply, error) {
	v, err := h.rdb.Get(ctx, rkeys.Conversation(run, recipient)).Result()
	if errors.Is(err, redis.Nil) {
		return []report.Reply{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("conversation: read history of run %s: %w", run, err)
	}
	out := []report.Reply{}
	for _, line := range strings.Split(v, "\n") {
		var s said
		if json.Unmarshal([]byte(line), &s) != nil {
			continue
		}
		joined := run
		if s.F != "" {
			joined = ledger.FollowupRun(run, s.F)
		}
		out = append(out, report.Reply{At: time.UnixMilli(s.T).UTC(), Kind: s.K, ID: s.I, Text: s.X, MessageID: s.M, Run: joined, Via: s.V, Rule: s.R, OptOut: s.O, Note: s.N})
	}
	slices.SortStableFunc(out, func(a, b report.Reply) int { return a.At.Compare(b.At) })
	return out, nil
}

// said is a reply as stored, with short names. M must stay the first field (the script
// recognises a copy of a message by the line's prefix). N is a note on what the reply did not
// do (RecordNote). F is the follow-up rule of the run
// the reply was joined to, "" for the run itself.
type said struct {
	M string `json:"m"`
	T int64  `json:"t"`
	K string `json:"k"`
	I string `json:"i,omitempty"`
	X string `json:"x,omitempty"`
	F string `json:"f,omitempty"`
	V string `json:"v,omitempty"`
	R string `json:"r,omitempty"`
	O bool   `json:"o,omitempty"`
	N string `json:"n,omitempty"`
}

// saidOf returns what r says, its texts cut.
func saidOf(r Reply) said {
	var s said
	switch r.Kind {
	case webhooks.ReplyButton:
		s.K, s.I, s.X = SaidButton, cmp.Or(r.ButtonPayload, r.ButtonID), r.ButtonText
	case webhooks.ReplyList:
		s.K, s.I, s.X = SaidListRow, r.ListRowID, r.ListRowText
	case webhooks.ReplyText:
		s.K, s.X = SaidText, r.Text
	default:
		s.K, s.X = SaidOther, r.Text
	}
	s.I, s.X = cutText(s.I), cutText(s.X)
	return s
}

// messageName names an inbound message: its provider id (a digest when longer than
// maxMessageID), else a digest of the reply, its time included when it has one.
func messageName(id string, r Reply) string {
	if id != "" && len(id) <= maxMessageID {
		return id
	}
	hs := sha256.New()
	if id != "" {
		hs.Write([]byte(id))
		return "h:" + hex.EncodeToString(hs.Sum(nil)[:16])
	}
	for _, v := range []string{string(r.Kind), r.ButtonPayload, r.ButtonID, r.ButtonText, r.ListRowID, r.ListRowText, r.Text} {
		hs.Write([]byte(strconv.Itoa(len(v)) + ":" + v))
	}
	if !r.At.IsZero() {
		hs.Write([]byte(strconv.FormatInt(r.At.UnixMilli(), 10)))
	}
	return "d:" + hex.EncodeToString(hs.Sum(nil)[:16])
}

// cutText cuts s to MaxReplyText runes, marking the cut with "…", and drops invalid UTF-8.
func cutText(s string) string {
	s = string([]rune(s)) // invalid bytes become U+FFFD, which JSON keeps as is
	if utf8.RuneCountInString(s) <= MaxReplyText {
		return s
	}
	return string([]rune(s)[:MaxReplyText-1]) + "…"
}
