package expand_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
)

// isCreate matches the arguments of the script that creates a run: EVALSHA or EVAL, the
// script, 2 keys (the run hash and its pick set).
func isCreate(a []any) bool {
	return len(a) >= 5 && fmt.Sprint(a[2]) == "2" && strings.HasSuffix(fmt.Sprint(a[4]), "}:pick")
}

// createFault is one way the creation of a run fails after the run is stored.
type createFault struct {
	name string
	hook func() redis.Hook
	// fails says the command sees an error (the run exists all the same).
	fails bool
}

var createFaults = []createFault{
	// The listing (run lists, resend set; other slots) fails after the run is stored.
	{"ListingFails", func() redis.Hook { return failListing() }, false},
	// The create script's reply is lost and go-redis sends it again: the second run finds the
	// run the first created.
	{"ReplyLostAndResent", func() redis.Hook { return &replayHook{match: isCreate, n: 1} }, false},
	// The create script's reply is lost and the client gives up: the run exists, and the
	// command cannot know it.
	{"ReplyLost", func() redis.Hook { return &lostReply{match: isCreate} }, true},
}

// errListing is what failListing fails the listing of a run with.
var errListing = errors.New("i/o timeout on the node of the run lists")

// failListing fails, once, the pipeline that lists a run (the one that writes herald:runs),
// before it reaches Redis, as a timeout on the node holding those keys would.
func failListing() *testredis.FailPipelineOnce {
	return &testredis.FailPipelineOnce{Err: errListing, Match: func(c redis.Cmder) bool {
		a := c.Args()
		return c.Name() == "zadd" && len(a) > 1 && a[1] == rkeys.Runs()
	}}
}

// lostReply runs the first script call that match accepts and answered without error, then
// reports the connection lost (EOF) instead of its reply, as a client out of retries would.
type lostReply struct {
	match func(args []any) bool
	done  atomic.Bool
}

func (h *lostReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lostReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *lostReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !((cmd.Name() == "evalsha" || cmd.Name() == "eval") && h.match(cmd.Args())) {
			return next(ctx, cmd)
		}
		if err := next(ctx, cmd); err != nil || !h.done.CompareAndSwap(false, true) {
			return err // NOSCRIPT (go-redis then sends EVAL), or a later call
		}
		cmd.SetErr(io.EOF)
		return io.EOF
	}
}

// faulty returns a client on the bundle's Redis with hook.
func (b *testBundle) faulty(tb testing.TB, hook redis.Hook) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	tb.Cleanup(func() { c.Close() })
	c.AddHook(hook)
	return c
}

// onlyRun returns the id of the one run in Redis whose id has prefix.
func (b *testBundle) onlyRun(tb testing.TB, prefix string) string {
	tb.Helper()
	var ids []string
	for _, k := range b.runKeys() {
		if id, ok := strings.CutPrefix(k, "herald:run:{"); ok && strings.HasSuffix(id, "}") && strings.HasPrefix(id, prefix) {
			ids = append(ids, strings.TrimSuffix(id, "}"))
		}
	}
	if len(ids) != 1 {
		tb.Fatalf("runs %v, want one", ids)
	}
	return ids[0]
}

// checkListed fails unless run is listed where `run ls` and the resend sweep find it.
func (b *testBundle) checkListed(tb testing.TB, run ledger.Run) {
	tb.Helper()
	ctx := context.Background()
	all, err1 := b.ledger.RecentRuns(ctx, "", 100)
	ofCampaign, err2 := b.ledger.RecentRuns(ctx, run.Campaign, 100)
	resend, err3 := b.ledger.ResendRuns(ctx)
	if err := errors.Join(err1, err2, err3); err != nil {
		tb.Fatal(err)
	}
	if !slices.Contains(all, run.ID) || !slices.Contains(ofCampaign, run.ID) {
		tb.Fatalf("run %s not listed: runs %v, campaign's %v", run.ID, all, ofCampaign)
	}
	if run.ResendAfter > 0 && !slices.Contains(resend, run.ID) {
		tb.Fatalf("run %s resends unknown recipients, and the sweep's set %v lacks it", run.ID, resend)
	}
}

// TestCampaignSendWhoseRunIsStoredDespiteAnError: `campaign send` stores its run, and then
// something fails: the run's listing, or the create script's reply. The command must not
// withdraw the run's expansion step (so did it, leaving a run running at queued_to 0 forever,
// missing from `run ls`): the run is listed and expanded to its end, every recipient once.
func TestCampaignSendWhoseRunIsStoredDespiteAnError(t *testing.T) {
	t.Parallel()
	for _, f := range createFaults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			def := b.campaign(t, audienceCSV(40), "unknown: {resend_after: 10m}\n")
			cfg := expand.Config{BatchSize: 10, MinBacklog: 10, MaxBacklog: 10}
			r := commandRuns(cfg, b.faulty(t, f.hook()), b.client)
			st, err := r.StartRun(ctx, expand.StartParams{Def: def, Bounded: true})
			t.Logf("StartRun: %v", err)
			if !f.fails && err != nil {
				t.Fatalf("StartRun: %v", err)
			}
			run := b.getRun(t, b.onlyRun(t, def.ID))
			sent := map[string]int{}
			b.runChain(t, run.ID, run.Queue, cfg, sent)
			if f.fails && (err == nil || !strings.Contains(err.Error(), "carries it on")) {
				t.Fatalf("StartRun: %v; want an error saying the run's expansion task carries it on", err)
			}
			b.checkListed(t, b.getRun(t, run.ID))
			if len(sent) != 40 || st.RunID != "" && st.RunID != run.ID {
				t.Fatalf("%d recipients sent (started %q, run %s), want 40", len(sent), st.RunID, run.ID)
			}
			for k, n := range sent {
				if n != 1 {
					t.Fatalf("%s sent %d times", k, n)
				}
			}
		})
	}
}

// TestRetryWhoseChildIsStoredDespiteAnError: `run retry` records its child on the parent and
// stores it, and then something fails. The child's step must stay (so did it not: the child,
// recorded on its parent, stayed running unexpanded forever, and every later retry of the
// parent was refused until that child "has finished"): the child is listed, expanded, and
// finishes.
func TestRetryWhoseChildIsStoredDespiteAnError(t *testing.T) {
	t.Parallel()
	for _, f := range createFaults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			csv, valid := audience(30)
			def := b.lenient(t, csv)
			st, err := b.runs(expand.Config{}).StartRun(ctx, expand.StartParams{Def: def})
			if err != nil {
				t.Fatal(err)
			}
			b.finishAll(t, st.Run.Queue, func(to string) string {
				if to == valid[1] || to == valid[4] {
					return "HTTP_503"
				}
				return ""
			})
			cfg := expand.Config{BatchSize: 10}
			res, err := commandRuns(cfg, b.faulty(t, f.hook()), b.client).RetryRun(ctx, expand.RetryParams{Parent: st.RunID, AnyClass: true})
			t.Logf("RetryRun: child %q, %v", res.Child.ID, err)
			if !f.fails && (err != nil || res.Child.ID == "") {
				t.Fatalf("RetryRun: child %q, %v", res.Child.ID, err)
			}
			parent := b.getRun(t, st.RunID)
			if len(parent.RetriedBy) != 1 {
				t.Fatalf("parent retried by %+v, want one child", parent.RetriedBy)
			}
			child := b.getRun(t, parent.RetriedBy[0].Child)
			sent := map[string]int{}
			b.runChain(t, child.ID, child.Queue, cfg, sent)
			child = b.getRun(t, child.ID)
			b.checkListed(t, child)
			if child.Status != ledger.RunCompleted || len(sent) != 2 {
				t.Fatalf("child %s is %s with %d sent, want completed with 2", child.ID, child.Status, len(sent))
			}
			if f.fails && (err == nil || !strings.Contains(err.Error(), "carries it on")) {
				t.Fatalf("RetryRun: %v; want an error saying the child's expansion task carries it on", err)
			}
		})
	}
}

// killAfterCreate stops a process right after its create script ran: every later command
// fails, as for a process killed between storing a run and listing it.
type killAfterCreate struct{ dead atomic.Bool }

func (k *killAfterCreate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (k *killAfterCreate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if k.dead.Load() {
			return errDead
		}
		err := next(ctx, cmd)
		if err == nil && (cmd.Name() == "evalsha" || cmd.Name() == "eval") && isCreate(cmd.Args()) {
			k.dead.Store(true)
		}
		return err
	}
}
func (k *killAfterCreate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if k.dead.Load() {
			return errDead
		}
		return next(ctx, cmds)
	}
}

// TestTickRunListedByItsExpansion: the first task of a tick stores its run, and its process is
// killed (or the listing fails) before the run is listed. The task run again finds the run and
// expands it: it must list it too (it did not: the run was missing from `run ls`, and the
// resend sweep never looked at it, so its unknown recipients were never resent and it never
// completed).
func TestTickRunListedByItsExpansion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hook redis.Hook
		// gone removes the run's campaign version before the task is run again: the step
		// pauses the run at once, without expanding it.
		gone bool
	}{
		{"KilledBeforeTheListing", &killAfterCreate{}, false},
		{"ListingFails", failListing(), false},
		{"KilledAndThenBlocked", &killAfterCreate{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			def := b.campaign(t, audienceCSV(30), "unknown: {resend_after: 10m}\n")
			sub := b.submit(t, def)
			runID := expand.TickRunID(def.ID, testNow)
			task := expandTask(t, campaigns.ExpandPayload{Run: runID, Campaign: def.ID, Version: sub.Version, Trigger: "cron"})
			first := b.handler(b.faulty(t, tc.hook), expand.Config{})
			err := first.ProcessTask(ctx, task)
			t.Logf("first try: %v", err)
			if _, err := b.ledger.GetRun(ctx, runID); err != nil {
				t.Fatalf("the first try stored no run: %v", err)
			}
			if tc.gone {
				if err := b.rdb.Del(ctx, rkeys.DefinitionVersion(def.ID, sub.Version)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err != nil {
				// asynq runs the task again.
				if err := b.handler(nil, expand.Config{}).ProcessTask(ctx, task); err != nil {
					t.Fatalf("task run again: %v", err)
				}
			}
			run := b.getRun(t, runID)
			if !tc.gone && !run.Expanded || tc.gone && run.Status != ledger.RunPaused {
				t.Fatalf("run %s, expanded %v (%q)", run.Status, run.Expanded, run.PauseReason)
			}
			b.checkListed(t, run)
		})
	}
}
