package conversation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/luacheck"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// In a rolling deploy the workers, which record the index of recent sends, run the newer
// Herald before the webhook receiver, which joins replies through it; and for a while workers
// of both versions record. These cases play the older Herald's reader and record script, as
// commit db3a558 shipped them (the last before the index kept times), beside the current ones.

// oldCandidatesDB3A558 is Index.candidates as commit db3a558 shipped it (conversation/join.go),
// the index's reader of an older receiver, its clock now (unix s): it splits an item at its
// first ':' and parses the rest as the ledger bucket, skipping what does not parse. Only the
// receiver, rdb and clock are parameters here; the body is the old one.
func oldCandidatesDB3A558(ctx context.Context, rdb redis.UniversalClient, business string, now int64, ids []string) ([]Entry, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	fields := make([]string, 0, len(ids))
	cmds := make([]*redis.StringCmd, 0, len(ids))
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			field := servicewindow.Field(id)
			fields = append(fields, field)
			cmds = append(cmds, p.HGet(ctx, rkeys.ConversationRecent(business, servicewindow.BucketOf(field)), field))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("conversation: join: %w", err)
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
			return nil, fmt.Errorf("conversation: join: %w", err)
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
		return nil, nil
	}
	runs, err := rdb.HMGet(ctx, rkeys.ConversationSeqs(business), seqs...).Result()
	if err != nil {
		return nil, fmt.Errorf("conversation: join: %w", err)
	}
	type live struct {
		seq int64
		e   Entry
	}
	var lives []live
	for i, c := range cands {
		v, _ := runs[i].(string)
		run, until, found := strings.Cut(v, "|")
		u, err := strconv.ParseInt(until, 10, 64)
		if !found || err != nil || u <= now || run == "" {
			continue
		}
		lives = append(lives, live{c.seq, Entry{Run: run, Bucket: c.bucket, Recipient: recipientOf(c.field)}})
	}
	// Newest first; the sort is stable, so of one run under two ids the first id's comes first.
	slices.SortStableFunc(lives, func(a, b live) int { return cmp.Compare(b.seq, a.seq) })
	out := make([]Entry, len(lives))
	for i, l := range lives {
		out[i] = l.e
	}
	return out, nil
}

// oldRecordDB3A558 is the record script as commit db3a558 shipped it (testdata), an older
// worker's record; its KEYS and ARGV are recordCmd's.
func oldRecordDB3A558() (*redis.Script, error) {
	b, err := os.ReadFile("testdata/record_db3a558.lua")
	if err != nil {
		return nil, err
	}
	return redis.NewScript(string(b)), nil
}

// compat is one business's index at a fixed clock, written by the current record and by the
// older one, and read by both readers.
type compat struct {
	rdb      redis.UniversalClient
	business string
	now      time.Time
	// until is the runs' on_reply.until: a follow-up's record, later, has less LEFT.
	until time.Time
	old   *redis.Script
}

func newCompat(rdb redis.UniversalClient, business string) (*compat, error) {
	old, err := oldRecordDB3A558()
	if err != nil {
		return nil, err
	}
	return &compat{rdb: rdb, business: business, now: caseNow, until: caseNow.Add(72 * time.Hour), old: old}, nil
}

func (c *compat) index() *Index {
	return NewIndex(c.rdb, c.business, func() time.Time { return c.now })
}

// record records run's message to phone (ledger bucket bucket) as the current worker does.
func (c *compat) record(ctx context.Context, run string, bucket int, phone string) error {
	return c.index().Record(ctx, run, bucket, phone, c.until)
}

// recordOld records it as an older worker does (db3a558's script, Index.Record's arguments).
func (c *compat) recordOld(ctx context.Context, run string, bucket int, phone string) error {
	field := servicewindow.Field(phone)
	return c.old.Run(ctx, c.rdb, recordKeys(c.business, field), field, run, c.until.Unix(), c.now.Unix(), bucket, MaxRecentRuns).Err()
}

// entry is phone's entry in the index, "" when it has none.
func (c *compat) entry(ctx context.Context, phone string) (string, error) {
	field := servicewindow.Field(phone)
	v, err := c.rdb.HGet(ctx, rkeys.ConversationRecent(c.business, servicewindow.BucketOf(field)), field).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// entryShape is what the current record writes and an older one keeps: items SEQ:BUCKET,
// each perhaps followed by its +LEFT, never a +LEFT without its item.
var entryShape = regexp.MustCompile(`^\d+:\d+( \+\d+)?( \d+:\d+( \+\d+)?)*$`)

// check returns an error unless both readers find in phone's entry exactly the runs and
// ledger buckets of want (run → bucket), the older receiver's reader (newest run first) and
// the current one, and the entry is well formed and holds at most MaxRecentRuns runs.
func (c *compat) check(ctx context.Context, phone string, want map[string]int) error {
	v, err := c.entry(ctx, phone)
	if err != nil {
		return err
	}
	olds, err := oldCandidatesDB3A558(ctx, c.rdb, c.business, c.now.Unix(), []string{phone})
	if err != nil {
		return err
	}
	if g := runBuckets(olds, phone); !maps.Equal(g, want) {
		return fmt.Errorf("entry %q: the older receiver reads %v, want %v", v, g, want)
	}
	g, _, err := c.read(ctx, phone)
	if err != nil {
		return err
	}
	if !maps.Equal(g, want) {
		return fmt.Errorf("entry %q: the current reader reads %v, want %v", v, g, want)
	}
	if !entryShape.MatchString(v) {
		return fmt.Errorf("entry %q: not runs SEQ:BUCKET each with its +LEFT or none", v)
	}
	if n := strings.Count(v, ":"); n > MaxRecentRuns {
		return fmt.Errorf("entry %q holds %d runs, over %d", v, n, MaxRecentRuns)
	}
	return nil
}

// runBuckets maps the runs of es to their ledger buckets; an entry of another recipient than
// phone is keyed with it, so it differs from any want.
func runBuckets(es []Entry, phone string) map[string]int {
	m := map[string]int{}
	for _, e := range es {
		if e.Recipient != phone {
			m[e.Run+" recipient "+e.Recipient] = e.Bucket
			continue
		}
		m[e.Run] = e.Bucket
	}
	return m
}

// read returns what the current reader finds in phone's entry: run → ledger bucket, and run →
// when it last messaged them as the index says (zero: it does not).
func (c *compat) read(ctx context.Context, phone string) (map[string]int, map[string]time.Time, error) {
	cands, err := c.index().candidates(ctx, []string{phone})
	if err != nil {
		return nil, nil, err
	}
	var es []Entry
	lasts := map[string]time.Time{}
	for _, cd := range cands {
		es = append(es, cd.Entry)
		lasts[cd.Run] = cd.last
	}
	return runBuckets(es, phone), lasts, nil
}

// wantEntry returns an error unless phone's entry is want.
func (c *compat) wantEntry(ctx context.Context, phone, want string) error {
	v, err := c.entry(ctx, phone)
	if err != nil {
		return err
	}
	if v != want {
		return fmt.Errorf("entry %q, want %q", v, want)
	}
	return nil
}

var compatCases = []luacheck.Case{
	{Script: "recordCmd", Name: "an older receiver reads what the record writes", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		c, err := newCompat(rdb, id)
		if err != nil {
			return err
		}
		const ana = "+15550001111"
		steps := []struct {
			say  string
			do   func() error
			want map[string]int
		}{
			{"D1's message", func() error { return c.record(ctx, "D1", 1, ana) }, map[string]int{"D1": 1}},
			{"D2's message", func() error { return c.record(ctx, "D2", 2, ana) }, map[string]int{"D1": 1, "D2": 2}},
			// D1's follow-up is recorded under D1 and moves it to the front.
			{"D1's follow-up", func() error { c.now = c.now.Add(time.Minute); return c.record(ctx, "D1", 1, ana) }, map[string]int{"D1": 1, "D2": 2}},
			{"D3's message", func() error { return c.record(ctx, "D3", 3, ana) }, map[string]int{"D1": 1, "D2": 2, "D3": 3}},
			{"D4's message", func() error { return c.record(ctx, "D4", 4, ana) }, map[string]int{"D1": 1, "D3": 3, "D4": 4}},
		}
		for _, s := range steps {
			if err := s.do(); err != nil {
				return err
			}
			if err := c.check(ctx, ana, s.want); err != nil {
				return fmt.Errorf("after %s: %w", s.say, err)
			}
		}
		if err := c.wantEntry(ctx, ana, "4:4 +259140 3:3 +259140 1:1 +259140"); err != nil {
			return err
		}
		// The review's case: D1 recorded by an older worker, D2 by the current one; the older
		// receiver must see D2, the run started last, as it always did.
		const bea = "+15550002222"
		if err := c.recordOld(ctx, "D1", 7, bea); err != nil {
			return err
		}
		if err := c.record(ctx, "D2", 8, bea); err != nil {
			return err
		}
		olds, err := oldCandidatesDB3A558(ctx, rdb, id, c.now.Unix(), []string{bea})
		if err != nil {
			return err
		}
		if len(olds) != 2 || olds[0].Run != "D2" || olds[0].Bucket != 8 || olds[1].Run != "D1" || olds[1].Bucket != 7 {
			return fmt.Errorf("the older receiver's candidates %+v, want D2 (bucket 8) then D1 (bucket 7)", olds)
		}
		return c.check(ctx, bea, map[string]int{"D1": 7, "D2": 8})
	}},
	{Script: "recordCmd", Name: "older and current records interleaved", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		c, err := newCompat(rdb, id)
		if err != nil {
			return err
		}
		const ana = "+15550001111"
		steps := []struct {
			say   string
			do    func() error
			entry string
			want  map[string]int
		}{
			{"D1 (current)", func() error { return c.record(ctx, "D1", 1, ana) }, "1:1 +259200", map[string]int{"D1": 1}},
			// The older record keeps the items and drops the LEFT tokens.
			{"D2 (older)", func() error { return c.recordOld(ctx, "D2", 2, ana) }, "2:2 1:1", map[string]int{"D1": 1, "D2": 2}},
			{"D3 (current)", func() error { return c.record(ctx, "D3", 3, ana) }, "3:3 +259200 2:2 1:1", map[string]int{"D1": 1, "D2": 2, "D3": 3}},
			{"D1's follow-up (older)", func() error { return c.recordOld(ctx, "D1", 1, ana) }, "1:1 3:3 2:2", map[string]int{"D1": 1, "D2": 2, "D3": 3}},
			{"D4 (current)", func() error { return c.record(ctx, "D4", 4, ana) }, "4:4 +259200 1:1 3:3", map[string]int{"D1": 1, "D3": 3, "D4": 4}},
			{"D3's follow-up (current)", func() error { c.now = c.now.Add(time.Minute); return c.record(ctx, "D3", 3, ana) },
				"3:3 +259140 4:4 +259200 1:1", map[string]int{"D1": 1, "D3": 3, "D4": 4}},
			// At the limit the older record counts only the items: three runs, not two runs
			// and a LEFT.
			{"D5 (older)", func() error { return c.recordOld(ctx, "D5", 5, ana) }, "5:5 3:3 4:4", map[string]int{"D3": 3, "D4": 4, "D5": 5}},
			{"D4's follow-up (current)", func() error { return c.record(ctx, "D4", 4, ana) }, "4:4 +259140 5:5 3:3", map[string]int{"D3": 3, "D4": 4, "D5": 5}},
		}
		for _, s := range steps {
			if err := s.do(); err != nil {
				return err
			}
			if err := c.wantEntry(ctx, ana, s.entry); err != nil {
				return fmt.Errorf("after %s: %w", s.say, err)
			}
			if err := c.check(ctx, ana, s.want); err != nil {
				return fmt.Errorf("after %s: %w", s.say, err)
			}
		}
		// The older record's sweep of a bucket reads the current entries' SEQs: a customer new
		// to the bucket drops the customers whose runs are all dead and keeps the others.
		field := servicewindow.Field(ana)
		bucket := servicewindow.BucketOf(field)
		other := sameBucketField(bucket, field)
		if other == "" {
			return fmt.Errorf("no phone found in the bucket of %s", field)
		}
		keys := recordKeys(id, field)
		// Fields of the bucket's hash, whatever bucket their own hash would give.
		dead, live := "17770000001", "17770000002"
		if err := rdb.HSet(ctx, keys[2], "90", fmt.Sprint("run-dead|", c.now.Unix()-1)).Err(); err != nil {
			return err
		}
		if err := rdb.HSet(ctx, keys[0], dead, "90:0 +5", live, "90:0 +5 4:4 +100").Err(); err != nil {
			return err
		}
		if err := c.recordOld(ctx, "D6", 6, "+"+other); err != nil {
			return err
		}
		v, err := rdb.HGetAll(ctx, keys[0]).Result()
		if err != nil {
			return err
		}
		if _, ok := v[dead]; ok {
			return fmt.Errorf("bucket %v: the older record kept %s, whose only run is dead", v, dead)
		}
		if v[live] != "90:0 +5 4:4 +100" || v[field] != "4:4 +259140 5:5 3:3" || v[other] != "6:6" {
			return fmt.Errorf("bucket %v: the older record changed the live customers' entries", v)
		}
		return nil
	}},
	{Script: "recordCmd", Name: "the current reader reads every version's entries", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		c, err := newCompat(rdb, id)
		if err != nil {
			return err
		}
		now := c.now.Unix()
		until := now + 3600
		keys := recordKeys(id, "15550001111")
		for seq := 1; seq <= 4; seq++ {
			if err := rdb.HSet(ctx, keys[2], strconv.Itoa(seq), fmt.Sprint("R", seq, "|", until)).Err(); err != nil {
				return err
			}
			if err := rdb.HSet(ctx, keys[1], fmt.Sprint("R", seq), strconv.Itoa(seq)).Err(); err != nil {
				return err
			}
		}
		if err := rdb.HSet(ctx, keys[2], "#", "4").Err(); err != nil {
			return err
		}
		at := func(left int64) time.Time { return time.Unix(until-left, 0) }
		for _, tc := range []struct {
			name, entry string
			want        map[string]time.Time
			wantBuckets map[string]int
		}{
			{"older Herald", "2:5 1:7", map[string]time.Time{"R2": {}, "R1": {}}, map[string]int{"R2": 5, "R1": 7}},
			{"c604f89", "2:5:600 1:7:3000", map[string]time.Time{"R2": at(600), "R1": at(3000)}, map[string]int{"R2": 5, "R1": 7}},
			{"current", "2:5 +600 1:7 +3000", map[string]time.Time{"R2": at(600), "R1": at(3000)}, map[string]int{"R2": 5, "R1": 7}},
			{"current and older mixed", "3:1 +60 2:5 1:7 +3000", map[string]time.Time{"R3": at(60), "R2": {}, "R1": at(3000)}, map[string]int{"R3": 1, "R2": 5, "R1": 7}},
			// A +LEFT belongs only to the item just before it: one first, one after another
			// +LEFT, after an item that carries its own LEFT, or after a token that is no
			// item, is no run's.
			{"orphan LEFT tokens", "+5 2:5 +600 +7 1:7 bogus +9 3:1:60 +8 4:2 ++4 +x",
				map[string]time.Time{"R2": at(600), "R1": {}, "R3": at(60), "R4": {}}, map[string]int{"R2": 5, "R1": 7, "R3": 1, "R4": 2}},
		} {
			if err := rdb.HSet(ctx, keys[0], "15550001111", tc.entry).Err(); err != nil {
				return err
			}
			buckets, lasts, err := c.read(ctx, "+15550001111")
			if err != nil {
				return err
			}
			if !maps.Equal(buckets, tc.wantBuckets) {
				return fmt.Errorf("%s entry %q: runs and buckets %v, want %v", tc.name, tc.entry, buckets, tc.wantBuckets)
			}
			if len(lasts) != len(tc.want) {
				return fmt.Errorf("%s entry %q: runs %v, want %v", tc.name, tc.entry, lasts, tc.want)
			}
			for run, w := range tc.want {
				if g, ok := lasts[run]; !ok || !g.Equal(w) {
					return fmt.Errorf("%s entry %q: %s last messaged at %v, want %v", tc.name, tc.entry, run, g, w)
				}
			}
		}
		// A current record rewrites a c604f89 entry in the current shape, and drops orphan
		// LEFT tokens; the older receiver then reads it all.
		if err := rdb.HSet(ctx, keys[0], "15550001111", "2:5:600 +9 1:7:3000").Err(); err != nil {
			return err
		}
		c.now = c.now.Add(time.Second)
		if err := c.index().Record(ctx, "R3", 0, "+15550001111", time.Unix(until, 0)); err != nil {
			return err
		}
		if err := c.wantEntry(ctx, "+15550001111", "3:0 +3599 2:5 +600 1:7 +3000"); err != nil {
			return err
		}
		return c.check(ctx, "+15550001111", map[string]int{"R3": 0, "R2": 5, "R1": 7})
	}},
}

// TestIndexCompatCases plays the mixed-version cases on miniredis, and on real Redis when
// HERALD_TEST_REDIS is set.
func TestIndexCompatCases(t *testing.T) {
	luacheck.RunCases(t, []string{"recordCmd"}, compatCases)
}

// TestParseRecent reads entries of every version, and junk, by the current reader.
func TestParseRecent(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []recentItem
	}{
		{"", nil},
		{"17:42 9:3", []recentItem{{17, 42, -1}, {9, 3, -1}}},
		{"17:42:259200 9:3:86400", []recentItem{{17, 42, 259200}, {9, 3, 86400}}},
		{"17:42 +259200 9:3 +86400", []recentItem{{17, 42, 259200}, {9, 3, 86400}}},
		{"17:42 +259200 9:3", []recentItem{{17, 42, 259200}, {9, 3, -1}}},
		{"+1 17:42 +2 +3 9:3:5 +4 x +6 8:1", []recentItem{{17, 42, 2}, {9, 3, 5}, {8, 1, -1}}},
		{"17:42 +-1 9:3 ++2 8:1 +3x 7:0 -4", []recentItem{{17, 42, -1}, {9, 3, -1}, {8, 1, -1}, {7, 0, -1}}},
		{"17 :42 17: 1:2:3:4 a:1 1:b -1:2 1:-2 1:2:x", []recentItem{{1, 2, -1}}},
	} {
		if got := parseRecent(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("parseRecent(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
