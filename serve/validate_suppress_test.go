package serve_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/serve"
)

// suppressHead is a session campaign whose message offers reply buttons: one whose id is no
// opt-out but whose text is ("Stop"), one with neither.
const suppressHead = `id: s
audience: {file: a.csv}
message:
  text: Pick
  reply_buttons:
    buttons:
      - {id: unsub, text: Stop}
      - {id: later, text: Not now}
on_reply:
`

// thanksAny is a rule without suppress that answers every reply (but an opt-out) first.
const thanksAny = "  - {name: thanks, any: true, message: {text: Thanks}}\n"

// rowsRule is a rule whose follow-up offers a list: a row whose text is an opt-out, one not.
const rowsRule = "  - name: menu\n    keyword: menu\n    message:\n      text: Menu\n      list:\n        button: Open\n" +
	"        sections:\n          - title: S\n            rows:\n              - {id: r_stop, text: Stop}\n              - {id: r_later, text: Later}\n"

// A suppress: true rule that only an opt-out reaches (behind a rule with any: true, or behind
// rules that match each of its values first) never fires unless one of its values is an
// opt-out as the receiver detects it: campaign validate (and so plan, send, submit) refuses
// it at its place, and accepts one that an opt-out still reaches.
func TestValidateRefusesSuppressRuleOnlyAnOptOutReachesWithoutAnOptOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		head  string // suppressHead unless set
		rules string
		extra []string // configured opt-out words
		want  string   // "" when accepted
	}{
		{"KeywordStopBehindAny", "", thanksAny + "  - {name: bye, keyword: stop, suppress: true, none: true}\n", nil, ""},
		{"OneOptOutAmongValues", "", thanksAny + "  - {name: bye, keyword: [remove me, Unsubscribe], suppress: true, none: true}\n", nil, ""},
		{"ConfiguredOptOutWord", "", thanksAny + "  - {name: bye, keyword: remove me, suppress: true, none: true}\n", []string{"Remove me"}, ""},
		{"SuppressBeforeAny", "", "  - {name: bye, keyword: remove me, suppress: true, none: true}\n" + thanksAny, nil, ""},
		{"BehindAKeywordNotCoveringIt", "", "  - {name: price, keyword: price, message: {text: P}}\n" +
			"  - {name: bye, keyword: remove me, suppress: true, none: true}\n", nil, ""},
		{"PartlyCovered", "", "  - {name: price, keyword: price, message: {text: P}}\n" +
			"  - {name: bye, keyword: [price, remove me], suppress: true, none: true}\n", nil, ""},
		{"AnySuppressBehindAny", "", thanksAny + "  - {name: bye, any: true, suppress: true, none: true}\n", nil, ""},
		{"ButtonIsAnOptOutWord", "", thanksAny + "  - {name: bye, button: Stop, suppress: true, none: true}\n", nil, ""},
		{"ButtonIdWhoseTextIsAnOptOut", "", thanksAny + "  - {name: bye, button: unsub, suppress: true, none: true}\n", nil, ""},
		{"RowWhoseTextIsAnOptOut", "", rowsRule + thanksAny + "  - {name: bye, list_row: r_stop, suppress: true, none: true}\n", nil, ""},
		// A tap on a template's quick-reply button carries a payload Herald does not know.
		{"TemplateButtonNotJudged", "id: s\ntemplate: {name: promo, language: en_US}\naudience: {file: a.csv}\non_reply:\n",
			thanksAny + "  - {name: bye, button: Not interested, suppress: true, none: true}\n", nil, ""},

		{"KeywordBehindAny", "", thanksAny + "  - {name: bye, keyword: remove me, suppress: true, none: true}\n", nil,
			`c.yaml:11:26: on_reply[1].keyword: never fires: rule thanks (on_reply[0]) before it has any: true`},
		{"KeywordHoldingAnOptOutWord", "", thanksAny + "  - {name: bye, keyword: [stop please, remove me], suppress: true, none: true}\n", nil,
			`c.yaml:11:26: on_reply[1].keyword: never fires: rule thanks (on_reply[0]) before it has any: true`},
		{"KeywordsCovered", "", "  - {name: price, keyword: [price, deal], message: {text: P}}\n" +
			"  - {name: bye, keyword: [price please, deal], suppress: true, none: true}\n", nil,
			`c.yaml:11:26: on_reply[1].keyword: never fires: rule price (on_reply[0]) before it matches each of its values first`},
		{"TemplateCampaignKeyword", "id: s\ntemplate: {name: promo, language: en_US}\naudience: {file: a.csv}\non_reply:\n",
			thanksAny + "  - {name: bye, keyword: remove me, suppress: true, none: true}\n", nil,
			`c.yaml:6:26: on_reply[1].keyword: never fires: rule thanks (on_reply[0]) before it has any: true`},
		{"ButtonBehindAny", "", thanksAny + "  - {name: bye, button: later, suppress: true, none: true}\n", nil,
			`c.yaml:11:25: on_reply[1].button: never fires: rule thanks (on_reply[0]) before it has any: true`},
		{"RowBehindAny", "", rowsRule + thanksAny + "  - {name: bye, list_row: r_later, suppress: true, none: true}\n", nil,
			`c.yaml:22:27: on_reply[2].list_row: never fires: rule thanks (on_reply[1]) before it has any: true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "c.yaml")
			head := suppressHead
			if tc.head != "" {
				head = tc.head
			}
			if err := os.WriteFile(path, []byte(head+tc.rules), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte("phone\n+14155550100\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			c := config.Default()
			c.Campaigns.Root = dir
			if tc.extra != nil {
				c.Webhooks.OptOutWords = map[string][]string{"en": tc.extra}
			}
			r := serve.ValidateCampaign(context.Background(), serve.ValidateParams{Path: path, Config: c})
			var got []string
			for _, e := range r.Errors {
				got = append(got, strings.TrimPrefix(e, dir+string(filepath.Separator)))
			}
			if tc.want == "" {
				if len(got) > 0 {
					t.Fatalf("refused:\n%s", strings.Join(got, "\n"))
				}
				return
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
				t.Fatalf("errors:\n%s\nwant one starting %s", strings.Join(got, "\n"), tc.want)
			}
			for _, say := range []string{"not suppressed", "move it above"} {
				if !strings.Contains(got[0], say) {
					t.Errorf("error %q does not say %q", got[0], say)
				}
			}
			// A version Herald has already taken (a submitted one, the copy kept of a run's
			// file) keeps loading, and a scheduler's tick does not refuse it: its nightly runs
			// go on.
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			def, err := campaigns.ParseStored(path, data)
			if err != nil {
				t.Fatalf("ParseStored: %v", err)
			}
			if def.IsSession() {
				if _, err := serve.RefuseOnReply(context.Background(), c, def); err != nil {
					t.Errorf("RefuseOnReply (a tick's check) of the stored version: %v", err)
				}
			}
		})
	}
}
