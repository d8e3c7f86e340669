package campaigns_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/defstore"
	"github.com/heraldmsg/herald/internal/ledger"
)

func TestListing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	last := now.Add(-time.Hour)
	withRuns := []ledger.CampaignSummary{
		{Campaign: "nightly", Runs: 3, LastRun: "r3", LastAt: last},
		{Campaign: "welcome", Runs: 1, LastRun: "r1", LastAt: last.Add(-time.Hour)},
	}
	def := func(rest string) []byte {
		return []byte("id: x\naudience: {file: a.csv}\ntemplate: {name: hello, language: en}\n" + rest)
	}
	submitted := []defstore.Submitted{
		{ID: "spring", Version: 1, Path: "/c/spring.yaml", YAML: def("schedule: {at: \"2026-03-02T09:00:00Z\"}\n")},
		{ID: "nightly", Version: 2, Path: "/c/nightly.yaml", YAML: def("schedule: {cron: \"0 2 * * *\", timezone: Europe/Lisbon}\n")},
		{ID: "adhoc", Version: 4, Path: "/c/adhoc.yaml", YAML: def("")},
		{ID: "broken", Version: 1, Path: "/c/broken.yaml", YAML: []byte("id: [\n")},
	}
	lisbon := time.FixedZone("WET", 0)
	next := func(d *campaigns.Definition, after time.Time) time.Time {
		if !after.Equal(now) {
			t.Errorf("next fire asked after %v, want %v", after, now)
		}
		if d.Schedule.Cron != "" {
			return time.Date(2026, 3, 2, 2, 0, 0, 0, lisbon)
		}
		return time.Time{}
	}
	got := campaigns.Listing(withRuns, submitted, now, next)
	type row struct {
		id, schedule  string
		version, runs int
		next          time.Time
	}
	want := []row{
		{"nightly", "0 2 * * * Europe/Lisbon", 2, 3, time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)},
		{"welcome", "", 0, 1, time.Time{}},
		{"spring", "at 2026-03-02T09:00:00Z", 1, 0, time.Time{}},
		{"adhoc", "by hand", 4, 0, time.Time{}},
		{"broken", "invalid: ", 1, 0, time.Time{}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		var gotNext time.Time
		if g.NextRun != nil {
			gotNext = *g.NextRun
			if gotNext.Location() != time.UTC {
				t.Errorf("%s: next run %v is not in UTC", g.Campaign, gotNext)
			}
		}
		schedOK := g.Schedule == w.schedule || (w.schedule == "invalid: " && len(g.Schedule) > len(w.schedule) && g.Schedule[:len(w.schedule)] == w.schedule)
		if g.Campaign != w.id || !schedOK || g.Version != w.version || g.Runs != int64(w.runs) || !gotNext.Equal(w.next) {
			t.Errorf("row %d = %+v (next %v), want %+v", i, g, gotNext, w)
		}
	}
	if got[0].LastRun != "r3" || !got[0].LastAt.Equal(last) {
		t.Errorf("a submitted campaign with runs lost its runs: %+v", got[0])
	}
}

// A campaign with no run yet has no last run in JSON, rather than "" and the year 1.
func TestListingJSONOfACampaignWithoutRuns(t *testing.T) {
	t.Parallel()
	rows := campaigns.Listing(nil, []defstore.Submitted{{ID: "spring", Version: 1, Path: "/c/spring.yaml",
		YAML: []byte("id: spring\naudience: {file: a.csv}\ntemplate: {name: hello, language: en}\n")}}, time.Now(),
		func(*campaigns.Definition, time.Time) time.Time { return time.Time{} })
	b, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "last_run") || !strings.Contains(string(b), `"campaign":"spring"`) {
		t.Fatalf("campaign ls --json of a campaign without runs: %s", b)
	}
}
