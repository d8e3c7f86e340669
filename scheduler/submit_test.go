package scheduler_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/scheduler"
)

// submitCalls records which of Submit's callbacks ran.
type submitCalls struct {
	rules, connect int
	rdb            redis.UniversalClient
}

func (c *submitCalls) params(path string, now time.Time) scheduler.SubmitParams {
	return scheduler.SubmitParams{Path: path, Now: now,
		Rules: func() (campaigns.FileRules, error) {
			c.rules++
			return campaigns.FileRules{}, nil
		},
		Connect: func(context.Context) (redis.UniversalClient, error) {
			c.connect++
			if c.rdb == nil {
				return nil, errors.New("redis is down")
			}
			return c.rdb, nil
		}}
}

// TestSubmitStoresVersionsAndNextRun: a campaign is stored as version 1, the same file again
// keeps it, a changed file becomes version 2, and the next run is the schedule's next tick
// after Now.
func TestSubmitStoresVersionsAndNextRun(t *testing.T) {
	b := setup(t)
	def := b.scheduled(t, "nightly", "schedule: {cron: \"0 3 * * *\", timezone: UTC}\n")
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	// Submit closes the client it is given: each call gets its own.
	connect := func() *submitCalls {
		rdb := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
		return &submitCalls{rdb: rdb}
	}
	ctx := context.Background()

	got, err := scheduler.Submit(ctx, connect().params(def.Path, now))
	if err != nil {
		t.Fatal(err)
	}
	want := scheduler.Submitted{Campaign: "nightly", Version: 1, Changed: true,
		NextRun: time.Date(2026, 5, 2, 3, 0, 0, 0, time.UTC), Scheduled: true}
	if !got.NextRun.Equal(want.NextRun) || got.Campaign != want.Campaign || got.Version != want.Version ||
		got.Changed != want.Changed || got.Scheduled != want.Scheduled {
		t.Fatalf("first submit = %+v, want %+v", got, want)
	}
	if got, err = scheduler.Submit(ctx, connect().params(def.Path, now)); err != nil || got.Version != 1 || got.Changed {
		t.Fatalf("same file again = %+v, %v; want version 1 unchanged", got, err)
	}

	if err := os.WriteFile(def.Path, []byte("id: nightly\ntemplate: {name: spring_sale, language: en}\n"+
		"parameters:\n  body_1: \"{{.name}}\"\naudience: {file: audience.csv}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = scheduler.Submit(ctx, connect().params(def.Path, now))
	if err != nil || got.Version != 2 || !got.Changed || !got.NextRun.IsZero() || got.Scheduled {
		t.Fatalf("changed file without a schedule = %+v, %v; want version 2, changed, no next run", got, err)
	}
	cur, err := defstore.New(b.rdb, nil).Current(ctx, "nightly")
	if err != nil || cur.Version != 2 {
		t.Fatalf("stored current = %+v, %v; want version 2", cur, err)
	}
}

// TestSubmitReportsTheFileBeforeTheMachine: a file that is not a campaign fails before the
// config is read, and a campaign whose audience is missing fails before Redis is dialled; so
// both are reported even when Redis is down.
func TestSubmitReportsTheFileBeforeTheMachine(t *testing.T) {
	dir := t.TempDir()
	notCampaign := filepath.Join(dir, "notes.yaml")
	if err := os.WriteFile(notCampaign, []byte("hello: world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := &submitCalls{}
	if _, err := scheduler.Submit(context.Background(), calls.params(notCampaign, time.Time{})); err == nil {
		t.Fatal("a file that is not a campaign was submitted")
	}
	if calls.rules != 0 || calls.connect != 0 {
		t.Fatalf("not a campaign: rules read %d times, Redis dialled %d times; want neither", calls.rules, calls.connect)
	}

	noAudience := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(noAudience, []byte("id: c\ntemplate: {name: spring_sale, language: en}\n"+
		"audience: {file: missing.csv}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls = &submitCalls{}
	_, err := scheduler.Submit(context.Background(), calls.params(noAudience, time.Time{}))
	var aerr *campaigns.AudienceError
	if !errors.As(err, &aerr) {
		t.Fatalf("missing audience: err = %v, want a *campaigns.AudienceError", err)
	}
	if calls.rules != 1 || calls.connect != 0 {
		t.Fatalf("missing audience: rules read %d times, Redis dialled %d times; want 1 and 0", calls.rules, calls.connect)
	}

	// A good campaign reaches Redis, and Redis's error is the answer.
	if err := os.WriteFile(filepath.Join(dir, "missing.csv"), []byte(audienceCSV(2)), 0o644); err != nil {
		t.Fatal(err)
	}
	calls = &submitCalls{}
	if _, err := scheduler.Submit(context.Background(), calls.params(noAudience, time.Time{})); err == nil ||
		err.Error() != "redis is down" || calls.connect != 1 {
		t.Fatalf("Redis down: err = %v after %d dials; want the dial's error after one", err, calls.connect)
	}
}
