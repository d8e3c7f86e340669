// Package defstore keeps submitted campaign definitions in Redis, versioned, as their YAML
// text and the path of the file they came from, and the campaign files runs were started
// from with campaign send, by content hash (KeepFile). Parsing the text into a campaign is the
// caller's (campaigns.Parse(v.Path, v.YAML)): this package knows no campaign vocabulary.
package defstore

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// ErrNotSubmitted is wrapped when a campaign id has no submitted definition (or no such
// version).
var ErrNotSubmitted = errors.New("campaign not submitted")

// ErrNotKept is wrapped when a campaign file a run was started from is not kept (KeepFile).
var ErrNotKept = errors.New("campaign file not kept")

// DefaultPoll is how often a reader of the store (the scheduler) looks at its change counter
// (Gen, one GET) for campaigns submitted or removed.
const DefaultPoll = 2 * time.Second

// Store keeps submitted campaign definitions in Redis, versioned. A definition is stored as
// its YAML text together with the absolute path of the file it came from: the audience file
// is not copied, it is read at expansion time from that path (relative audience paths resolve
// against the campaign file's folder), so every process that expands runs (`herald scheduler`
// and workers serving expansion) must see the same files at the same paths.
type Store struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// New returns a Store on rdb; now defaults to time.Now.
func New(rdb redis.UniversalClient, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, now: now}
}

// Submitted is one version of a submitted campaign.
type Submitted struct {
	ID      string
	Version int
	// Path is the absolute path of the campaign file it was submitted from.
	Path string
	YAML []byte
	// SHA is the hex SHA-256 of the path and the YAML text.
	SHA       string
	Submitted time.Time
}

func contentSHA(path string, yaml []byte) string {
	h := sha256.New()
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(yaml)
	return hex.EncodeToString(h.Sum(nil))
}

//go:embed lua/submit.lua
var submitLua string

// submitCmd stores a new version of a campaign unless the content is unchanged. Its KEYS, ARGV
// and reply are documented at the top of lua/submit.lua.
var submitCmd = redis.NewScript(submitLua)

// Submit stores the campaign id's file at path (its text yaml, already validated by the
// caller) as the campaign's current version and makes the scheduler run it. It returns the
// version and whether it is new; an unchanged file (same text, same path) keeps its version.
// SubmitFile says more.
func (s *Store) Submit(ctx context.Context, id, path string, yaml []byte) (version int, created bool, err error) {
	sub, err := s.SubmitFile(ctx, id, path, yaml)
	return sub.Version, sub.Created, err
}

// Submission is what a submit did.
type Submission struct {
	Version int
	// Created says the file became a new version; false: it already was the current one.
	Created bool
	// Restored says the campaign had been removed (campaign rm): the submit brought it back,
	// at a new version or at the one it had.
	Restored bool
}

// SubmitFile is Submit, saying also whether the submit brought back a removed campaign.
func (s *Store) SubmitFile(ctx context.Context, id, path string, yaml []byte) (Submission, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return Submission{}, fmt.Errorf("submit %s: %w", id, err)
	}
	sha := contentSHA(path, yaml)
	for try := 0; try < 10; try++ {
		cur, err := s.rdb.HGet(ctx, rkeys.Definition(id), "version").Int()
		if err != nil && !errors.Is(err, redis.Nil) {
			return Submission{}, fmt.Errorf("submit %s: %w", id, err)
		}
		next := cur + 1
		res, err := submitCmd.Run(ctx, s.rdb, []string{rkeys.Definition(id), rkeys.DefinitionVersion(id, next)},
			next, sha, yaml, path, s.now().UnixMilli()).Int64Slice()
		if err != nil {
			return Submission{}, fmt.Errorf("submit %s: %w", id, err)
		}
		if len(res) != 3 {
			return Submission{}, fmt.Errorf("submit %s: unexpected reply %v", id, res)
		}
		if res[0] == -1 {
			continue
		}
		// The index and the change counter live in other slots: written after the version.
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.SAdd(ctx, rkeys.Definitions(), id)
			p.Incr(ctx, rkeys.DefinitionsGen())
			return nil
		})
		if err != nil {
			return Submission{}, fmt.Errorf("submit %s: %w", id, err)
		}
		return Submission{Version: int(res[0]), Created: res[1] == 1, Restored: res[2] == 1}, nil
	}
	return Submission{}, fmt.Errorf("submit %s: the campaign is being submitted concurrently; try again", id)
}

// Remove stops future runs of a campaign: runs already started continue, and its versions stay
// readable for them. It reports whether the campaign was submitted.
func (s *Store) Remove(ctx context.Context, id string) (bool, error) {
	var srem *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		srem = p.SRem(ctx, rkeys.Definitions(), id)
		p.Incr(ctx, rkeys.DefinitionsGen())
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", id, err)
	}
	if srem.Val() == 0 {
		return false, nil
	}
	// The last fire record goes too: a later submit starts afresh instead of catching up on
	// ticks that fell while the campaign was removed.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, rkeys.Definition(id), "removed", s.now().UnixMilli())
		p.Del(ctx, rkeys.LastFire(id))
		return nil
	})
	if err != nil {
		return true, fmt.Errorf("remove %s: %w", id, err)
	}
	return true, nil
}

// Gen returns the change counter: it moves on every submit and rm.
func (s *Store) Gen(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, rkeys.DefinitionsGen()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read definitions counter: %w", err)
	}
	return n, nil
}

// Active returns the current version of every submitted campaign, by id.
func (s *Store) Active(ctx context.Context) ([]Submitted, error) {
	ids, err := s.rdb.SMembers(ctx, rkeys.Definitions()).Result()
	if err != nil {
		return nil, fmt.Errorf("list submitted campaigns: %w", err)
	}
	sort.Strings(ids)
	out := make([]Submitted, 0, len(ids))
	for _, id := range ids {
		sub, err := s.Current(ctx, id)
		if errors.Is(err, ErrNotSubmitted) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, nil
}

// Current returns the current version of a submitted campaign; it returns an error wrapping
// ErrNotSubmitted when there is none or the campaign was removed.
func (s *Store) Current(ctx context.Context, id string) (Submitted, error) {
	m, err := s.rdb.HMGet(ctx, rkeys.Definition(id), "version", "removed").Result()
	if err != nil {
		return Submitted{}, fmt.Errorf("read campaign %s: %w", id, err)
	}
	vs, _ := m[0].(string)
	v, _ := strconv.Atoi(vs)
	if v == 0 || m[1] != nil {
		return Submitted{}, fmt.Errorf("campaign %s: %w", id, ErrNotSubmitted)
	}
	return s.Version(ctx, id, v)
}

// Version returns one version of a campaign, removed or not; it returns an error wrapping
// ErrNotSubmitted when there is no such version.
func (s *Store) Version(ctx context.Context, id string, version int) (Submitted, error) {
	m, err := s.rdb.HGetAll(ctx, rkeys.DefinitionVersion(id, version)).Result()
	if err != nil {
		return Submitted{}, fmt.Errorf("read campaign %s version %d: %w", id, version, err)
	}
	if len(m) == 0 {
		return Submitted{}, fmt.Errorf("campaign %s version %d: %w", id, version, ErrNotSubmitted)
	}
	ms, _ := strconv.ParseInt(m["submitted"], 10, 64)
	return Submitted{ID: id, Version: version, Path: m["path"], YAML: []byte(m["yaml"]), SHA: m["sha"],
		Submitted: time.UnixMilli(ms).UTC()}, nil
}

// KeepFile keeps the text of the campaign file id was read from at path, as a run of it
// (campaign send) starts, and returns its content hash, which the run records: the run's
// later expansion steps, its retries and its follow-ups read the file as it was then (File),
// not as it is now, nor fail once it is gone. The same file kept twice is kept once. yaml is
// the text the caller read and parsed (campaigns.ReadFile bounds it).
func (s *Store) KeepFile(ctx context.Context, id, path string, yaml []byte) (string, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("keep campaign file of %s: %w", id, err)
	}
	sha := contentSHA(path, yaml)
	err = s.rdb.HSet(ctx, rkeys.DefinitionFile(id, sha), "path", path, "yaml", yaml, "sha", sha,
		"submitted", s.now().UnixMilli()).Err()
	if err != nil {
		return "", fmt.Errorf("keep campaign file of %s: %w", id, err)
	}
	return sha, nil
}

// File returns a campaign file kept by KeepFile (Version 0, Submitted the time it was kept);
// it returns an error wrapping ErrNotKept when there is none under sha.
func (s *Store) File(ctx context.Context, id, sha string) (Submitted, error) {
	m, err := s.rdb.HGetAll(ctx, rkeys.DefinitionFile(id, sha)).Result()
	if err != nil {
		return Submitted{}, fmt.Errorf("read campaign file of %s: %w", id, err)
	}
	if len(m) == 0 {
		return Submitted{}, fmt.Errorf("campaign %s, file %s: %w", id, sha, ErrNotKept)
	}
	ms, _ := strconv.ParseInt(m["submitted"], 10, 64)
	return Submitted{ID: id, Path: m["path"], YAML: []byte(m["yaml"]), SHA: m["sha"], Submitted: time.UnixMilli(ms).UTC()}, nil
}

// LastFire returns the latest tick handled for a campaign; ok is false when none is recorded.
func (s *Store) LastFire(ctx context.Context, id string) (t time.Time, ok bool, err error) {
	ms, err := s.rdb.Get(ctx, rkeys.LastFire(id)).Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read last fire of %s: %w", id, err)
	}
	return time.UnixMilli(ms).UTC(), true, nil
}

//go:embed lua/record_fire.lua
var recordFireLua string

// recordFireCmd moves a campaign's last fire time forward, never back, and not at all once the
// campaign is removed. Its KEYS, ARGV and reply are documented at the top of
// lua/record_fire.lua.
var recordFireCmd = redis.NewScript(recordFireLua)

// RecordFire records that the tick at t was handled (fired or skipped by policy). A removed
// campaign's is not recorded (Remove deleted its record).
func (s *Store) RecordFire(ctx context.Context, id string, t time.Time) error {
	keys := []string{rkeys.LastFire(id), rkeys.Definition(id)}
	if err := recordFireCmd.Run(ctx, s.rdb, keys, t.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("record fire of %s: %w", id, err)
	}
	return nil
}
