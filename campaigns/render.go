package campaigns

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/template"

	"github.com/heraldmsg/herald/internal/connectly"
)

// funcs are the helpers available in parameter templates.
var funcs = template.FuncMap{
	"default": func(def string, v any) string {
		s, _ := v.(string)
		if strings.TrimSpace(s) == "" {
			return def
		}
		return s
	},
	"upper":    strings.ToUpper,
	"lower":    strings.ToLower,
	"title":    titleCase,
	"trim":     strings.TrimSpace,
	"urlquery": url.QueryEscape,
}

func titleCase(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		r := []rune(strings.ToLower(w))
		if len(r) > 0 {
			r[0] = []rune(strings.ToUpper(string(r[0])))[0]
		}
		words[i] = string(r)
	}
	return strings.Join(words, " ")
}

func parseParam(name, text string) (*template.Template, error) {
	t, err := template.New(name).Funcs(funcs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template: %s", strings.TrimPrefix(err.Error(), "template: "+name+":"))
	}
	return t, nil
}

// Renderer renders a definition's parameters for one audience row.
type Renderer struct {
	params []compiled
}

type compiled struct {
	name string
	tpl  *template.Template
	// raw parameters skip Herald's checks of names and values.
	raw bool
}

// NewRenderer compiles the definition's parameter templates, in request order.
func NewRenderer(d *Definition) (*Renderer, error) {
	r := &Renderer{}
	for name, text := range d.Parameters.Values {
		t, err := parseParam(name, text)
		if err != nil {
			return nil, fmt.Errorf("parameters.%s: %w", name, err)
		}
		r.params = append(r.params, compiled{name: name, tpl: t})
	}
	sort.Slice(r.params, func(i, j int) bool { return paramOrder(r.params[i].name) < paramOrder(r.params[j].name) })
	for i, rp := range d.Parameters.Raw {
		t, err := parseParam(rp.Name, rp.Value)
		if err != nil {
			return nil, fmt.Errorf("parameters.raw[%d]: %w", i, err)
		}
		r.params = append(r.params, compiled{name: rp.Name, tpl: t, raw: true})
	}
	return r, nil
}

// ErrRender is wrapped by Render when a row cannot produce valid parameters.
var ErrRender = errors.New("cannot render parameters")

// Render fills the parameters from a row's columns and checks WhatsApp's rules for them.
func (r *Renderer) Render(cols map[string]string) ([]connectly.Parameter, error) {
	out := make([]connectly.Parameter, 0, len(r.params))
	var sb strings.Builder
	for _, p := range r.params {
		sb.Reset()
		if err := p.tpl.Execute(&sb, cols); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrRender, p.name, err)
		}
		v := sb.String()
		if p.raw {
			out = append(out, connectly.Parameter{Name: p.name, Value: v})
			continue
		}
		if err := checkParam(p.name, v); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrRender, p.name, err)
		}
		out = append(out, connectly.Parameter{Name: p.name, Value: v})
	}
	return out, nil
}

// checkParam applies WhatsApp's rules for parameter values.
func checkParam(name, v string) error {
	if v == "" {
		return errors.New("value is empty")
	}
	switch {
	case strings.HasPrefix(name, "body_"):
		// A carriage return is a newline to WhatsApp too, and a CSV field can hold a lone one.
		if strings.ContainsAny(v, "\r\n\t") {
			return errors.New("body values may not contain newlines or tabs")
		}
		if strings.Contains(v, "     ") {
			return errors.New("body values may not contain more than four consecutive spaces")
		}
	case name == "header_text":
		if n := len([]rune(v)); n > 60 {
			return fmt.Errorf("header text is %d characters, limit 60", n)
		}
	case strings.HasPrefix(name, "header_"):
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("%q is not an absolute https URL", v)
		}
	}
	return nil
}
