package defstore

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/luacheck"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// scripts is every redis.NewScript variable of the package (luacheck.Files checks the list).
var scripts = []string{"submitCmd", "recordFireCmd"}

// TestScriptFiles pins the layout of the package's Lua: one lua/*.lua file per script, its
// contract at its top, none written as a Go string.
func TestScriptFiles(t *testing.T) {
	luacheck.Files(t, "", scripts)
}

// submitStep is one call of submitCmd: version v of the campaign with content sha, and the
// reply it must get.
type submitStep struct {
	what  string
	v     int
	sha   string
	reply []int64
}

func (s submitStep) play(ctx context.Context, rdb redis.UniversalClient, id string) error {
	got, err := submitCmd.Run(ctx, rdb, []string{rkeys.Definition(id), rkeys.DefinitionVersion(id, s.v)},
		s.v, s.sha, "yaml "+s.sha, "/campaigns/"+s.sha+".yaml", 1000*s.v).Int64Slice()
	if err != nil {
		return fmt.Errorf("%s: %w", s.what, err)
	}
	if !slices.Equal(got, s.reply) {
		return fmt.Errorf("%s: reply %v, want %v", s.what, got, s.reply)
	}
	return nil
}

var scriptCases = []luacheck.Case{
	{Script: "submitCmd", Name: "versions", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		for _, s := range []submitStep{
			{"first", 1, "a", []int64{1, 1, 0}},
			{"same content", 2, "a", []int64{1, 0, 0}},
			{"stale version", 3, "b", []int64{-1, 0, 0}},
			{"new content", 2, "b", []int64{2, 1, 0}},
		} {
			if err := s.play(ctx, rdb, id); err != nil {
				return err
			}
		}
		if n, err := rdb.Exists(ctx, rkeys.DefinitionVersion(id, 3)).Result(); err != nil || n != 0 {
			return fmt.Errorf("the stale submit wrote version 3 (%d, %v)", n, err)
		}
		if err := luacheck.WantHash(ctx, rdb, rkeys.DefinitionVersion(id, 1),
			map[string]string{"yaml": "yaml a", "path": "/campaigns/a.yaml", "sha": "a", "submitted": "1000"}); err != nil {
			return err
		}
		return luacheck.WantHash(ctx, rdb, rkeys.Definition(id),
			map[string]string{"version": "2", "sha": "b", "path": "/campaigns/b.yaml", "submitted": "2000"})
	}},
	{Script: "submitCmd", Name: "resubmit restores removed", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		for _, s := range []submitStep{
			{"first", 1, "a", []int64{1, 1, 0}},
			{"same content after rm", 2, "a", []int64{1, 0, 1}},
			{"same content again", 2, "a", []int64{1, 0, 0}},
			{"new content after rm", 2, "b", []int64{2, 1, 1}},
		} {
			if s.reply[2] == 1 {
				if err := rdb.HSet(ctx, rkeys.Definition(id), "removed", 1500).Err(); err != nil {
					return err
				}
			}
			if err := s.play(ctx, rdb, id); err != nil {
				return err
			}
			if n, err := rdb.HExists(ctx, rkeys.Definition(id), "removed").Result(); err != nil || n {
				return fmt.Errorf("%s: still marked removed (%v)", s.what, err)
			}
		}
		return luacheck.WantHash(ctx, rdb, rkeys.Definition(id),
			map[string]string{"version": "2", "sha": "b", "path": "/campaigns/b.yaml", "submitted": "2000"})
	}},
	{Script: "recordFireCmd", Name: "forward only", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		key := []string{rkeys.LastFire(id), rkeys.Definition(id)}
		for _, s := range []struct {
			ms    int64
			moved int64
			after string
		}{
			{0, 1, "0"}, // the first record, at the epoch, moves from none
			{5000, 1, "5000"},
			{5000, 0, "5000"},
			{4000, 0, "5000"},
			{6000, 1, "6000"},
		} {
			moved, err := recordFireCmd.Run(ctx, rdb, key, s.ms).Int64()
			if err != nil {
				return err
			}
			if after, err := rdb.Get(ctx, key[0]).Result(); err != nil || moved != s.moved || after != s.after {
				return fmt.Errorf("fire at %d: moved %d, record %q (%v); want %d, %q", s.ms, moved, after, err, s.moved, s.after)
			}
		}
		return nil
	}},
	{Script: "recordFireCmd", Name: "removed campaign", Play: func(ctx context.Context, rdb redis.UniversalClient, id string) error {
		key := []string{rkeys.LastFire(id), rkeys.Definition(id)}
		if err := rdb.HSet(ctx, key[1], "version", 1, "removed", 1500).Err(); err != nil {
			return err
		}
		moved, err := recordFireCmd.Run(ctx, rdb, key, 5000).Int64()
		if err != nil {
			return err
		}
		if n, err := rdb.Exists(ctx, key[0]).Result(); err != nil || moved != -1 || n != 0 {
			return fmt.Errorf("fire of a removed campaign: reply %d, record exists %d (%v); want -1 and none", moved, n, err)
		}
		return nil
	}},
}

// TestScriptCases plays each script's cases on miniredis, and on real Redis when
// HERALD_TEST_REDIS is set.
func TestScriptCases(t *testing.T) {
	luacheck.RunCases(t, scripts, scriptCases)
}
