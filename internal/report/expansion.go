package report

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/reclaim"
	"github.com/heraldmsg/herald/internal/rkeys"
)

// Expansion is what is left of a run's expansion: the chain of expansion tasks, each reading
// a backlog of the run's audience and handing over to the next, that is the only thing that
// reads the rows of a run not expanded yet (ExpansionOf).
type Expansion struct {
	// Live are the ids of the run's expansion tasks pending, scheduled, retry or active: one
	// of them carries the expansion on.
	Live []string `json:"live,omitempty"`
	// Archived are the ids of its archived expansion tasks (their retries used up, or
	// archived by an operator), the latest step first: none runs until it is retried.
	Archived []string `json:"archived,omitempty"`
	// Running says an asynq server may still be running a step of it whose task is gone from
	// the queue (listed by a beating server, or leased and the lease not run out:
	// reclaim.Running): that step may hand over to the next.
	Running bool `json:"running,omitempty"`
	// Next is a step number no task of the run seen holds: one past the highest seen, at
	// least 1.
	Next int `json:"-"`
}

// Stopped reports whether nothing is left that will read the rest of the run's audience: no
// expansion task of it is live, and no server may still be running one.
func (e Expansion) Stopped() bool { return len(e.Live) == 0 && !e.Running }

// Why says why a stopped expansion stopped, in the words of run show: "archived" when an
// expansion task of the run waits in the archive, else "no_task".
func (e Expansion) Why() string {
	if len(e.Archived) > 0 {
		return "archived"
	}
	return "no_task"
}

// expansionPage is how many expansion tasks ExpansionOf reads a round trip.
const expansionPage = 500

// ExpansionOf looks for what is left of run's expansion: its expansion tasks (the run's id for
// its first step, the run's id, "/expand/" and the step number for the others) in every state
// but completed, and whether a server may still be running one whose task is gone. It is only
// meaningful for a run not expanded yet, and not a follow-up run (which is never expanded: its
// entries come from replies). A task moves between asynq's lists as it runs, and a step hands
// over to the next just before it ends, so a look that finds nothing live looks once more:
// what it then reports as stopped was stopped across both looks.
func ExpansionOf(ctx context.Context, rdb redis.UniversalClient, run string, now time.Time) (Expansion, error) {
	in := asynq.NewInspectorFromRedisClient(rdb)
	e, err := lookAtExpansion(ctx, rdb, in, run, now)
	if err != nil || !e.Stopped() {
		return e, err
	}
	return lookAtExpansion(ctx, rdb, in, run, now)
}

// lookAtExpansion is one look of ExpansionOf.
func lookAtExpansion(ctx context.Context, rdb redis.UniversalClient, in *asynq.Inspector, run string, now time.Time) (Expansion, error) {
	e := Expansion{Next: 1}
	step := func(id string) (int, bool) {
		if id == run {
			return 0, true
		}
		rest, ok := strings.CutPrefix(id, rkeys.ExpandStepPrefix(run))
		if !ok {
			return 0, false
		}
		n, err := strconv.Atoi(rest)
		return n, err == nil
	}
	seen := func(id string) bool {
		n, ok := step(id)
		if ok {
			e.Next = max(e.Next, n+1)
		}
		return ok
	}
	lists := map[string]func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		"pending": in.ListPendingTasks, "active": in.ListActiveTasks, "scheduled": in.ListScheduledTasks,
		"retry": in.ListRetryTasks, "archived": in.ListArchivedTasks,
	}
	var archived []*asynq.TaskInfo
	for _, state := range []string{"active", "pending", "scheduled", "retry", "archived"} {
		for page := 1; ; page++ {
			ts, err := lists[state](rkeys.ExpandQueue, asynq.PageSize(expansionPage), asynq.Page(page))
			if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				return Expansion{}, fmt.Errorf("expansion tasks of run %s: %w", run, err)
			}
			for _, t := range ts {
				switch {
				case !seen(t.ID):
				case state == "archived":
					archived = append(archived, t)
				default:
					e.Live = append(e.Live, t.ID)
				}
			}
			if len(ts) < expansionPage {
				break
			}
		}
	}
	slices.SortFunc(archived, func(a, b *asynq.TaskInfo) int {
		sa, _ := step(a.ID)
		sb, _ := step(b.ID)
		return sb - sa
	})
	for _, t := range archived {
		e.Archived = append(e.Archived, t.ID)
	}
	if len(e.Live) > 0 {
		return e, nil
	}
	// A step whose task is gone may still run: its id is in the queue's active list or
	// leases, or a server's list of what it runs.
	var ids []string
	add := func(id string) {
		if seen(id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	active, err := rdb.LRange(ctx, rkeys.AsynqActive(rkeys.ExpandQueue), 0, -1).Result()
	if err != nil {
		return Expansion{}, fmt.Errorf("expansion tasks of run %s: %w", run, err)
	}
	leased, err := rdb.ZRange(ctx, rkeys.AsynqLease(rkeys.ExpandQueue), 0, -1).Result()
	if err != nil {
		return Expansion{}, fmt.Errorf("expansion tasks of run %s: %w", run, err)
	}
	servers, err := rdb.ZRange(ctx, rkeys.AsynqWorkers(), 0, -1).Result()
	if err != nil {
		return Expansion{}, fmt.Errorf("expansion tasks of run %s: %w", run, err)
	}
	for _, id := range append(active, leased...) {
		add(id)
	}
	for _, wkey := range servers {
		held, err := rdb.HKeys(ctx, wkey).Result()
		if err != nil {
			return Expansion{}, fmt.Errorf("expansion tasks of run %s: %w", run, err)
		}
		for _, id := range held {
			add(id)
		}
	}
	running, err := reclaim.Running(ctx, rdb, []string{rkeys.ExpandQueue}, ids, now)
	if err != nil {
		return Expansion{}, fmt.Errorf("expansion tasks of run %s: %w", run, err)
	}
	for _, r := range running {
		e.Running = e.Running || r
	}
	return e, nil
}

// stoppedExpansion says why run's expansion stopped ("no_task", "archived"), or "" when it has
// not: the run is expanded, a follow-up run (never expanded), or a task of its expansion is
// left or may still run.
func stoppedExpansion(ctx context.Context, rdb redis.UniversalClient, r ledger.Run, now time.Time) (string, error) {
	if _, _, followup := ledger.FollowupOf(r.ID); r.Expanded || followup {
		return "", nil
	}
	e, err := ExpansionOf(ctx, rdb, r.ID, now)
	if err != nil || !e.Stopped() {
		return "", err
	}
	return e.Why(), nil
}
