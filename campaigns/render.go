package campaigns

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/heraldmsg/herald/internal/connectly"
)

// Parameter templates come from campaign files, which are untrusted: a template runs in a
// sandbox whose work and output are bounded whatever the template and the row hold.
//
//   - Only straight-line templates: text, actions, if/else, with, variables and the functions
//     in allowedFuncs. range (a loop needs no data to spin: {{range 100000000}}{{end}}),
//     define/template/block (nested calls multiply: two calls a level give 2^n runs) and call
//     are refused, so each node runs at most once.
//   - A template's source is at most MaxTemplateBytes and maxTemplateNodes parse nodes.
//   - Herald's helpers refuse inputs over maxHelperBytes, so no chain of them can grow a value
//     (urlquery triples "%" each time) past a fixed size; the built-ins kept return one of
//     their arguments, a part of one or a number.
//   - The helpers of one render (a row's parameters, or a message's fields) process at most
//     maxRenderWork bytes together (workMeter): 512 parts of 16 KiB each would otherwise be 8
//     MiB of work a parameter, and 15 parameters a row.
//   - The output goes to a writer that stops the run once it holds more bytes than the
//     parameter's limit could need (4 bytes a character).
//   - A render is bounded as a whole, not only template by template: at most MaxRawParams
//     parameters.raw entries, maxRenderNodes parse nodes in all of its templates, and
//     maxRenderBytes of values rendered together (what one send task carries).
//
// A run therefore does at most maxTemplateNodes steps on values of bounded size, and a render
// at most maxRenderNodes steps and a bounded amount of helper work, without a clock: the bound
// does not depend on how busy the machine is.
const (
	// MaxTemplateBytes is the longest parameter template accepted, in bytes of source: the
	// longest value WhatsApp takes (a session text of 4,096 characters) at 4 bytes a
	// character, so a text in any script fits as written.
	MaxTemplateBytes = 4 * 4096
	// maxTemplateNodes bounds the parse nodes (text, actions, arguments) of one template.
	maxTemplateNodes = 512
	// maxHelperBytes is the longest value a helper (upper, urlquery, ...) accepts.
	maxHelperBytes = 16 << 10
	// maxRenderWork is the most bytes the helpers of one render process together: eight
	// helper calls on the longest input a helper takes, far more than real templates need
	// (a few helpers on values of some dozens of bytes).
	maxRenderWork = 128 << 10
	// MaxRawParams bounds the parameters.raw entries of one template. Raw entries serve the
	// kinds Herald does not name (quick-reply buttons, carousel cards; reference 2.2): a
	// carousel has at most 10 cards, each a media header, its body's variables and up to 2
	// buttons, and a template at most 10 buttons, well under 200 values in all. Without a
	// bound, a 1 MB file held 645 templates a render and cost 84 ms of CPU a row.
	MaxRawParams = 256
	// maxRenderNodes bounds the parse nodes of all the templates of one render (a row's
	// parameters, named and raw): 16 templates at the per-template limit, and some 30 parts
	// for each of MaxRawParams entries, where a real value takes a handful ({{ .name |
	// default "there" | title }} is 6). At about 0.25 µs a node, a row costs at most ~2 ms.
	maxRenderNodes = 8192
	// maxRenderBytes bounds the values of one render together, in bytes: what one send task
	// carries. The largest real template (a 1,024-character body, two 2,000-character URL
	// buttons and ten carousel cards with a media URL and two buttons each) is under 70,000
	// characters; without a bound, aliased raw values put 33 MB into every task.
	maxRenderBytes = 128 << 10
)

// Rendered value limits, in characters (Unicode code points).
const (
	// MaxHeaderText is WhatsApp's limit for a text header (60 characters).
	MaxHeaderText = 60
	// MaxBodyText is WhatsApp's limit for a template body (1,024 characters), which a body
	// variable's value is part of.
	MaxBodyText = 1024
	// MaxURL is WhatsApp's limit for a URL button (2,000 characters); media header URLs,
	// whose limit is not documented, get the same.
	MaxURL = 2000
	// MaxRawValue bounds a parameters.raw value; WhatsApp documents no single limit for the
	// kinds raw serves (quick replies, carousel cards), so this is Herald's.
	MaxRawValue = 1024
)

// valueLimit is the longest rendered value of a parameter and what the value is, for errors.
func valueLimit(name string, raw bool) (what string, limit int) {
	switch {
	case raw:
		return "raw value", MaxRawValue
	case name == "header_text":
		return "header text", MaxHeaderText
	case strings.HasPrefix(name, "body_"):
		return "body text", MaxBodyText
	case strings.HasPrefix(name, "button_"):
		return "button URL", MaxURL
	case strings.HasPrefix(name, "header_"):
		return "media URL", MaxURL
	}
	return "value", MaxRawValue
}

// funcs are the helpers available in parameter templates, as templates are compiled (and run
// by validation, on its sample rows): their work is not metered. Renders of audience rows
// run copies of the templates whose helpers charge a workMeter (meteredSet).
var funcs = helpers(nil)

// helpers returns the helpers of parameter templates, charging their work to m (nil: none).
func helpers(m *workMeter) template.FuncMap {
	return template.FuncMap{
		"default": func(def string, v any) (string, error) {
			s, _ := v.(string)
			t := strings.TrimSpace(s)
			// TrimSpace reads the spaces around the value, and a byte on each side of them.
			if err := m.charge("default", len(s)-len(t)+2); err != nil {
				return "", err
			}
			if t == "" {
				return def, nil
			}
			return s, nil
		},
		"upper":    bounded(m, "upper", strings.ToUpper),
		"lower":    bounded(m, "lower", strings.ToLower),
		"title":    bounded(m, "title", titleCase),
		"trim":     bounded(m, "trim", strings.TrimSpace),
		"urlquery": bounded(m, "urlquery", url.QueryEscape),
	}
}

// bounded wraps a string helper so that it refuses inputs over maxHelperBytes and charges its
// input to m.
func bounded(m *workMeter, name string, f func(string) string) func(string) (string, error) {
	return func(s string) (string, error) {
		if len(s) > maxHelperBytes {
			return "", fmt.Errorf("%s: input is %d bytes, limit %d", name, len(s), maxHelperBytes)
		}
		if err := m.charge(name, len(s)); err != nil {
			return "", err
		}
		return f(s), nil
	}
}

// workMeter counts the bytes the helpers of one render process (see maxRenderWork).
type workMeter struct {
	used int
}

// charge counts n bytes of a helper's work, and fails once the render's work passes
// maxRenderWork. A nil meter counts nothing.
func (m *workMeter) charge(name string, n int) error {
	if m == nil {
		return nil
	}
	m.used += n
	if m.used > maxRenderWork {
		return fmt.Errorf("%s: helpers may process at most %d bytes for one row, this row needs more", name, maxRenderWork)
	}
	return nil
}

// meteredSet lends out copies of a renderer's templates whose helpers charge one workMeter:
// a render takes a copy with a fresh meter, runs its templates on the copy and gives it
// back. Copies share the parse trees; each is used by one render at a time.
type meteredSet struct {
	tpls []*template.Template
	pool sync.Pool
}

// meteredCopy is one copy of a meteredSet's templates, and their meter.
type meteredCopy struct {
	meter workMeter
	// of maps each of the set's templates to its copy.
	of map[*template.Template]*template.Template
}

func newMeteredSet(tpls []*template.Template) *meteredSet {
	s := &meteredSet{tpls: tpls}
	s.pool.New = func() any {
		c := &meteredCopy{of: make(map[*template.Template]*template.Template, len(s.tpls))}
		fm := helpers(&c.meter)
		for _, t := range s.tpls {
			c.of[t] = template.Must(t.Clone()).Funcs(fm)
		}
		return c
	}
	return s
}

// get returns a copy whose meter is zero; put gives it back.
func (s *meteredSet) get() *meteredCopy {
	c := s.pool.Get().(*meteredCopy)
	c.meter = workMeter{}
	return c
}

func (s *meteredSet) put(c *meteredCopy) { s.pool.Put(c) }

// allowedFuncs are the functions a parameter template may call: Herald's helpers and the
// built-ins that only compare, count or pick a part of a value.
var allowedFuncs = func() map[string]bool {
	m := map[string]bool{}
	for name := range funcs {
		m[name] = true
	}
	for _, name := range []string{"and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice"} {
		m[name] = true
	}
	return m
}()

var allowedList = func() string {
	names := make([]string, 0, len(allowedFuncs))
	for name := range allowedFuncs {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}()

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

// parseParam compiles one parameter template and checks that it stays inside the sandbox.
// A text that does not parse, or that leaves the sandbox, is said in plain words
// (templateProblem).
func parseParam(name, text string) (*template.Template, error) {
	if len(text) > MaxTemplateBytes {
		return nil, fmt.Errorf("template is %d bytes, limit %d", len(text), MaxTemplateBytes)
	}
	t, err := template.New(name).Funcs(funcs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, templateProblem(name, text, err)
	}
	for _, sub := range t.Templates() {
		if sub.Name() != name {
			return nil, errors.New("{{define}}, {{block}} and {{template}} are not allowed in a parameter")
		}
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return t, nil
	}
	var c sandboxCheck
	c.walk(t.Tree.Root)
	if c.err != nil {
		return nil, templateProblem(name, text, c.err)
	}
	return t, nil
}

// sandboxCheck walks a parse tree and keeps the first node outside the sandbox, as a
// *sandboxError (its place in the text and what is not allowed).
type sandboxCheck struct {
	nodes int
	err   error
}

func (c *sandboxCheck) fail(n parse.Node, format string, args ...any) {
	if c.err != nil {
		return
	}
	c.err = &sandboxError{pos: n.Position(), msg: fmt.Sprintf(format, args...)}
}

func (c *sandboxCheck) walk(n parse.Node) {
	if c.err != nil || n == nil {
		return
	}
	c.nodes++
	if c.nodes > maxTemplateNodes {
		c.fail(n, "template is too complex: more than %d parts", maxTemplateNodes)
		return
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, child := range n.Nodes {
			c.walk(child)
		}
	case *parse.TextNode, *parse.CommentNode, *parse.FieldNode, *parse.VariableNode, *parse.DotNode,
		*parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode:
	case *parse.ActionNode:
		c.walk(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, v := range n.Decl {
			c.walk(v)
		}
		for _, cmd := range n.Cmds {
			c.walk(cmd)
		}
	case *parse.CommandNode:
		for _, arg := range n.Args {
			c.walk(arg)
		}
	case *parse.IdentifierNode:
		if !allowedFuncs[n.Ident] {
			c.fail(n, "function %q is not allowed in a parameter (allowed: %s)", n.Ident, allowedList)
		}
	case *parse.ChainNode:
		c.walk(n.Node)
	case *parse.IfNode:
		c.walkBranch(&n.BranchNode)
	case *parse.WithNode:
		c.walkBranch(&n.BranchNode)
	case *parse.RangeNode:
		c.fail(n, "{{range}} is not allowed in a parameter: a parameter renders one value, without loops")
	case *parse.TemplateNode:
		c.fail(n, "{{define}}, {{block}} and {{template}} are not allowed in a parameter")
	default:
		c.fail(n, "%s is not allowed in a parameter", n)
	}
}

func (c *sandboxCheck) walkBranch(b *parse.BranchNode) {
	c.walk(b.Pipe)
	if b.List != nil {
		c.walk(b.List)
	}
	if b.ElseList != nil {
		c.walk(b.ElseList)
	}
}

// Renderer renders a definition's parameters for one audience row. It is safe for
// concurrent use.
type Renderer struct {
	params []compiled
	// metered runs params with their helpers' work bounded per render.
	metered *meteredSet
	// session renders a session campaign's message (nil for a template campaign); params are
	// then its fallback template's.
	session *SessionRenderer
}

type compiled struct {
	name string
	tpl  *template.Template
	// text is tpl's source, which a failed run's error quotes (templateProblem).
	text string
	// raw parameters skip Herald's checks of names and values, but not the length limit.
	raw bool
	// plain, when set, is tpl as text and columns (plainParts), which Render writes without
	// running the template.
	plain []plainPart
}

// plainPart is a piece of a template made only of text and column values ({{ .name }}):
// its text, or, when col is set, the column's value.
type plainPart struct {
	text string
	col  bool
}

// plainParts returns t as text and column values when that is all it holds (the most common
// parameter, "{{ .name }}"), else nil. Executing such a template writes each text and each
// column's value, "" for a column the row lacks (missingkey=zero): so does Render with them.
func plainParts(t *template.Template) []plainPart {
	if t.Tree == nil || t.Tree.Root == nil || len(t.Tree.Root.Nodes) == 0 {
		return nil
	}
	parts := make([]plainPart, 0, len(t.Tree.Root.Nodes))
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			parts = append(parts, plainPart{text: string(n.Text)})
		case *parse.ActionNode:
			p := n.Pipe
			if p == nil || len(p.Decl) > 0 || p.IsAssign || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
				return nil
			}
			f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 {
				return nil
			}
			parts = append(parts, plainPart{text: f.Ident[0], col: true})
		default:
			return nil
		}
	}
	return parts
}

// checkRenderSize checks the bounds of a render as a whole that do not depend on the row:
// the number of raw entries (MaxRawParams), the parse nodes of all the templates of known
// names (maxRenderNodes; nodes gives a template's, 0 for one that does not compile) and the
// bytes they write on every row (maxRenderBytes, counted as Render counts them: each name and
// its value; a template's fixed text is the least its value holds).
func checkRenderSize(p Parameters, nodes func(name, text string) int) error {
	if len(p.Raw) > MaxRawParams {
		return fmt.Errorf("%d raw entries, at most %d", len(p.Raw), MaxRawParams)
	}
	total, fixed := 0, 0
	for name, text := range p.Values {
		if paramOrder(name) >= 0 { // an unknown name is a problem of its own, and never sent
			total += nodes(name, text)
			fixed += len(name) + fixedBytes(name, text)
		}
	}
	for _, rp := range p.Raw {
		total += nodes(rp.Name, rp.Value)
		fixed += len(rp.Name) + fixedBytes(rp.Name, rp.Value)
	}
	if total > maxRenderNodes {
		return fmt.Errorf("the templates have %d parts together, at most %d for one render", total, maxRenderNodes)
	}
	if fixed > maxRenderBytes {
		return fmt.Errorf("the parameters render to more than %d bytes together (their names and fixed text are %d bytes) (on every row)", maxRenderBytes, fixed)
	}
	return nil
}

// fixedBytes is the number of bytes a parameter template writes whatever the row holds: its
// top-level text (not inside if or with), all of a constant; 0 when it does not compile.
func fixedBytes(name, text string) int {
	if !strings.Contains(text, "{{") {
		return len(text)
	}
	t, err := parseParam(name, text)
	if err != nil || t.Tree == nil || t.Tree.Root == nil {
		return 0
	}
	n := 0
	for _, node := range t.Tree.Root.Nodes {
		if tn, ok := node.(*parse.TextNode); ok {
			n += len(tn.Text)
		}
	}
	return n
}

// paramNodes is the number of parse nodes of a parameter template, 0 when it does not compile
// (that is reported on its own).
func paramNodes(name, text string) int {
	t, err := parseParam(name, text)
	if err != nil {
		return 0
	}
	return templateNodes(t)
}

// templateNodes counts a compiled template's parse nodes as the sandbox does.
func templateNodes(t *template.Template) int {
	if t.Tree == nil || t.Tree.Root == nil {
		return 0
	}
	var c sandboxCheck
	c.walk(t.Tree.Root)
	return c.nodes
}

// NewRenderer compiles the definition's parameter templates, in request order, and a session
// campaign's message. Parameters over a render's bounds (checkRenderSize) are an error.
func NewRenderer(d *Definition) (*Renderer, error) {
	r := &Renderer{}
	if len(d.Parameters.Raw) > MaxRawParams {
		return nil, fmt.Errorf("parameters.raw: %d entries, at most %d", len(d.Parameters.Raw), MaxRawParams)
	}
	for name, text := range d.Parameters.Values {
		t, err := parseParam(name, text)
		if err != nil {
			return nil, fmt.Errorf("parameters.%s: %w", name, err)
		}
		r.params = append(r.params, compiled{name: name, tpl: t, text: text, plain: plainParts(t)})
	}
	sort.Slice(r.params, func(i, j int) bool { return paramOrder(r.params[i].name) < paramOrder(r.params[j].name) })
	for i, rp := range d.Parameters.Raw {
		t, err := parseParam(rp.Name, rp.Value)
		if err != nil {
			return nil, fmt.Errorf("parameters.raw[%d]: %w", i, err)
		}
		r.params = append(r.params, compiled{name: rp.Name, tpl: t, text: rp.Value, raw: true, plain: plainParts(t)})
	}
	tpls := make([]*template.Template, len(r.params))
	nodes := 0
	for i, p := range r.params {
		tpls[i] = p.tpl
		nodes += templateNodes(p.tpl)
	}
	if nodes > maxRenderNodes {
		return nil, fmt.Errorf("parameters: the templates have %d parts together, at most %d for one render", nodes, maxRenderNodes)
	}
	r.metered = newMeteredSet(tpls)
	if d.IsSession() {
		s, err := d.SessionRenderer()
		if err != nil {
			return nil, err
		}
		r.session = s
	}
	return r, nil
}

// reads lists the row columns the renderer's templates read (rowReads), and reports whether
// one of them reads the row as a whole or a column by a computed name (then any column may
// count).
func (r *Renderer) reads() (names []string, dynamic bool) {
	add := func(t *template.Template) {
		n, d := rowReads(t.Tree)
		names = append(names, n...)
		dynamic = dynamic || d
	}
	for _, p := range r.params {
		add(p.tpl)
	}
	if r.session != nil {
		for _, t := range r.session.fields {
			add(t)
		}
	}
	return names, dynamic
}

// ErrRender is wrapped by Render when a row cannot produce valid parameters.
var ErrRender = errors.New("cannot render parameters")

// Render fills the parameters from a row's columns and checks WhatsApp's rules for them.
// Errors name the parameter and the rule, never the value (it comes from the audience). The
// helpers of all the parameters process at most maxRenderWork bytes together, and the values
// are at most maxRenderBytes together.
func (r *Renderer) Render(cols map[string]string) ([]connectly.Parameter, error) {
	c := r.metered.get()
	defer r.metered.put(c)
	out := make([]connectly.Parameter, 0, len(r.params))
	size := 0
	for _, p := range r.params {
		var v string
		var err error
		if p.plain != nil {
			v, err = p.renderPlain(cols)
		} else {
			v, err = p.renderOn(c.of[p.tpl], cols)
		}
		if err == nil && !p.raw {
			err = checkParam(p.name, v)
		}
		if size += len(p.name) + len(v); err == nil && size > maxRenderBytes {
			err = fmt.Errorf("the parameters render to more than %d bytes together", maxRenderBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrRender, p.name, err)
		}
		out = append(out, connectly.Parameter{Name: p.name, Value: v})
	}
	return out, nil
}

// errTooLong stops a template run whose output passed its cap.
var errTooLong = errors.New("output over the cap")

// capWriter collects a template's output and fails the write that would pass max bytes.
type capWriter struct {
	buf []byte
	max int
}

func (w *capWriter) Write(p []byte) (int, error) {
	if len(p) > w.max-len(w.buf) {
		return 0, errTooLong
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// render runs the template on a row in the sandbox and checks the value's length.
func (p compiled) render(cols map[string]string) (string, error) {
	return p.renderOn(p.tpl, cols)
}

// renderOn is render running t, p's template or a metered copy of it.
func (p compiled) renderOn(t *template.Template, cols map[string]string) (string, error) {
	what, limit := valueLimit(p.name, p.raw)
	// A character is at most 4 bytes: output past 4*limit bytes is too long whatever it is.
	w := &capWriter{max: 4 * limit}
	if err := t.Execute(w, cols); err != nil {
		if errors.Is(err, errTooLong) {
			return "", fmt.Errorf("%s is longer than %d characters", what, limit)
		}
		return "", templateProblem(p.name, p.text, err)
	}
	if n := utf8.RuneCount(w.buf); n > limit {
		return "", fmt.Errorf("%s is %d characters, limit %d", what, n, limit)
	}
	return string(w.buf), nil
}

// renderPlain is renderOn for a template of text and column values (p.plain): the same value
// and the same length checks, without running the template.
func (p compiled) renderPlain(cols map[string]string) (string, error) {
	what, limit := valueLimit(p.name, p.raw)
	if len(p.plain) == 1 && p.plain[0].col {
		v := cols[p.plain[0].text]
		if len(v) > 4*limit {
			return "", fmt.Errorf("%s is longer than %d characters", what, limit)
		}
		if n := utf8.RuneCountInString(v); n > limit {
			return "", fmt.Errorf("%s is %d characters, limit %d", what, n, limit)
		}
		return v, nil
	}
	size := 0
	for _, part := range p.plain {
		if part.col {
			size += len(cols[part.text])
		} else {
			size += len(part.text)
		}
	}
	if size > 4*limit {
		return "", fmt.Errorf("%s is longer than %d characters", what, limit)
	}
	var b strings.Builder
	b.Grow(size)
	for _, part := range p.plain {
		if part.col {
			b.WriteString(cols[part.text])
		} else {
			b.WriteString(part.text)
		}
	}
	v := b.String()
	if n := utf8.RuneCountInString(v); n > limit {
		return "", fmt.Errorf("%s is %d characters, limit %d", what, n, limit)
	}
	return v, nil
}

// checkParam applies WhatsApp's rules for parameter values. Its errors never quote the value.
func checkParam(name, v string) error {
	if v == "" {
		return errors.New("value is empty")
	}
	switch {
	case strings.HasPrefix(name, "body_"), name == "header_text":
		// WhatsApp's rule for a text variable, the header's as the body's. A carriage return
		// is a newline to WhatsApp too, and a CSV field can hold a lone one.
		what := "body values"
		if name == "header_text" {
			what = "header text"
		}
		if strings.ContainsAny(v, "\r\n\t") {
			return fmt.Errorf("%s may not contain newlines or tabs", what)
		}
		if strings.Contains(v, "     ") {
			return fmt.Errorf("%s may not contain more than four consecutive spaces", what)
		}
	case strings.HasPrefix(name, "button_"):
		// "The value must be a valid URL" (reference 2.2), or the suffix of one: Connectly
		// refuses a value with white space (ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID).
		if strings.ContainsAny(v, buttonSpace) {
			return errors.New("button URL values may not contain spaces, tabs or newlines (escape a column with urlquery: {{ .code | urlquery }})")
		}
	case strings.HasPrefix(name, "header_"):
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return errors.New("value is not an absolute https URL")
		}
	}
	return nil
}

// buttonSpace are the characters a button URL value may not hold: those Connectly refuses in
// one.
const buttonSpace = " \t\r\n"

// probeValue is the value every column referenced by a template holds in the validation
// sample row: long enough that slicing a few characters off a column works on it. A template
// that indexes further gets a longer one (longProbe).
var probeValue = strings.Repeat("sample", 8)

// maxProbeBytes bounds the long sample value: a column holds no more than a record
// (campaigns.max_record_bytes, by default this).
const maxProbeBytes = DefaultMaxRecordBytes

// longProbe is the long sample value for templates: probeValue, or longer than the largest
// whole number they write (as in {{ slice .desc 0 100 }}, which fails on any shorter value),
// within maxProbeBytes. A template that fails on the empty row, on this one and on the fitted
// row (fitProbe) fails on every row; with only probeValue, a slice past its 48 characters
// looked so when every real value is long enough.
func longProbe(trees ...*parse.Tree) string {
	n := len(probeValue)
	for _, t := range trees {
		if t == nil {
			continue
		}
		inspect(t.Root, func(node parse.Node) bool {
			if num, ok := node.(*parse.NumberNode); ok && num.IsInt && num.Int64 >= int64(n) {
				n = int(min(num.Int64+1, maxProbeBytes))
			}
			return true
		})
	}
	if n == len(probeValue) {
		return probeValue
	}
	return strings.Repeat("sample", n/len("sample")+1)[:n]
}

// fitProbe is the sample value of a column on the fitted validation row: need characters of
// sample text, the length the template's slices and indexes of that column need
// (columnNeeds), or tag (which keeps apart the values of columns that need less; it may be
// empty, and is then one character) when it is at least that long. Unlike the long row's,
// where every column is long, the fitted row's values are as short as the template lets them
// be: a template that writes one column and slices another far ("{{ .title }}: {{ slice .desc
// 0 600 }}") fits its field there as it does on a real row with a short title. The values
// longer than their tag are prefixes of one shared text: a message whose columns are sliced
// far costs no memory a column (the short row keeps the columns apart).
func fitProbe(need int, tag string) string {
	need = min(need, maxProbeBytes)
	if len(tag) >= max(need, 1) {
		return tag
	}
	return fitSample()[:max(need, 1)]
}

// fitSample is the text fitProbe's values are prefixes of: maxProbeBytes of sample text.
var fitSample = sync.OnceValue(func() string {
	return strings.Repeat("sample", maxProbeBytes/len("sample")+1)[:maxProbeBytes]
})

// columnNeeds maps each column the templates slice or index to the length its value needs for
// those calls to work: the largest whole number written in a slice call that reads it
// ({{ slice .desc 0 600 }}: 600), one more in an index call ({{ index .code 40 }}: 41). A
// column reaches a call as an argument, inside a parenthesised pipe (slice (.desc | upper) 0
// 600), piped into it, through a variable ($d := .desc) or as the dot of a with (with .desc:
// slice . 0 600). The numbers are capped at maxProbeBytes (fitProbe).
//
// Variables belong to their template: each tree is scanned on its own. A variable may be set
// from one declared after it ({{ $a = $b }}): a tree is scanned again until its variables'
// columns settle, at most maxNeedPasses times; past that the needs are left as found, which
// only makes the fitted row shorter (a template that needs more fails on it, as it would
// without the fitted row).
func columnNeeds(trees ...*parse.Tree) map[string]int {
	needs, _ := scanNeeds(trees...)
	return needs
}

// maxNeedPasses bounds the scans of one template tree in columnNeeds. A variable set from
// one declared before it settles in the first pass; the second finds nothing new.
const maxNeedPasses = 8

// scanNeeds is columnNeeds, with the work it did: the nodes walked and the columns read
// through variables and dot (what its bound is about).
func scanNeeds(trees ...*parse.Tree) (map[string]int, int) {
	needs := map[string]int{}
	work := 0
	for _, t := range trees {
		if t == nil || t.Root == nil {
			continue
		}
		s := &needScan{vars: map[string]map[string]bool{}, needs: needs}
		for range maxNeedPasses {
			before := s.varReads
			s.walk(t.Root, nil)
			if s.varReads == before {
				break
			}
		}
		work += s.work
	}
	return needs, work
}

// needScan is columnNeeds' walk of one tree: the columns each of its variables may hold, and
// the needs found.
type needScan struct {
	vars     map[string]map[string]bool
	varReads int // how many (variable, column) pairs vars holds
	needs    map[string]int
	work     int // nodes walked and columns read, for tests
}

// reads adds to out the columns the nodes under n read, dot standing for the columns in dot.
// A variable's columns, and dot's, are added once a call of reads however often they appear.
func (s *needScan) reads(out map[string]bool, n parse.Node, dot []string) {
	var seenVars map[string]bool
	dotDone := false
	inspect(n, func(n parse.Node) bool {
		s.work++
		switch n := n.(type) {
		case *parse.FieldNode:
			out[n.Ident[0]] = true
		case *parse.DotNode:
			if !dotDone {
				dotDone = true
				s.work += len(dot)
				for _, col := range dot {
					out[col] = true
				}
			}
		case *parse.StringNode:
			out[n.Text] = true
		case *parse.VariableNode:
			if n.Ident[0] != "$" {
				if seenVars[n.Ident[0]] {
					break
				}
				if seenVars == nil {
					seenVars = map[string]bool{}
				}
				seenVars[n.Ident[0]] = true
				s.work += len(s.vars[n.Ident[0]])
				for col := range s.vars[n.Ident[0]] {
					out[col] = true
				}
			} else if len(n.Ident) > 1 {
				out[n.Ident[1]] = true
			}
		}
		return true
	})
}

// readList is reads of n as a sorted list (dot of a with).
func (s *needScan) readList(n parse.Node, dot []string) []string {
	set := map[string]bool{}
	s.reads(set, n, dot)
	out := make([]string, 0, len(set))
	for col := range set {
		out = append(out, col)
	}
	sort.Strings(out)
	return out
}

// walk scans n, dot standing for the columns in dot (none outside a with).
func (s *needScan) walk(n parse.Node, dot []string) {
	s.work++
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			s.walk(c, dot)
		}
	case *parse.ActionNode:
		s.walk(n.Pipe, dot)
	case *parse.IfNode:
		s.walk(n.Pipe, dot)
		s.walk(n.List, dot)
		s.walk(n.ElseList, dot)
	case *parse.WithNode:
		s.walk(n.Pipe, dot)
		s.walk(n.List, s.readList(n.Pipe, dot))
		s.walk(n.ElseList, dot)
	case *parse.ChainNode:
		s.walk(n.Node, dot)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		if len(n.Decl) > 0 {
			cols := map[string]bool{}
			for _, c := range n.Cmds {
				s.reads(cols, c, dot)
			}
			for _, v := range n.Decl {
				name := v.Ident[0]
				if s.vars[name] == nil {
					s.vars[name] = map[string]bool{}
				}
				s.work += len(cols)
				for col := range cols {
					if !s.vars[name][col] {
						s.vars[name][col] = true
						s.varReads++
					}
				}
			}
		}
		// piped holds what the commands up to read (reads of a prefix of the pipe), so a
		// pipe of many calls reads each command once.
		var piped map[string]bool
		read := 0
		for i, c := range n.Cmds {
			if need := callNeed(c); need > 0 {
				// The call's arguments, and what the commands before it pipe into it.
				if piped == nil {
					piped = map[string]bool{}
				}
				for ; read <= i; read++ {
					s.reads(piped, n.Cmds[read], dot)
				}
				s.work += len(piped)
				for col := range piped {
					s.needs[col] = max(s.needs[col], need)
				}
			}
			for _, a := range c.Args {
				s.walk(a, dot)
			}
		}
	}
}

// callNeed is the length a slice or index call c needs of what it slices or indexes: its
// largest whole-number argument, one more for index; 0 for any other command.
func callNeed(c *parse.CommandNode) int {
	if len(c.Args) == 0 {
		return 0
	}
	fn, ok := c.Args[0].(*parse.IdentifierNode)
	if !ok || (fn.Ident != "slice" && fn.Ident != "index") {
		return 0
	}
	n := int64(-1)
	for _, a := range c.Args[1:] {
		if num, ok := a.(*parse.NumberNode); ok && num.IsInt && num.Int64 > n {
			n = num.Int64
		}
	}
	if n < 0 {
		return 0
	}
	if fn.Ident == "index" {
		n++
	}
	return int(min(n, maxProbeBytes))
}

// inspect calls f for n and then, depth first, for each node under it of the kinds a
// parameter may hold (the sandbox allows no range, template or block), as go/ast.Inspect does
// for Go: f returning false skips the node's children. A nil list or pipe is not visited.
func inspect(n parse.Node, f func(parse.Node) bool) {
	switch n := n.(type) {
	case nil:
		return
	case *parse.ListNode:
		if n == nil {
			return
		}
	case *parse.PipeNode:
		if n == nil {
			return
		}
	}
	if !f(n) {
		return
	}
	switch n := n.(type) {
	case *parse.ListNode:
		inspectAll(n.Nodes, f)
	case *parse.ActionNode:
		inspect(n.Pipe, f)
	case *parse.PipeNode:
		inspectAll(n.Decl, f)
		inspectAll(n.Cmds, f)
	case *parse.CommandNode:
		inspectAll(n.Args, f)
	case *parse.ChainNode:
		inspect(n.Node, f)
	case *parse.IfNode:
		inspectBranch(&n.BranchNode, f)
	case *parse.WithNode:
		inspectBranch(&n.BranchNode, f)
	}
}

// inspectAll is inspect of each node of a list of children, in order.
func inspectAll[N parse.Node](ns []N, f func(parse.Node) bool) {
	for _, n := range ns {
		inspect(n, f)
	}
}

// inspectBranch is inspect of an if's or a with's pipe and lists.
func inspectBranch(b *parse.BranchNode, f func(parse.Node) bool) {
	inspect(b.Pipe, f)
	inspect(b.List, f)
	inspect(b.ElseList, f)
}

// checkTemplate is validation's view of one parameter: it compiles the template in the
// sandbox and runs it on an empty row, on a long row where every column it names holds a
// sample value longer than any index the template writes (longProbe), and on a fitted row
// where each column is only as long as the template's own slices and indexes of it need
// (columnNeeds, fitProbe). A template that fails on all three rows is reported; so is a
// template that reads no column (its value is the same on every row) when its value breaks a
// WhatsApp rule. What depends on the data (an empty column, a slice past a short value, a
// value too long only when every column is long) is left to the rows.
func checkTemplate(name, text string, raw bool) error {
	t, err := parseParam(name, text)
	if err != nil {
		return err
	}
	p := compiled{name: name, tpl: t, text: text, raw: raw}
	cols, readsRow := columnsOf(t.Tree)
	sample, fitted := map[string]string{}, map[string]string{}
	long, needs := longProbe(t.Tree), columnNeeds(t.Tree)
	for _, col := range cols {
		sample[col] = long
		fitted[col] = fitProbe(needs[col], "")
	}
	// Each run's helpers are metered as a row's are (maxRenderWork): a constant piped through
	// helpers past the bound fails on every row.
	run := func(cols map[string]string) (string, error) {
		var m workMeter
		return p.renderOn(template.Must(t.Clone()).Funcs(helpers(&m)), cols)
	}
	v, err1 := run(map[string]string{})
	if err1 != nil {
		if _, err2 := run(sample); err2 != nil {
			if _, err3 := run(fitted); err3 != nil {
				return fmt.Errorf("%w (on every row)", err1)
			}
		}
	}
	if err1 == nil && !readsRow && !raw {
		if err := checkParam(name, v); err != nil {
			return fmt.Errorf("%w (on every row)", err)
		}
	}
	if readsRow && !raw {
		if err := checkFixed(name, t.Tree); err != nil {
			return fmt.Errorf("%w (on every row)", err)
		}
	}
	return nil
}

// checkFixed applies checkParam's rules to the text a template writes on every row whatever
// the row holds: its top-level text (not inside if or with). A body value or a header text
// with a newline, a tab or five spaces in that text breaks WhatsApp's rule on every row, a
// button URL with a space in it Connectly's, and so does a media header whose leading text
// starts a URL other than https ("http://cdn.example.com/{{ .f }}").
func checkFixed(name string, tree *parse.Tree) error {
	if tree == nil || tree.Root == nil {
		return nil
	}
	nodes := tree.Root.Nodes
	switch {
	case strings.HasPrefix(name, "body_"), name == "header_text", strings.HasPrefix(name, "button_"):
		for _, n := range nodes {
			if t, ok := n.(*parse.TextNode); ok {
				if err := checkParam(name, string(t.Text)); err != nil {
					return err
				}
			}
		}
	case strings.HasPrefix(name, "header_") && name != "header_text" && len(nodes) > 0:
		t, ok := nodes[0].(*parse.TextNode)
		if !ok {
			return nil
		}
		// The value starts with this text: unless it is on its way to "https://", no row
		// makes it an https URL (a scheme is read without regard to case).
		lead := strings.ToLower(string(t.Text))
		if !strings.HasPrefix(lead, "https://") && !strings.HasPrefix("https://", lead) {
			return errors.New("value is not an absolute https URL")
		}
	}
	return nil
}

// columnsOf lists the names a template may read from the row (fields of dot or $, and the
// string literals, since index . "first name" reads a column whose name is no identifier),
// and whether it reads the row at all.
func columnsOf(tree *parse.Tree) (cols []string, readsRow bool) {
	if tree == nil {
		return nil, false
	}
	inspect(tree.Root, func(n parse.Node) bool {
		switch n := n.(type) {
		case *parse.ChainNode, *parse.DotNode:
			readsRow = true
		case *parse.FieldNode:
			readsRow = true
			cols = append(cols, n.Ident[0])
		case *parse.VariableNode:
			if n.Ident[0] == "$" {
				readsRow = true
				if len(n.Ident) > 1 {
					cols = append(cols, n.Ident[1])
				}
			}
		case *parse.StringNode:
			cols = append(cols, n.Text)
		}
		return true
	})
	return cols, readsRow
}
