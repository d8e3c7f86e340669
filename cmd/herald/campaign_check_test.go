package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// validated is campaign validate --json's problems of one file.
func validated(t *testing.T, env map[string]string, file string) []campaigns.FieldError {
	t.Helper()
	_, out, _ := herald(t, env, "campaign", "validate", "--json", file)
	var res []validateResult
	oneJSON(t, out, &res)
	if len(res) != 1 {
		t.Fatalf("validate: %s", out)
	}
	return res[0].Problems
}

// campaign plan, send and submit check a file as campaign validate does, in one check: every
// problem at once, each with its place; send and submit refuse the file, plan exits 1. Before, plan
// never ran the on_reply checks (it passed a rule naming a button the message does not offer,
// which send refused), and send and submit reported a file's problems in rounds: the
// definition's, then the audience header's, then on_reply's.
func TestPlanAndSendCheckAsValidate(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	const csv = "first_name,phone\nana,+14155552671\n"
	session := "id: later\nsender: \"+14155550100\"\nmessage:\n  text: \"Hi {{ .first_name }}\"\n" +
		"  reply_buttons:\n    buttons:\n      - {id: ok, text: \"Fine\"}\n" +
		"audience:\n  file: a.csv\n  phone: phone\n" +
		"on_reply:\n  rules:\n    - button: later\n      message: {text: \"ok\"}\n"

	t.Run("OnReplyOnly", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(writeFiles(t, map[string]string{"a.csv": csv, "c.yaml": session}), "c.yaml")
		want := validated(t, env, file)
		if len(want) != 1 || want[0].Field != "on_reply.rules[0].button" || want[0].Line != 13 {
			t.Fatalf("validate: %+v", want)
		}
		// plan makes its plan, and says the problem: in --json, in problems, and exits 1.
		code, out, errOut := herald(t, env, "campaign", "plan", "--json", file)
		var plan struct {
			Rows     int                    `json:"rows"`
			Problems []campaigns.FieldError `json:"problems"`
		}
		oneJSON(t, out, &plan)
		if code != exitError || plan.Rows != 1 || !slices.Equal(plan.Problems, want) || !strings.Contains(errOut, "1 problem (") ||
			!strings.Contains(errOut, want[0].Error()) {
			t.Fatalf("plan --json: exit %d, problems %+v, stderr %q; want exit 1 and %+v", code, plan.Problems, errOut, want)
		}
		code, out, errOut = herald(t, env, "campaign", "plan", file)
		if code != exitError || !strings.Contains(out, "Recipients     1") || !strings.Contains(errOut, want[0].Error()) {
			t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
		}
		code, _, errOut = herald(t, env, "campaign", "send", file)
		if code != exitError || !strings.Contains(errOut, "herald: no run started: "+file+": 1 problem (as campaign validate reports them):\n"+want[0].Error()) {
			t.Fatalf("send: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("EveryProblemAtOnce", func(t *testing.T) {
		t.Parallel()
		// Two problems of the definition, the header without the phone column, the rule's
		// button.
		broken := strings.Replace(strings.Replace(session, "  phone: phone\n", "  phone: phon\ndelivery: sometimes\nrate: fast\n", 1),
			"id: later", "id: Later!", 1)
		file := filepath.Join(writeFiles(t, map[string]string{"a.csv": csv, "c.yaml": broken}), "c.yaml")
		want := validated(t, env, file)
		fields := make([]string, len(want))
		for i, p := range want {
			fields[i] = p.Field
		}
		if !slices.Equal(fields, []string{"id", "audience.phone", "delivery", "rate", "on_reply.rules[0].button"}) {
			t.Fatalf("validate: %+v", want)
		}
		for _, cmd := range []string{"plan", "send", "submit"} {
			code, out, errOut := herald(t, env, "campaign", cmd, "--json", file)
			var got jsonError
			oneJSON(t, out, &got)
			if code != exitError || !slices.Equal(got.Problems, want) || !strings.Contains(errOut, ": 5 problems (as campaign validate reports them):\n") {
				t.Fatalf("%s --json: exit %d, problems %+v, stderr %q; want exit 1 and %+v", cmd, code, got.Problems, errOut, want)
			}
			for _, p := range want {
				if !strings.Contains(errOut, p.Error()) {
					t.Errorf("%s: stderr lacks %q:\n%s", cmd, p.Error(), errOut)
				}
			}
		}
	})
}

// A header without the phone column is a problem of audience.phone, where the campaign file
// names the column, and it still names the audience file and its header line. Before, plan
// gave it without a place in the campaign file ("audience a.csv:1: no ... column") and
// validate placed it at audience.file.
func TestMissingPhoneColumnAtAudiencePhone(t *testing.T) {
	t.Parallel()
	file := filepath.Join(writeFiles(t, map[string]string{"a.csv": "first_name,phone\nana,+14155552671\n",
		"c.yaml": "id: c\nsender: \"+14155550100\"\ntemplate: {name: hello, language: en}\naudience:\n  file: a.csv\n  phone: phon\n"}), "c.yaml")
	want := file + ":6:10: audience.phone: " + filepath.Join(filepath.Dir(file), "a.csv") + `:1: no "phon" column (columns: "first_name", "phone")`
	code, out, _ := herald(t, nil, "campaign", "validate", file)
	if code != exitError || !strings.Contains(out, want) {
		t.Fatalf("validate: exit %d\n%s", code, out)
	}
	code, _, errOut := herald(t, nil, "campaign", "plan", file)
	if code != exitError || !strings.Contains(errOut, want) {
		t.Fatalf("plan: exit %d\n%s", code, errOut)
	}
}
