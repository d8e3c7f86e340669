package campaigns_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// oncePerCampaignV2 is version 2 of a campaign whose version 1 had only the price rule: the
// hello rule inserted before it made price r2, and the slot r1 of version 1 would have
// refused hello and let price be answered again.
const oncePerCampaignV2 = onReplyHead + `on_reply:
  - keyword: hello
    once_per: campaign
    message: {text: "Hello!"}
  - keyword: price
    once_per: campaign
    message: {text: "From $9"}
`

// TestOncePerCampaignNeedsAName: a once_per: campaign rule keeps its slot under its id across
// the campaign's versions, so a new campaign file must name it; a version already stored
// (submitted, or kept with a run) still parses, so its scheduled runs and the replies to its
// runs go on.
func TestOncePerCampaignNeedsAName(t *testing.T) {
	t.Parallel()
	const why = "once_per: campaign needs a name"
	_, err := campaigns.Parse("c.yaml", []byte(oncePerCampaignV2))
	wantErrContains(t, err, "c.yaml:5:5: on_reply[0]: "+why, "c.yaml:8:5: on_reply[1]: "+why,
		"position", "r2", "when a rule is added or removed before it")

	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone\n+15550000001\n")
	path := writeFile(t, dir, "c.yaml", oncePerCampaignV2)
	if v := campaigns.Validate(path, campaigns.ValidateOptions{Files: campaigns.FileRules{Root: dir}}); v.OK ||
		!strings.Contains(strings.Join(v.Errors, "\n"), filepath.Base(path)+":8:5: on_reply[1]: "+why) {
		t.Fatalf("Validate = %+v, want the unnamed once_per: campaign rules refused", v)
	}

	d, err := campaigns.ParseStored("c.yaml", []byte(oncePerCampaignV2))
	if err != nil {
		t.Fatalf("ParseStored of a version stored before the check: %v", err)
	}
	wantEqual(t, "ids", []string{"r1", "r2"}, []string{d.OnReply.Rules[0].ID(), d.OnReply.Rules[1].ID()})
	if _, err := campaigns.ParseStored("c.yaml", []byte(onReplyHead+"on_reply:\n  - keyword: x\n    once_per: forever\n    none: true\n")); err == nil {
		t.Fatal("ParseStored took a once_per no version ever took")
	}

	named := strings.Replace(oncePerCampaignV2, "  - keyword: hello\n", "  - name: hello\n    keyword: hello\n", 1)
	named = strings.Replace(named, "  - keyword: price\n", "  - name: price\n    keyword: price\n", 1)
	d, err = campaigns.Parse("c.yaml", []byte(named))
	if err != nil {
		t.Fatalf("Parse with names: %v", err)
	}
	wantEqual(t, "ids", []string{"hello", "price"}, []string{d.OnReply.Rules[0].ID(), d.OnReply.Rules[1].ID()})
}
