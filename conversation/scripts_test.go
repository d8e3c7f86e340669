package conversation

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/luacheck"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
)

// scripts is every redis.NewScript variable of the package (luacheck.Files checks the list).
var scripts = []string{"historyCmd", "recordCmd"}

// TestScriptFiles pins the layout of the package's Lua: one lua/*.lua file per script, its
// contract at its top, none written as a Go string.
func TestScriptFiles(t *testing.T) {
	luacheck.Files(t, "", scripts)
}

// The script cases run on miniredis and on real Redis alike: record.lua's clock is its ARGV
// and history.lua has none, so they hold no Redis clock; a TTL is checked within a few
// seconds below what was set, the time the case takes.

// caseSaid is the reply line of a case's message m saying text, and its prefix.
func caseSaid(m, text string) (line, prefix string) {
	return fmt.Sprintf(`{"m":%q,"t":1,"k":"text","x":%q}`, m, text), fmt.Sprintf(`{"m":%q,`, m)
}

// history runs historyCmd for reply (message m, saying text) on key, keeping at most keep
// replies for ttl, and returns an error unless it answers want.
func history(ctx context.Context, rdb redis.UniversalClient, key, m, text string, keep int, ttl time.Duration, want int) error {
	line, prefix := caseSaid(m, text)
	n, err := historyCmd.Run(ctx, rdb, []string{key}, line, prefix, keep, ttl.Milliseconds()).Int()
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("record %s (%q): %d, want %d", m, text, n, want)
	}
	return nil
}

// wantHistory returns an error unless key holds the replies of messages ms, in that order,
// each saying what its message's first record said ("said " and the message).
func wantHistory(ctx context.Context, rdb redis.UniversalClient, key string, ms ...string) error {
	var lines []string
	for _, m := range ms {
		line, _ := caseSaid(m, "said "+m)
		lines = append(lines, line)
	}
	got, err := rdb.Get(ctx, key).Result()
	if want := strings.Join(lines, "\n"); err != nil || got != want {
		return fmt.Errorf("%s = %q (%v), want %q", key, got, err, want)
	}
	return nil
}

// recordKeys are the keys of business's index that recordCmd writes for field.
func recordKeys(business, field string) []string {
	return []string{
		rkeys.ConversationRecent(business, servicewindow.BucketOf(field)),
		rkeys.ConversationRuns(business),
		rkeys.ConversationSeqs(business),
	}
}

// record runs recordCmd in business's index for field and run (ledger bucket bucket, until
// and now in unix s, at most keep runs a customer) and returns an error unless it answers
// want.
func record(ctx context.Context, rdb redis.UniversalClient, business, field, run string, until, now int64, bucket, keep int, want int64) error {
	n, err := recordCmd.Run(ctx, rdb, recordKeys(business, field), field, run, until, now, bucket, keep).Int64()
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("record %s for %s: %d, want %d", run, field, n, want)
	}
	return nil
}

// sameBucketField returns a phone field other than field in the given bucket, or "" when the
// search runs out.
func sameBucketField(bucket int, field string) string {
	for i := 0; i < 10_000_000; i++ {
		f := fmt.Sprintf("1666%07d", i)
		if f != field && servicewindow.BucketOf(f) == bucket {
			return f
		}
	}
	return ""
}

// caseNow is the index's clock in the script cases.
var caseNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var scriptCases = []luacheck.Case{
	{Script: "historyCmd", Name: "records once per inbound message", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		key := rkeys.Conversation(id, "+447700900123")
		if err := history(ctx, rdb, key, "wamid.A", "said wamid.A", 50, time.Hour, 1); err != nil {
			return err
		}
		// A copy of the message (a repeated webhook) changes nothing, whatever it says.
		if err := history(ctx, rdb, key, "wamid.A", "a copy", 50, time.Hour, 0); err != nil {
			return err
		}
		// An id that starts like another is another message.
		if err := history(ctx, rdb, key, "wamid.AB", "said wamid.AB", 50, time.Hour, 1); err != nil {
			return err
		}
		if err := history(ctx, rdb, key, "wamid.B", "said wamid.B", 50, time.Hour, 1); err != nil {
			return err
		}
		// A copy is found on any line, not only the first.
		for _, m := range []string{"wamid.AB", "wamid.B", "wamid.A"} {
			if err := history(ctx, rdb, key, m, "a copy", 50, time.Hour, 0); err != nil {
				return err
			}
		}
		return wantHistory(ctx, rdb, key, "wamid.A", "wamid.AB", "wamid.B")
	}},
	{Script: "historyCmd", Name: "keeps the newest N", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		key := rkeys.Conversation(id, "+447700900123")
		var ms []string
		for i := range 5 {
			m := fmt.Sprint("wamid.", i)
			ms = append(ms, m)
			if err := history(ctx, rdb, key, m, "said "+m, 3, time.Hour, 1); err != nil {
				return err
			}
			if err := wantHistory(ctx, rdb, key, ms[max(0, len(ms)-3):]...); err != nil {
				return fmt.Errorf("after %d replies: %w", i+1, err)
			}
		}
		return nil
	}},
	{Script: "historyCmd", Name: "expiry", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		key := rkeys.Conversation(id, "+447700900123")
		if err := history(ctx, rdb, key, "wamid.1", "said wamid.1", 50, time.Hour, 1); err != nil {
			return err
		}
		if err := luacheck.WantTTL(ctx, rdb, key, time.Hour); err != nil {
			return err
		}
		// A copy leaves the expiry alone.
		if err := history(ctx, rdb, key, "wamid.1", "a copy", 50, 2*time.Hour, 0); err != nil {
			return err
		}
		if err := luacheck.WantTTL(ctx, rdb, key, time.Hour); err != nil {
			return fmt.Errorf("after a copy: %w", err)
		}
		// A new reply sets it from now, shorter or longer.
		if err := history(ctx, rdb, key, "wamid.2", "said wamid.2", 50, 30*time.Minute, 1); err != nil {
			return err
		}
		if err := luacheck.WantTTL(ctx, rdb, key, 30*time.Minute); err != nil {
			return fmt.Errorf("after a new reply: %w", err)
		}
		if err := history(ctx, rdb, key, "wamid.3", "said wamid.3", 50, 2*time.Hour, 1); err != nil {
			return err
		}
		return luacheck.WantTTL(ctx, rdb, key, 2*time.Hour)
	}},
	{Script: "recordCmd", Name: "records a run for a customer", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		const field = "15550001111"
		now := caseNow.Unix()
		keys := recordKeys(id, field)
		if err := record(ctx, rdb, id, field, "run-a", now+3600, now, 7, 3, 1); err != nil {
			return err
		}
		for _, err := range []error{
			luacheck.WantHash(ctx, rdb, keys[0], map[string]string{field: "1:7 +3600"}),
			luacheck.WantHash(ctx, rdb, keys[1], map[string]string{"run-a": "1"}),
			luacheck.WantHash(ctx, rdb, keys[2], map[string]string{"#": "1", "1": fmt.Sprint("run-a|", now+3600)}),
		} {
			if err != nil {
				return err
			}
		}
		// A second run goes first; a shorter until leaves every key's TTL as it was (a minute
		// past the latest until).
		if err := record(ctx, rdb, id, field, "run-b", now+600, now, 2, 3, 2); err != nil {
			return err
		}
		if err := luacheck.WantHash(ctx, rdb, keys[0], map[string]string{field: "2:2 +600 1:7 +3600"}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := luacheck.WantTTL(ctx, rdb, k, 3660*time.Second); err != nil {
				return err
			}
		}
		// A run recorded again keeps its SEQ and moves to the front, its bucket as given now.
		if err := record(ctx, rdb, id, field, "run-a", now+3600, now, 5, 3, 1); err != nil {
			return err
		}
		if err := luacheck.WantHash(ctx, rdb, keys[0], map[string]string{field: "1:5 +3600 2:2 +600"}); err != nil {
			return err
		}
		// A later until extends every key's TTL.
		if err := record(ctx, rdb, id, field, "run-c", now+7200, now, 0, 3, 3); err != nil {
			return err
		}
		for _, k := range keys {
			if err := luacheck.WantTTL(ctx, rdb, k, 7260*time.Second); err != nil {
				return err
			}
		}
		return luacheck.WantHash(ctx, rdb, keys[1], map[string]string{"run-a": "1", "run-b": "2", "run-c": "3"})
	}},
	{Script: "recordCmd", Name: "refuses until not after now", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		const field = "15550001111"
		now := caseNow.Unix()
		if err := record(ctx, rdb, id, field, "run-a", now, now, 0, 3, 0); err != nil {
			return err
		}
		if err := record(ctx, rdb, id, field, "run-a", now-1, now, 0, 3, 0); err != nil {
			return err
		}
		if n, err := rdb.Exists(ctx, recordKeys(id, field)...).Result(); err != nil || n != 0 {
			return fmt.Errorf("a refused record wrote %d keys (%v)", n, err)
		}
		return nil
	}},
	{Script: "recordCmd", Name: "keeps at most N runs per customer", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		x := NewIndex(rdb, id, func() time.Time { return caseNow })
		for i, run := range []string{"r-1", "r-2", "r-3", "r-4", "r-5"} {
			if err := x.Record(ctx, run, i, "+15550001111", caseNow.Add(time.Hour)); err != nil {
				return err
			}
		}
		// Recording the same run again moves it to the front without a second entry.
		if err := x.Record(ctx, "r-4", 3, "+15550001111", caseNow.Add(time.Hour)); err != nil {
			return err
		}
		key := rkeys.ConversationRecent(id, servicewindow.BucketOf("15550001111"))
		v, err := rdb.HGet(ctx, key, "15550001111").Result()
		if err != nil {
			return err
		}
		if v != "4:3 +3600 5:4 +3600 3:2 +3600" {
			return fmt.Errorf("entry %q, want the %d newest runs, r-4 (SEQ 4) first", v, MaxRecentRuns)
		}
		if len(v) >= 64 {
			return fmt.Errorf("entry %q is %d bytes: over Redis's listpack value limit", v, len(v))
		}
		return nil
	}},
	{Script: "recordCmd", Name: "dead runs and customers are dropped", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		now := caseNow
		x := NewIndex(rdb, id, func() time.Time { return now })
		const field = "15550001111"
		bucket := servicewindow.BucketOf(field)
		other := sameBucketField(bucket, field)
		if other == "" {
			return fmt.Errorf("no phone found in bucket %d", bucket)
		}
		if err := x.Record(ctx, "run-short", 0, "+"+field, now.Add(time.Hour)); err != nil {
			return err
		}
		now = now.Add(time.Hour)
		// A new run drops the runs past their until (run-short's is now) from the tables.
		if err := x.Record(ctx, "run-next", 0, "+15550002222", now.Add(time.Hour)); err != nil {
			return err
		}
		if err := luacheck.WantHash(ctx, rdb, rkeys.ConversationRuns(id), map[string]string{"run-next": "2"}); err != nil {
			return err
		}
		// A new customer joining field's bucket drops it: its only run is dead.
		if err := x.Record(ctx, "run-next", 0, "+"+other, now.Add(time.Hour)); err != nil {
			return err
		}
		recent := rkeys.ConversationRecent(id, bucket)
		if err := luacheck.WantHash(ctx, rdb, recent, map[string]string{other: "2:0 +3600"}); err != nil {
			return err
		}
		// A customer already in the bucket keeps only their live runs: once run-last's until
		// is now, a run recorded again leaves it out (still numbered, as no new run came)...
		if err := x.Record(ctx, "run-last", 1, "+"+other, now.Add(30*time.Minute)); err != nil {
			return err
		}
		now = now.Add(30 * time.Minute)
		if err := x.Record(ctx, "run-next", 0, "+"+other, now.Add(30*time.Minute)); err != nil {
			return err
		}
		if err := luacheck.WantHash(ctx, rdb, recent, map[string]string{other: "2:0 +1800"}); err != nil {
			return err
		}
		if err := luacheck.WantHash(ctx, rdb, rkeys.ConversationRuns(id), map[string]string{"run-next": "2", "run-last": "3"}); err != nil {
			return err
		}
		// ...and a new run drops it from the tables.
		if err := x.Record(ctx, "run-after", 2, "+"+other, now.Add(time.Hour)); err != nil {
			return err
		}
		if err := luacheck.WantHash(ctx, rdb, recent, map[string]string{other: "4:2 +3600 2:0 +1800"}); err != nil {
			return err
		}
		if err := luacheck.WantHash(ctx, rdb, rkeys.ConversationRuns(id), map[string]string{"run-next": "2", "run-after": "4"}); err != nil {
			return err
		}
		for _, k := range []string{recent, rkeys.ConversationRuns(id), rkeys.ConversationSeqs(id)} {
			if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
				return fmt.Errorf("%s has no expiry (PTTL %v, %v)", k, ttl, err)
			}
		}
		return nil
	}},
	{Script: "recordCmd", Name: "reads an entry's runs by their SEQ, old entries too", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		const field = "15550001111"
		now := caseNow.Unix()
		keys := recordKeys(id, field)
		other := sameBucketField(servicewindow.BucketOf(field), field)
		if other == "" {
			return fmt.Errorf("no phone found in the bucket of %s", field)
		}
		// SEQ 1 is dead and SEQ 5 live; other's entry names bucket 5 of run SEQ 1, and its
		// LEFT ends in 5 (an entry without LEFT, as an older Herald wrote it, beside it).
		if err := rdb.HSet(ctx, keys[2], "1", fmt.Sprint("run-dead|", now-1), "5", fmt.Sprint("run-live|", now+3600), "#", "5").Err(); err != nil {
			return err
		}
		if err := rdb.HSet(ctx, keys[1], "run-dead", "1", "run-live", "5").Err(); err != nil {
			return err
		}
		if err := rdb.HSet(ctx, keys[0], other, "1:5:15", "17770000000", "5:3").Err(); err != nil {
			return err
		}
		// field joins the bucket: other's entry is dropped (its only run is dead), the older
		// Herald's entry of a live run is kept as it was.
		if err := record(ctx, rdb, id, field, "run-live", now+3600, now, 0, 3, 5); err != nil {
			return err
		}
		if err := luacheck.WantHash(ctx, rdb, keys[0], map[string]string{field: "5:0 +3600", "17770000000": "5:3"}); err != nil {
			return err
		}
		// An older Herald's entry stays as written behind the run recorded now.
		if err := rdb.HSet(ctx, keys[0], field, "5:3").Err(); err != nil {
			return err
		}
		if err := record(ctx, rdb, id, field, "run-new", now+600, now, 1, 3, 6); err != nil {
			return err
		}
		return luacheck.WantHash(ctx, rdb, keys[0], map[string]string{field: "6:1 +600 5:3", "17770000000": "5:3"})
	}},
}

// TestScriptCases plays each script's cases on miniredis, and on real Redis when
// HERALD_TEST_REDIS is set. The business id, or the run id, is the case's id, so its keys
// hold it.
func TestScriptCases(t *testing.T) {
	luacheck.RunCases(t, scripts, scriptCases)
}
