package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/audiencegen"
	"github.com/heraldmsg/herald/internal/report"
)

// demoJSON is one `herald demo --json --recipients 400 --verbose`, whose report and log the
// demo tests each check for their own part (the template run, the funnel, the session step):
// a demo run is the package's costliest unit test, so it runs once for all of them.
var demoJSON = sync.OnceValue(func() (r struct {
	code        int
	out, errOut string
}) {
	var out, errb bytes.Buffer
	r.code = run(context.Background(), []string{"demo", "--json", "--recipients", "400", "--verbose"},
		func(string) string { return "" }, &out, &errb)
	r.out, r.errOut = out.String(), errb.String()
	return r
})

// The demo's template campaign answers replies (on_reply) and its report ends with the
// funnel, which adds up: every tapper of a rule's button has one follow-up of that rule, none
// is left pending, and the follow-ups Herald counts as sent are the ones the fake's record
// holds as session messages of that rule, no more.
func TestDemoFunnel(t *testing.T) {
	t.Parallel()
	d := demoJSON()
	code, out, errOut := d.code, d.out, d.errOut
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, errOut)
	}
	var rep struct {
		Funnel        *report.Funnel   `json:"funnel"`
		FakeFollowups map[string]int64 `json:"fake_followups"`
		SessionStep   *report.Run      `json:"session_step"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	f := rep.Funnel
	if f == nil || len(f.Rules) != 3 {
		t.Fatalf("funnel %+v, want the three rules", f)
	}
	byRule := map[string]report.FunnelRule{}
	var sent, fake int64
	for _, r := range f.Rules {
		byRule[r.Rule] = r
		sent += r.Sent
		if r.Pending != 0 {
			t.Errorf("rule %s: %d follow-ups still pending", r.Rule, r.Pending)
		}
		if r.Sent != rep.FakeFollowups[r.Rule] {
			t.Errorf("rule %s: %d follow-ups sent, the fake took %d", r.Rule, r.Sent, rep.FakeFollowups[r.Rule])
		}
		if r.Sent > r.Created || r.Delivered > r.Sent || r.Read > r.Delivered {
			t.Errorf("rule %s does not narrow: %+v", r.Rule, r)
		}
	}
	for rule := range rep.FakeFollowups {
		if _, ok := byRule[rule]; !ok {
			t.Errorf("the fake took follow-ups of rule %q, which the campaign does not have", rule)
		}
	}
	for _, fr := range f.Rules {
		fake += rep.FakeFollowups[fr.Rule]
	}
	if sent == 0 || sent != fake {
		t.Errorf("follow-ups sent %d, fake's record %d", sent, fake)
	}
	// One follow-up per tap, whatever the duplicate webhooks.
	if yes := byRule["interested"]; yes.Created == 0 || yes.Created != f.Taps["Yes, show me"] || f.Tagged["interested"] != yes.Created {
		t.Errorf("interested %+v, taps %v, tagged %v", yes, f.Taps, f.Tagged)
	}
	if no := byRule["no-thanks"]; no.Created == 0 || no.Created != f.Taps["No thanks"] {
		t.Errorf("no-thanks %+v, taps %v", no, f.Taps)
	}
	if byRule["price"].Created == 0 || f.Replied == 0 {
		t.Errorf("price %+v; %d replies", byRule["price"], f.Replied)
	}
	if s := rep.SessionStep; s == nil || s.Status != "completed" || s.Session == nil || s.Session.Sent == 0 {
		t.Errorf("session step %+v", s)
	}
	// The text report ends with the funnel.
	code, out, errOut = herald(t, nil, "demo", "--recipients", "200")
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, errOut)
	}
	i, j := strings.Index(out, "Session step:"), strings.Index(out, "Replies (on_reply)")
	if i < 0 || j < i || !strings.Contains(out[j:], "interested") || !strings.Contains(out[j:], "no-thanks") {
		t.Errorf("text report without the funnel after the session step:\n%s", out)
	}
	// The session step's lines account for every row: sent, skipped for a closed window, others.
	if i >= 0 && j > i {
		var sum int
		for _, line := range strings.Split(out[i:j], "\n")[1:] {
			var n int
			if _, err := fmt.Sscanf(strings.TrimSpace(line), "%d ", &n); err == nil {
				sum += n
			}
		}
		if sum != 200 {
			t.Errorf("session step lines count %d recipients, want 200:\n%s", sum, out[i:j])
		}
	}
	// The demo's Redis ends with it: the report sends nobody to look a run up afterwards.
	if strings.Contains(out, "herald run show") {
		t.Errorf("the demo's report points at run show, which cannot find its run once it ended:\n%s", out)
	}
}

// validPhone reports whether num is a phone number an audience may have.
func validPhone(num string) bool {
	_, err := campaigns.NormalizePhone(num, "")
	return err == nil
}

// newPhoneGen yields the distinct valid numbers of the demo's audiences, for tests that
// write audiences of their own.
func newPhoneGen() phoneGen { return phoneGen{audiencegen.NewPhones(validPhone)} }

// phoneGen is audiencegen.Phones for the tests of this package.
type phoneGen struct{ *audiencegen.Phones }

func (g phoneGen) next() string { return g.Next() }
