package campaigns_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
)

const onReplyHead = "id: promo\ntemplate: {name: promo, language: en_US}\naudience: {file: a.csv}\n"

func TestOnReplyValid(t *testing.T) {
	t.Parallel()

	t.Run("MappingFormWithEveryKey", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Parse("c.yaml", []byte(onReplyHead+`on_reply:
  until: 3d
  rules:
    - button: [yes, "Yes, show me"]
      message: {text: "Here it is"}
      template: {name: promo_followup}
      parameters: {body_1: "{{.name}}"}
      delay: 10m
      tag: interested
    - name: stop
      button: Unsubscribe
      suppress: true
      none: true
    - name: size-m
      list_row: size_m
      message: {text: "M it is"}
      once_per: campaign
    - keyword: [price, "how much"]
      template: {name: price_list, language: pt_BR}
    - any: true
      none: true
`))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		o := d.OnReply
		wantEqual(t, "enabled", true, o.Enabled())
		wantEqual(t, "until", 72*time.Hour, o.UntilDuration())
		var ids []string
		for i := range o.Rules {
			ids = append(ids, o.Rules[i].ID())
		}
		wantEqual(t, "ids", []string{"r1", "stop", "size-m", "r4", "r5"}, ids)
		r1 := o.Rules[0]
		wantEqual(t, "button", campaigns.Words{"yes", "Yes, show me"}, r1.Button)
		wantEqual(t, "follow-up template language (the campaign's)", "en_US", r1.Template.Language)
		wantEqual(t, "delay", 10*time.Minute, r1.DelayDuration())
		wantEqual(t, "scope", campaigns.OncePerRun, r1.Scope())
		wantEqual(t, "message kept as written", "text", r1.Message.Node.Content[0].Value)
		wantEqual(t, "keyword", campaigns.Words{"price", "how much"}, o.Rules[3].Keyword)
		wantEqual(t, "template language", "pt_BR", o.Rules[3].Template.Language)
		wantEqual(t, "once_per", campaigns.OncePerCampaign, o.Rules[2].Scope())
		if r, ok := o.Rule("stop"); !ok || !r.Suppress {
			t.Fatalf("Rule(stop) = %+v, %v", r, ok)
		}
	})

	t.Run("ListFormDefaultsUntil", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Parse("c.yaml", []byte(onReplyHead+"on_reply:\n  - keyword: yes\n    message: {text: ok}\n"))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		wantEqual(t, "until", campaigns.DefaultReplyUntil, d.OnReply.UntilDuration())
		wantEqual(t, "id", "r1", d.OnReply.Rules[0].ID())
	})

	t.Run("AbsentIsDisabled", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Parse("c.yaml", []byte(onReplyHead))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		wantEqual(t, "enabled", false, d.OnReply.Enabled())
	})
}

func TestOnReplyErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"NoMatch", "on_reply:\n  - message: {text: hi}\n",
			[]string{"c.yaml:5:5: on_reply[0]: a rule needs one match"}},
		{"TwoMatches", "on_reply:\n  - button: Yes\n    keyword: yes\n    none: true\n",
			[]string{"c.yaml:6:14: on_reply[0].keyword: a rule has one match; this one sets button and keyword"}},
		{"NoFollowUp", "on_reply:\n  - any: true\n",
			[]string{"c.yaml:5:5: on_reply[0]: a rule needs a follow-up"}},
		{"NoneWithMessage", "on_reply:\n  - any: true\n    none: true\n    message: {text: hi}\n",
			[]string{"c.yaml:6:11: on_reply[0].none: none: true sends nothing"}},
		{"MessageNotAMapping", "on_reply:\n  - any: true\n    message: hello\n",
			[]string{"c.yaml:6:14: on_reply[0].message: want a session message"}},
		{"EmptyKeyword", "on_reply:\n  - keyword: [yes, \"\"]\n    none: true\n",
			[]string{"c.yaml:5:14: on_reply[0].keyword: value 1 is empty"}},
		{"KeywordWithoutWord", "on_reply:\n  - keyword: \"?!\"\n    none: true\n",
			[]string{"c.yaml:5:14: on_reply[0].keyword: value 0 has no letter or digit"}},
		{"DuplicateKeyword", "on_reply:\n  - keyword: [Yes, yes]\n    none: true\n",
			[]string{"on_reply[0].keyword: value 1 is listed twice"}},
		{"BadDelay", "on_reply:\n  rules:\n    - any: true\n      none: true\n      delay: soon\n",
			[]string{"c.yaml:8:14: on_reply.rules[0].delay: \"soon\" is not a duration"}},
		{"SessionMessageAfterWindow", "on_reply:\n  - any: true\n    message: {text: hi}\n    delay: 25h\n",
			[]string{"on_reply[0].delay: \"25h\": a session message this long after the reply always finds"}},
		{"SessionMessageAsTheWindowCloses", "on_reply:\n  - any: true\n    message: {text: hi}\n    delay: 23h59m\n",
			[]string{"on_reply[0].delay: \"23h59m\": a session message this long after the reply finds the customer's 24-hour window closing", "at most 23h, or add a template"}},
		{"BadScopeAndTag", "on_reply:\n  - any: true\n    none: true\n    once_per: forever\n    tag: Hot Lead\n",
			[]string{"on_reply[0].once_per: \"forever\": want run or campaign", "on_reply[0].tag: \"Hot Lead\""}},
		{"BadUntil", "on_reply:\n  until: 90d\n  rules:\n    - any: true\n      none: true\n",
			[]string{"c.yaml:5:10: on_reply.until: \"90d\": at most 30d"}},
		{"NoRules", "on_reply:\n  until: 2d\n",
			[]string{"on_reply.rules: want at least one rule"}},
		{"UnknownRuleKey", "on_reply:\n  - any: true\n    none: true\n    delai: 5m\n",
			[]string{"c.yaml:7:5: on_reply[0].delai: unknown key \"delai\" (did you mean \"delay\"?)"}},
		// A follow-up message's keys are checked as the campaign-level message's: a misspelt
		// one would be dropped and the follow-up sent without it.
		{"UnknownMessageKey", "on_reply:\n  - any: true\n    message: {text: \"Choose\", reply_button: {buttons: [{id: x, text: \"X\"}]}}\n",
			[]string{"c.yaml:6:31: on_reply[0].message.reply_button: unknown key \"reply_button\" (did you mean \"reply_buttons\"?)"}},
		{"UnknownAttachmentKey", "on_reply:\n  rules:\n    - any: true\n      message:\n        attachment: {type: document, url: \"https://example.com/a.pdf\", file_name: a.pdf}\n",
			[]string{"c.yaml:8:72: on_reply.rules[0].message.attachment.file_name: unknown key \"file_name\" (did you mean \"filename\"?)"}},
		{"UnknownButtonsKey", "on_reply:\n  - any: true\n    message:\n      text: Pick\n      reply_buttons: {foter: Thanks, buttons: [{id: x, text: X}]}\n",
			[]string{"c.yaml:8:23: on_reply[0].message.reply_buttons.foter: unknown key \"foter\" (did you mean \"footer\"?)"}},
		{"DuplicateName", "on_reply:\n  - {name: a, any: true, none: true}\n  - {name: a, keyword: x, none: true}\n",
			[]string{"on_reply[1].name: \"a\" is also the id of on_reply[0]"}},
		{"PositionalName", "on_reply:\n  - {name: r2, any: true, none: true}\n",
			[]string{"on_reply[0].name: \"r2\" has the shape of a positional id"}},
		{"ParametersWithoutTemplate", "on_reply:\n  - any: true\n    message: {text: hi}\n    parameters: {body_1: x}\n",
			[]string{"on_reply[0].parameters: parameters belong to a template follow-up"}},
		{"TemplateParameterUnknown", "on_reply:\n  - any: true\n    template: {name: t}\n    parameters: {body_99: x}\n",
			[]string{"on_reply[0].parameters: body_99: unknown parameter name"}},
		// A follow-up template is held to the campaign template's shape and language rules: no
		// template takes a gap in the body numbers or two headers, and "en-US" is not found.
		{"TemplateParameterGap", "on_reply:\n  - any: true\n    template: {name: t}\n    parameters: {body_1: x, body_3: y}\n",
			[]string{"c.yaml:7:37: on_reply[0].parameters.body_3: body_2 is not given, body_3 is"}},
		{"TemplateTwoHeaders", "on_reply:\n  - any: true\n    template: {name: t}\n    parameters: {header_text: x, header_image: \"https://example.com/a.png\"}\n",
			[]string{"on_reply[0].parameters.header_image: a template has one header, and header_text is given too"}},
		{"TemplateLanguageSpelling", "on_reply:\n  - any: true\n    template: {name: t, language: en-US}\n",
			[]string{"on_reply[0].template: template.language: \"en-US\" is not a language code", "did you mean \"en_US\"?"}},
		{"TemplateParameterSandbox", "on_reply:\n  - any: true\n    template: {name: t}\n    parameters: {body_1: \"{{range .x}}{{end}}\"}\n",
			[]string{"on_reply[0].parameters: body_1: {{range .x}} at column 9 of the template: {{range}} is not allowed"}},
		{"NotAList", "on_reply: yes\n",
			[]string{"on_reply: want a list of rules, or a mapping with until and rules"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.Parse("c.yaml", []byte(onReplyHead+tc.yaml))
			if err == nil {
				t.Fatal("Parse accepted the file")
			}
			var es campaigns.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v is not campaigns.Errors", err)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(es, func(e campaigns.FieldError) bool { return strings.Contains(e.Error(), w) }) {
					t.Errorf("no error contains %q; got:\n%v", w, err)
				}
			}
		})
	}
}

func TestKeywordWords(t *testing.T) {
	t.Parallel()
	split := []struct {
		in   string
		want []string
	}{
		{"Yes, please!", []string{"yes", "please"}},
		{"  ?! ", nil},
		{"price?how_much", []string{"price", "how", "much"}},
		{"１２３ abc", []string{"１２３", "abc"}},
		{"Olá, você", []string{"olá", "você"}},
	}
	for _, tc := range split {
		wantEqual(t, "KeywordWords("+tc.in+")", tc.want, campaigns.KeywordWords(tc.in))
	}
	// Every case of a letter, and both Unicode forms of an accented one, fold alike.
	alike := [][2]string{
		{"ΣΟΦΟΣ", "σοφος"},
		{"CAFÉ", "cafe\u0301"},
		{"\u212Aelvin", "kelvin"},
		{"STRASSE", "strasse"},
	}
	for _, p := range alike {
		a, b := campaigns.KeywordWords(p[0]), campaigns.KeywordWords(p[1])
		if len(a) != 1 || !slices.Equal(a, b) {
			t.Errorf("KeywordWords(%q) = %q, KeywordWords(%q) = %q: want one word, the same", p[0], a, p[1], b)
		}
	}
}
