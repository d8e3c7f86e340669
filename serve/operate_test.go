package serve_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/audit"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/serve"
)

// campaignFile writes a template campaign to n recipients (+1201555000i) and returns its path;
// extra is added to the campaign's YAML.
func campaignFile(t *testing.T, n int, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&csv, "+1201555%04d,name %d\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "audience.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "id: spring-sale\ntemplate: {name: spring_sale, language: en}\n" +
		"parameters:\n  body_1: \"{{.name}}\"\naudience: {file: audience.csv}\n" + strings.Join(extra, "")
	path := filepath.Join(dir, "campaign.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// connectTo is a SendParams.Connect that hands out clients of rdb's server (SendCampaign
// closes the one it gets).
func connectTo(rdb *redis.Client) func(context.Context) (redis.UniversalClient, error) {
	return func(context.Context) (redis.UniversalClient, error) { return redis.NewClient(rdb.Options()), nil }
}

// send starts a run of a campaign to n recipients with config c, as `campaign send` does;
// extra is added to the campaign's YAML.
func send(t *testing.T, c config.Config, rdb *redis.Client, n int, extra ...string) serve.Sent {
	t.Helper()
	sent, err := serve.SendCampaign(context.Background(), serve.SendParams{Path: campaignFile(t, n, extra...), Config: c, Log: zerolog.Nop(),
		Connect: connectTo(rdb)})
	if err != nil {
		t.Fatal(err)
	}
	return sent
}

// auditLog reads the audit log as "actor action target: detail" lines, newest first.
func auditLog(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	es, err := audit.List(context.Background(), rdb, 20)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s %s %s: %s", e.Actor, e.Action, e.Target, e.Detail))
	}
	return out
}

func wantLog(t *testing.T, rdb redis.UniversalClient, want ...string) {
	t.Helper()
	if got := auditLog(t, rdb); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Pause, resume and cancel change the run and keep themselves in the audit log; a change the
// run's status refuses says the status and keeps nothing; a run that does not exist is
// ErrRunNotFound.
func TestRunChangesAreAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	sent := send(t, config.Default(), rdb, 3)
	id := sent.RunID
	rec := audit.Record{Redis: rdb, Actor: "ana", Reason: "wrong price"}

	res, err := serve.PauseRun(ctx, config.Config{}, rdb, id, rec)
	if err != nil || !res.Changed {
		t.Fatalf("PauseRun = %+v, %v", res, err)
	}
	r, err := ledger.New(rdb, nil).GetRun(ctx, id)
	if err != nil || r.Status != ledger.RunPaused || r.PauseReason != "paused by ana: wrong price" {
		t.Fatalf("run after pause: %s %q, %v", r.Status, r.PauseReason, err)
	}
	if res, err := serve.PauseRun(ctx, config.Config{}, rdb, id, rec); err != nil || res.Changed || res.Status != ledger.RunPaused {
		t.Fatalf("second PauseRun = %+v, %v; want refused, paused", res, err)
	}
	if res, err := serve.ResumeRun(ctx, config.Config{}, rdb, id, rec); err != nil || !res.Changed {
		t.Fatalf("ResumeRun = %+v, %v", res, err)
	}
	res, err = serve.CancelRun(ctx, config.Config{}, rdb, id, rec)
	if err != nil || !res.Changed || res.Detail != "3 recipients skipped" {
		t.Fatalf("CancelRun = %+v, %v", res, err)
	}
	if _, err := serve.PauseRun(ctx, config.Config{}, rdb, "no-such-run", rec); !errors.Is(err, ledger.ErrRunNotFound) {
		t.Fatalf("PauseRun of no run: %v, want ErrRunNotFound", err)
	}
	wantLog(t, rdb,
		"ana run cancel "+id+": 3 recipients skipped",
		"ana run resume "+id+": ",
		"ana run pause "+id+": ")
}

// campaign rm removes a submitted campaign and keeps it in the audit log; one not submitted
// is reported and keeps nothing.
func TestRemoveCampaignIsAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	if _, _, err := defstore.New(rdb, nil).Submit(ctx, "spring-sale", "campaign.yaml", []byte("id: spring-sale\n")); err != nil {
		t.Fatal(err)
	}
	rec := audit.Record{Redis: rdb, Actor: "ana"}
	if ok, err := serve.RemoveCampaign(ctx, rdb, "spring-sale", rec); err != nil || !ok {
		t.Fatalf("RemoveCampaign = %v, %v", ok, err)
	}
	if ok, err := serve.RemoveCampaign(ctx, rdb, "spring-sale", rec); err != nil || ok {
		t.Fatalf("second RemoveCampaign = %v, %v; want not submitted", ok, err)
	}
	wantLog(t, rdb, "ana campaign rm spring-sale: ")
}

// finish settles every recipient of run: those in failed fail with their code, the others
// are accepted.
func finish(t *testing.T, rdb *redis.Client, run ledger.Run, n int, failed map[string]string) {
	t.Helper()
	ctx := context.Background()
	l := ledger.New(rdb, nil)
	for i := 1; i <= n; i++ {
		to := fmt.Sprintf("+1201555%04d", i)
		a := ledger.AddressIn(run.ID, to, run.Buckets)
		if _, err := l.Claim(ctx, a, run.Delivery); err != nil {
			t.Fatal(err)
		}
		o := ledger.Outcome{State: ledger.Accepted, MessageID: "m" + to}
		if code, ok := failed[to]; ok {
			o = ledger.Outcome{State: ledger.Failed, Code: code}
		}
		if _, err := l.Finish(ctx, a, o); err != nil {
			t.Fatal(err)
		}
	}
}

// run retry picks failures by the class the config's table gives their code, starts the child
// run and keeps it in the audit log; a table that does not build is the config's error, and a
// run that does not exist is ErrRunNotFound, neither kept.
func TestRetryRunUsesTheConfigAndIsAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	sent := send(t, config.Default(), rdb, 3)
	finish(t, rdb, sent.Run, 3, map[string]string{"+12015550002": "HTTP_503"})
	rec := audit.Record{Redis: rdb, Actor: "ana"}
	retry := func(c config.Config, parent string) (expand.Retried, error) {
		return serve.RetryRun(ctx, serve.RetryParams{Config: c, Redis: rdb, Log: zerolog.Nop(), Audit: rec,
			Retry: expand.RetryParams{Parent: parent, Class: connectly.ClassTransient}})
	}

	bad := config.Default()
	bad.Errors = map[string]string{"HTTP_503": "sometimes"}
	var ce *config.Error
	if _, err := retry(bad, sent.RunID); !errors.As(err, &ce) || ce.Key != "errors.HTTP_503" {
		t.Fatalf("retry with a broken table: %v, want a config.Error on errors.HTTP_503", err)
	}
	permanent := config.Default()
	permanent.Errors = map[string]string{"HTTP_503": "permanent"}
	if _, err := retry(permanent, sent.RunID); !errors.Is(err, expand.ErrNothingToRetry) {
		t.Fatalf("retry of transient failures with 503 permanent: %v, want ErrNothingToRetry", err)
	}
	if _, err := retry(config.Default(), "no-such-run"); !errors.Is(err, ledger.ErrRunNotFound) {
		t.Fatalf("retry of no run: %v, want ErrRunNotFound", err)
	}
	wantLog(t, rdb)

	res, err := retry(config.Default(), sent.RunID)
	if err != nil || res.Stats.Planned != 1 || res.Child.Parent != sent.RunID {
		t.Fatalf("retry = %+v, %v; want a child run of 1", res, err)
	}
	wantLog(t, rdb, fmt.Sprintf("ana run retry %s: child run %s with 1 recipient", sent.RunID, res.Child.ID))
}

// campaign send reads the file and chooses its sender before asking for Redis: a file that
// does not load, or a sender that cannot be chosen, never connects.
func TestSendCampaignChecksBeforeConnecting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	connect := func(context.Context) (redis.UniversalClient, error) {
		t.Error("connected to Redis")
		return nil, errors.New("no Redis here")
	}
	if _, err := serve.SendCampaign(ctx, serve.SendParams{Path: filepath.Join(t.TempDir(), "none.yaml"), Config: config.Default(),
		Log: zerolog.Nop(), Connect: connect}); err == nil {
		t.Error("a missing file: no error")
	}
	two := config.Default()
	two.Senders = []config.Sender{{Number: "+14155550100"}, {Number: "+14155550101"}}
	_, err := serve.SendCampaign(ctx, serve.SendParams{Path: campaignFile(t, 1), Config: two, Log: zerolog.Nop(), Connect: connect})
	if !errors.As(err, new(*config.SenderRequiredError)) {
		t.Errorf("two senders and none named: %v, want a SenderRequiredError", err)
	}
}

// campaign send starts the run with every recipient queued, and campaign ls lists it beside
// the submitted campaigns.
func TestSendThenListCampaigns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	sent := send(t, config.Default(), rdb, 4)
	if sent.Stats.Planned != 4 || sent.Run.Campaign != "spring-sale" || sent.Took <= 0 {
		t.Fatalf("sent %+v", sent)
	}
	if _, _, err := defstore.New(rdb, nil).Submit(ctx, "weekly", "weekly.yaml", []byte("id: weekly\n")); err != nil {
		t.Fatal(err)
	}
	rows, err := serve.ListCampaigns(ctx, rdb, 10, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.Campaign] = fmt.Sprintf("version %d, %d runs, last %s", r.Version, r.Runs, r.LastRun)
	}
	if len(got) != 2 || got["spring-sale"] != "version 0, 1 runs, last "+sent.RunID || got["weekly"] != "version 1, 0 runs, last " {
		t.Fatalf("campaigns %v", got)
	}
}

// SendCampaign reads the audience under the campaigns section of the config it is given, as
// PlanCampaign does. Before, it took the process's default rules, so a library caller's
// campaigns.root and limits did not apply to the run it started.
func TestSendCampaignReadsUnderTheConfigsRules(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	c := config.Default()
	c.Campaigns.Root = t.TempDir() // the campaign and its audience are elsewhere
	_, err := serve.SendCampaign(context.Background(), serve.SendParams{Path: campaignFile(t, 2), Config: c, Log: zerolog.Nop(),
		Connect: connectTo(rdb)})
	// The check of the file, as campaign validate's, finds it first: at audience.file.
	var es campaigns.Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Field != "audience.file" || !strings.Contains(es[0].Msg, campaigns.ErrOutsideRoot.Error()) {
		t.Fatalf("SendCampaign with the audience outside campaigns.root: %v, want its problem at audience.file: %v", err, campaigns.ErrOutsideRoot)
	}
}

// Cancelling a run still reading its audience says how many rows its expansion has yet to
// skip, besides the queued recipients it skipped at once.
func TestCancelRunStillReadingItsAudience(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	c := config.Default()
	c.Scheduler.MinBacklog, c.Scheduler.MaxBacklog = 10, 10
	sent := send(t, c, rdb, 2000) // expansion writes batches of 500 rows
	if !sent.Continues {
		t.Fatalf("send of 2,000 with a backlog of 10: %+v, want it to continue", sent)
	}
	res, err := serve.CancelRun(ctx, config.Config{}, rdb, sent.RunID, audit.Record{Redis: rdb, Actor: "ana"})
	if err != nil || !res.Changed || !strings.HasPrefix(res.Detail, "500 recipients skipped, and the 1500 rows not read yet") {
		t.Fatalf("CancelRun = %+v, %v; want the 500 queued skipped and the 1,500 rows left named", res, err)
	}
}

// Resuming a completed run whose follow-ups were paused resumes them and reports the run's
// own status, completed, not running.
func TestResumeRunReportsTheStatusItLeaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testredis.Mini(t)
	l := ledger.New(rdb, nil)
	fid := ledger.FollowupRun("done-1", "yes")
	for _, id := range []string{"done-1", fid} {
		if err := l.CreateRun(ctx, ledger.Run{ID: id, Campaign: "c", Delivery: ledger.AtMostOnce, Buckets: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.HSet(ctx, rkeys.Run("done-1"), "status", string(ledger.RunCompleted)).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := l.Pause(ctx, fid, "template missing"); !ok || err != nil {
		t.Fatalf("pause the follow-up run: %v %v", ok, err)
	}
	if err := l.NotePausedFollowup(ctx, fid); err != nil {
		t.Fatal(err)
	}
	res, err := serve.ResumeRun(ctx, config.Config{}, rdb, "done-1", audit.Record{Redis: rdb, Actor: "ana"})
	if err != nil || !res.Changed || res.Status != ledger.RunCompleted {
		t.Fatalf("ResumeRun = %+v, %v; want changed, the run still completed", res, err)
	}
	if r, err := l.GetRun(ctx, fid); err != nil || r.Status != ledger.RunRunning {
		t.Fatalf("follow-up run %s, %v; want running", r.Status, err)
	}
}
