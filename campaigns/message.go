package campaigns

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/heraldmsg/herald/internal/connectly"
)

// Session campaigns. A campaign file says message: (a session message: free-form content
// WhatsApp lets a business send while the customer's 24-hour window is open) instead of
// template:. Its content is connectly.SessionContent, with every string a person reads or a
// reply carries back (text, caption, url, filename, location name and address, buttons,
// list rows...) a Go template over the audience row, run in the same sandbox as template
// parameters (render.go). Coordinates, the attachment type and the product objects are sent
// as written. Recipients whose window is closed at send time are skipped, or sent the
// campaign's fallback_template.

// SendKindSession is the send payload kind of a session campaign's messages (SendPayload's
// Kind; a template message has none).
const SendKindSession = "session"

// FallbackTemplate is the template a session campaign sends instead of its message to a
// recipient whose window is closed at send time: a template block like template:, with its
// own parameters.
type FallbackTemplate struct {
	Template   `yaml:",inline"`
	Parameters Parameters `yaml:"parameters"`
}

// IsSession reports whether the campaign sends a session message (message:).
func (d *Definition) IsSession() bool { return d.Message != nil }

// SendKind is the kind of the campaign's send payloads: SendKindSession for a session
// campaign, "" (a template message) otherwise.
func (d *Definition) SendKind() string {
	if d.IsSession() {
		return SendKindSession
	}
	return ""
}

// HasFallback reports whether a session campaign names a fallback template; it is then
// d.Template, with d.Parameters.
func (d *Definition) HasFallback() bool { return d.IsSession() && d.Template.Name != "" }

// SendCategory is the category of d's sends, which chooses their queue and frequency cap:
// its template's. A session campaign's is its fallback template's, or, without a fallback,
// utility: a session message continues a conversation whose window is closing, so it goes
// ahead of marketing sends, and no marketing frequency cap (which counts marketing
// templates) applies to it. Expansion and campaign plan's limits preview both use it.
func (d *Definition) SendCategory() string {
	if d.IsSession() && !d.HasFallback() {
		return SessionOnlyCategory
	}
	return d.Template.Category
}

// SessionOnlyCategory is the category of a session message sent without a fallback template,
// a campaign's or an on_reply follow-up's (see SendCategory).
const SessionOnlyCategory = "utility"

// MaxSessionField bounds every rendered string of a session message, in characters, whatever
// its own limit: it bounds the work of a render (4 bytes a character) before the content is
// validated against WhatsApp's limits, which are lower for every field that has one. Fields
// WhatsApp gives no documented limit (a location's name and address, a document's filename,
// a media URL) get this one.
const MaxSessionField = connectly.MaxSessionText

// SessionRenderer renders a session message for one audience row. It is safe for concurrent
// use.
type SessionRenderer struct {
	content connectly.SessionContent
	// fields maps a field name ("text", "list.sections[0].rows[1].id") to its template.
	fields map[string]*template.Template
	// metered runs fields with their helpers' work bounded per render (see maxRenderWork).
	metered *meteredSet
}

// ErrNotSession is wrapped by SessionRenderer for a campaign without message:.
var ErrNotSession = errors.New("campaign has no session message")

// SessionRenderer compiles the campaign's message. It returns an error wrapping
// ErrNotSession for a template campaign.
func (d *Definition) SessionRenderer() (*SessionRenderer, error) {
	if d.Message == nil {
		return nil, fmt.Errorf("campaign %s: %w", d.ID, ErrNotSession)
	}
	return NewSessionRenderer(*d.Message)
}

// NewSessionRenderer compiles every string of c as a template in the parameter sandbox.
// Errors name the field and say the problem in plain words (templateProblem):
// "message.text: a {{ has no closing }}", "message.text: {{ call .f }} at column 4 of the
// template: function "call" is not allowed ...".
func NewSessionRenderer(c connectly.SessionContent) (*SessionRenderer, error) {
	r := &SessionRenderer{fields: map[string]*template.Template{}}
	content, err := c.MapStrings(func(field, s string) (string, error) {
		t, err := parseParam(field, s)
		if err != nil {
			return "", err
		}
		r.fields[field] = t
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("message.%w", err)
	}
	r.content = content
	tpls := make([]*template.Template, 0, len(r.fields))
	for _, t := range r.fields {
		tpls = append(tpls, t)
	}
	if err := checkMessageNodes(tpls); err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	r.metered = newMeteredSet(tpls)
	return r, nil
}

// Content renders the message for a row and validates it against WhatsApp's limits
// (connectly.SessionContent.Validate). Errors wrap ErrRender, name the fields
// ("message.reply_buttons.buttons[0].text: 31 characters, at most 20") and never quote a
// value: values come from the audience.
func (r *SessionRenderer) Content(cols map[string]string) (connectly.SessionContent, error) {
	c := r.metered.get()
	defer r.metered.put(c)
	out, err := r.content.MapStrings(func(field, text string) (string, error) {
		return renderField(c.of[r.fields[field]], field, text, cols)
	})
	if err != nil {
		return connectly.SessionContent{}, &renderError{msg: "message." + err.Error(), cause: err}
	}
	if err := out.Validate(); err != nil {
		return connectly.SessionContent{}, &renderError{msg: problemsText(err), cause: err}
	}
	return out, nil
}

// Render is Content encoded as the payload carries it: the JSON of connectly.SessionContent
// (the keys a campaign file writes), which DecodeSession reads back for the session client's
// SendSession. The request body built from it is connectly.Wire.EncodeSession's.
func (r *SessionRenderer) Render(cols map[string]string) (json.RawMessage, error) {
	c, err := r.Content(cols)
	if err != nil {
		return nil, err
	}
	// Without HTML escapes: the payload is measured against the limits as the wire carries it.
	b, err := connectly.EncodeJSON(c)
	if err != nil {
		return nil, fmt.Errorf("%w: message: %w", ErrRender, err)
	}
	return b, nil
}

// ErrBadSession is wrapped by DecodeSession when a payload's message does not decode or is
// not a valid session message.
var ErrBadSession = errors.New("invalid session message in payload")

// DecodeSession reads a message Render produced and validates it again.
func DecodeSession(raw json.RawMessage) (connectly.SessionContent, error) {
	var c connectly.SessionContent
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("%w: %w", ErrBadSession, err)
	}
	if err := c.Validate(); err != nil {
		return connectly.SessionContent{}, fmt.Errorf("%w: %w", ErrBadSession, err)
	}
	return c, nil
}

// renderField runs one field's template (t, compiled from text) on a row, its output capped
// at MaxSessionField characters.
func renderField(t *template.Template, field, text string, cols map[string]string) (string, error) {
	if t == nil {
		return "", errors.New("no template compiled for the field")
	}
	w := &capWriter{max: 4 * MaxSessionField}
	if err := t.Execute(w, cols); err != nil {
		if errors.Is(err, errTooLong) {
			return "", fmt.Errorf("value is longer than %d characters", MaxSessionField)
		}
		return "", templateProblem(field, text, err)
	}
	if n := utf8.RuneCount(w.buf); n > MaxSessionField {
		return "", fmt.Errorf("value is %d characters, limit %d", n, MaxSessionField)
	}
	return string(w.buf), nil
}

// renderError is a row's failure to render a valid message: its text names fields and rules
// only; errors.Is sees ErrRender and the cause (connectly.ErrInvalidMessage for a limit).
type renderError struct {
	msg   string
	cause error
}

func (e *renderError) Error() string   { return ErrRender.Error() + ": " + e.msg }
func (e *renderError) Unwrap() []error { return []error{ErrRender, e.cause} }

// quotedRE finds the Go-quoted values connectly's problems cite.
var quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// scrub removes the values a problem quotes: they may come from the audience.
func scrub(msg string) string { return quotedRE.ReplaceAllString(msg, "the value") }

// problemsText lists a validation error's problems as "message.FIELD: rule; ...", without the
// values; any other error by its text.
func problemsText(err error) string {
	var ie *connectly.InvalidMessageError
	if !errors.As(err, &ie) {
		return scrub(err.Error())
	}
	parts := make([]string, len(ie.Problems))
	for i, p := range ie.Problems {
		parts[i] = "message." + p.Field + ": " + scrub(p.Msg)
	}
	return strings.Join(parts, "; ")
}

// shortProbe starts the short sample values of the validation rows; longProbe the long ones.
const shortProbe = "Sample"

// CheckMessage is validation's view of a session message, as checkTemplate is for a template
// parameter: every string compiles in the sandbox, then the message is rendered on an empty
// row and on three sample rows (every column it reads holding a short value of its own, then
// one long value, longer than any index the templates write up to what a field can take:
// longProbe, then a fitted value, only as long as the templates' slices and indexes of that
// column need: columnNeeds) and validated. Before the rows, buttons, list rows and sections
// past WhatsApp's limits are reported and left out, and a message whose templates have more
// than maxRenderNodes parts together is refused without them.
// A problem is reported when it shows on every row: a rule the file breaks whatever the data
// (a fourth button, an over-long constant text, a template that never runs, a button whose
// fixed words are already over the limit). What depends on the data (an empty column, a long
// name in a button, a URL taken from a column, a text too long only when every column is
// long) is left to the rows. Problems name fields as connectly does
// ("reply_buttons.buttons[0].text"), in field order, and never quote rendered values.
func CheckMessage(c connectly.SessionContent) []connectly.Problem {
	var compileErrs []connectly.Problem
	compiled := map[string]*template.Template{}
	_, _ = c.MapStrings(func(field, s string) (string, error) {
		t, err := parseParam(field, s)
		if err != nil {
			compileErrs = append(compileErrs, connectly.Problem{Field: field, Msg: err.Error()})
			return s, nil
		}
		compiled[field] = t
		return s, nil
	})
	if len(compileErrs) > 0 {
		return compileErrs
	}
	// What no row changes and whose check on the sample rows would cost work in proportion
	// to the message is reported first: buttons, list rows or sections past WhatsApp's limits
	// (the fields within them are checked on the rows), then too many template parts.
	over := overLimits(c)
	c = withinLimits(c)
	fields := map[string]*template.Template{}
	reads := map[string]bool{}
	var cols []string
	_, _ = c.MapStrings(func(field, s string) (string, error) {
		t := compiled[field]
		fields[field] = t
		cs, readsRow := columnsOf(t.Tree)
		reads[field] = readsRow
		cols = append(cols, cs...)
		return s, nil
	})
	tpls := make([]*template.Template, 0, len(fields))
	for _, t := range fields {
		tpls = append(tpls, t)
	}
	if err := checkMessageNodes(tpls); err != nil {
		out := append(over, connectly.Problem{Field: messageKey(c), Msg: err.Error()})
		sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
		return out
	}
	// Each column gets its own short sample value, so two fields reading different columns
	// never look like duplicates (two buttons with one text) on the short row. The long row
	// gives every column one shared value, as long as a field can take (a longer one fails in
	// any field that writes it whole); the fitted row, a column only as long as its slices and
	// indexes need.
	rows := []map[string]string{{}, {}, {}, {}}
	trees := make([]*parse.Tree, 0, len(fields))
	for _, t := range fields {
		trees = append(trees, t.Tree)
	}
	long, needs := longProbe(trees...), columnNeeds(trees...)
	long = long[:min(len(long), maxFieldProbe)]
	for _, col := range cols {
		if _, done := rows[1][col]; !done {
			n := strconv.Itoa(len(rows[1]))
			rows[1][col], rows[2][col], rows[3][col] = shortProbe+n, long, fitProbe(needs[col], n)
		}
	}
	// Each row's helpers are metered together, as a send's are (maxRenderWork).
	metered := newMeteredSet(tpls)
	// failures[i] maps a field to its problem on rows[i].
	failures := make([]map[string]string, len(rows))
	for i, row := range rows {
		failures[i] = map[string]string{}
		n := 0
		mc := metered.get()
		rendered, _ := c.MapStrings(func(field, text string) (string, error) {
			v, err := renderField(mc.of[fields[field]], field, text, row)
			if err != nil {
				failures[i][field] = err.Error()
				// A stand-in, unique so that it breaks no rule of the other fields.
				n++
				return "v" + strconv.Itoa(n), nil
			}
			return v, nil
		})
		metered.put(mc)
		var ie *connectly.InvalidMessageError
		if err := rendered.Validate(); errors.As(err, &ie) {
			for _, p := range ie.Problems {
				if _, ok := failures[i][p.Field]; ok {
					continue
				}
				// A field that reads the row may hold anything on real rows (a URL, an id that
				// differs from the others): of its problems only one that its fixed text
				// causes on every row, a length over the limit, is the file's.
				if reads[p.Field] && !strings.Contains(p.Msg, "characters, at most") {
					continue
				}
				failures[i][p.Field] = scrub(p.Msg)
			}
		}
	}
	out := over
	for field, msg := range failures[1] {
		if !failsOn(failures, field) {
			continue
		}
		if reads[field] {
			msg += " (on every row)"
		}
		out = append(out, connectly.Problem{Field: field, Msg: msg})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// maxFieldProbe is the length of the long sample value of a message's columns: one byte more
// than a field's output may hold (MaxSessionField characters of at most 4 bytes).
const maxFieldProbe = 4*MaxSessionField + 1

// overLimits lists c's buttons, list rows and sections past WhatsApp's limits, as Validate
// words them: a problem on every row, whatever the templates write.
func overLimits(c connectly.SessionContent) []connectly.Problem {
	var out []connectly.Problem
	var ie *connectly.InvalidMessageError
	if err := c.Validate(); errors.As(err, &ie) {
		for _, p := range ie.Problems {
			if strings.HasPrefix(p.Msg, "at most ") && strings.HasSuffix(p.Field, "]") {
				out = append(out, p)
			}
		}
	}
	return out
}

// withinLimits is c without the buttons, list rows and sections past WhatsApp's limits
// (overLimits), whose fields keep their names; c's own slices are not changed.
func withinLimits(c connectly.SessionContent) connectly.SessionContent {
	if rb := c.ReplyButtons; rb != nil && len(rb.Buttons) > connectly.MaxReplyButtons {
		cp := *rb
		cp.Buttons = cp.Buttons[:connectly.MaxReplyButtons:connectly.MaxReplyButtons]
		c.ReplyButtons = &cp
	}
	if l := c.List; l != nil {
		cp := *l
		cp.Sections = nil
		rows := 0
		for i, s := range l.Sections {
			if i == connectly.MaxListSections || (rows == connectly.MaxListRows && len(s.Rows) > 0) {
				break
			}
			keep := min(len(s.Rows), connectly.MaxListRows-rows)
			s.Rows = s.Rows[:keep:keep]
			rows += keep
			cp.Sections = append(cp.Sections, s)
		}
		c.List = &cp
	}
	return c
}

// checkMessageNodes bounds the parse nodes of a message's field templates together, as
// NewRenderer bounds a template's parameters': a render runs them all.
func checkMessageNodes(tpls []*template.Template) error {
	nodes := 0
	for _, t := range tpls {
		nodes += templateNodes(t)
	}
	if nodes > maxRenderNodes {
		return fmt.Errorf("the message's templates have %d parts together, at most %d for one message", nodes, maxRenderNodes)
	}
	return nil
}

// messageKey is the key a problem of the whole message is reported at: its kind's
// ("reply_buttons", "list"), or text.
func messageKey(c connectly.SessionContent) string {
	if ks := c.Kinds(); len(ks) > 0 {
		return string(ks[0])
	}
	return "text"
}

// failsOn reports whether field failed on every sample row.
func failsOn(failures []map[string]string, field string) bool {
	for _, f := range failures {
		if _, ok := f[field]; !ok {
			return false
		}
	}
	return true
}
