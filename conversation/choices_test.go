package conversation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/connectly"
)

// Session messages the cases below send.
const (
	buttonsMessage = `
message:
  text: "Did your order arrive?"
  reply_buttons:
    buttons:
      - {id: arrived-ok, text: "Yes, all good"}
      - {id: problem, text: "There is a problem"}
`
	listMessage = `
message:
  text: "Pick a size"
  list:
    button: Sizes
    sections:
      - rows:
          - {id: size_s, text: Small}
          - {id: size_m, text: Medium}
`
	textMessage = `
message:
  text: "Your order has shipped."
`
	// slotMessage has a button whose id is rendered per recipient.
	slotMessage = `
message:
  text: "Book your delivery slot"
  reply_buttons:
    buttons:
      - {id: "slot-{{ .slot }}", text: "Book"}
      - {id: skip, text: "Not now"}
`
	// rawMessage is a raw Connectly message object with buttons in the GitBook's spelling and a
	// templated id.
	rawMessage = `
message:
  raw:
    text: "Did your order arrive?"
    reply_button_message:
      header: {text: "Order {{ .order }}"}
      buttons:
        - {id: arrived-ok, text: "Yes, all good"}
        - {id: "later-{{ .order }}", text: "Later"}
`
	// oddRawMessage has a list in a shape reference 3.1 does not give.
	oddRawMessage = `
message:
  raw:
    text: "Pick"
    listMessage: {sections: {rows: 3}}
`
	// promoTemplate makes a template campaign, translated into Spanish.
	promoTemplate = `
template: {name: spring_promo, language: en, languages: [es]}
`
	fallback = `
fallback_template:
  name: order_status
  language: en
`
)

// sessionDef parses a campaign made of message (a message: block, or a template: one), a
// fallback template (or ""), and on_reply rules.
func sessionDef(t *testing.T, message, fallback, rules string) *campaigns.Definition {
	t.Helper()
	y := "id: orders\nsender: \"+14155550100\"\naudience: {file: orders.csv}\n" + message + fallback + "on_reply:\n" + rules
	def, err := campaigns.Parse("orders.yaml", []byte(y))
	if err != nil {
		t.Fatalf("parse:\n%s\n%v", y, err)
	}
	return def
}

// The buttons and list rows a session campaign's rules name are checked against its own
// message (and the templates it may send), compared as Match compares them. Every case mixes
// values that are fine with values that are not, and says which must be named.
func TestCheckOnReplySession(t *testing.T) {
	t.Parallel()
	type templates map[string][]string // "name/language" -> quick-reply buttons
	cases := []struct {
		name                      string
		message, fallback, rules  string
		templates                 templates // nil: the templates cannot be read
		notListed                 []string  // "name/language" Connectly does not list
		openErr                   error
		wantErrs, wantNotes       []string // substrings, all in one error / in the notes
		nErrs, nNotes             int
		clean                     []string // values no error or note may name
		wantOpened, wantNotOpened bool
	}{
		{
			name:    "button by id",
			message: buttonsMessage,
			rules: `
  - {button: arrived-ok, tag: ok, none: true}
  - {button: arrived_ok, tag: typo, none: true}
`,
			wantErrs: []string{`orders.yaml:14:14: on_reply[1].button: "arrived_ok": not a reply button of the session message`,
				`(the message has "arrived-ok"/"Yes, all good", "problem"/"There is a problem")`},
			nErrs:         1,
			clean:         []string{`"arrived-ok":`, "on_reply[0]"},
			wantNotOpened: true,
		},
		{
			name:    "button by text, other case and spacing",
			message: buttonsMessage,
			rules: `
  - {button: ["  yes,   ALL good ", "THERE IS A PROBLEM"], tag: ok, none: true}
  - {button: "Yes all good", tag: typo, none: true}
`,
			wantErrs:      []string{`on_reply[1].button: "Yes all good": not a reply button`},
			nErrs:         1,
			clean:         []string{"on_reply[0]"},
			wantNotOpened: true,
		},
		{
			name:    "unknown buttons listed together",
			message: buttonsMessage,
			rules: `
  - {name: good, button: arrived-ok, tag: ok, none: true}
  - {name: bad, button: [Arrived, "problem "], tag: x, none: true}
  - {name: worse, button: Cancel, tag: y, none: true}
`,
			wantErrs: []string{`orders.yaml:14:26: on_reply[1].button: "Arrived": not a reply button of the session message`,
				`orders.yaml:15:27: on_reply[2].button: "Cancel": not a reply button of the session message`},
			nErrs: 2,
			clean: []string{"on_reply[0]", `"problem ":`},
		},
		{
			name:    "list row ok and unknown",
			message: listMessage,
			rules: `
  - {list_row: [" size_m ", size_s], tag: ok, none: true}
  - {list_row: [SIZE_M, Medium, size_l], tag: typo, none: true}
`,
			// A row matches by its id only, exactly but for surrounding spaces.
			wantErrs: []string{`on_reply[1].list_row: "SIZE_M": not a row id of the session message's list`, `on_reply[1].list_row: "Medium": not`,
				`orders.yaml:16:33: on_reply[1].list_row: "size_l": not`,
				`(the message has "size_s" (Small), "size_m" (Medium))`},
			nErrs: 3,
			clean: []string{"on_reply[0]"},
		},
		{
			name:    "button rule on a message with no buttons",
			message: textMessage,
			rules: `
  - {keyword: where, tag: ok, none: true}
  - {button: "Yes", tag: never, none: true}
`,
			wantErrs:      []string{`on_reply[1].button: "Yes": not a reply button of the session message (the message has no reply buttons)`},
			nErrs:         1,
			wantNotOpened: true,
		},
		{
			name:    "raw message buttons",
			message: rawMessage,
			rules: `
  - {button: ["yes, all good", LATER], tag: ok, none: true}
  - {list_row: size_m, tag: never, none: true}
`,
			wantErrs: []string{`on_reply[1].list_row: "size_m": not a row id of the session message's list (the message has no list)`},
			nErrs:    1,
			clean:    []string{"on_reply[0]"},
		},
		{
			name:    "raw message templated id",
			message: rawMessage,
			rules: `
  - {button: later-a1, tag: later, none: true}
`,
			wantNotes: []string{`orders.yaml:15:14: on_reply[0].button: "later-a1": not checked: `,
				"message.raw.reply_button_message.buttons[1].id is a template, rendered per recipient"},
			nNotes: 1,
		},
		{
			name:    "raw message in an unknown shape",
			message: oddRawMessage,
			rules: `
  - {list_row: size_m, tag: maybe, none: true}
`,
			wantNotes: []string{`orders.yaml:11:16: on_reply[0].list_row: "size_m": not checked: `,
				"raw.listMessage is not in the shape of reference 3.1"},
			nNotes: 1,
		},
		{
			name:    "list_row rule on a message without a list",
			message: buttonsMessage,
			rules: `
  - {button: problem, tag: ok, none: true}
  - {list_row: size_m, tag: never, none: true}
`,
			wantErrs: []string{`on_reply[1].list_row: "size_m": not a row id of the session message's list (the message has no list)`},
			nErrs:    1,
		},
		{
			name:    "button rule on a list message",
			message: listMessage,
			rules: `
  - {list_row: size_s, tag: ok, none: true}
  - {button: size_m, tag: never, none: true}
`,
			wantErrs: []string{`on_reply[1].button: "size_m": not a reply button of the session message (the message has no reply buttons)`},
			nErrs:    1,
			clean:    []string{"on_reply[0]"},
		},
		{
			name:    "templated button skipped with a note",
			message: slotMessage,
			rules: `
  - {button: [Book, skip], tag: ok, none: true}
  - {button: slot-morning, tag: booked, none: true}
`,
			wantNotes: []string{`on_reply[1].button: "slot-morning": not checked: `,
				"message.reply_buttons.buttons[0].id is a template, rendered per recipient"},
			nNotes: 1,
			clean:  []string{"on_reply[0]", `"Book"`, `"skip"`},
		},
		{
			name:     "fallback: a value only the template has",
			message:  buttonsMessage,
			fallback: fallback,
			rules: `
  - {button: arrived-ok, tag: ok, none: true}
  - {button: "track  ORDER", tag: track, none: true}
  - {button: Refund, tag: refund, none: true}
`,
			templates: templates{"order_status/en": {"Track order", "Talk to us"}},
			wantErrs: []string{`orders.yaml:19:14: on_reply[2].button: "Refund": not a reply button of the session message nor a quick-reply button of a template the campaign may send`,
				`(the message has "arrived-ok"/"Yes, all good", "problem"/"There is a problem"; template order_status (en) has "Track order", "Talk to us")`},
			nErrs:      1,
			clean:      []string{"on_reply[0]", "on_reply[1]"},
			wantOpened: true,
		},
		{
			name:     "fallback not read: only a note",
			message:  buttonsMessage,
			fallback: fallback,
			rules: `
  - {button: problem, tag: ok, none: true}
  - {button: "Track order", tag: track, none: true}
`,
			openErr: errors.New("no Connectly business id or API key configured"),
			wantNotes: []string{`on_reply[1].button: "Track order": not checked: `,
				"the buttons of template order_status (en) could not be read: no Connectly business id or API key configured"},
			nNotes: 1,
			clean:  []string{"on_reply[0]"},
		},
		{
			name:     "fallback unreachable: only a note",
			message:  textMessage,
			fallback: fallback,
			rules: `
  - {button: "Track order", tag: track, none: true}
`,
			wantNotes: []string{`on_reply[0].button: "Track order": not checked: `,
				"template order_status (en) could not be read: the Connectly API is not reachable (refused)"},
			nNotes: 1,
		},
		{
			name:    "a follow-up's buttons and rows, and its template's buttons",
			message: buttonsMessage,
			rules: `
  - name: problem
    button: problem
    message:
      text: "Sorry! What happened?"
      list:
        button: Choose
        sections:
          - rows: [{id: damaged, text: Damaged}, {id: missing, text: Missing}]
  - {name: damaged, list_row: damaged, tag: damaged, none: true}
  - {name: lost, list_row: lost, tag: lost, none: true}
  - name: survey
    button: arrived-ok
    template: {name: survey, language: en}
  - {name: rated, button: [Great, Awful], tag: rated, none: true}
`,
			templates: templates{"survey/en": {"Great", "Fine"}},
			wantErrs: []string{`orders.yaml:26:35: on_reply[4].button: "Awful": not a reply button of the session message nor a quick-reply button of a template the campaign may send`,
				`template survey (en) has "Great", "Fine"`,
				`orders.yaml:22:28: on_reply[2].list_row: "lost": not a row id of the session message's list (the message has no list; rule problem's message has "damaged" (Damaged), "missing" (Missing))`},
			nErrs:      2,
			clean:      []string{"on_reply[1]", "on_reply[0]", `"Great":`},
			wantOpened: true,
		},
		// A template campaign goes through the same check: its template's buttons in every
		// language, then its follow-ups'.
		{
			name:    "template campaign: every translation's buttons",
			message: promoTemplate,
			rules: `
  - {button: ["yes, show me", "Sí, muéstrame"], tag: ok, none: true}
  - {button: "Maybe", tag: maybe, none: true}
`,
			templates:  templates{"spring_promo/en": {"Yes, show me", "Not now"}, "spring_promo/es": {"Sí, muéstrame", "Ahora no"}},
			wantErrs:   []string{`orders.yaml:9:14: on_reply[1].button: "Maybe": not a quick-reply button of a template the campaign may send (template spring_promo (en) has "Yes, show me", "Not now"; template spring_promo (es) has "Sí, muéstrame", "Ahora no")`},
			nErrs:      1,
			clean:      []string{"on_reply[0]", "nor a quick-reply", "sends no template"},
			wantOpened: true,
		},
		{
			name:    "template campaign: a follow-up template's buttons",
			message: promoTemplate,
			rules: `
  - name: later
    button: "Not now"
    delay: 48h
    template: {name: spring_reminder}
  - {name: remind, button: "Remind me tomorrow", tag: remind, none: true}
`,
			templates: templates{"spring_promo/en": {"Yes, show me", "Not now"}, "spring_promo/es": {"Sí, muéstrame", "Ahora no"},
				"spring_reminder/en": {"Remind me tomorrow"}},
			wantOpened: true,
		},
		{
			name:    "template campaign: a follow-up template Connectly does not list",
			message: promoTemplate,
			rules: `
  - name: later
    button: "Not now"
    template: {name: spring_reminder}
  - {name: remind, button: "Remind me tomorrow", tag: remind, none: true}
`,
			templates:  templates{"spring_promo/en": {"Yes, show me", "Not now"}, "spring_promo/es": {"Sí, muéstrame", "Ahora no"}},
			notListed:  []string{"spring_reminder/en"},
			wantErrs:   []string{`orders.yaml:11:28: on_reply[1].button: "Remind me tomorrow": not a quick-reply button`, `template spring_reminder (en) is not listed by Connectly)`},
			nErrs:      1,
			clean:      []string{"not checked", "has none"},
			wantOpened: true,
		},
		{
			name:    "template campaign: quick-reply payloads passed through",
			message: promoTemplate + "parameters:\n  raw:\n    - {name: qr_0, value: promo_yes}\n    - {name: qr_1, value: \"later-{{ .id }}\"}\n",
			rules: `
  - {button: PROMO_YES, tag: yes, none: true}
  - {button: later-7, tag: later, none: true}
`,
			templates:  templates{"spring_promo/en": {"Yes, show me", "Not now"}, "spring_promo/es": {"Sí, muéstrame", "Ahora no"}},
			wantNotes:  []string{`orders.yaml:13:14: on_reply[1].button: "later-7": not checked: `, "parameters.raw[1].value is a template, rendered per recipient"},
			nNotes:     1,
			clean:      []string{"on_reply[0]", "PROMO_YES"},
			wantOpened: true,
		},
		{
			name:    "template campaign: a list row no message has",
			message: promoTemplate,
			rules: `
  - {list_row: size_m, tag: m, none: true}
`,
			wantErrs:      []string{`orders.yaml:8:16: on_reply[0].list_row: "size_m": not a row id of a list the campaign sends (a template has no list)`},
			nErrs:         1,
			wantNotOpened: true,
		},
		{
			name:    "template campaign: template not read",
			message: promoTemplate,
			rules: `
  - {button: "Yes, show me", tag: ok, none: true}
`,
			openErr: errors.New("no key"),
			wantNotes: []string{`orders.yaml:8:14: on_reply[0].button: "Yes, show me": not checked: `,
				"the buttons of template spring_promo (en) could not be read: no key"},
			nNotes: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			def := sessionDef(t, c.message, c.fallback, c.rules)
			opened := false
			open := func() (conversation.TemplateButtons, error) {
				opened = true
				if c.openErr != nil {
					return nil, c.openErr
				}
				return func(_ context.Context, name, language string) ([]string, error) {
					if c.templates == nil {
						return nil, errors.New("refused")
					}
					if slices.Contains(c.notListed, name+"/"+language) {
						return nil, fmt.Errorf("connectly: template %s (%s): %w", name, language, connectly.ErrTemplateNotListed)
					}
					have, ok := c.templates[name+"/"+language]
					if !ok {
						t.Errorf("asked for template %s (%s)", name, language)
					}
					return have, nil
				}, nil
			}
			errs, notes := conversation.CheckOnReply(context.Background(), def, open)
			if len(errs) != c.nErrs || len(notes) != c.nNotes {
				t.Fatalf("want %d errors and %d notes, got\nerrs %q\nnotes %q", c.nErrs, c.nNotes, errs, notes)
			}
			all, allNotes := strings.Join(errs, "\n"), strings.Join(notes, "\n")
			for _, w := range c.wantErrs {
				if !strings.Contains(all, w) {
					t.Errorf("errors lack %q:\n%s", w, all)
				}
			}
			for _, w := range c.wantNotes {
				if !strings.Contains(allNotes, w) {
					t.Errorf("notes lack %q:\n%s", w, allNotes)
				}
			}
			for _, v := range c.clean {
				if strings.Contains(all, v) || strings.Contains(allNotes, v) {
					t.Errorf("%q is fine, yet named:\nerrs %s\nnotes %s", v, all, allNotes)
				}
			}
			if c.wantOpened && !opened || c.wantNotOpened && opened {
				t.Errorf("templates read: %v", opened)
			}
		})
	}
}

// A session campaign whose rules name buttons and rows its messages have is left alone, and
// its templates are not read; the template campaign's check is unchanged (TestCheckOnReply).
func TestCheckOnReplySessionClean(t *testing.T) {
	t.Parallel()
	def := sessionDef(t, buttonsMessage, fallback, `
  - {button: ["Yes, all good", problem], tag: ok, none: true}
  - {keyword: refund, tag: refund, none: true}
`)
	errs, notes := conversation.CheckOnReply(context.Background(), def, func() (conversation.TemplateButtons, error) {
		return nil, fmt.Errorf("not to be opened")
	})
	if len(errs) != 0 || len(notes) != 0 {
		t.Fatalf("errs %q notes %q", errs, notes)
	}
}
