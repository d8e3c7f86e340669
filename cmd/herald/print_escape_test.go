package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// rawControl returns the first line of s that holds a control character other than the
// newline that ends it, or "".
func rawControl(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return line
		}
	}
	return ""
}

// TestCampaignPlanEscapesTheAudienceName: an audience file whose name holds ESC sequences and
// newlines is shown escaped in plan's Audience line and in every skipped row's line. Before,
// it cleared the screen and printed a forged "Recipients     0" line.
func TestCampaignPlanEscapesTheAudienceName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := "ev\x1b[2J\x1b[1;1H\nRecipients     0\nil.csv"
	if err := os.WriteFile(filepath.Join(dir, name), []byte("phone,first_name\n+14155552671,ana\n+14155552672,\n"), 0o644); err != nil {
		t.Skipf("no such file name here: %v", err)
	}
	file := filepath.Join(dir, "evil.yaml")
	if err := os.WriteFile(file, []byte("id: t\ntemplate: {name: x, language: en}\nparameters: {body_1: \"{{ .first_name }}\"}\n"+
		"audience:\n  file: \"ev\\e[2J\\e[1;1H\\nRecipients     0\\nil.csv\"\n  max_invalid_share: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := herald(t, nil, "campaign", "plan", "--sample", "0", file)
	if code != 0 {
		t.Fatalf("plan (exit %d): %s\n%s", code, errOut, out)
	}
	if line := rawControl(out + errOut); line != "" {
		t.Errorf("plan prints a raw control character: %q\n%s", line, out)
	}
	if n := strings.Count("\n"+out, "\nRecipients "); n != 1 {
		t.Errorf("plan prints %d Recipients lines, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, `Audience       `) || !strings.Contains(out, `ev\x1b[2J\x1b[1;1H\nRecipients     0\nil.csv`) {
		t.Errorf("plan does not name the audience escaped:\n%s", out)
	}
}

// TestPrintCampaignsEscapesTheSchedule: campaign ls prints a schedule (the campaign file's, or
// its problem) escaped. Before, a cron string's CR, VT and FF reached the table as they were.
func TestPrintCampaignsEscapesTheSchedule(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	rows := []campaigns.Listed{{Schedule: "0\r\v\f20 * * *\n UTC"}}
	rows[0].Campaign = "cronx"
	if err := printCampaigns(&b, rows); err != nil {
		t.Fatal(err)
	}
	if line := rawControl(strings.TrimSuffix(b.String(), "\n")); line != "" || strings.Count(b.String(), "\n") != 2 {
		t.Errorf("campaign ls prints a raw control character:\n%q", b.String())
	}
}

// TestErrorsAreEscaped: the error herald prints last has its control characters escaped; the
// lines Herald writes between a campaign file's problems stay lines.
func TestErrorsAreEscaped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("id: Bad\ntemplate: {name: x, language: en}\naudience: {file: a.csv}\ndelivery: \"x\\e[31m\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := herald(t, nil, "campaign", "plan", filepath.Join(dir, "no\x1b[31mne.yaml"))
	if code == 0 || rawControl(errOut) != "" || !strings.Contains(errOut, `no\x1b[31mne.yaml`) {
		t.Errorf("plan of a missing file (exit %d): %q", code, errOut)
	}
	// Its three problems (two of the definition, its missing audience file) under one line
	// that counts them, as campaign validate reports them.
	code, _, errOut = herald(t, nil, "campaign", "plan", file)
	if code == 0 || rawControl(errOut) != "" || strings.Count(errOut, "\n") != 4 || !strings.Contains(errOut, ": 3 problems (") {
		t.Errorf("plan of a file with three problems (exit %d): %q, want four lines and nothing raw", code, errOut)
	}
}

// TestPrintPlanEstimateBeyondADuration: an estimate longer than a time.Duration holds is
// printed in hours, never negative. Before, rate: 1e-300 printed "-2562047h47m16.85s".
func TestPrintPlanEstimateBeyondADuration(t *testing.T) {
	t.Parallel()
	for _, secs := range []float64{1e12, 1e300} {
		var b strings.Builder
		var p planOutput
		p.EstimatedSeconds = secs
		printPlan(&b, p)
		line := ""
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, "Estimated time") {
				line = l
			}
		}
		if line == "" || strings.Contains(line, "-") || !strings.Contains(line, "h (") {
			t.Errorf("estimate of %g s: %q", secs, line)
		}
	}
}

// TestCampaignValidateEscapesAnyError: an error that is no problem line (a file that cannot be
// read) names its path escaped in validate's output. Before, a path holding ESC and a newline
// was printed raw, so it could forge an "ok" line.
func TestCampaignValidateEscapesAnyError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope\x1b[2J\nok  all-good.yaml (audience header checked)\n.yaml")
	code, out, errOut := herald(t, nil, "campaign", "validate", path)
	if code == 0 {
		t.Fatalf("validate of a missing file exited 0:\n%s", out)
	}
	if line := rawControl(out + errOut); line != "" {
		t.Errorf("validate prints a raw control character: %q\n%s%s", line, out, errOut)
	}
	if strings.Contains("\n"+out+errOut, "\nok  all-good.yaml") {
		t.Errorf("validate prints a forged ok line:\n%s%s", out, errOut)
	}
}
