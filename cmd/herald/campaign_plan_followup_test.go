package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// campaign plan and campaign validate --rows render each on_reply follow-up with every
// recipient's row: a follow-up that would not render for some is a problem (exit 1), in the
// text and in --json.
func TestCampaignPlanFollowupEveryRow(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"r.csv": "phone,first_name,coupon\n+14155552671,Ana,SAVE10\n+14155552672,Bob,\n+14155552673,Cy,\n+14155552674,Dee,SAVE20\n",
		"reply.yaml": "id: reply\nsender: \"+14155550100\"\ntemplate: {name: btn, language: en}\nparameters: {body_1: \"{{ .first_name }}\"}\n" +
			"audience: {file: r.csv}\non_reply:\n  - name: want-coupon\n    keyword: coupon\n    template: {name: promo}\n" +
			"    parameters: {body_1: \"{{ .first_name }}\", body_2: \"{{ .coupon }}\"}\n",
		"j.jsonl": `{"phone":"+14155552671","first_name":"Ana","coupon":"S1"}` + "\n",
		"jreply.yaml": "id: jreply\nsender: \"+14155550100\"\ntemplate: {name: btn, language: en}\nparameters: {body_1: \"{{ .first_name }}\"}\n" +
			"audience: {file: j.jsonl}\non_reply:\n  - name: want-coupon\n    keyword: coupon\n    template: {name: promo}\n" +
			"    parameters: {body_1: \"{{ .first_name }}\", body_2: \"{{ .cupon }}\"}\n",
	})
	reply, jreply := filepath.Join(dir, "reply.yaml"), filepath.Join(dir, "jreply.yaml")

	code, out, errOut := herald(t, nil, "campaign", "plan", reply)
	if code != exitError || !strings.Contains(out, "Follow-up      want-coupon: PROBLEM: would not render for 2 of 4 recipients") ||
		!strings.Contains(out, "r.csv:3: row 2: ") || !strings.Contains(out, "r.csv:4: row 3: ") {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = herald(t, nil, "campaign", "plan", "--json", reply)
	var p planOutput
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != exitError {
		t.Fatalf("plan --json: exit %d %v\n%s%s", code, err, out, errOut)
	}
	if f := p.FollowupProblems; len(f) != 1 || f[0].Rule != "want-coupon" || f[0].Failing != 2 || f[0].Recipients != 4 || len(f[0].Examples) != 2 {
		t.Fatalf("followup_problems %+v", f)
	}
	// A misspelt column of a JSON Lines audience: every row.
	if code, out, errOut := herald(t, nil, "campaign", "plan", jreply); code != exitError || !strings.Contains(out, "would not render for 1 of 1 recipients") {
		t.Fatalf("jreply plan: exit %d\n%s%s", code, out, errOut)
	}
	for _, f := range []string{reply, jreply} {
		code, out, errOut := herald(t, nil, "campaign", "validate", "--rows", f)
		if code != exitError || !strings.Contains(out, filepath.Base(f)+":7:5: on_reply[0]: the follow-up of rule want-coupon would not render") {
			t.Fatalf("validate --rows %s: exit %d\n%s%s", f, code, out, errOut)
		}
	}
}
