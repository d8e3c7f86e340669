package report

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
)

// followupWait fills in when a queued follow-up (entry at fa, recipient's, of the run parent
// replied to) is due and what holds it back: its task's next run, read from asynq (its
// follow-up run's queue first, then every queue asynq knows); a pause of the run it follows,
// of its follow-ups or of its own follow-up run; or its send hours, when its task is due at
// their opening or the worker noted on its run that its sends wait for them.
func followupWait(ctx context.Context, l *ledger.Ledger, rdb redis.UniversalClient, parent string, fa ledger.Address,
	recipient string, now time.Time, fs *FollowupStory) error {
	fr, err := l.GetRun(ctx, fa.Run)
	if err != nil && !errors.Is(err, ledger.ErrRunNotFound) {
		return err
	}
	id, err := l.TaskID(ctx, fa.Run, recipient)
	if err != nil {
		return err
	}
	info, err := findTask(rdb, fr.Queue, id)
	if err != nil {
		return fmt.Errorf("follow-up %s: task: %w", fa.Run, err)
	}
	fs.Task = "none"
	var hours taskHours
	if info != nil {
		fs.Task = info.State.String()
		if (info.State == asynq.TaskStateScheduled || info.State == asynq.TaskStateRetry) && !info.NextProcessAt.IsZero() {
			due := info.NextProcessAt.UTC()
			fs.Due = &due
		}
		_ = json.Unmarshal(info.Payload, &hours) // a payload that does not decode carries no send hours
	}
	fc, err := l.FollowupsState(ctx, parent)
	if err != nil {
		return err
	}
	if held, why := fc.Held(); held {
		fs.HeldBy, fs.HeldWhy = HeldByPause, logx.MaskDigits(cmp.Or(why, "run paused"))
		return nil
	}
	if fr.Status == ledger.RunPaused {
		fs.HeldBy, fs.HeldWhy = HeldByPause, logx.MaskDigits(cmp.Or(fr.PauseReason, "follow-up run "+fr.ID+" paused"))
		return nil
	}
	if fs.Due != nil && hours.opensAt(*fs.Due) {
		fs.HeldBy, fs.HeldWhy = HeldBySendHours, hours.String()
		return nil
	}
	if note := fr.WaitingNow(now); strings.HasPrefix(note, "send hours") {
		fs.HeldBy, fs.HeldWhy = HeldBySendHours, note
	}
	return nil
}

// findTask reads the task id in queue, else in any other queue asynq knows (an earlier Herald
// queued follow-ups under the queue of the run they follow); nil when none holds it.
func findTask(rdb redis.UniversalClient, queue, id string) (*asynq.TaskInfo, error) {
	in := asynq.NewInspectorFromRedisClient(rdb)
	queues, err := in.Queues()
	if err != nil {
		return nil, err
	}
	if i := slices.Index(queues, queue); i > 0 {
		queues[0], queues[i] = queues[i], queues[0]
	}
	for _, q := range queues {
		info, err := in.GetTaskInfo(q, id)
		switch {
		case err == nil:
			return info, nil
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			continue
		default:
			return nil, err
		}
	}
	return nil, nil
}

// taskHours is what a send task's payload says of its send hours: their compact form
// ("DAYS|HHMM|HHMM|ZONE", DAYS seven 0/1 flags from Sunday; the campaigns package's
// SendHours.String) and the recipient's zone, used when the hours name none. The keys are the
// send payload's (campaigns.SendPayload); a test encodes a payload with the campaigns package
// and reads it here.
type taskHours struct {
	Hours string `json:"win"`
	Zone  string `json:"tz"`
}

// parse splits the compact form; ok is false when there is none or it does not read.
func (h taskHours) parse() (days string, from, to int, zone string, ok bool) {
	parts := strings.SplitN(h.Hours, "|", 4)
	if len(parts) != 4 || len(parts[0]) != 7 {
		return "", 0, 0, "", false
	}
	hhmm := func(s string) (int, bool) {
		var hh, mm int
		if len(s) != 4 {
			return 0, false
		}
		if _, err := fmt.Sscanf(s, "%02d%02d", &hh, &mm); err != nil {
			return 0, false
		}
		return hh*60 + mm, true
	}
	from, okf := hhmm(parts[1])
	to, okt := hhmm(parts[2])
	return parts[0], from, to, cmp.Or(parts[3], h.Zone), okf && okt
}

// opensAt reports whether the send hours open at t: a day they are on, at their opening
// minute, to the second. A delayed follow-up due then was put off to their opening (its
// reply's time plus its delay, kept to the millisecond, does not land there).
func (h taskHours) opensAt(t time.Time) bool {
	days, from, _, zone, ok := h.parse()
	if !ok {
		return false
	}
	loc := time.UTC
	if zone != "" {
		l, err := time.LoadLocation(zone)
		if err != nil {
			return false
		}
		loc = l
	}
	lt := t.In(loc)
	return days[lt.Weekday()] == '1' && lt.Hour()*60+lt.Minute() == from && lt.Second() == 0 && lt.Nanosecond() == 0
}

// String says the send hours for people: "mon-fri 09:00-18:00 Europe/Madrid" (no days when
// every day; "the recipient's zone" when they follow it and the payload names none).
func (h taskHours) String() string {
	days, from, to, zone, ok := h.parse()
	if !ok {
		return "send hours"
	}
	var b strings.Builder
	if d := dayList(days); d != "" {
		b.WriteString(d + " ")
	}
	fmt.Fprintf(&b, "%02d:%02d-%02d:%02d %s", from/60, from%60, to/60, to%60, cmp.Or(zone, "in the recipient's zone"))
	return b.String()
}

// dayList names the days of seven flags from Sunday, Monday first: "" for every day,
// "mon-fri" for a run of three or more, else a list ("sat,sun").
func dayList(flags string) string {
	if flags == "1111111" {
		return ""
	}
	names := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	on := make([]bool, 7)
	for i := range 7 {
		on[i] = flags[(i+1)%7] == '1'
	}
	var parts []string
	for i := 0; i < 7; {
		if !on[i] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && on[j+1] {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, names[i]+"-"+names[j])
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, names[k])
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
