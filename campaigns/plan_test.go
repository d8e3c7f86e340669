package campaigns_test

import (
	"fmt"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
)

// TestPlanSamplesFollowWire: the sample requests carry campaignName only when the Wire the
// configured client would use says so, for a template campaign and for a session campaign
// with its fallback template.
func TestPlanSamplesFollowWire(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,name\n+14155552671,ana\n")
	files := map[string]string{
		"template": writeFile(t, dir, "t.yaml", "id: spring\nsender: \"+14155550100\"\naudience: {file: a.csv}\n"+
			"template: {name: hello, language: en}\nparameters: {body_1: \"{{ .name }}\"}\n"),
		"session": writeFile(t, dir, "s.yaml", "id: spring\nsender: \"+14155550100\"\naudience: {file: a.csv}\n"+
			"message:\n  text: \"Hi {{ .name }}\"\nfallback_template: {name: hello, language: en, parameters: {body_1: \"{{ .name }}\"}}\n"),
	}
	const template = `{"number":"+14155552671","templateName":"hello","language":"en","parameters":[{"name":"body_1","value":"ana"}],` +
		`"sender":"+14155550100","callbackData":{"herald_run":"RUN","herald_to":"+14155552671","herald_b":0}`
	const session = `{"recipient":{"id":"+14155552671","channelType":"whatsapp"},"sender":{"id":"+14155550100","channelType":"whatsapp"},` +
		`"message":{"text":"Hi ana"},"callbackData":{"herald_run":"RUN","herald_to":"+14155552671","herald_b":0}`
	for _, on := range []bool{false, true} {
		tail := "}"
		if on {
			tail = `,"campaignName":"spring"}`
		}
		for kind, path := range files {
			d, err := campaigns.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := campaigns.Plan(d, d.Sender, campaigns.PlanOptions{Samples: 1, Wire: connectly.Wire{CampaignName: on}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range rep.Samples {
				got = append(got, string(s))
			}
			want := []string{template + tail}
			if kind == "session" {
				want = []string{session + tail}
				for _, s := range rep.Session.FallbackSamples {
					got = append(got, string(s))
				}
				want = append(want, template+tail)
			}
			wantEqual(t, fmt.Sprintf("%s samples with CampaignName %v", kind, on), want, got)
		}
	}
}
