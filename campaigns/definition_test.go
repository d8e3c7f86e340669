package campaigns_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/golden"

	"github.com/heraldmsg/herald/campaigns"
)

func TestParseValid(t *testing.T) {
	t.Parallel()

	t.Run("EveryFieldSet", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join("testdata", "valid", "spring-sale.yaml")
		d, err := campaigns.Load(path)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		want := &campaigns.Definition{
			ID: "spring-sale", Name: "Spring sale", Sender: "+14151111234", Tags: []string{"promo", "spring"},
			Template: campaigns.Template{Name: "spring_sale", Language: "en_US", Category: "utility"},
			Parameters: campaigns.Parameters{Values: map[string]string{
				"header_image": "https://cdn.example.com/spring.png",
				"body_1":       `{{.first_name | default "there" | title}}`,
				"body_2":       "{{.code | upper}}",
				"button_1_url": "https://shop.example.com/r?c={{.code | urlquery}}",
			}},
			Audience:   campaigns.Audience{File: "audience.csv", Phone: "mobile", DefaultRegion: "US", MaxInvalidShare: 0.05},
			Delivery:   "at-least-once",
			Path:       path,
			AudienceAt: campaigns.Position{Line: 16, Column: 9},
			SenderAt:   campaigns.Position{Line: 4, Column: 9},
			PhoneAt:    campaigns.Position{Line: 17, Column: 10},
		}
		wantEqual(t, "definition", want, d)
	})

	t.Run("DefaultsApplied", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Load(filepath.Join("testdata", "valid", "minimal.yaml"))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		wantEqual(t, "category", "marketing", d.Template.Category)
		wantEqual(t, "audience.phone", "phone", d.Audience.Phone)
		wantEqual(t, "delivery", "at-most-once", d.Delivery)
		wantEqual(t, "default_region", "", d.Audience.DefaultRegion)
	})

	t.Run("EveryParameterNameAccepted", func(t *testing.T) {
		t.Parallel()
		// A template has one header: each header name with every other name.
		for _, header := range campaigns.ParamNames[:4] {
			var sb strings.Builder
			sb.WriteString("id: all-params\ntemplate: {name: t, language: en}\naudience: {file: a.csv}\nparameters:\n")
			for _, n := range campaigns.ParamNames {
				if n == header || !strings.HasPrefix(n, "header_") {
					sb.WriteString("  " + n + ": \"{{.v}}\"\n")
				}
			}
			d, err := campaigns.Parse("all.yaml", []byte(sb.String()))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			wantEqual(t, "parameter count", 18, len(d.Parameters.Values))
		}
	})

	t.Run("SlugOfSixtyFourCharacters", func(t *testing.T) {
		t.Parallel()
		id := strings.Repeat("a1-b", 16)
		_, err := campaigns.Parse("c.yaml", []byte("id: "+id+"\ntemplate: {name: t, language: en}\naudience: {file: a.csv}\n"))
		if err != nil {
			t.Fatalf("Parse of a %d-character slug: %v", len(id), err)
		}
	})

	t.Run("MissingFile", func(t *testing.T) {
		t.Parallel()
		_, err := campaigns.Load(filepath.Join(t.TempDir(), "nope.yaml"))
		wantErrIs(t, err, os.ErrNotExist)
	})
}

func TestAudiencePath(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		path string
		file string
		want string
	}{
		{name: "RelativeToCampaignFile", path: "campaigns/spring/sale.yaml", file: "audience.csv", want: "campaigns/spring/audience.csv"},
		{name: "RelativeWithParent", path: "campaigns/spring/sale.yaml", file: "../shared/vip.csv", want: "campaigns/shared/vip.csv"},
		{name: "CampaignInWorkingDir", path: "sale.yaml", file: "audience.csv", want: "audience.csv"},
		{name: "AbsoluteKept", path: "campaigns/sale.yaml", file: "/data/audience.csv", want: "/data/audience.csv"},
		{name: "ParsedFromBytes", path: "", file: "audience.csv", want: "audience.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &campaigns.Definition{Path: tt.path, Audience: campaigns.Audience{File: tt.file}}
			wantEqual(t, "AudiencePath", filepath.FromSlash(tt.want), d.AudiencePath())
		})
	}
}

// TestParseBroken parses every campaign under testdata/broken and compares the error text
// with the case's .golden file (run with -update to rewrite them).
func TestParseBroken(t *testing.T) {
	t.Parallel()

	inputs, err := filepath.Glob(filepath.Join("testdata", "broken", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no broken campaigns under testdata/broken")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := campaigns.Load(in)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", d)
			}
			if d != nil {
				t.Errorf("Load returned a definition with its error: %+v", d)
			}
			var errs campaigns.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T does not wrap campaigns.Errors: %v", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(errs) {
				t.Errorf("%d lines for %d errors:\n%s", len(lines), len(errs), err)
			}
			for i, e := range errs {
				if e.File != in {
					t.Errorf("error %d names file %q, want %q", i, e.File, in)
				}
				if e.Line < 1 || e.Column < 1 {
					t.Errorf("error %d has no position: %q", i, e)
				}
				if !strings.HasPrefix(lines[i], in+":") {
					t.Errorf("line %d %q does not start with the file name", i, lines[i])
				}
			}
			golden.Check(t, strings.TrimSuffix(in, ".yaml")+".golden", []byte(err.Error()+"\n"))
		})
	}
}

// TestParseErrors checks the position and field of each kind of problem, and that one file
// reports every problem it has at once.
func TestParseErrors(t *testing.T) {
	t.Parallel()

	const valid = "id: spring-sale\ntemplate:\n  name: spring_sale\n  language: en\naudience:\n  file: a.csv\n"
	tests := []struct {
		name string
		yaml string
		// want lists "line:col: field" (or "line:col: message start" for YAML errors), in order.
		want []string
	}{
		{name: "MissingID", yaml: "name: x\n" + valid[len("id: spring-sale\n"):], want: []string{"1:1: id: is required"}},
		{name: "BadSlug", yaml: strings.Replace(valid, "spring-sale", "-sale", 1), want: []string{`1:5: id: "-sale" is not a slug`}},
		{name: "UpperCaseSlug", yaml: strings.Replace(valid, "spring-sale", "Sale", 1), want: []string{`1:5: id: "Sale" is not a slug`}},
		{name: "MissingTemplateName", yaml: strings.Replace(valid, "  name: spring_sale\n", "", 1), want: []string{"3:3: template.name: is required"}},
		{name: "MissingTemplateLanguage", yaml: strings.Replace(valid, "  language: en\n", "", 1), want: []string{"3:3: template.language: is required"}},
		{name: "LanguageWithADash", yaml: strings.Replace(valid, "language: en\n", "language: en-US\n", 1),
			want: []string{`4:13: template.language: "en-US" is not a language code (e.g. en, en_US, pt_BR); did you mean "en_US"?`}},
		{name: "LanguageNotACode", yaml: strings.Replace(valid, "language: en\n", "language: English\n", 1),
			want: []string{`4:13: template.language: "English" is not a language code (e.g. en, en_US, pt_BR)`}},
		{name: "LanguagesWithADash", yaml: strings.Replace(valid, "language: en\n", "language: en\n  languages: [pt-br]\n", 1),
			want: []string{`5:14: template.languages: template.languages[0]: "pt-br" is not a language code (e.g. en, en_US, pt_BR); did you mean "pt_BR"?`}},
		{name: "FallbackLanguageWithADash", yaml: "id: s\nmessage: {text: hi}\nfallback_template: {name: t, language: es-419}\naudience: {file: a.csv}\n",
			want: []string{`3:40: fallback_template.language: "es-419" is not a language code (e.g. en, en_US, pt_BR)`}},
		{name: "CategoryIsCaseSensitive", yaml: strings.Replace(valid, "  language: en\n", "  language: en\n  category: MARKETING\n", 1), want: []string{`5:13: template.category: "MARKETING": want one of marketing, utility, authentication`}},
		{name: "UnknownParameter", yaml: valid + "parameters:\n  body_1: x\n  body_0: y\n", want: []string{"9:11: parameters.body_0: unknown parameter name"}},
		{name: "ParameterDoesNotParse", yaml: valid + "parameters:\n  body_1: \"{{.name\"\n", want: []string{"8:11: parameters.body_1: a {{ has no closing }}"}},
		{name: "ParameterUnknownFunction", yaml: valid + "parameters:\n  body_1: \"{{.name | shout}}\"\n", want: []string{`8:11: parameters.body_1: function "shout" is not defined (allowed: and, default,`}},
		{name: "MissingAudienceFile", yaml: strings.Replace(valid, "  file: a.csv\n", "  phone: mobile\n", 1), want: []string{"6:3: audience.file: is required"}},
		{name: "BadDefaultRegion", yaml: valid + "  default_region: Us\n", want: []string{`7:19: audience.default_region: "Us" is not an ISO 3166 alpha-2 country code`}},
		{name: "UnsupportedDefaultRegion", yaml: valid + "  default_region: UK\n", want: []string{`7:19: audience.default_region: "UK" is not an ISO 3166 alpha-2 country code`}},
		{name: "SenderNotE164", yaml: valid + "sender: \"14151111234\"\n", want: []string{`7:9: sender: "14151111234" is not an E.164 number`}},
		{name: "SenderTooShort", yaml: valid + "sender: \"+12345\"\n", want: []string{`7:9: sender: "+12345" is not an E.164 number`}},
		{name: "RateNaN", yaml: valid + "rate: .nan\n", want: []string{`7:7: rate: NaN: want 0`}},
		{name: "RateTooSmall", yaml: valid + "rate: 1e-300\n", want: []string{`7:7: rate: 1e-300: want 0 (the sender's rate), or 0.01 to 1000 messages/s`}},
		{name: "RateNegative", yaml: valid + "rate: -1\n", want: []string{`7:7: rate: -1: want 0`}},
		{name: "BadDelivery", yaml: valid + "delivery: once\n", want: []string{`7:11: delivery: "once": want at-most-once or at-least-once`}},
		{name: "UnknownKey", yaml: valid + "  column: phone\n", want: []string{`7:3: audience.column: unknown key "column" (known keys: bsuid, default_region, file, language, max_invalid_share, phone, timezone)`}},
		{name: "UnknownKeySuggestion", yaml: strings.Replace(valid, "template:", "tempalte:", 1), want: []string{"1:1: template.name: is required", "1:1: template.language: is required",
			`2:1: tempalte: unknown key "tempalte" (did you mean "template"?)`}},
		{
			name: "UnknownKeysWithOtherProblems",
			yaml: valid + "  colunm: phone\ndelivery: sometimes\nretries: 3\n",
			want: []string{`7:3: audience.colunm: unknown key "colunm"`, `8:11: delivery: "sometimes"`, `9:1: retries: unknown key "retries"`},
		},
		{name: "WrongType", yaml: valid + "tags: promo\n", want: []string{`7:7: tags: want a list, got "promo"`}},
		{
			name: "WrongTypeHidesNothing",
			yaml: "id: Bad\n" + valid[len("id: spring-sale\n"):] + "parameters:\n  body_1: \"{{ .a\"\n  body_99: x\ndelivery: sometimes\nrate: fast\n",
			want: []string{"1:5: id:", "8:11: parameters.body_1: a {{ has no closing }}", "9:12: parameters.body_99: unknown parameter name", `10:11: delivery: "sometimes"`,
				`11:7: rate: want a number, got "fast"`},
		},
		{
			name: "WrongTypeSkipsOnlyItsOwnChecks",
			yaml: "id: spring-sale\ntemplate: welcome\naudience:\n  file: [a.csv]\n  default_region: usa\nsender: \"0415\"\n",
			want: []string{`2:11: template: want a mapping (keys: category, language, languages, name), got "welcome"`,
				"4:9: audience.file: want a text value, got a list", `5:19: audience.default_region: "usa"`, `6:9: sender: "0415"`},
		},
		{name: "WrongTypeInAList", yaml: valid + "tags: [a, [b], c]\n", want: []string{"7:11: tags[1]: want a text value, got a list"}},
		{name: "WrongTypeThroughAnAlias", yaml: "x: &x [a, b]\n" + valid + "rate: *x\n",
			want: []string{`1:1: x: unknown key "x"`, "8:7: rate: want a number, got a list"}},
		{
			name: "WrongTypeInARule",
			yaml: valid + "on_reply:\n  - button: {a: b}\n    none: true\n  - keyword: price\n    delay: [1]\n    message: {text: hi}\n  - button: x\n    keyword: y\n    none: true\n",
			want: []string{"8:13: on_reply[0].button: want a text value or a list of them, got a mapping", "11:12: on_reply[1].delay: want a text value, got a list",
				"14:14: on_reply[2].keyword: a rule has one match; this one sets button and keyword"},
		},
		{name: "DuplicateKeyWithOtherProblems", yaml: valid + "delivery: twice\nid: Other\n",
			want: []string{`7:11: delivery: "twice"`, "8:1: id: given twice (first at line 1)"}},
		{name: "ParametersNotAMapping", yaml: valid + "parameters: [body_1]\ndelivery: twice\n",
			want: []string{"7:13: parameters: want a mapping of name: value, got a list", `8:11: delivery: "twice"`}},
		{name: "ParameterNotText", yaml: valid + "parameters:\n  body_1: [a]\n  body_2: \"{{ .b\"\n",
			want: []string{"8:11: parameters.body_1: want a text value, got a list", "9:11: parameters.body_2: a {{ has no closing }}"}},
		{name: "MessageNotAMapping", yaml: "id: s\nmessage: hello\naudience: {file: a.csv}\nrate: -1\n",
			want: []string{`2:10: message: want a mapping (keys: attachment, list, location, multi_product, raw, reply_buttons, single_product, text), got "hello"`, "4:7: rate: -1"}},
		{name: "ParameterRangeLoop", yaml: valid + "parameters:\n  body_1: \"{{ range 100000000 }}x{{ end }}\"\n", want: []string{"8:11: parameters.body_1: {{ range 100000000 }} at column 10 of the template: {{range}} is not allowed"}},
		{name: "ParameterCall", yaml: valid + "parameters:\n  body_1: \"{{ call .f }}\"\n", want: []string{`8:11: parameters.body_1: {{ call .f }} at column 4 of the template: function "call" is not allowed`}},
		{name: "ParameterRecursiveDefine", yaml: valid + "parameters:\n  body_1: '{{ define \"x\" }}{{ template \"x\" }}{{ end }}{{ template \"x\" }}'\n", want: []string{"8:11: parameters.body_1: {{define}}, {{block}} and {{template}} are not allowed"}},
		{name: "ParameterFailsOnEveryRow", yaml: valid + "parameters:\n  body_1: \"{{ .a | upper | default 1 }}\"\n", want: []string{"8:11: parameters.body_1: {{ .a | upper | default 1 }} at column 25 of the template: expected text, found 1 (on every row)"}},
		{name: "ParameterConstantTooLong", yaml: valid + "parameters:\n  header_text: " + strings.Repeat("h", 61) + "\n", want: []string{"8:16: parameters.header_text: header text is 61 characters, limit 60 (on every row)"}},
		{name: "ParameterFixedHTTPHeader", yaml: valid + "parameters:\n  header_image: \"http://cdn.example.com/{{ .name }}.png\"\n",
			want: []string{"8:17: parameters.header_image: value is not an absolute https URL (on every row)"}},
		{name: "ParameterFixedNewlineInBody", yaml: valid + "parameters:\n  body_1: \"Hi {{ .name }},\\n\\nyour order\"\n  body_2: \"{{ .a }}\\tthere\"\n  body_3: \"{{ .a }}     b\"\n",
			want: []string{"8:11: parameters.body_1: body values may not contain newlines or tabs (on every row)",
				"9:11: parameters.body_2: body values may not contain newlines or tabs (on every row)",
				"10:11: parameters.body_3: body values may not contain more than four consecutive spaces (on every row)"}},
		{name: "ParameterFixedTextThatRowsDecideIsFine", yaml: valid + "parameters:\n  header_image: \"HTTPS://cdn/{{ .f }}\"\n" +
			"  body_1: '{{ if .x }}a\n\n  b{{ end }}'\n  body_2: \"{{ .a }}    b\"\nid: again\n", want: []string{`13:1: id: given twice (first at line 1)`}},
		{name: "ParameterFixedSchemeStartThatRowsDecideIsFine", yaml: valid + "parameters:\n  header_video: \"ht{{ .rest }}\"\nid: again\n",
			want: []string{`9:1: id: given twice (first at line 1)`}},
		{name: "ParameterRowDependentIsFine", yaml: valid + "parameters:\n  header_image: \"{{ .url }}\"\n  body_1: \"{{ slice .code 0 7 }}\"\n  body_2: \"{{ .x }}\"\n  body_3: '{{ if eq .tier \"gold\" }}VIP{{ end }}'\nid: again\n", want: []string{`12:1: id: given twice (first at line 1)`}},
		{name: "ButtonConstantWithSpace", yaml: valid + "parameters:\n  button_1_url: \"spring sale\"\n",
			want: []string{"8:17: parameters.button_1_url: button URL values may not contain spaces, tabs or newlines (escape a column with urlquery: {{ .code | urlquery }}) (on every row)"}},
		{name: "ButtonFixedSpace", yaml: valid + "parameters:\n  button_2_url: \"{{ .ref }} sale\"\n",
			want: []string{"8:17: parameters.button_2_url: button URL values may not contain spaces, tabs or newlines"}},
		{name: "HeaderTextBlockEndsInANewline", yaml: valid + "parameters:\n  header_text: |\n    Hello {{ .first_name }}\n  body_1: >-\n    {{ .first_name }}\n",
			want: []string{"8:16: parameters.header_text: header text may not contain newlines or tabs (on every row)"}},
		{name: "HeaderTextFixedTab", yaml: valid + "parameters:\n  header_text: \"Hi\\t{{ .first_name }}\"\n",
			want: []string{"8:16: parameters.header_text: header text may not contain newlines or tabs (on every row)"}},
		{name: "ButtonAndHeaderTextRowsDecide", yaml: valid + "parameters:\n  button_1_url: \"{{ .ref | urlquery }}\"\n  button_2_url: '{{ if .x }}a b{{ end }}{{ .y }}'\n" +
			"  header_text: '{{ .a }}    {{ .b }}'\nid: again\n", want: []string{`11:1: id: given twice (first at line 1)`}},
		// Every real desc may be longer than 100 characters; on a shorter one the row is skipped.
		{name: "SlicePastTheSampleIsLeftToTheRows", yaml: valid + "parameters:\n  body_1: \"{{ slice .desc 0 100 }}\"\n" +
			"  raw: [{name: r, value: \"{{ index .code 70 }}{{ slice .desc 3000 3001 }}\"}]\nid: again\n", want: []string{`10:1: id: given twice (first at line 1)`}},
		// ... but a slice of 100 is too long for a header text whatever the row.
		{name: "SliceTooLongForTheHeader", yaml: valid + "parameters:\n  header_text: \"{{ slice .desc 0 100 }}\"\n",
			want: []string{"8:16: parameters.header_text: {{ slice .desc 0 100 }} at column 4 of the template: index 100 is out of range (on every row)"}},
		// 32 constant raw values of 1,024 four-byte characters: each within its limit, together
		// over what a row's values may hold.
		{name: "RawConstantsOverTheRenderBytes", yaml: valid + "parameters:\n  raw:\n" + rawEntries(32, func(int) string { return strings.Repeat("😀", 1024) }),
			want: []string{"8:3: parameters: the parameters render to more than 131072 bytes together (their names and fixed text are 131158 bytes) (on every row)"}},
		{name: "RawConstantsUnderTheRenderBytes", yaml: valid + "parameters:\n  raw:\n" + rawEntries(32, func(int) string { return strings.Repeat("😀", 1000) }) + "id: again\n",
			want: []string{"41:1: id: given twice (first at line 1)"}},
		{name: "FixedTextOverTheRenderBytes", yaml: valid + "parameters:\n  raw:\n" + rawEntries(44, func(int) string { return strings.Repeat("中", 1000) + "{{ .a }}" }),
			want: []string{"8:3: parameters: the parameters render to more than 131072 bytes together"}},
		// A constant piped through helpers past the work bound of a row fails on every row.
		{name: "ConstantOverTheWorkBound", yaml: valid + "parameters:\n  body_1: '{{ \"" + strings.Repeat("y", 1000) + "\"" + strings.Repeat(" | upper", 140) + " }}'\n",
			want: []string{"8:11: parameters.body_1: {{ ... | upper | upper | upper | upper | upper ... }} at column 2057 of the template: upper: helpers may process at most 131072 bytes for one row, this row needs more (on every row)"}},
		{name: "ColumnThroughManyHelpersIsLeftToTheRows", yaml: valid + "parameters:\n  body_1: '{{ .a" + strings.Repeat(" | upper", 140) + " }}'\nid: again\n",
			want: []string{"9:1: id: given twice (first at line 1)"}},
		// Body variables are numbered without a gap and a template has one header (reference 7,
		// 2.2): no template takes these.
		{name: "BodyNumberingGap", yaml: valid + "parameters:\n  body_1: \"{{ .a }}\"\n  body_3: \"{{ .b }}\"\n",
			want: []string{"9:11: parameters.body_3: body_2 is not given, body_3 is: a template numbers its body variables {{1}}, {{2}}, ... without a gap, so no template takes these (give body_2, or renumber)"}},
		{name: "BodyNumberingWithoutOne", yaml: valid + "parameters:\n  body_2: \"{{ .a }}\"\n",
			want: []string{"8:11: parameters.body_2: body_1 is not given, body_2 is:"}},
		{name: "TwoHeaders", yaml: valid + "parameters:\n  header_text: Hello\n  header_image: https://cdn.example.com/a.png\n  body_1: \"{{ .a }}\"\n",
			want: []string{"9:17: parameters.header_image: a template has one header, and header_text is given too: keep the one the template's header takes"}},
		{name: "FallbackBodyNumberingGap", yaml: "id: s\nmessage: {text: hi}\nfallback_template:\n  name: t\n  language: en\n  parameters: {body_2: x}\naudience: {file: a.csv}\n",
			want: []string{"6:24: fallback_template.parameters.body_2: body_1 is not given, body_2 is:"}},
		// No body variable, and a raw entry filling a number, are shapes a template takes.
		{name: "ShapesATemplateTakes", yaml: valid + "parameters:\n  header_image: https://cdn.example.com/a.png\n  button_1_url: x\n  body_1: a\n  body_3: c\n" +
			"  raw: [{name: body_2, value: b}, {name: card_0_header_image, value: \"https://cdn.example.com/c.png\"}]\nid: again\n",
			want: []string{"13:1: id: given twice (first at line 1)"}},
		{name: "RawValueDoesNotParse", yaml: valid + "parameters:\n  raw:\n    - name: q\n      value: \"{{ .a\"\n", want: []string{"10:14: parameters.raw[0].value: a {{ has no closing }}"}},
		{name: "RawFlowValueRange", yaml: valid + "parameters:\n  raw: [{name: a, value: x}, {name: b, value: \"{{ range . }}{{ end }}\"}]\n", want: []string{"8:47: parameters.raw[1].value: {{ range . }} at column 10 of the template: {{range}} is not allowed"}},
		{name: "RawValueTooLong", yaml: valid + "parameters:\n  raw: [{name: a, value: " + strings.Repeat("r", 1025) + "}]\n", want: []string{"8:26: parameters.raw[0].value: raw value is 1025 characters, limit 1024 (on every row)"}},
		{name: "RawNameTwice", yaml: valid + "parameters:\n  raw: [{name: a, value: x}, {name: a, value: y}]\n", want: []string{`8:8: parameters.raw: raw[1]: "a" is listed twice`}},
		{name: "RawGivenTwice", yaml: valid + "parameters:\n  raw: []\n  raw: []\n", want: []string{"9:3: parameters.raw: given twice (first at line 8)"}},
		{name: "SecondDocument", yaml: valid + "---\nid: other\n", want: []string{"7:1: a second YAML document starts here"}},
		{name: "SecondDocumentWithOtherProblems", yaml: "id: Bad\n" + valid[len("id: spring-sale\n"):] + "---\n", want: []string{"1:5: id:", "7:1: a second YAML document starts here"}},
		{name: "SecondDocumentBroken", yaml: valid + "---\n: : [\n", want: []string{"8:1: a second YAML document, which does not parse either: "}},
		// Syntax errors at the line an editor shows: yaml leaves the first line out and puts
		// its parser's problems one line early.
		{name: "FenceOnTheFirstLine", yaml: "```yaml\n" + valid, want: []string{"1:1: found character that cannot start any token"}},
		{name: "UnclosedFlowMapping", yaml: "id: x\naudience:\n  file: a.csv\ntemplate: {name: x\nsender: y\n", want: []string{"4:1: did not find expected ',' or '}'"}},
		{name: "LeadingDocumentMarkerIsFine", yaml: "---\n" + valid + "---\nid: x\n", want: []string{"8:1: a second YAML document starts here"}},
		{name: "EmptyFile", yaml: "", want: []string{"1:1: file is empty"}},
		{name: "BlankLinesOnly", yaml: "\n\n  \n", want: []string{"1:1: file is empty"}},
		{
			name: "EveryProblemAtOnce",
			yaml: "id: Spring\ntemplate:\n  name: t\n  language: en\n  category: promo\naudience:\n  file: a.csv\n  default_region: usa\nsender: \"0415\"\n",
			want: []string{"1:5: id:", "5:13: template.category:", "8:19: audience.default_region:", "9:9: sender:"},
		},
		{
			name: "MissingEverything",
			yaml: "name: nothing here\n",
			want: []string{"1:1: id: is required", "1:1: template.name: is required", "1:1: template.language: is required", "1:1: audience.file: is required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := campaigns.Parse("c.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", d)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], "c.yaml:"+w) {
					t.Errorf("error %d = %q, want prefix %q", i, lines[i], "c.yaml:"+w)
				}
			}
		})
	}
}

// TestLanguageSuggestion checks that a language code written another way than Connectly's
// (a dash, the case of the parts) is refused with the spelling meant, and a word that is no
// code without a guess.
func TestLanguageSuggestion(t *testing.T) {
	t.Parallel()

	for lang, want := range map[string]string{
		"en-US":   `c.yaml:4:13: template.language: "en-US" is not a language code (e.g. en, en_US, pt_BR); did you mean "en_US"?`,
		"EN_us":   `c.yaml:4:13: template.language: "EN_us" is not a language code (e.g. en, en_US, pt_BR); did you mean "en_US"?`,
		"English": `c.yaml:4:13: template.language: "English" is not a language code (e.g. en, en_US, pt_BR)`,
		"es-419":  `c.yaml:4:13: template.language: "es-419" is not a language code (e.g. en, en_US, pt_BR)`,
	} {
		_, err := campaigns.Parse("c.yaml", []byte("id: x\ntemplate:\n  name: t\n  language: "+lang+"\naudience: {file: a.csv}\n"))
		if err == nil || err.Error() != want {
			t.Errorf("language %q: got %v\nwant %s", lang, err, want)
		}
	}
	for _, lang := range []string{"en", "en_US", "pt_BR", "fil", "zh_TW"} {
		if _, err := campaigns.Parse("c.yaml", []byte("id: x\ntemplate:\n  name: t\n  language: "+lang+"\naudience: {file: a.csv}\n")); err != nil {
			t.Errorf("language %q refused: %v", lang, err)
		}
	}
}

func TestFieldError(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		err  campaigns.FieldError
		want string
	}{
		{name: "WithPositionAndField", err: campaigns.FieldError{File: "c.yaml", Line: 3, Column: 5, Field: "id", Msg: "is required"}, want: "c.yaml:3:5: id: is required"},
		{name: "WithoutField", err: campaigns.FieldError{File: "c.yaml", Line: 1, Column: 1, Msg: "file is empty"}, want: "c.yaml:1:1: file is empty"},
		{name: "WithoutPosition", err: campaigns.FieldError{File: "c.yaml", Msg: "control characters are not allowed"}, want: "c.yaml: control characters are not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantEqual(t, "Error()", tt.want, tt.err.Error())
		})
	}
}

// TestParseAliasBomb parses a "billion laughs" file, whose aliases would expand to 9^9
// strings: Parse must refuse it without expanding them (measured in bytes allocated).
func TestParseAliasBomb(t *testing.T) { //nolint:paralleltest // measures the heap
	var b strings.Builder
	b.WriteString("x0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n")
	for i := 1; i < 10; i++ {
		b.WriteString(fmt.Sprintf("x%d: &a%d [", i, i))
		for j := range 9 {
			if j > 0 {
				b.WriteString(",")
			}
			b.WriteString(fmt.Sprintf("*a%d", i-1))
		}
		b.WriteString("]\n")
	}
	b.WriteString("id: bomb\ntemplate: {name: t, language: en}\naudience: {file: a.csv}\ntags: *a9\nparameters: {raw: *a9}\n")
	data := []byte(b.String())
	var err error
	bytes := allocated(3, func() { _, err = campaigns.Parse("c.yaml", data) })
	wantErrContains(t, err, "c.yaml:")
	t.Logf("Parse allocated %d bytes", bytes)
	if bytes > 4<<20 {
		t.Errorf("Parse allocated %d bytes, want under 4 MiB: aliases were expanded", bytes)
	}
}
