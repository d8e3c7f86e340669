package campaigns_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
)

// newRenderer compiles params as a campaign's parameters.
func newRenderer(tb testing.TB, params map[string]string) *campaigns.Renderer {
	tb.Helper()
	r, err := campaigns.NewRenderer(&campaigns.Definition{Parameters: campaigns.Parameters{Values: params}})
	if err != nil {
		tb.Fatalf("NewRenderer: %v", err)
	}
	return r
}

func TestRenderHelpers(t *testing.T) {
	t.Parallel()

	cols := map[string]string{
		"name":  "  joão DA silva ",
		"first": "ana",
		"blank": "   ",
		"code":  "Spring 25",
		"query": "a b&c=d/é",
	}
	tests := []struct {
		name string
		tpl  string
		want string
	}{
		{name: "Plain", tpl: "{{.first}}", want: "ana"},
		{name: "Literal", tpl: "Hello!", want: "Hello!"},
		{name: "DefaultWhenMissing", tpl: `{{.nickname | default "there"}}`, want: "there"},
		{name: "DefaultWhenBlank", tpl: `{{.blank | default "there"}}`, want: "there"},
		{name: "DefaultKeepsValue", tpl: `{{.first | default "there"}}`, want: "ana"},
		{name: "DefaultAsCall", tpl: `{{default "friend" .nickname}}`, want: "friend"},
		{name: "Upper", tpl: "{{.code | upper}}", want: "SPRING 25"},
		{name: "Lower", tpl: "{{.code | lower}}", want: "spring 25"},
		{name: "Title", tpl: "{{.name | title}}", want: "João Da Silva"},
		{name: "Trim", tpl: "{{.name | trim}}", want: "joão DA silva"},
		{name: "URLQuery", tpl: "{{.query | urlquery}}", want: "a+b%26c%3Dd%2F%C3%A9"},
		{name: "Chained", tpl: `{{.nickname | default .first | title}}`, want: "Ana"},
		{name: "MixedText", tpl: "Hi {{.first | title}}, use {{.code | upper}}", want: "Hi Ana, use SPRING 25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := newRenderer(t, map[string]string{"body_1": tt.tpl}).Render(cols)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			wantEqual(t, "parameters", []connectly.Parameter{{Name: "body_1", Value: tt.want}}, got)
		})
	}
}

func TestRenderOrder(t *testing.T) {
	t.Parallel()

	params := map[string]string{}
	var want []connectly.Parameter
	for _, name := range []string{
		"header_text", "body_1", "body_2", "body_3", "body_4", "body_5", "body_6", "body_7", "body_8",
		"body_9", "body_10", "body_11", "body_12", "body_13", "body_14", "body_15", "button_1_url", "button_2_url",
	} {
		params[name] = name + "={{.v}}"
		want = append(want, connectly.Parameter{Name: name, Value: name + "=x"})
	}
	// Map iteration order changes between runs; every compile must give the same order.
	for range 20 {
		got, err := newRenderer(t, params).Render(map[string]string{"v": "x"})
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		wantEqual(t, "parameters", want, got)
	}

	t.Run("HeaderMediaFirst", func(t *testing.T) {
		t.Parallel()
		got, err := newRenderer(t, map[string]string{
			"button_1_url":    "{{.v}}",
			"body_10":         "ten",
			"body_2":          "two",
			"header_document": "https://cdn.example.com/{{.v}}.pdf",
		}).Render(map[string]string{"v": "x"})
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		names := make([]string, len(got))
		for i, p := range got {
			names[i] = p.Name
		}
		wantEqual(t, "order", []string{"header_document", "body_2", "body_10", "button_1_url"}, names)
	})

	t.Run("NoParameters", func(t *testing.T) {
		t.Parallel()
		got, err := newRenderer(t, nil).Render(map[string]string{"v": "x"})
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		wantEqual(t, "parameters", []connectly.Parameter{}, got)
	})
}

func TestRenderRules(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		param   string
		value   string
		wantErr string // "" when the value is accepted
	}{
		{name: "BodyPlain", param: "body_1", value: "Ana"},
		{name: "BodyFourSpaces", param: "body_1", value: "a    b"},
		{name: "BodyFiveSpaces", param: "body_1", value: "a     b", wantErr: "more than four consecutive spaces"},
		{name: "BodyNewline", param: "body_2", value: "line one\nline two", wantErr: "newlines or tabs"},
		{name: "BodyCarriageReturn", param: "body_2", value: "line one\rline two", wantErr: "newlines or tabs"},
		{name: "BodyTab", param: "body_15", value: "a\tb", wantErr: "newlines or tabs"},
		{name: "BodyEmpty", param: "body_1", value: "", wantErr: "value is empty"},
		{name: "BodyLong", param: "body_1", value: strings.Repeat("a", 1000)},
		{name: "HeaderTextSixty", param: "header_text", value: strings.Repeat("é", 60)},
		{name: "HeaderTextSixtyOne", param: "header_text", value: strings.Repeat("é", 61), wantErr: "header text is 61 characters, limit 60"},
		{name: "HeaderTextEmpty", param: "header_text", value: "", wantErr: "value is empty"},
		{name: "HeaderImageHTTPS", param: "header_image", value: "https://cdn.example.com/a.png"},
		{name: "HeaderImageHTTP", param: "header_image", value: "http://cdn.example.com/a.png", wantErr: "is not an absolute https URL"},
		{name: "HeaderImageRelative", param: "header_image", value: "/img/a.png", wantErr: "is not an absolute https URL"},
		{name: "HeaderImageNoHost", param: "header_image", value: "https:///a.png", wantErr: "is not an absolute https URL"},
		{name: "HeaderImageNotAURL", param: "header_image", value: "https://cdn.example.com/%zz", wantErr: "is not an absolute https URL"},
		{name: "HeaderVideoHTTP", param: "header_video", value: "ftp://cdn.example.com/a.mp4", wantErr: "is not an absolute https URL"},
		{name: "HeaderDocumentHTTPS", param: "header_document", value: "https://cdn.example.com/a.pdf"},
		{name: "ButtonSuffix", param: "button_1_url", value: "orders/12345"},
		{name: "ButtonEmpty", param: "button_2_url", value: "", wantErr: "value is empty"},
		// Connectly refuses white space in a button value (reference 2.2: a valid URL).
		{name: "ButtonURL", param: "button_1_url", value: "https://shop.example.com/o?id=12%2034&x=y+z"},
		{name: "ButtonSpace", param: "button_1_url", value: "summer sale", wantErr: "button URL values may not contain spaces, tabs or newlines"},
		{name: "ButtonTab", param: "button_2_url", value: "a\tb", wantErr: "button URL values may not contain spaces"},
		{name: "ButtonNewline", param: "button_2_url", value: "a\nb", wantErr: "button URL values may not contain spaces"},
		// A text header is held to the body's rule for a text variable.
		{name: "HeaderTextFourSpaces", param: "header_text", value: "a    b"},
		{name: "HeaderTextFiveSpaces", param: "header_text", value: "a     b", wantErr: "header text may not contain more than four consecutive spaces"},
		{name: "HeaderTextNewline", param: "header_text", value: "Hello\n", wantErr: "header text may not contain newlines or tabs"},
		{name: "HeaderTextTab", param: "header_text", value: "Hi\tAna", wantErr: "header text may not contain newlines or tabs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := newRenderer(t, map[string]string{tt.param: "{{.v}}"}).Render(map[string]string{"v": tt.value})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Render(%q): %v", tt.value, err)
				}
				wantEqual(t, "parameters", []connectly.Parameter{{Name: tt.param, Value: tt.value}}, got)
				return
			}
			wantErrIs(t, err, campaigns.ErrRender)
			wantErrContains(t, err, tt.param+": ", tt.wantErr)
			if got != nil {
				t.Errorf("parameters returned with the error: %v", got)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()

	t.Run("ExecutionErrorWrapsErrRender", func(t *testing.T) {
		t.Parallel()
		_, err := newRenderer(t, map[string]string{"body_1": "{{upper 1}}"}).Render(map[string]string{})
		wantErrIs(t, err, campaigns.ErrRender)
		wantErrContains(t, err, "body_1")
	})

	t.Run("MissingColumnRendersEmpty", func(t *testing.T) {
		t.Parallel()
		_, err := newRenderer(t, map[string]string{"body_1": "{{.nickname}}"}).Render(map[string]string{"name": "ana"})
		wantErrIs(t, err, campaigns.ErrRender)
		wantErrContains(t, err, "value is empty")
	})

	t.Run("FirstFailingParameterNamed", func(t *testing.T) {
		t.Parallel()
		r := newRenderer(t, map[string]string{"body_1": "{{.a}}", "body_2": "{{.b}}", "body_3": "{{.c}}"})
		_, err := r.Render(map[string]string{"a": "ok", "b": "x\ny", "c": ""})
		wantErrContains(t, err, "body_2: ")
	})

	t.Run("BadTemplate", func(t *testing.T) {
		t.Parallel()
		_, err := campaigns.NewRenderer(&campaigns.Definition{Parameters: campaigns.Parameters{Values: map[string]string{"body_1": "{{.a"}}})
		wantErrContains(t, err, "parameters.body_1: a {{ has no closing }}")
	})

	t.Run("RendererIsReusable", func(t *testing.T) {
		t.Parallel()
		r := newRenderer(t, map[string]string{"body_1": "{{.a}}"})
		if _, err := r.Render(map[string]string{"a": "x\ny"}); err == nil {
			t.Fatal("newline accepted")
		}
		got, err := r.Render(map[string]string{"a": "fine"})
		if err != nil {
			t.Fatalf("Render after a failed row: %v", err)
		}
		wantEqual(t, "parameters", []connectly.Parameter{{Name: "body_1", Value: "fine"}}, got)
	})
}
