package servicewindow

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/luacheck"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// scripts is every redis.NewScript variable of the package (luacheck.Files checks the list).
var scripts = []string{"touchCmd"}

// TestScriptFiles pins the layout of the package's Lua: one lua/*.lua file per script, its
// contract at its top, none written as a Go string.
func TestScriptFiles(t *testing.T) {
	luacheck.Files(t, "", scripts)
}

// The script cases run on miniredis and on real Redis alike: the script's clock is its ARGV
// (the tracker's clock), so they hold no Redis clock; a TTL is checked within a few seconds
// below what was set, the time the case takes.

// touch runs touchCmd on one bucket per field, all in key (ids of one customer can share a
// bucket), and returns an error unless it answers want.
func touch(ctx context.Context, rdb redis.UniversalClient, key string, at, cutoff int64, ttl time.Duration, want int64, fields ...string) error {
	keys := make([]string, len(fields))
	args := []any{at, cutoff, ttl.Milliseconds()}
	for i, f := range fields {
		keys[i] = key
		args = append(args, f)
	}
	n, err := touchCmd.Run(ctx, rdb, keys, args...).Int64()
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("touch %v at %d: %d moved, want %d", fields, at, n, want)
	}
	return nil
}

// bucketMates returns n phone numbers other than id whose fields land in id's bucket (fewer
// when the search runs out).
func bucketMates(id string, n int) []string {
	want := BucketOf(Field(id))
	var out []string
	for i := 0; i < 10_000_000 && len(out) < n; i++ {
		p := "+1415" + strconv.Itoa(5000000+i)
		if p != id && BucketOf(Field(p)) == want {
			out = append(out, p)
		}
	}
	return out
}

// caseNow is the tracker's clock in the script cases.
var caseNow = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

var scriptCases = []luacheck.Case{
	{Script: "touchCmd", Name: "moves only forward", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		key := rkeys.ServiceWindow(id, 0)
		// A customer known by two ids: both fields are new and move.
		if err := touch(ctx, rdb, key, 1000, 0, time.Hour, 2, "14155552671", "US.1"); err != nil {
			return err
		}
		// The same time again, or an older one, moves nothing and writes nothing.
		if err := touch(ctx, rdb, key, 1000, 0, time.Hour, 0, "14155552671", "US.1"); err != nil {
			return err
		}
		if err := touch(ctx, rdb, key, 999, 0, time.Hour, 0, "14155552671", "US.1"); err != nil {
			return err
		}
		if err := luacheck.WantHash(ctx, rdb, key, map[string]string{"14155552671": "1000", "US.1": "1000"}); err != nil {
			return err
		}
		// A later time moves only the id it is newer for; a value that is not a time is
		// replaced.
		if err := rdb.HSet(ctx, key, "US.1", "garbage").Err(); err != nil {
			return err
		}
		if err := touch(ctx, rdb, key, 1001, 0, time.Hour, 2, "14155552671", "US.1"); err != nil {
			return err
		}
		if err := rdb.HSet(ctx, key, "US.1", "2000").Err(); err != nil {
			return err
		}
		if err := touch(ctx, rdb, key, 1500, 0, time.Hour, 1, "14155552671", "US.1"); err != nil {
			return err
		}
		return luacheck.WantHash(ctx, rdb, key, map[string]string{"14155552671": "1500", "US.1": "2000"})
	}},
	{Script: "touchCmd", Name: "drops closed windows when a new customer joins", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		// Memory stays bounded by the open windows, even in a bucket that never expires
		// because someone in it always writes.
		key := rkeys.ServiceWindow(id, 0)
		for i, f := range []string{"1", "2", "3"} {
			if err := touch(ctx, rdb, key, int64(100*(i+1)), 0, time.Hour, 1, f); err != nil {
				return err
			}
		}
		if err := rdb.HSet(ctx, key, "odd", "not a time").Err(); err != nil {
			return err
		}
		// Windows at or before the cutoff (200) are closed. An update of a customer already in
		// the bucket drops nothing.
		if err := touch(ctx, rdb, key, 400, 200, time.Hour, 1, "3"); err != nil {
			return err
		}
		if err := luacheck.WantHash(ctx, rdb, key, map[string]string{"1": "100", "2": "200", "3": "400", "odd": "not a time"}); err != nil {
			return err
		}
		// A new customer drops the closed windows (the one at the cutoff too) and a field
		// holding no time.
		if err := touch(ctx, rdb, key, 400, 200, time.Hour, 1, "4"); err != nil {
			return err
		}
		return luacheck.WantHash(ctx, rdb, key, map[string]string{"3": "400", "4": "400"})
	}},
	{Script: "touchCmd", Name: "windows to each number are fields of the customer's bucket", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		// Through the tracker: a customer writes to A, then (older event) to B, then to no
		// number; each window moves on its own, and a first window to a number drops the
		// bucket's closed ones.
		now := caseNow
		tr := New(rdb, func() time.Time { return now })
		tr.SetPolicy(Policy{Senders: []string{"+16044441234", "+16044445678"}})
		key, f := Locate(id, phone)
		if err := rdb.HSet(ctx, key, "closed", now.Add(-Length).Unix()).Err(); err != nil {
			return err
		}
		steps := []struct {
			to string
			at time.Time
		}{{"+16044441234", now}, {"16044445678", now.Add(-time.Hour)}, {"", now.Add(-2 * time.Hour)}, {"+16044441234", now.Add(-3 * time.Hour)}}
		for i, s := range steps {
			moved, err := tr.TouchTo(ctx, id, s.to, []string{phone}, s.at)
			if err != nil || moved != (i < 3) {
				return fmt.Errorf("step %d: moved %v (%v)", i, moved, err)
			}
		}
		return luacheck.WantHash(ctx, rdb, key, map[string]string{
			f + ">16044441234": strconv.FormatInt(now.Unix(), 10),
			f + ">16044445678": strconv.FormatInt(now.Add(-time.Hour).Unix(), 10),
			f:                  strconv.FormatInt(now.Add(-2*time.Hour).Unix(), 10),
		})
	}},
	{Script: "touchCmd", Name: "TTL only extended to the newest window", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		// Through the tracker, which sets the TTL to the window's close plus the grace.
		now := caseNow
		tr := New(rdb, func() time.Time { return now })
		mates := bucketMates(phone, 1)
		if len(mates) != 1 {
			return fmt.Errorf("no phone number found in %s's bucket", phone)
		}
		key, _ := Locate(id, phone)
		if moved, err := tr.Touch(ctx, id, []string{phone}, now.Add(-time.Hour)); err != nil || !moved {
			return fmt.Errorf("touch: moved %v (%v), want moved", moved, err)
		}
		if err := luacheck.WantTTL(ctx, rdb, key, 23*time.Hour+ttlGrace); err != nil {
			return err
		}
		// Another customer in the same bucket with an older inbound message: the bucket keeps
		// living to the close of its newest window.
		if moved, err := tr.Touch(ctx, id, mates, now.Add(-10*time.Hour)); err != nil || !moved {
			return fmt.Errorf("touch of a bucket mate: moved %v (%v), want moved", moved, err)
		}
		if err := luacheck.WantTTL(ctx, rdb, key, 23*time.Hour+ttlGrace); err != nil {
			return fmt.Errorf("after an older window joined: %w", err)
		}
		// An event that moves nothing leaves the TTL alone, even one set shorter since.
		if err := rdb.PExpire(ctx, key, time.Hour).Err(); err != nil {
			return err
		}
		if moved, err := tr.Touch(ctx, id, []string{phone}, now.Add(-2*time.Hour)); err != nil || moved {
			return fmt.Errorf("an older event: moved %v (%v), want nothing moved", moved, err)
		}
		if err := luacheck.WantTTL(ctx, rdb, key, time.Hour); err != nil {
			return fmt.Errorf("after an event that moved nothing: %w", err)
		}
		// A newer one extends it to its own window's close.
		now = now.Add(time.Hour)
		if moved, err := tr.Touch(ctx, id, []string{phone}, now); err != nil || !moved {
			return fmt.Errorf("a newer event: moved %v (%v), want moved", moved, err)
		}
		if err := luacheck.WantTTL(ctx, rdb, key, Length+ttlGrace); err != nil {
			return fmt.Errorf("after a newer event: %w", err)
		}
		fields, err := rdb.HKeys(ctx, key).Result()
		slices.Sort(fields)
		want := []string{Field(phone), Field(mates[0])}
		slices.Sort(want)
		if err != nil || !slices.Equal(fields, want) {
			return fmt.Errorf("bucket fields %v (%v), want %v", fields, err, want)
		}
		return nil
	}},
}

// TestScriptCases plays each script's cases on miniredis, and on real Redis when
// HERALD_TEST_REDIS is set. The business id is the case's id, so its keys hold it.
func TestScriptCases(t *testing.T) {
	luacheck.RunCases(t, scripts, scriptCases)
}
