package report

import (
	"testing"
	"time"
)

func TestTaskHoursSaysAndOpens(t *testing.T) {
	t.Parallel()
	for flags, want := range map[string]string{"1111111": "", "0111110": "mon-fri", "1000001": "sat,sun", "0110100": "mon,tue,thu",
		"1111100": "mon-thu,sun"} {
		if got := dayList(flags); got != want {
			t.Errorf("dayList(%s) = %q, want %q", flags, got, want)
		}
	}
	h := taskHours{Hours: "0111110|2200|0600|", Zone: "America/New_York"}
	if got, want := h.String(), "mon-fri 22:00-06:00 America/New_York"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	// 22:00 in New York on a Tuesday (EST) is 03:00 UTC on Wednesday.
	at := time.Date(2037, 1, 7, 3, 0, 0, 0, time.UTC)
	if !h.opensAt(at) || h.opensAt(at.Add(time.Second)) || h.opensAt(at.Add(-24*time.Hour*3)) {
		t.Errorf("opensAt: want true at %v only (not a second later, not on a Sunday)", at)
	}
	if (taskHours{}).opensAt(at) || (taskHours{}).String() != "send hours" {
		t.Error("no send hours: never opens, says so plainly")
	}
}
