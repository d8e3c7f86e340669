package report_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/report"
)

// An interval that is not positive is an error, not a panic of the ticker, and reads nothing.
func TestPollRunRefusesNonPositiveInterval(t *testing.T) {
	t.Parallel()
	for _, every := range []time.Duration{0, -time.Second} {
		reads := 0
		read := func(context.Context, time.Time) (report.Run, error) {
			reads++
			return report.Run{Status: "completed"}, nil
		}
		_, err := report.PollRun(context.Background(), every, read, func(report.Run, time.Duration) error { return nil })
		if !errors.Is(err, report.ErrInterval) || reads != 0 {
			t.Errorf("PollRun every %s: %v after %d reads; want ErrInterval and no read", every, err, reads)
		}
	}
}

// PollRun reads until the run has ended and hands each report over, the last the ended one.
func TestPollRunUntilEnded(t *testing.T) {
	t.Parallel()
	statuses := []string{"running", "paused", "running", "cancelled"}
	i := 0
	read := func(context.Context, time.Time) (report.Run, error) {
		rep := report.Run{Status: statuses[i]}
		i++
		return rep, nil
	}
	var seen []string
	last, err := report.PollRun(context.Background(), time.Microsecond, read, func(rep report.Run, _ time.Duration) error {
		seen = append(seen, rep.Status)
		return nil
	})
	if err != nil || last.Status != "cancelled" || strings.Join(seen, " ") != strings.Join(statuses, " ") {
		t.Fatalf("PollRun: last %q, seen %v, %v", last.Status, seen, err)
	}
}

// A follow-up run stays open for replies: PollRun reads it once and says it never ends,
// rather than polling forever.
func TestPollRunRefusesFollowUpRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reads, calls := 0, 0
	read := func(context.Context, time.Time) (report.Run, error) {
		reads++
		return report.Run{Run: "r1~yes", Follows: "r1", Rule: "yes", Status: "running"}, nil
	}
	last, err := report.PollRun(ctx, time.Millisecond, read, func(report.Run, time.Duration) error {
		calls++
		return nil
	})
	if !errors.Is(err, report.ErrNeverEnds) || ctx.Err() != nil || reads != 1 || calls != 0 || last.Follows != "r1" {
		t.Fatalf("PollRun of a follow-up run: %v (ctx %v) after %d reads, %d calls, last %+v", err, ctx.Err(), reads, calls, last)
	}
	if !strings.Contains(err.Error(), "r1~yes") {
		t.Errorf("error %q does not name the run", err)
	}
}

// The progress line says what its numbers are: recipients still to send (queued) and being
// sent are not retries, which come from the retry counter; accepted counts recipients whose
// message was accepted, also once delivery events moved them on.
func TestProgressLineLabels(t *testing.T) {
	t.Parallel()
	rep := report.Run{Recipients: 3000, Accepted: 1100, Retries: 0, States: map[string]int64{
		"queued": 1800, "submitting": 52, "accepted": 600, "delivered": 500, "failed": 40, "skipped": 8}}
	got := report.ProgressLine(rep, 1500*time.Millisecond)
	for _, want := range []string{"1148/3000", "accepted 1100", "failed 40", "queued 1800", "sending 52", "retries 0", "1.5s"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress line %q does not say %q", got, want)
		}
	}
	if strings.Contains(got, "retrying") {
		t.Errorf("progress line %q calls recipients not yet sent retrying", got)
	}
}

// run show --watch to a log or a pipe prints one line per refresh: it carries the status
// lines a terminal shows above the progress bar (what the run waits for, a pause, archived
// tasks, the sender's backoff), not the progress bar alone.
func TestWatchLineCarriesTheStatus(t *testing.T) {
	t.Parallel()
	rep := report.Run{Run: "r1", Status: "running", Recipients: 4, Waiting: "send hours: sends resume at 2026-12-08T08:00:00Z",
		States: map[string]int64{"queued": 4}, ArchivedTasks: 1, Queue: "herald:marketing", SenderBackoff: "********0100 at 50% of its rate"}
	got := report.WatchLine(rep, 2*time.Second)
	if strings.Contains(got, "\n") {
		t.Fatalf("watch line %q: want one line", got)
	}
	var full strings.Builder
	report.PrintRun(&full, rep)
	for _, want := range []string{"0/4", "queued 4", "| status running, waiting for the send hours: sends resume at 2026-12-08T08:00:00Z",
		"| archived 1 send task whose recipient is still queued", "| sender ********0100 at 50% of its rate"} {
		if !strings.Contains(got, want) {
			t.Errorf("watch line %q does not say %q", got, want)
		}
	}
	for _, l := range strings.Split(full.String(), "\n") {
		if f := strings.Fields(l); len(f) > 1 && (f[0] == "Status" || f[0] == "Archived" || f[0] == "Sender") {
			if !strings.Contains(got, strings.Join(f[1:], " ")) {
				t.Errorf("watch line %q leaves out run show's %q", got, l)
			}
		}
	}
	rep.Status, rep.PauseReason, rep.Waiting = "paused", "paused by ana", ""
	if got := report.WatchLine(rep, time.Second); !strings.Contains(got, "| status paused (paused by ana)") {
		t.Errorf("paused: watch line %q", got)
	}
}
