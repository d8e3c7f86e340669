package campaigns_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/golden"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
)

// sessionCampaign is a campaign file sending message (indented YAML under "message:").
func sessionCampaign(message string, extra ...string) string {
	return "id: s\naudience: {file: a.csv}\nmessage:\n" + message + strings.Join(extra, "")
}

// sessionRow is the audience row the golden session requests are rendered from.
var sessionRow = map[string]string{"name": "ana maria", "order": "A-1001", "city": "Lisbon", "doc": "invoice-1001"}

func TestSessionRequestGolden(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, message string }{
		{"text", "  text: \"Hi {{ .name | title }}, order {{ .order }} is on its way.\"\n"},
		{"attachment-image", "  attachment: {type: image, url: \"https://cdn.example.com/o/{{ .order | urlquery }}.png\", caption: \"Order {{ .order }}\"}\n"},
		{"attachment-document", "  attachment: {type: document, url: \"https://cdn.example.com/{{ .doc }}.pdf\", filename: \"{{ .doc }}.pdf\"}\n"},
		{"location", "  location: {latitude: 38.7223, longitude: -9.1393, name: \"Pickup {{ .city }}\", address: \"Rua Augusta 1, {{ .city }}\"}\n"},
		{"reply-buttons", "  text: \"Did order {{ .order }} arrive?\"\n  reply_buttons:\n    header: \"Order {{ .order }}\"\n" +
			"    footer: Herald\n    buttons:\n      - {id: \"ok-{{ .order }}\", text: \"Yes\"}\n      - {id: problem, text: \"No, {{ slice (.name | title) 0 3 }}\"}\n"},
		{"list", "  text: \"Pick a slot, {{ .name | title }}\"\n  list:\n    button: Slots\n    sections:\n" +
			"      - title: Morning\n        rows:\n          - {id: m9, text: \"9:00\", description: \"in {{ .city }}\"}\n          - {id: m10, text: \"10:00\"}\n" +
			"      - title: Afternoon\n        rows:\n          - {id: a3, text: \"15:00\"}\n"},
		{"single-product", "  text: \"For {{ .name | title }}\"\n  single_product: {catalog_id: \"c1\", product_retailer_id: \"sku-9\"}\n"},
		{"multi-product", "  text: \"Picked for you\"\n  multi_product: {catalog_id: \"c1\", sections: [{title: New, product_items: [{product_retailer_id: sku-1}]}]}\n"},
		// raw: a whole Connectly message object, every string value a template, keys and
		// numbers as written; here text beside an attachment, which the typed kind refuses.
		{"raw-attachment-with-text", "  raw:\n    text: \"Your invoice, {{ .name | title }}\"\n    attachments:\n" +
			"      - {type: document, url: \"https://cdn.example.com/{{ .doc }}.pdf\", filename: \"{{ .doc }}.pdf\"}\n"},
		{"raw-snake-case", "  raw:\n    text: \"Pick a slot in {{ .city }}\"\n    reply_button_message:\n      buttons:\n" +
			"        - {id: \"ok-{{ .order }}\", text: \"Yes\"}\n      header: {text: \"Order {{ .order }}\"}\n      priority: 2\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := campaigns.Parse("s.yaml", []byte(sessionCampaign(tc.message)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			r, err := d.SessionRenderer()
			if err != nil {
				t.Fatal(err)
			}
			raw, err := r.Render(sessionRow)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			content, err := campaigns.DecodeSession(raw)
			if err != nil {
				t.Fatalf("DecodeSession: %v", err)
			}
			direct, err := r.Content(sessionRow)
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "decoded content", direct, content)
			body, err := connectly.Wire{CampaignName: true}.EncodeSession(connectly.SessionMessage{To: "+14155552671", Sender: "+14155550100",
				CallbackData: json.RawMessage(`{"herald_run":"RUN","herald_to":"+14155552671","herald_b":0}`), CampaignName: "s",
				Content: content})
			if err != nil {
				t.Fatalf("EncodeSession: %v", err)
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, body, "", "  "); err != nil {
				t.Fatal(err)
			}
			buf.WriteByte('\n')
			golden.Check(t, filepath.Join("testdata", "session", tc.name+".json"), buf.Bytes())
		})
	}
}

func TestSessionParse(t *testing.T) {
	t.Parallel()

	t.Run("FallbackBecomesTheTemplate", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Parse("s.yaml", []byte(sessionCampaign("  text: hi\n",
			"fallback_template:\n  name: order_status\n  language: en\n  languages: [es]\n  parameters:\n    body_1: \"{{ .name }}\"\n")))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		wantEqual(t, "template", campaigns.Template{Name: "order_status", Language: "en", Languages: []string{"es"}, Category: "marketing"}, d.Template)
		wantEqual(t, "parameters", map[string]string{"body_1": "{{ .name }}"}, d.Parameters.Values)
		wantEqual(t, "session", true, d.IsSession())
		wantEqual(t, "fallback", true, d.HasFallback())
		wantEqual(t, "kind", campaigns.SendKindSession, d.SendKind())
	})

	t.Run("NoFallback", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Parse("s.yaml", []byte(sessionCampaign("  text: hi\n")))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		wantEqual(t, "fallback", false, d.HasFallback())
		wantEqual(t, "template name", "", d.Template.Name)
		wantEqual(t, "category", "marketing", d.Template.Category)
	})

	t.Run("LocationAtTheOrigin", func(t *testing.T) {
		t.Parallel()
		// 0,0 written out is a place like any other.
		d, err := campaigns.Parse("s.yaml", []byte(sessionCampaign("  location: {latitude: 0, longitude: 0, name: Null Island}\n")))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if l := d.Message.Location; l.Latitude == nil || *l.Latitude != 0 || l.Longitude == nil || *l.Longitude != 0 {
			t.Fatalf("location %+v", l)
		}
	})

	t.Run("SlicePastTheSampleIsLeftToTheRows", func(t *testing.T) {
		t.Parallel()
		// Every real desc may be 120 characters long: a slice to 100 fails only on shorter ones.
		if _, err := campaigns.Parse("s.yaml", []byte(sessionCampaign("  text: \"{{ slice .desc 0 100 }}\"\n"))); err != nil {
			t.Fatalf("Parse: %v", err)
		}
	})

	t.Run("TemplateCampaignIsNoSession", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Parse("t.yaml", []byte("id: t\ntemplate: {name: x, language: en}\naudience: {file: a.csv}\n"))
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "kind", "", d.SendKind())
		_, err = d.SessionRenderer()
		wantErrIs(t, err, campaigns.ErrNotSession)
	})

	// Each broken file gives exactly these errors, file:line:col: field: message.
	broken := []struct {
		name, file string
		want       []string
	}{
		{"TemplateAndMessage", "id: s\naudience: {file: a.csv}\ntemplate: {name: x, language: en}\nmessage:\n  text: hi\n",
			[]string{"b.yaml:5:3: message: a campaign sends either template: (a template message) or message: (a session message), not both"}},
		{"NeitherTemplateNorMessage", "id: s\naudience: {file: a.csv}\n",
			[]string{"b.yaml:1:1: template.name: is required", "b.yaml:1:1: template.language: is required (e.g. en, en_US, pt_BR)"}},
		{"EmptyMessage", "id: s\naudience: {file: a.csv}\nmessage:\n",
			[]string{"b.yaml:3:9: message: is empty: give text, or one of attachment, location, reply_buttons, list, single_product, multi_product, raw"}},
		{"ParametersWithMessage", sessionCampaign("  text: hi\n", "parameters: {body_1: x}\n"),
			[]string{"b.yaml:5:13: parameters: a session message has no template parameters: its own strings are templates; the parameters of the fallback template go under fallback_template.parameters"}},
		{"FallbackWithoutMessage", "id: s\naudience: {file: a.csv}\ntemplate: {name: x, language: en}\nfallback_template: {name: y, language: en}\n",
			[]string{"b.yaml:4:20: fallback_template: only with message: (it is sent instead of the session message to recipients whose window is closed)"}},
		{"FallbackIncomplete", sessionCampaign("  text: hi\n", "fallback_template:\n  category: promo\n  parameters: {body_1: \"{{.x\"}\n"),
			[]string{
				"b.yaml:6:3: fallback_template.name: is required",
				"b.yaml:6:3: fallback_template.language: is required (e.g. en, en_US, pt_BR)",
				"b.yaml:6:13: fallback_template.category: \"promo\": want one of marketing, utility, authentication",
				"b.yaml:7:24: fallback_template.parameters.body_1: a {{ has no closing }}",
			}},
		{"TwoKinds", sessionCampaign("  location: {latitude: 1, longitude: 2}\n  attachment: {type: image, url: \"https://x.example/a.png\"}\n"),
			[]string{"b.yaml:4:13: message.location: a message has exactly one kind, this one also sets attachment, location"}},
		{"FourButtons", sessionCampaign("  text: Pick\n  reply_buttons:\n    buttons:\n      - {id: a, text: A}\n      - {id: b, text: B}\n      - {id: c, text: C}\n      - {id: d, text: D}\n"),
			[]string{"b.yaml:10:9: message.reply_buttons.buttons[3]: at most 3 buttons"}},
		{"ConstantButtonTooLong", sessionCampaign("  text: Pick\n  reply_buttons:\n    buttons:\n      - {id: a, text: \"A button text that is far too long\"}\n"),
			[]string{"b.yaml:7:23: message.reply_buttons.buttons[0].text: 34 characters, at most 20"}},
		{"ButtonTooLongOnEveryRow", sessionCampaign("  text: Pick\n  reply_buttons:\n    buttons:\n      - {id: a, text: \"Confirm the delivery {{ .x }}\"}\n"),
			[]string{"b.yaml:7:23: message.reply_buttons.buttons[0].text: 28 characters, at most 20 (on every row)"}},
		// A slice that fails on a short value and gives too many characters on a long one fails
		// on every row.
		{"SliceTooLongForAButton", sessionCampaign("  text: Pick\n  reply_buttons:\n    buttons:\n      - {id: a, text: \"{{ slice .x 0 100 }}\"}\n"),
			[]string{"b.yaml:7:23: message.reply_buttons.buttons[0].text: {{ slice .x 0 100 }} at column 4 of the template: index 100 is out of range (on every row)"}},
		{"ConstantOverTheWorkBound", sessionCampaign("  text: '{{ \"" + strings.Repeat("y", 1000) + "\"" + strings.Repeat(" | upper", 140) + " }}'\n"),
			[]string{"b.yaml:4:9: message.text: {{ ... | upper | upper | upper | upper | upper ... }} at column 2057 of the template: upper: helpers may process at most 131072 bytes for one row, this row needs more"}},
		{"FunctionNotAllowed", sessionCampaign("  text: \"{{ printf \\\"%s\\\" .x }}\"\n"),
			[]string{"b.yaml:4:9: message.text: {{ printf \"%s\" .x }} at column 4 of the template: function \"printf\" is not allowed in a parameter (allowed: and, default, eq, ge, gt, index, le, len, lower, lt, ne, not, or, slice, title, trim, upper, urlquery)"}},
		{"UnknownKeyInAButton", sessionCampaign("  text: Pick\n  reply_buttons:\n    buttons:\n      - {id: a, title: A}\n"),
			[]string{
				"b.yaml:7:9: message.reply_buttons.buttons[0].text: required",
				"b.yaml:7:17: message.reply_buttons.buttons[0].title: unknown key \"title\" (known keys: id, text)",
			}},
		{"RawUnknownKey", sessionCampaign("  raw:\n    text: Hi\n    buttons: []\n"),
			[]string{"b.yaml:6:14: message.raw.buttons: not a field of a Connectly message (want one of attachments, id, listMessage, location, multiProductMessage, replyButtonMessage, singleProductMessage, text)"}},
		{"RawTwoContents", sessionCampaign("  raw:\n    location: {latitude: 1, longitude: 2}\n    attachments: [{type: image, url: \"https://x.example/a.png\"}]\n"),
			[]string{"b.yaml:5:15: message.raw.location: a message has one content field besides text, this one also sets attachments, location"}},
		{"RawWithText", sessionCampaign("  text: Hi\n  raw: {text: Hello}\n"),
			[]string{"b.yaml:4:9: message.text: not allowed with raw: put text inside the raw object"}},
		{"RawNotAMapping", sessionCampaign("  raw: [text]\n"),
			[]string{"b.yaml:4:8: message.raw: want a mapping (a JSON object)"}},
		{"RawTemplateBroken", sessionCampaign("  raw:\n    text: \"{{ .x \"\n"),
			[]string{"b.yaml:5:11: message.raw.text: a {{ has no closing }}"}},
		// A missing coordinate is not 0: the pin would go to 0,0.
		{"LocationWithoutLatitude", sessionCampaign("  location: {longitude: 2.35, name: Paris}\n"),
			[]string{"b.yaml:4:13: message.location.latitude: required"}},
		{"LocationWithoutCoordinates", sessionCampaign("  location:\n    name: Paris\n"),
			[]string{"b.yaml:5:5: message.location.latitude: required", "b.yaml:5:5: message.location.longitude: required"}},
		{"BadAttachmentURL", sessionCampaign("  attachment: {type: image, url: \"ftp://x.example/a.png\"}\n"),
			[]string{"b.yaml:4:34: message.attachment.url: the value is not an absolute http(s) URL"}},
	}
	for _, tc := range broken {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.Parse("b.yaml", []byte(tc.file))
			var errs campaigns.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse error = %v, want campaigns.Errors", err)
			}
			got := make([]string, len(errs))
			for i, e := range errs {
				got[i] = e.Error()
			}
			wantEqual(t, "errors", tc.want, got)
		})
	}
}

func TestSessionRender(t *testing.T) {
	t.Parallel()
	const secret = "SECRET-VALUE-9876"
	parse := func(t *testing.T, message string) *campaigns.SessionRenderer {
		t.Helper()
		d, err := campaigns.Parse("s.yaml", []byte(sessionCampaign(message)))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		r, err := d.SessionRenderer()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("DataBreaksALimit", func(t *testing.T) {
		t.Parallel()
		r := parse(t, "  text: Pick\n  reply_buttons:\n    buttons:\n      - {id: a, text: \"{{ .name }}\"}\n")
		if _, err := r.Render(map[string]string{"name": "Ana"}); err != nil {
			t.Fatalf("short name: %v", err)
		}
		_, err := r.Render(map[string]string{"name": secret + " and more of it"})
		wantErrIs(t, err, campaigns.ErrRender)
		wantErrIs(t, err, connectly.ErrInvalidMessage)
		wantErrContains(t, err, "message.reply_buttons.buttons[0].text: 32 characters, at most 20")
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error quotes the row: %v", err)
		}
	})

	t.Run("ErrorsNeverQuoteValues", func(t *testing.T) {
		t.Parallel()
		r := parse(t, "  text: Pick\n  reply_buttons:\n    buttons:\n      - {id: \"{{ .a }}\", text: \"{{ .a }}\"}\n      - {id: \"{{ .b }}\", text: \"{{ .b }}\"}\n")
		_, err := r.Render(map[string]string{"a": secret, "b": secret})
		wantErrContains(t, err, "message.reply_buttons.buttons[1].id: the value is also the id of buttons[0]")
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error quotes the row: %v", err)
		}
		r = parse(t, "  attachment: {type: image, url: \"{{ .u }}\"}\n")
		_, err = r.Render(map[string]string{"u": "ftp://" + secret})
		wantErrContains(t, err, "message.attachment.url: the value is not an absolute http(s) URL")
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error quotes the row: %v", err)
		}
	})

	t.Run("EmptyColumn", func(t *testing.T) {
		t.Parallel()
		r := parse(t, "  text: \"{{ .greeting }}\"\n")
		_, err := r.Render(map[string]string{})
		wantErrContains(t, err, "message.text: required")
	})

	t.Run("OutputIsCapped", func(t *testing.T) {
		t.Parallel()
		// Each helper call may not grow a value past its bound; the field's output is capped
		// too, whatever the template.
		r := parse(t, "  text: \"{{ .a }}{{ .a }}{{ .a }}{{ .a }}{{ .a }}\"\n")
		_, err := r.Render(map[string]string{"a": strings.Repeat("x", 4000)})
		wantErrContains(t, err, "message.text: value is longer than 4096 characters")
	})

	t.Run("TextInAnyScriptUpToTheCharacterLimit", func(t *testing.T) {
		t.Parallel()
		// 4,096 characters of Cyrillic (8,192 bytes) or of CJK (12,288 bytes) are a text WhatsApp
		// takes: the template's source limit is in bytes, so it must hold them as written.
		for _, ch := range []string{"я", "語"} {
			text := strings.Repeat(ch, 4096)
			r := parse(t, "  text: \""+text+"\"\n")
			raw, err := r.Render(nil)
			if err != nil {
				t.Fatalf("%s: %v", ch, err)
			}
			if !strings.Contains(string(raw), text) {
				t.Fatalf("%s: the text was not sent whole", ch)
			}
		}
		// One character more is refused, in characters.
		c := connectly.SessionContent{Text: strings.Repeat("я", 4097)}
		if _, err := campaigns.NewSessionRenderer(c); err != nil {
			t.Fatalf("NewSessionRenderer: %v", err)
		}
		if p := campaigns.CheckMessage(c); len(p) != 1 || !strings.Contains(p[0].String(), "4097 characters") {
			t.Fatalf("CheckMessage of 4,097 characters = %v", p)
		}
	})

	t.Run("ProductsAndCoordinatesAreNotTemplates", func(t *testing.T) {
		t.Parallel()
		r := parse(t, "  single_product: {catalog_id: \"{{ .x }}\"}\n")
		c, err := r.Content(map[string]string{"x": "rendered"})
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "product", `{"catalog_id":"{{ .x }}"}`, string(c.SingleProduct))
	})

	t.Run("RawIsKeptAsWritten", func(t *testing.T) {
		t.Parallel()
		// 4,000 "&" are 4,000 bytes on the wire; HTML-escaped they would be 24,000 and the
		// payload would break the raw object's limit after the row was planned.
		r := parse(t, "  raw: {text: \"{{ .t }}\"}\n")
		raw, err := r.Render(map[string]string{"t": strings.Repeat("&", 4000)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), strings.Repeat("&", 4000)) {
			t.Fatalf("payload escapes the text: %.80s...", raw)
		}
		if _, err := campaigns.DecodeSession(raw); err != nil {
			t.Fatalf("DecodeSession: %v", err)
		}
	})

	t.Run("DecodeRefusesInvalid", func(t *testing.T) {
		t.Parallel()
		_, err := campaigns.DecodeSession(json.RawMessage(`{"text":""}`))
		wantErrIs(t, err, campaigns.ErrBadSession)
		_, err = campaigns.DecodeSession(json.RawMessage(`{"text":`))
		wantErrIs(t, err, campaigns.ErrBadSession)
	})
}

func TestPlanSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,bsuid,name\n+14155552671,,ana\n,US.13491208655302741918,bo\n+14155552673,,\n")
	campaign := "id: s\nsender: \"+14155550100\"\naudience: {file: a.csv, bsuid: bsuid}\nmessage:\n  text: \"{{ with .name }}Hi {{ . }}{{ end }}\"\n"

	t.Run("SkipWhenClosed", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Load(writeFile(t, dir, "skip.yaml", campaign))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := campaigns.Plan(d, d.Sender, campaigns.PlanOptions{Samples: 5,
			Wire: connectly.Wire{BSUIDField: connectly.BSUIDInUserID, CampaignName: true}})
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "recipients", 2, rep.Recipients)
		wantEqual(t, "skipped", map[string]int{"invalid_params": 1}, rep.Skipped)
		wantEqual(t, "example", "cannot render parameters: message.text: required: a message needs text or one of attachment, location, reply_buttons, list, single_product, multi_product, raw", rep.Examples[0].Detail)
		wantEqual(t, "languages", map[string]int{}, rep.Languages)
		wantEqual(t, "session", &campaigns.SessionPlan{Kind: connectly.KindText, Path: "/v1/businesses/%7BbusinessId%7D/send/messages",
			WindowClosed: "skip"}, rep.Session)
		wantErrContains(t, errors.New(rep.Session.Note()), "skipped (window_closed)")
		want := []string{
			`{"recipient":{"id":"+14155552671","channelType":"whatsapp"},"sender":{"id":"+14155550100","channelType":"whatsapp"},"message":{"text":"Hi ana"},"callbackData":{"herald_run":"RUN","herald_to":"+14155552671","herald_b":0},"campaignName":"s"}`,
			`{"recipient":{"userId":"US.13491208655302741918","channelType":"whatsapp"},"sender":{"id":"+14155550100","channelType":"whatsapp"},"message":{"text":"Hi bo"},"callbackData":{"herald_run":"RUN","herald_to":"bsuid:US.13491208655302741918","herald_b":0},"campaignName":"s"}`,
		}
		got := make([]string, len(rep.Samples))
		for i, s := range rep.Samples {
			got[i] = string(s)
		}
		wantEqual(t, "samples", want, got)
	})

	t.Run("Fallback", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Load(writeFile(t, dir, "fallback.yaml", campaign+
			"fallback_template: {name: hello, language: en, parameters: {body_1: \"{{ .name | default \\\"there\\\" }}\"}}\n"))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := campaigns.Plan(d, d.Sender, campaigns.PlanOptions{Samples: 1})
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "window closed", "fallback", rep.Session.WindowClosed)
		wantEqual(t, "fallback", "hello (en)", rep.Session.FallbackTemplate)
		wantErrContains(t, errors.New(rep.Session.Note()), "sent the fallback template hello (en) instead")
		wantEqual(t, "samples", 1, len(rep.Samples))
		wantEqual(t, "fallback samples", []json.RawMessage{json.RawMessage(
			`{"number":"+14155552671","templateName":"hello","language":"en","parameters":[{"name":"body_1","value":"ana"}],"sender":"+14155550100","callbackData":{"herald_run":"RUN","herald_to":"+14155552671","herald_b":0}}`)},
			rep.Session.FallbackSamples)
	})
}

func TestExampleSessionCampaignIsValid(t *testing.T) {
	t.Parallel()
	d, err := campaigns.Load(filepath.Join("..", "configs", "campaigns", "delivery-followup.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	rep, err := campaigns.Plan(d, d.Sender, campaigns.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recipients == 0 || len(rep.Skipped) != 0 {
		t.Fatalf("recipients %d, skipped %v: want every row sent", rep.Recipients, rep.Skipped)
	}
}

// FuzzSessionRender compiles an arbitrary template into every string of a text message and
// of a list, and renders it on an arbitrary row: nothing panics, a render ends in a message
// that decodes, validates and encodes as a request, or in an error wrapping ErrRender that
// does not quote the row's value. Seeds: the inline cases and testdata/fuzz/FuzzSessionRender.
func FuzzSessionRender(f *testing.F) {
	f.Add("Hi {{ .a | title }}", "ana maria")
	f.Add("{{ slice .a 0 3 }}", "ab")
	f.Add("{{ if .a }}{{ .a | upper }}{{ else }}there{{ end }}", "")
	f.Add("{{ .a }}{{ .a }}{{ .a }}", strings.Repeat("long value ", 200))
	f.Add("{{ index . \"a\" | urlquery }}", "a&b=c d")
	f.Add("{{ range .a }}{{ end }}", "x")
	f.Add("{{ .a", "x")
	f.Add("{{ .a }}{{ .a }}{{ .a }}", strings.Repeat("&", 1300))
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		q, _ := json.Marshal(tmpl)
		contents := []connectly.SessionContent{
			{Text: tmpl},
			{Text: tmpl, List: &connectly.List{Button: tmpl, Header: tmpl, Footer: tmpl, Sections: []connectly.Section{
				{Title: tmpl, Rows: []connectly.Row{{ID: tmpl, Text: tmpl, Description: tmpl}}}}}},
			// A raw object: what renders must decode and encode as it did (its size is
			// measured as the wire carries it).
			{Raw: connectly.RawObject(`{"text":` + string(q) + `,"replyButtonMessage":{"buttons":[{"id":"b","text":` + string(q) + `}]}}`)},
		}
		for _, c := range contents {
			_ = campaigns.CheckMessage(c)
			r, err := campaigns.NewSessionRenderer(c)
			if err != nil {
				continue
			}
			raw, err := r.Render(map[string]string{"a": value})
			if err != nil {
				if !errors.Is(err, campaigns.ErrRender) {
					t.Fatalf("render error does not wrap ErrRender: %v", err)
				}
				if len(value) >= 12 && !strings.Contains(tmpl, value) && strings.Contains(err.Error(), value) {
					t.Fatalf("render error quotes the row's value: %v", err)
				}
				continue
			}
			content, err := campaigns.DecodeSession(raw)
			if err != nil {
				t.Fatalf("rendered message does not decode: %v", err)
			}
			if _, err := (connectly.Wire{}).EncodeSession(connectly.SessionMessage{To: "+14155552671", Content: content}); err != nil {
				t.Fatalf("rendered message does not encode: %v", err)
			}
		}
	})
}
