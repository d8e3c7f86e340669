package scheduler

import (
	"time"

	"github.com/robfig/cron/v3"
)

// CompressedParse returns a Config.Parse that runs every schedule on a sped-up clock: real
// time realStart is virtual time virtualStart, and each real second is speedup virtual
// seconds. Ticks after virtualStart and up to virtualStart+span (virtual) fire; later ones
// never do. With speedup 60, "* * * * *" fires once a real second, so three minutes of a
// minutely campaign take three seconds. Virtual time keeps the spec's zone and its
// daylight-saving changes, so a compressed night can cross one. It exists for tests and
// demonstrations; the run ids of its ticks are the real fire times.
func CompressedParse(virtualStart, realStart time.Time, speedup int, span time.Duration) func(string) (cron.Schedule, error) {
	return func(spec string) (cron.Schedule, error) {
		std, err := cron.ParseStandard(spec)
		if err != nil {
			return nil, err
		}
		return compressed{std: followWallClock(spec, std), v0: virtualStart, r0: realStart, k: time.Duration(speedup), span: span}, nil
	}
}

type compressed struct {
	std    cron.Schedule
	v0, r0 time.Time
	k      time.Duration
	span   time.Duration
}

func (c compressed) Next(t time.Time) time.Time {
	v := c.v0.Add(t.Sub(c.r0) * c.k)
	vn := c.std.Next(v)
	for !vn.IsZero() && !vn.After(c.v0) {
		vn = c.std.Next(vn)
	}
	if vn.IsZero() || vn.After(c.v0.Add(c.span)) {
		return time.Time{}
	}
	return c.r0.Add(vn.Sub(c.v0) / c.k)
}
