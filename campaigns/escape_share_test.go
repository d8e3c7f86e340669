package campaigns_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// TestInvalidShareEscapesTheAudienceAndDetail: the error of a plan over
// audience.max_invalid_share names the audience file and the skipped rows' details escaped,
// one line per example. Before, a newline in the file name or in a template's source quoted
// in a detail started a line of its own.
func TestInvalidShareEscapesTheAudienceAndDetail(t *testing.T) {
	t.Parallel()
	r := campaigns.PlanReport{
		Audience: "ev\x1b[2J\nok  all.csv",
		Rows:     2,
		Skipped:  map[string]int{"invalid_params": 2},
		Examples: []campaigns.SkippedRow{
			{Row: 1, Line: 2, Reason: "invalid_params", Detail: "at <\x1b[31m\nFORGED>"},
			{Row: 2, Line: 3, Reason: "invalid_params", Detail: "plain"},
		},
	}
	err := r.CheckInvalidShare(0)
	if err == nil {
		t.Fatal("no error over the share")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want the summary and one per example: %q", len(lines), err)
	}
	for _, l := range lines {
		noRawControl(t, "line", l)
	}
	if !strings.Contains(lines[0], `ev\x1b[2J\nok  all.csv`) || !strings.Contains(lines[1], `at <\x1b[31m\nFORGED>`) {
		t.Errorf("error %q, want the audience and the detail escaped", err)
	}
}

// TestOnReplyTemplateNameIsWhatsAppsPattern: a follow-up template's name follows the same rule
// as the campaign's (lower-case letters, digits, '_'). Before, a rule's template name holding
// ESC and a newline passed validation.
func TestOnReplyTemplateNameIsWhatsAppsPattern(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone\n+14155552671\n")
	yaml := "id: t\ntemplate: {name: spring_sale, language: en}\naudience:\n  file: a.csv\n" +
		"on_reply:\n  - keyword: [yes]\n    template: {name: \"x\\e[2J\\nok\"}\n"
	_, err := campaigns.Load(writeFile(t, dir, "c.yaml", yaml))
	if err == nil || !strings.Contains(err.Error(), "template.name") || !strings.Contains(err.Error(), "WhatsApp's rule") {
		t.Fatalf("Load: %v, want the follow-up template's name refused", err)
	}
	noRawControl(t, "error", err.Error())
}
