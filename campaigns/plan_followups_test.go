package campaigns_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
)

// followupCampaign is a campaign over a.csv whose on_reply rules end it.
const followupCampaign = "id: promo\ntemplate: {name: promo, language: en}\nparameters: {body_1: \"{{ .first_name }}\"}\naudience: {file: a.csv}\n"

// Plan renders each on_reply follow-up with every recipient's row, not the first row's only:
// per rule, how many recipients' follow-ups would not render, with the first rows.
func TestPlanFollowupsEveryRow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,first_name,coupon,pdf_url\n"+
		"+14155552671,Ana,SAVE10,https://cdn.example.com/a.pdf\n"+
		"+14155552672,Bob,,\n"+
		"12,Bad,,\n"+ // not a recipient: not counted
		"+14155552673,Cy,,https://cdn.example.com/c.pdf\n"+
		"+14155552671,Ana,,\n") // a duplicate: not counted
	path := writeFile(t, dir, "c.yaml", followupCampaign+"on_reply:\n"+
		"  - name: want-coupon\n    keyword: coupon\n    template: {name: promo}\n"+
		"    parameters: {body_1: \"{{ .first_name }}\", body_2: \"{{ .coupon }}\"}\n"+
		"  - name: pdf\n    keyword: pdf\n    message: {attachment: {type: document, url: \"{{ .pdf_url }}\"}}\n"+
		"  - name: hi\n    button: Yes\n    message: {text: \"{{ .first_name }} said {{ .reply }}\"}\n")
	d, rep := planFollowups(t, path)
	if rep.Recipients != 3 || len(rep.FollowupProblems) != 2 {
		t.Fatalf("recipients %d, follow-up problems %+v; want 3 and two rules", rep.Recipients, rep.FollowupProblems)
	}
	// A run's start reads the audience without the follow-up check (it would double its cost).
	if quick, err := campaigns.Plan(d, "", campaigns.PlanOptions{Samples: -1}); err != nil || quick.FollowupProblems != nil || quick.Recipients != 3 {
		t.Errorf("plan without CheckFollowups: %d recipients, follow-up problems %+v (%v); want 3 and none looked at", quick.Recipients, quick.FollowupProblems, err)
	}
	coupon, pdf := rep.FollowupProblems[0], rep.FollowupProblems[1]
	if coupon.Rule != "want-coupon" || coupon.Failing != 2 || coupon.Recipients != 3 || len(coupon.Examples) != 2 ||
		coupon.Examples[0].Line != 3 || coupon.Examples[1].Line != 5 || !strings.Contains(coupon.Examples[0].Detail, "body_2: value is empty") {
		t.Errorf("want-coupon: %+v", coupon)
	}
	if pdf.Rule != "pdf" || pdf.Failing != 1 || len(pdf.Examples) != 1 || pdf.Examples[0].Line != 3 ||
		!strings.Contains(pdf.Examples[0].Detail, "message.attachment.url") {
		t.Errorf("pdf: %+v", pdf)
	}
	err := rep.FollowupProblem()
	if err == nil || !strings.Contains(err.Error(), "rule want-coupon would not render for 2 of 3 recipients") ||
		!strings.Contains(err.Error(), "a.csv:3: row 2: ") {
		t.Errorf("FollowupProblem() = %v", err)
	}
	fe := rep.FollowupErrors(path)
	if len(fe) != 2 || fe[0].Line != 6 || fe[0].Field != "on_reply[0]" || fe[1].Line != 10 || fe[1].Field != "on_reply[1]" {
		t.Errorf("FollowupErrors: %+v", fe)
	}
	// The first row that would be sent to: the plan's sample follow-ups render with it.
	wantEqual(t, "first row", map[string]string{"first_name": "Ana", "coupon": "SAVE10", "pdf_url": "https://cdn.example.com/a.pdf"},
		d.FirstRowReplyColumns())
}

// A JSON Lines audience has no header: a misspelt column renders empty on every row; a rule
// reading no column (only the reply) is rendered once and counts for every recipient.
func TestPlanFollowupsEveryRowJSONL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.jsonl", `{"phone":"+14155552671","first_name":"Ana","coupon":"S1"}`+"\n"+
		`{"phone":"+14155552672","first_name":"Bob","coupon":"S2"}`+"\n")
	path := writeFile(t, dir, "c.yaml", strings.Replace(followupCampaign, "a.csv", "a.jsonl", 1)+"on_reply:\n"+
		"  - name: want-coupon\n    keyword: coupon\n    template: {name: promo}\n"+
		"    parameters: {body_1: \"{{ .first_name }}\", body_2: \"{{ .cupon }}\"}\n"+
		"  - name: rows\n    keyword: menu\n    template: {name: promo}\n    parameters: {body_1: \"{{ .list_row }}\"}\n"+
		"  - name: fine\n    any: true\n    message: {text: \"You said {{ .reply }}, {{ .coupon }}\"}\n")
	_, rep := planFollowups(t, path)
	if len(rep.FollowupProblems) != 2 {
		t.Fatalf("follow-up problems %+v, want want-coupon and rows", rep.FollowupProblems)
	}
	for i, rule := range []string{"want-coupon", "rows"} {
		if p := rep.FollowupProblems[i]; p.Rule != rule || p.Failing != 2 || p.Recipients != 2 || len(p.Examples) != 2 {
			t.Errorf("problem %d: %+v, want %s failing for both recipients", i, p, rule)
		}
	}
}

// campaign validate --rows reports a follow-up that would not render at the rule's place;
// without --rows the rows are not read.
func TestValidateRowsFollowups(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,first_name,coupon\n+14155552671,Ana,S1\n+14155552672,Bob,\n")
	path := writeFile(t, dir, "c.yaml", followupCampaign+"on_reply:\n"+
		"  - keyword: coupon\n    template: {name: promo}\n    parameters: {body_1: \"{{ .coupon }}\"}\n")
	if r := campaigns.Validate(path, campaigns.ValidateOptions{}); !r.OK {
		t.Fatalf("without rows: %v", r.Errors)
	}
	r := campaigns.Validate(path, campaigns.ValidateOptions{Rows: true})
	if r.OK || len(r.Problems) != 1 {
		t.Fatalf("with rows: ok %v, problems %+v", r.OK, r.Problems)
	}
	p := r.Problems[0]
	if p.File != path || p.Line != 6 || p.Field != "on_reply[0]" || !strings.Contains(p.Msg, "rule r1 would not render for 1 of 2 recipients") ||
		!strings.Contains(p.Msg, filepath.Base("a.csv")+":3: row 2: ") {
		t.Fatalf("problem %+v", p)
	}
}

// campaign plan counts a follow-up's failures among the recipients the campaign is sent to:
// a suppressed recipient never gets it, so never replies; when every failing row is
// suppressed the plan has no follow-up problem.
func TestPlanFollowupsLeaveOutTheSuppressed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,name,city\n+14155552671,ana,\n+14155552672,bo,Rome\n+14155552673,cy,Paris\n+14155552674,di,\n")
	path := writeFile(t, dir, "t.yaml", "id: spring\naudience: {file: a.csv}\n"+
		"template: {name: hello, language: en}\nparameters: {body_1: \"{{ .name }}\"}\n"+
		"on_reply:\n  - keyword: hi\n    template: {name: fu}\n    parameters: {body_1: \"{{ .city }}\"}\n")
	d, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.Senders = []config.Sender{{Number: "+14155550100", Rate: 20}}
	plan := func(suppressed map[string]bool) campaigns.PlanOutput {
		t.Helper()
		out, err := campaigns.PlanCampaign(context.Background(), campaigns.PlanCampaignParams{Def: d, Config: c,
			Suppressions: func(_ context.Context, rs []string) ([]ledger.Suppression, error) {
				s := make([]ledger.Suppression, len(rs))
				for i, r := range rs {
					if suppressed[r] {
						s[i] = ledger.Suppression{Scope: ledger.ScopeAll, Reason: "STOP"}
					}
				}
				return s, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// ana's and di's follow-ups fail; di is suppressed: one of the three others fails.
	out := plan(map[string]bool{"+14155552674": true})
	if p := out.FollowupProblems; out.Recipients != 3 || len(p) != 1 || p[0].Failing != 1 || p[0].Recipients != 3 ||
		len(p[0].Examples) != 1 || p[0].Examples[0].Row != 1 {
		t.Errorf("di suppressed: %d recipients, follow-up problems %+v; want 1 of 3 failing (ana, row 1)", out.Recipients, p)
	}
	// Every failing row suppressed: no problem.
	out = plan(map[string]bool{"+14155552671": true, "+14155552674": true})
	if out.FollowupProblems != nil || out.Problem() != nil {
		t.Errorf("ana and di suppressed: follow-up problems %+v, problem %v; want none", out.FollowupProblems, out.Problem())
	}
}

// The rules render from one map of the row's columns: each rule renders with its own
// reply's fields, never those a rule before it set.
func TestPlanFollowupsReplyFieldsPerRule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,first_name,coupon\n+14155552671,Ana,\n+14155552672,Bob,S1\n")
	path := writeFile(t, dir, "c.yaml", followupCampaign+"on_reply:\n"+
		"  - button: Yes\n    message: {text: \"{{ .first_name }} tapped {{ .button }}\"}\n"+
		"  - keyword: coupon\n    template: {name: promo}\n    parameters: {body_1: \"{{ .button }}{{ .coupon }}\"}\n")
	_, rep := planFollowups(t, path)
	if p := rep.FollowupProblems; len(p) != 1 || p[0].Rule != "r2" || p[0].Failing != 1 || p[0].Examples[0].Row != 1 {
		t.Errorf("follow-up problems %+v; want r2 failing for row 1 (no button in a keyword's reply)", p)
	}
}

// planFollowups loads the campaign at path and plans it with the per-row follow-up check.
func planFollowups(t *testing.T, path string) (*campaigns.Definition, campaigns.PlanReport) {
	t.Helper()
	d, err := campaigns.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := campaigns.Plan(d, "", campaigns.PlanOptions{Samples: -1, CheckFollowups: true})
	if err != nil {
		t.Fatal(err)
	}
	return d, rep
}
