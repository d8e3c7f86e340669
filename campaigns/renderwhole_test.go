package campaigns_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

const rawHead = "id: r\ntemplate: {name: promo, language: en}\naudience: {file: a.csv}\nparameters:\n  body_1: '{{ .first_name }}'\n  raw:\n"

// rawEntries writes n parameters.raw entries whose value is value(i).
func rawEntries(n int, value func(i int) string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "    - {name: %q, value: %q}\n", fmt.Sprintf("r%d", i), value(i))
	}
	return b.String()
}

// The largest template a campaign may need passes: a carousel of 10 cards (media header,
// five body variables and two buttons each) and ten quick-reply buttons, as raw entries.
func TestRawParamsCarouselAccepted(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for card := range 10 {
		fmt.Fprintf(&b, "    - {name: card_%d_header_image, value: 'https://cdn.example.com/{{ .sku }}/%d.png'}\n", card, card)
		for v := 1; v <= 5; v++ {
			fmt.Fprintf(&b, "    - {name: card_%d_body_%d, value: '{{ .first_name | default \"there\" | title }}'}\n", card, v)
		}
		for btn := 1; btn <= 2; btn++ {
			fmt.Fprintf(&b, "    - {name: card_%d_button_%d_url, value: '{{ .sku | urlquery }}'}\n", card, btn)
		}
	}
	for btn := range 10 {
		fmt.Fprintf(&b, "    - {name: quick_reply_%d, value: 'qr-%d-{{ .first_name }}'}\n", btn, btn)
	}
	d, err := campaigns.Parse("c.yaml", []byte(rawHead+b.String()))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	r, err := campaigns.NewRenderer(d)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 500)
	if ps, err := r.Render(map[string]string{"first_name": "ana", "sku": long}); err != nil || len(ps) != 91 {
		t.Fatalf("Render: %d values, %v", len(ps), err)
	}
}

// More parameters.raw entries than a template can take are a problem, reported once, without
// checking each of them.
func TestRawParamsCountBounded(t *testing.T) {
	t.Parallel()
	src := rawHead + rawEntries(campaigns.MaxRawParams+1, func(int) string { return "{{ .first_name }}" })
	_, err := campaigns.Parse("c.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d raw entries, at most %d", campaigns.MaxRawParams+1, campaigns.MaxRawParams)) {
		t.Fatalf("Parse: %v", err)
	}
	// The same in an on_reply rule's template.
	src = onReplyHead + "on_reply:\n  - button: 'Yes'\n    template: {name: t}\n    parameters:\n      raw:\n" +
		strings.ReplaceAll(rawEntries(campaigns.MaxRawParams+1, func(int) string { return "x" }), "    - ", "        - ")
	if _, err := campaigns.Parse("c.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "raw entries, at most") {
		t.Fatalf("Parse on_reply: %v", err)
	}
	// A stored definition that skipped validation does not render.
	d := &campaigns.Definition{}
	for i := range campaigns.MaxRawParams + 1 {
		d.Parameters.Raw = append(d.Parameters.Raw, campaigns.RawParam{Name: fmt.Sprint(i), Value: "x"})
	}
	if _, err := campaigns.NewRenderer(d); err == nil {
		t.Fatal("NewRenderer accepted too many raw entries")
	}
}

// Templates each within the per-template bound are bounded together: many of the most
// costly kind ({{if eq .phone .b .b ...}}) are a problem, not tens of ms of CPU a row.
func TestRenderNodesBounded(t *testing.T) {
	t.Parallel()
	heavy := "{{if eq .phone" + strings.Repeat(" .b", 200) + "}}x{{end}}"
	src := rawHead + rawEntries(60, func(int) string { return heavy })
	_, err := campaigns.Parse("c.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "parts together, at most") {
		t.Fatalf("Parse: %v", err)
	}
	d := &campaigns.Definition{}
	for i := range 60 {
		d.Parameters.Raw = append(d.Parameters.Raw, campaigns.RawParam{Name: fmt.Sprint(i), Value: heavy})
	}
	if _, err := campaigns.NewRenderer(d); err == nil || !strings.Contains(err.Error(), "parts together") {
		t.Fatalf("NewRenderer: %v", err)
	}
}

// The values of one render are bounded together (one send task carries them): raw values
// each within their own limit but many of them are refused for the row.
func TestRenderBytesBounded(t *testing.T) {
	t.Parallel()
	d := &campaigns.Definition{}
	for i := range 200 {
		d.Parameters.Raw = append(d.Parameters.Raw, campaigns.RawParam{Name: fmt.Sprint(i), Value: "{{ .s }}"})
	}
	r, err := campaigns.NewRenderer(d)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := r.Render(map[string]string{"s": strings.Repeat("B", 1000)})
	if err == nil || !errors.Is(err, campaigns.ErrRender) || !strings.Contains(err.Error(), "bytes together") {
		t.Fatalf("Render: %d values, %v", len(ps), err)
	}
	if _, err := r.Render(map[string]string{"s": "short"}); err != nil {
		t.Fatalf("Render short values: %v", err)
	}
}
