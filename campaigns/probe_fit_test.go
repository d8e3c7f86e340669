package campaigns_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// probeCampaign is a template campaign with these parameters.
func probeCampaign(params string) string {
	return "id: probe\ntemplate:\n  name: t\n  language: en\naudience:\n  file: a.csv\nparameters:\n" + params
}

// A template that slices a column far and also writes another column is refused "on every
// row" only when no row can make it work: a row whose other columns are short and whose sliced
// column is just long enough renders within the limit, and sends.
func TestValidateLeavesLongColumnsToTheRows(t *testing.T) {
	t.Parallel()
	desc := strings.Repeat("d", 700)
	cases := []struct {
		name, params string
		row          map[string]string
		want         string
	}{
		{"BodySlice", "  body_1: \"{{ .title }}: {{ slice .desc 0 600 }}\"\n",
			map[string]string{"title": "Shoes", "desc": desc}, "Shoes: " + desc[:600]},
		{"HeaderSlice", "  header_text: \"{{ .first_name }}, {{ slice .promo 0 30 }}\"\n  body_1: x\n",
			map[string]string{"first_name": "Ana", "promo": strings.Repeat("p", 40)}, "Ana, " + strings.Repeat("p", 30)},
		// The column's length needs, through a variable, a with and a parenthesised pipe.
		{"ThroughVariable", "  body_1: \"{{ .title }}: {{ $d := .desc }}{{ slice $d 0 600 }}\"\n",
			map[string]string{"title": "Shoes", "desc": desc}, "Shoes: " + desc[:600]},
		{"ThroughWith", "  body_1: \"{{ .title }}: {{ with .desc }}{{ slice . 0 600 }}{{ end }}\"\n",
			map[string]string{"title": "Shoes", "desc": desc}, "Shoes: " + desc[:600]},
		{"ThroughPipe", "  body_1: \"{{ .title }}: {{ slice (.desc | upper) 0 600 }}\"\n",
			map[string]string{"title": "Shoes", "desc": desc}, "Shoes: " + strings.ToUpper(desc[:600])},
		{"Index", "  header_text: \"{{ .first_name }}, {{ index .code 40 }}{{ slice .promo 0 20 }}\"\n  body_1: x\n",
			map[string]string{"first_name": "Ana", "code": strings.Repeat("c", 41), "promo": strings.Repeat("p", 20)}, "Ana, 99" + strings.Repeat("p", 20)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := campaigns.Parse("c.yaml", []byte(probeCampaign(tc.params)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			r, err := campaigns.NewRenderer(d)
			if err != nil {
				t.Fatalf("NewRenderer: %v", err)
			}
			ps, err := r.Render(tc.row)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if ps[0].Value != tc.want {
				t.Fatalf("%s = %q, want %q", ps[0].Name, ps[0].Value, tc.want)
			}
		})
	}
}

// What fails on every row is still refused: a slice or its fixed text too long for the field
// whatever the columns hold.
func TestValidateStillRefusesTooLongOnEveryRow(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, params, want string }{
		// The sliced column is at least 30 characters, and written whole too: 61 or more.
		{"HeaderColumnAndItsSlice", "  header_text: \"{{ .d }} {{ slice .d 0 30 }}\"\n  body_1: x\n",
			"c.yaml:8:16: parameters.header_text: {{ slice .d 0 30 }} at column 13 of the template: index 30 is out of range (on every row)"},
		{"HeaderFixedTextAndSlice", "  header_text: \"" + strings.Repeat("h", 40) + "{{ .a }}{{ slice .d 0 30 }}\"\n  body_1: x\n",
			"c.yaml:8:16: parameters.header_text: {{ slice .d 0 30 }} at column 52 of the template: index 30 is out of range (on every row)"},
		{"HeaderSliceThroughVariable", "  header_text: \"{{ $d := .desc }}{{ slice $d 0 100 }}\"\n  body_1: x\n",
			"c.yaml:8:16: parameters.header_text: {{ slice $d 0 100 }} at column 21 of the template: index 100 is out of range (on every row)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.Parse("c.yaml", []byte(probeCampaign(tc.params)))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Parse error = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// The same for a session message: a text that slices one column far and writes another.
func TestCheckMessageLeavesLongColumnsToTheRows(t *testing.T) {
	t.Parallel()
	d, err := campaigns.Parse("s.yaml", []byte(sessionCampaign("  text: \"{{ .title }}: {{ slice .desc 0 3000 }}\"\n")))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	r, err := d.SessionRenderer()
	if err != nil {
		t.Fatal(err)
	}
	desc := strings.Repeat("d", 3500)
	c, err := r.Content(map[string]string{"title": "Shoes", "desc": desc})
	if err != nil {
		t.Fatalf("Content: %v", err)
	}
	if want := "Shoes: " + desc[:3000]; c.Text != want {
		t.Fatalf("text is %d characters, want %d", len(c.Text), len(want))
	}
	// A button whose column is written whole and sliced past the button's 20 characters fails
	// on every row.
	_, err = campaigns.Parse("b.yaml", []byte(sessionCampaign("  text: Pick\n  reply_buttons:\n    buttons:\n      - {id: a, text: \"{{ .x }}{{ slice .x 0 15 }}\"}\n")))
	want := "b.yaml:7:23: message.reply_buttons.buttons[0].text: {{ slice .x 0 15 }} at column 12 of the template: index 15 is out of range (on every row)"
	if err == nil || err.Error() != want {
		t.Fatalf("Parse error = %v\nwant %s", err, want)
	}
}
