package campaigns

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/yamlerr"
)

// Definition is a campaign as written in YAML.
type Definition struct {
	// ID is a slug: lower-case letters, digits and '-', at most 64 characters.
	ID     string   `yaml:"id"`
	Name   string   `yaml:"name"`
	Sender string   `yaml:"sender"`
	Tags   []string `yaml:"tags"`

	// Template is the template message the campaign sends: template:, or for a session
	// campaign its fallback_template (empty without one; see FallbackTemplate).
	Template Template `yaml:"template"`
	// Parameters are the template's variables, each a Go text/template over the row's columns:
	// parameters:, or a session campaign's fallback_template.parameters.
	Parameters Parameters `yaml:"parameters"`
	// Message is a session message sent instead of a template (message.go): exactly one of
	// template: and message: is given. Its strings are templates like parameters.
	Message *connectly.SessionContent `yaml:"message"`
	// FallbackTemplate is what a session campaign sends to a recipient whose window is closed
	// at send time; without it such a recipient is skipped (window_closed). Parse copies it
	// into Template and Parameters, which the send path reads.
	FallbackTemplate *FallbackTemplate `yaml:"fallback_template"`

	Audience Audience `yaml:"audience"`
	// Schedule says when runs start; empty means only when started by hand.
	Schedule Schedule `yaml:"schedule"`
	// SendHoursSpec limits the hours in which a recipient may receive the message (key
	// send_window); SendHours returns it parsed.
	SendHoursSpec SendHoursSpec `yaml:"send_window"`
	// ExpireAfter skips recipients not sent this long after the run started (e.g. "6h").
	ExpireAfter string `yaml:"expire_after"`
	// Rate caps this campaign's messages/s below its sender's rate; 0 means the sender's.
	Rate float64 `yaml:"rate"`
	// Delivery is "at-most-once" (default) or "at-least-once".
	Delivery string `yaml:"delivery"`
	// Unknown says what happens to recipients left unknown under at-most-once (unknown.go).
	Unknown UnknownPolicy `yaml:"unknown"`
	// OnReply are the rules that answer a recipient's reply (onreply.go).
	OnReply OnReply `yaml:"on_reply"`

	// Path is the file the definition was read from ("" when parsed from bytes).
	Path string `yaml:"-"`
	// AudienceAt is where audience.file is written in the campaign file, for problems with
	// the file found after parsing.
	AudienceAt Position `yaml:"-"`
	// SenderAt is where sender is written in the campaign file (zero when it names none).
	SenderAt Position `yaml:"-"`
	// PhoneAt and BSUIDAt are where audience.phone and audience.bsuid are written (zero when
	// they are not), for an audience header that lacks the column.
	PhoneAt, BSUIDAt Position `yaml:"-"`
	// Files are the rules its files are opened and read under; zero fields take the
	// process's (see FileRules).
	Files FileRules `yaml:"-"`
}

// Template names the approved WhatsApp template.
type Template struct {
	Name string `yaml:"name"`
	// Language is the default translation.
	Language string `yaml:"language"`
	// Languages are the other approved translations a recipient's language column may pick;
	// any other value falls back to Language.
	Languages []string `yaml:"languages"`
	// Category is marketing (default), utility or authentication; it chooses the queue.
	Category string `yaml:"category"`
}

// Parameters are a campaign's template variables.
type Parameters struct {
	// Values maps a parameter name (header_text|header_image|header_video|header_document,
	// body_1..body_15, button_1_url, button_2_url) to a Go text/template.
	Values map[string]string
	// Raw are name/value pairs passed through under any name (values are templates too), for
	// template kinds whose parameter names Herald does not check (quick replies, carousels).
	Raw []RawParam
}

// RawParam is one pass-through parameter.
type RawParam struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// decodeNode reads the parameters mapping: a "raw" key holds a list of name/value pairs,
// every other key a text value.
func (p *Parameters) decodeNode(d *decoder, n *yaml.Node, field string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, field, "want a mapping of name: value, got "+describe(n))
		return
	}
	p.Values = map[string]string{}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := field + "." + k.Value
		if first, dup := seen[k.Value]; dup {
			d.problem(k, name, fmt.Sprintf("given twice (first at line %d)", first.Line))
			continue
		}
		seen[k.Value] = k
		if k.Value == "raw" {
			d.decode(v, reflect.ValueOf(&p.Raw).Elem(), name)
			continue
		}
		if v.Kind != yaml.ScalarNode {
			d.fail(v, name, "want a text value, got "+describe(v))
			continue
		}
		p.Values[k.Value] = v.Value
	}
}

// Schedule says when a campaign's runs start.
type Schedule struct {
	// At is a one-shot start time (RFC 3339, e.g. 2026-12-01T09:00:00-05:00).
	At string `yaml:"at"`
	// Cron is a five-field cron expression evaluated in Timezone (e.g. "0 20 * * *").
	Cron string `yaml:"cron"`
	// Timezone is the IANA zone of Cron (default UTC).
	Timezone string `yaml:"timezone"`
	// Missed says what to do with a tick missed while no scheduler ran: "run-last" (within
	// Grace) or "skip" (default).
	Missed string `yaml:"missed"`
	// Grace is how late a missed tick may still run (default 1h; GraceDuration).
	Grace string `yaml:"grace"`
}

// SendHoursSpec is a campaign file's spelling of its send hours (key send_window): when
// recipients may receive a message. Definition.SendHours parses it.
type SendHoursSpec struct {
	// Days are the weekdays allowed (mon..sun); empty means every day.
	Days []string `yaml:"days"`
	// From and To are local times "HH:MM"; From after To spans midnight.
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// Timezone is "recipient" (the recipient's zone) or an IANA zone.
	Timezone string `yaml:"timezone"`
}

// Audience says where the recipients come from.
type Audience struct {
	// File is a CSV file with a header row; a relative path is relative to the campaign file.
	File string `yaml:"file"`
	// Phone is the column holding phone numbers (default "phone").
	Phone string `yaml:"phone"`
	// BSUID is the column holding business-scoped user ids ("US.1349..."); a row with a BSUID
	// and no phone is sent to the BSUID.
	BSUID string `yaml:"bsuid"`
	// Language is the column choosing the recipient's translation among template.languages.
	Language string `yaml:"language"`
	// Timezone is the column holding the recipient's IANA zone, for send hours.
	Timezone string `yaml:"timezone"`
	// DefaultRegion is the ISO country for numbers written without a country code (e.g. "US").
	DefaultRegion string `yaml:"default_region"`
	// MaxInvalidShare is the share of invalid rows (0..1) above which a run refuses to start;
	// default 0.05.
	MaxInvalidShare float64 `yaml:"max_invalid_share"`
}

// Categories lists the template categories.
var Categories = []string{"marketing", "utility", "authentication"}

// FieldError is one problem in a campaign file, with its position when known. Its JSON form
// (campaign validate --json) has the keys file, line and col (0 when the problem has no
// place), field ("" when none) and message.
type FieldError struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"col"`
	Field  string `json:"field"`
	Msg    string `json:"message"`
}

// Error is the problem on one line. The field (built from the file's own keys) and the file
// name are escaped, and so are control characters in the message: a campaign file is
// untrusted, and nothing in it may colour the terminal or start a line of its own.
func (e FieldError) Error() string {
	pos := logx.Escape(e.File)
	if e.Line > 0 {
		pos += ":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column)
	}
	if e.Field != "" {
		return pos + ": " + logx.Escape(e.Field) + ": " + logx.EscapeControl(e.Msg)
	}
	return pos + ": " + logx.EscapeControl(e.Msg)
}

// Errors is every problem found in one file; Load returns it (wrapped) so callers see all of
// them at once.
type Errors []FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// MinRate is the smallest rate a campaign may set, in messages/s (36 an hour): below it a
// send's spacing stops being a rate, and a rate such as 1e-300 would overflow the limiter's
// intervals and the plan's estimate.
const MinRate = 0.01

// templateNameRE is WhatsApp's rule for a template name: lower-case letters, digits and '_'.
var templateNameRE = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)

// ParamNames are the documented template parameter names, in request order.
var ParamNames = func() []string {
	n := []string{"header_text", "header_image", "header_video", "header_document"}
	for i := 1; i <= 15; i++ {
		n = append(n, "body_"+strconv.Itoa(i))
	}
	return append(n, "button_1_url", "button_2_url")
}()

func paramOrder(name string) int {
	for i, n := range ParamNames {
		if n == name {
			return i
		}
	}
	return -1
}

// Load reads and validates a campaign file, as a new one (Parse).
func Load(path string) (*Definition, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	return Parse(path, data)
}

// LoadStored is Load for a campaign file a run was started from before Herald kept a copy of
// it: ParseStored's checks.
func LoadStored(path string) (*Definition, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	return ParseStored(path, data)
}

// Parse decodes and validates a campaign from YAML, as a new campaign file: `campaign
// validate`, `submit`, `send` and `plan` read one so. It returns an error wrapping Errors that
// lists every problem found, each as "file:line:col: field: message".
func Parse(path string, data []byte) (*Definition, error) {
	return parseChecked(path, data, false)
}

// ParseStored is Parse for a campaign Herald has already taken: a submitted version (a
// scheduled tick, `campaign run`, `campaign ls`), or the copy kept of a run's file (its
// expansion, `run retry`, the replies to it). It leaves out the checks that only a new campaign
// file gets (newFileProblems), added after versions were stored: a version that passed the
// checks of its day goes on running, and the replies to its runs are answered, rather than
// every nightly tick failing once Herald is upgraded. A new version of the campaign meets them
// when it is submitted.
func ParseStored(path string, data []byte) (*Definition, error) {
	return parseChecked(path, data, true)
}

func parseChecked(path string, data []byte, stored bool) (*Definition, error) {
	p := parseFile(path, data, stored)
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return p.def, nil
}

// parsed is a campaign file as far as it could be read.
type parsed struct {
	// def is the definition, its broken fields left empty; nil when the file holds no
	// mapping of campaign keys (empty, not YAML, a list).
	def *Definition
	// root is the campaign's mapping node, for positions.
	root *yaml.Node
	// errs are the problems found, in the order of the file.
	errs Errors
	// broken are the fields that could not be decoded: the checks that read them are skipped.
	broken brokenFields
	// reads are the columns the campaign's own templates read (templateReads).
	reads []columnRead
}

// oneDocument decodes the one YAML document of the file at path into a node tree (aliases kept
// as written: nothing is expanded until the fields are decoded, within maxDecodeNodes) and
// returns its top node with the problems of the file as a whole: a second document (after
// "---") would be ignored, so it is one, its message ending with one (what a file holds). An
// empty file, or one that is not YAML, gives no node.
func oneDocument(path string, data []byte, one string) (*yaml.Node, Errors) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: path, Line: 1, Column: 1, Msg: "file is empty"}}
		}
		return nil, Errors{yamlError(path, data, err)}
	}
	if len(root.Content) == 0 {
		return nil, Errors{{File: path, Line: 1, Column: 1, Msg: "file is empty"}}
	}
	var errs Errors
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errs = append(errs, FieldError{File: path, Line: extra.Line, Column: extra.Column,
			Msg: "a second YAML document starts here; " + one})
	} else if !errors.Is(err, io.EOF) {
		e := yamlError(path, data, err)
		e.Msg = "a second YAML document, which does not parse either: " + e.Msg
		errs = append(errs, e)
	}
	return root.Content[0], errs
}

// mappingOf returns doc, an alias followed, when it is a mapping; otherwise the problem, which
// says a mapping of keys is wanted.
func mappingOf(path string, doc *yaml.Node, keys string) (*yaml.Node, *FieldError) {
	if doc.Kind == yaml.AliasNode && doc.Alias != nil {
		doc = doc.Alias
	}
	if doc.Kind != yaml.MappingNode {
		return doc, &FieldError{File: path, Line: doc.Line, Column: doc.Column, Msg: "want a mapping of " + keys + ", got " + kindOf(doc)}
	}
	return doc, nil
}

// parseFile decodes and validates a campaign from YAML, as far as it can: a field that does not
// decode is a problem of its own and leaves the others to be decoded and checked. stored says
// the campaign is one Herald has already taken (ParseStored): the checks of a new file only
// (newFileProblems) are left out.
func parseFile(path string, data []byte, stored bool) parsed {
	// Decoding into a node tree keeps aliases as they are written: nothing is expanded until
	// the fields are decoded, within maxDecodeNodes.
	doc, errs := oneDocument(path, data, "a campaign file holds one campaign (remove the \"---\" or split the file)")
	if doc == nil {
		return parsed{errs: errs}
	}
	// Unknown keys are found on the node tree, where each has its own line and column and the
	// known keys give a suggestion; the decoder then ignores them and validation still runs.
	errs = append(unknownKeys(path, doc, reflect.TypeOf(Definition{}), ""), errs...)
	doc, bad := mappingOf(path, doc, "campaign keys (id: ..., template: ..., audience: ...)")
	if bad != nil {
		return parsed{errs: sortErrors(append(errs, *bad))}
	}
	var d Definition
	fd := newDecoder(path)
	fd.decode(doc, reflect.ValueOf(&d).Elem(), "")
	errs = append(errs, fd.errs...)
	// A session message's checks weigh its parts together (one kind, text required without
	// another): a part that did not decode leaves the whole message unchecked.
	for f := range fd.broken {
		if within(f, "message") {
			fd.broken["message"] = true
		}
	}
	d.Path = path
	errs = append(errs, fd.broken.without(d.validate(path, doc, &locator{}))...)
	if !stored {
		errs = append(errs, fd.broken.without(d.newFileProblems(path))...)
	}
	return parsed{def: &d, root: doc, errs: sortErrors(errs), broken: fd.broken, reads: d.templateReads(doc, fd.broken)}
}

// sortErrors orders errors by position and drops repeats (an alias used in several places
// reports the same problem at the same place each time).
func sortErrors(errs Errors) Errors {
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].Line != errs[j].Line {
			return errs[i].Line < errs[j].Line
		}
		return errs[i].Column < errs[j].Column
	})
	out := errs[:0]
	for i, e := range errs {
		if i == 0 || e != errs[i-1] {
			out = append(out, e)
		}
	}
	return out
}

// yamlError turns an error decoding data, a YAML file, into a FieldError at the line where the
// problem is (yamlerr.In), column 1; an error the decoder did not place has no line.
func yamlError(path string, data []byte, err error) FieldError {
	line, msg := yamlerr.In(err, data)
	if line == 0 {
		return FieldError{File: path, Msg: msg}
	}
	return FieldError{File: path, Line: line, Column: 1, Msg: msg}
}

// find returns the node at a dotted path under a mapping node, for error positions. It scans
// each mapping on the path; a check that places many problems uses a locator.
func find(n *yaml.Node, path ...string) *yaml.Node {
	return (*locator)(nil).find(n, path...)
}

// locator finds the nodes written at field paths of one campaign file's tree, for the
// positions of its problems. A mapping of indexFrom keys or more is indexed the first time it
// is searched, so placing a problem at each of N keys of one mapping reads each key once
// instead of N times (validation of a file of N unknown parameters was quadratic). A nil
// locator scans every mapping it searches.
type locator struct {
	index map[*yaml.Node]map[string]*yaml.Node
	// reads counts the keys read, scanned or indexed: the work of placing the problems.
	reads int
}

// indexFrom is the number of keys from which a locator indexes a mapping; below it a scan is
// cheaper than a map.
const indexFrom = 16

// child returns the value of key in mapping n (the last one when the key is written twice, as
// the decoder keeps the first and reports the second), nil when n is not a mapping or lacks it.
func (l *locator) child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	if l == nil || len(n.Content) < 2*indexFrom {
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if l != nil {
			l.reads += len(n.Content) / 2
		}
		return next
	}
	idx, ok := l.index[n]
	if !ok {
		idx = make(map[string]*yaml.Node, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			idx[n.Content[i].Value] = n.Content[i+1]
		}
		l.reads += len(n.Content) / 2
		if l.index == nil {
			l.index = map[*yaml.Node]map[string]*yaml.Node{}
		}
		l.index[n] = idx
	}
	return idx[key]
}

// find returns the node at a dotted path under a mapping node.
func (l *locator) find(n *yaml.Node, path ...string) *yaml.Node {
	for _, p := range path {
		if n = l.child(n, p); n == nil {
			return nil
		}
	}
	return n
}

// validate checks the decoded definition and returns its problems, placed in root through loc.
func (d *Definition) validate(path string, root *yaml.Node, loc *locator) Errors {
	var errs Errors
	add := func(field, msg string) {
		n := loc.locate(root, field)
		errs = append(errs, FieldError{File: path, Field: field, Msg: msg, Line: n.Line, Column: n.Column})
	}
	if d.ID == "" {
		add("id", "is required")
	} else if !slugRE.MatchString(d.ID) {
		add("id", fmt.Sprintf("%q is not a slug (lower-case letters, digits and '-', at most 64)", d.ID))
	}
	switch session := find(root, "message") != nil; {
	case session && find(root, "template") != nil:
		add("message", "a campaign sends either template: (a template message) or message: (a session message), not both")
	case session:
		d.validateSession(fieldCheck{path: path, root: root, add: add, errs: &errs})
	default:
		if d.FallbackTemplate != nil {
			add("fallback_template", "only with message: (it is sent instead of the session message to recipients whose window is closed)")
		}
		d.validateTemplate(fieldCheck{path: path, root: root, add: add, errs: &errs},
			templateBlock{key: "template", paramKey: "parameters", t: &d.Template, params: &d.Parameters})
	}
	d.validateSchedule(add)
	d.validateSendHours(add)
	if d.ExpireAfter != "" {
		if v, err := ParseDuration(d.ExpireAfter); err != nil || v <= 0 {
			add("expire_after", fmt.Sprintf("%q is not a positive duration (e.g. 6h, 90m, 2d)", d.ExpireAfter))
		}
	}
	if !(d.Rate == 0 || (d.Rate >= MinRate && d.Rate <= 1000)) { // NaN too
		add("rate", fmt.Sprintf("%g: want 0 (the sender's rate), or %g to 1000 messages/s", d.Rate, MinRate))
	}
	if !(d.Audience.MaxInvalidShare >= 0 && d.Audience.MaxInvalidShare <= 1) { // NaN too
		add("audience.max_invalid_share", fmt.Sprintf("%g: want a share from 0 to 1", d.Audience.MaxInvalidShare))
	} else if d.Audience.MaxInvalidShare == 0 {
		d.Audience.MaxInvalidShare = 0.05
	}
	if d.Audience.File == "" {
		add("audience.file", "is required")
	} else if n := find(root, "audience", "file"); n != nil {
		d.AudienceAt = Position{n.Line, n.Column}
	}
	if n := find(root, "audience", "phone"); n != nil {
		d.PhoneAt = Position{n.Line, n.Column}
	}
	if n := find(root, "audience", "bsuid"); n != nil {
		d.BSUIDAt = Position{n.Line, n.Column}
	}
	if d.Audience.Phone == "" {
		d.Audience.Phone = "phone"
	}
	// The region must also be one the phone library knows: "UK" looks right but is not a code
	// (the United Kingdom is GB), and every national number would then be skipped as invalid.
	if r := d.Audience.DefaultRegion; r != "" && (!regexp.MustCompile(`^[A-Z]{2}$`).MatchString(r) || !phonenumbers.GetSupportedRegions()[r]) {
		add("audience.default_region", fmt.Sprintf("%q is not an ISO 3166 alpha-2 country code (e.g. US, BR)", d.Audience.DefaultRegion))
	}
	if d.Sender != "" && !regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`).MatchString(d.Sender) {
		add("sender", fmt.Sprintf("%q is not an E.164 number (+ and 7 to 15 digits)", d.Sender))
	}
	if n := find(root, "sender"); n != nil {
		d.SenderAt = Position{n.Line, n.Column}
	}
	switch d.Delivery {
	case "":
		d.Delivery = "at-most-once"
	case "at-most-once", "at-least-once":
	default:
		add("delivery", fmt.Sprintf("%q: want at-most-once or at-least-once", d.Delivery))
	}
	d.validateUnknown(add)
	errs = append(errs, d.validateOnReply(path, root)...)
	return errs
}

// fieldCheck is where a validation step reports: the campaign file and its YAML tree (for
// positions), add (a problem at a field path) and errs (the problems so far, for one with a
// position of its own).
type fieldCheck struct {
	path string
	root *yaml.Node
	add  func(field, msg string)
	errs *Errors
}

// templateBlock is a template and its parameters as a campaign writes them, at the keys key and
// paramKey (template/parameters, or fallback_template/fallback_template.parameters).
type templateBlock struct {
	key, paramKey string
	t             *Template
	params        *Parameters
}

// validateTemplate checks a template block and its parameters, and gives the category its
// default.
func (d *Definition) validateTemplate(c fieldCheck, b templateBlock) {
	add, tplKey, paramKey, t, params := c.add, b.key, b.paramKey, b.t, b.params
	if t.Name == "" {
		add(tplKey+".name", "is required")
	} else if !templateNameRE.MatchString(t.Name) {
		add(tplKey+".name", fmt.Sprintf("%q: want lower-case letters, digits and '_', at most 512 (WhatsApp's rule for a template name)", t.Name))
	}
	if t.Language == "" {
		add(tplKey+".language", "is required (e.g. en, en_US, pt_BR)")
	} else if msg := languageProblem(t.Language); msg != "" {
		// Connectly looks the translation up by this code: another spelling ("en-US") is
		// TEMPLATE_NOT_FOUND on the first send, and the run pauses.
		add(tplKey+".language", msg)
	}
	if t.Category == "" {
		t.Category = "marketing"
	} else if !contains(Categories, t.Category) {
		add(tplKey+".category", fmt.Sprintf("%q: want one of %s", t.Category, strings.Join(Categories, ", ")))
	}
	for name, tpl := range params.Values {
		if paramOrder(name) < 0 {
			add(paramKey+"."+name, "unknown parameter name; want header_text|header_image|header_video|header_document, body_1..body_15, button_1_url or button_2_url")
			continue
		}
		if err := checkTemplate(name, tpl, false); err != nil {
			add(paramKey+"."+name, err.Error())
		}
	}
	// The shape of the parameters is read from what the file gives: with a parameter that did
	// not decode (a problem of its own), the names are not all known.
	if !undecodedParams(find(c.root, strings.Split(paramKey, ".")...), params) {
		for _, p := range paramShapeProblems(*params) {
			add(paramKey+p.field, p.msg)
		}
	}
	seenLang := map[string]bool{t.Language: true}
	for i, l := range t.Languages {
		field := fmt.Sprintf("%s.languages[%d]", tplKey, i)
		switch {
		case !langRE.MatchString(l):
			add(tplKey+".languages", field+": "+languageProblem(l))
		case seenLang[l]:
			add(tplKey+".languages", fmt.Sprintf("%s: %q is listed twice (or is the default language)", field, l))
		}
		seenLang[l] = true
	}
	// One render's templates are bounded together: too many raw entries are not checked one
	// by one (each check runs the template).
	if err := checkRenderSize(*params, paramNodes); err != nil {
		add(paramKey, err.Error())
		if len(params.Raw) > MaxRawParams {
			return
		}
	}
	rawNames := map[string]bool{}
	for i, rp := range params.Raw {
		switch _, dup := params.Values[rp.Name]; {
		case rp.Name == "":
			add(paramKey+".raw", fmt.Sprintf("raw[%d]: name is required", i))
		case dup:
			add(paramKey+".raw", fmt.Sprintf("raw[%d]: %q is also set as a named parameter", i, rp.Name))
		case rawNames[rp.Name]:
			add(paramKey+".raw", fmt.Sprintf("raw[%d]: %q is listed twice", i, rp.Name))
		}
		rawNames[rp.Name] = true
		if err := checkTemplate(rp.Name, rp.Value, true); err != nil {
			e := FieldError{File: c.path, Field: fmt.Sprintf("%s.raw[%d].value", paramKey, i), Msg: err.Error()}
			e.Line, e.Column = rawPosition(c.root, paramKey, i)
			*c.errs = append(*c.errs, e)
		}
	}
}

// undecodedParams reports whether the parameters mapping n names a parameter that is not in
// params (its value did not decode).
func undecodedParams(n *yaml.Node, params *Parameters) bool {
	if n == nil || n.Kind != yaml.MappingNode {
		return n != nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "raw" {
			if _, ok := params.Values[k]; !ok {
				return true
			}
		}
	}
	return false
}

// shapeProblem is a parameter set no template can take: at field (".body_3", or "" for the
// parameters as a whole), relative to the parameters' key.
type shapeProblem struct{ field, msg string }

// paramShapeProblems finds what no template takes whatever its text: a gap in the body_N
// numbers (a template's body variables are {{1}}, {{2}}, ... in order, reference 7: body_1 and
// body_3 leave {{2}} without a value, or match no variable), and more than one header_*
// parameter (a template has one header, of one kind, with at most one variable: reference
// 2.2 and 7). A raw entry named body_N fills its number; other raw entries carry their own
// shape and are not read. No body_N at all is fine: a body without variables.
func paramShapeProblems(p Parameters) []shapeProblem {
	var out []shapeProblem
	given := [16]bool{}
	top := 0
	for i := 1; i <= 15; i++ {
		name := "body_" + strconv.Itoa(i)
		_, named := p.Values[name]
		given[i] = named
		for _, rp := range p.Raw {
			given[i] = given[i] || rp.Name == name
		}
		if given[i] {
			top = i
		}
	}
	for i := 1; i < top; i++ {
		if given[i] {
			continue
		}
		// Report at the first body_N written after the gap, where the numbering goes wrong.
		field := ""
		for j := i + 1; j <= top; j++ {
			if _, named := p.Values["body_"+strconv.Itoa(j)]; named {
				field = ".body_" + strconv.Itoa(j)
				break
			}
		}
		out = append(out, shapeProblem{field, fmt.Sprintf("body_%d is not given, body_%d is: a template numbers its body variables "+
			"{{1}}, {{2}}, ... without a gap, so no template takes these (give body_%d, or renumber)", i, top, i)})
		break
	}
	var headers []string
	for _, name := range ParamNames[:4] { // header_text, header_image, header_video, header_document
		if _, ok := p.Values[name]; ok {
			headers = append(headers, name)
		}
	}
	for _, name := range headers[min(1, len(headers)):] {
		out = append(out, shapeProblem{"." + name, fmt.Sprintf("a template has one header, and %s is given too: keep the one the template's header takes", headers[0])})
	}
	return out
}

// validateSession checks a session campaign: its message, no parameters of its own, and its
// fallback template, which it then copies into Template and Parameters.
func (d *Definition) validateSession(c fieldCheck) {
	add := c.add
	if find(c.root, "parameters") != nil {
		add("parameters", "a session message has no template parameters: its own strings are templates; "+
			"the parameters of the fallback template go under fallback_template.parameters")
	}
	if d.Message == nil {
		add("message", "is empty: give text, or one of "+connectly.OtherKinds)
	} else {
		for _, p := range CheckMessage(*d.Message) {
			add("message."+p.Field, p.Msg)
		}
	}
	fb := d.FallbackTemplate
	if fb == nil {
		if find(c.root, "fallback_template") != nil {
			add("fallback_template", "is empty: give name and language, or remove it (recipients whose window is closed are then skipped)")
		}
		d.Template.Category = "marketing"
		return
	}
	d.validateTemplate(c, templateBlock{key: "fallback_template", paramKey: "fallback_template.parameters", t: &fb.Template,
		params: &fb.Parameters})
	d.Template, d.Parameters = fb.Template, fb.Parameters
}

// locate returns the node written at a field path ("message.list.sections[0].rows[2].id"),
// or the nearest enclosing node that is written, for error positions. It scans each mapping
// on the path; a check that places many problems uses a locator.
func locate(root *yaml.Node, field string) *yaml.Node {
	return (*locator)(nil).locate(root, field)
}

// locate is locate with l's indexes.
func (l *locator) locate(root *yaml.Node, field string) *yaml.Node {
	n := root
	for _, seg := range strings.Split(field, ".") {
		name, idx := seg, -1
		if i := strings.IndexByte(seg, '['); i > 0 && strings.HasSuffix(seg, "]") {
			v, err := strconv.Atoi(seg[i+1 : len(seg)-1])
			if err == nil {
				name, idx = seg[:i], v
			}
		}
		next := l.child(n, name)
		if next == nil {
			return n
		}
		if idx >= 0 {
			if next.Kind != yaml.SequenceNode || idx >= len(next.Content) {
				return next
			}
			next = next.Content[idx]
		}
		n = next
	}
	return n
}

// languageProblem says why l is not a template language code (langRE), with the spelling
// meant when it is one written otherwise ("en-US", "EN_us": en_US); "" when it is one.
func languageProblem(l string) string {
	if langRE.MatchString(l) {
		return ""
	}
	msg := fmt.Sprintf("%q is not a language code (e.g. en, en_US, pt_BR)", l)
	lang, region, two := strings.Cut(strings.ReplaceAll(strings.TrimSpace(l), "-", "_"), "_")
	guess := strings.ToLower(lang)
	if two {
		guess += "_" + strings.ToUpper(region)
	}
	if langRE.MatchString(guess) {
		msg += fmt.Sprintf("; did you mean %q?", guess)
	}
	return msg
}

var (
	langRE = regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2})?$`)
	hhmmRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	days   = map[string]bool{"mon": true, "tue": true, "wed": true, "thu": true, "fri": true, "sat": true, "sun": true}
)

func (d *Definition) validateSchedule(add func(field, msg string)) {
	s := d.Schedule
	if s.At != "" && s.Cron != "" {
		add("schedule.cron", "set either at (one run) or cron (repeating runs), not both")
	}
	if s.At != "" {
		if _, err := time.Parse(time.RFC3339, s.At); err != nil {
			add("schedule.at", fmt.Sprintf("%q is not an RFC 3339 time (e.g. 2026-12-01T09:00:00-05:00)", s.At))
		}
	}
	if s.Cron != "" {
		// Five fields, in schedule.timezone. robfig/cron would also take a zone prefix, which
		// would tick in a zone other than the one campaign ls and send_window read, and @every,
		// which ticks at intervals counted from whenever a scheduler loads the campaign; the
		// fixed descriptors (@daily, @hourly, ...) are five-field specs by another name.
		spec := strings.TrimSpace(s.Cron)
		switch first, _, _ := strings.Cut(spec, " "); {
		case strings.ContainsFunc(s.Cron, func(r rune) bool { return r != '\t' && !unicode.IsPrint(r) }):
			// robfig/cron splits on any white space: a CR, VT or FF would pass, and be printed
			// as it is by campaign ls.
			add("schedule.cron", fmt.Sprintf("%q: control characters are not allowed (separate the fields with spaces)", s.Cron))
		case strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ="):
			add("schedule.cron", fmt.Sprintf("%q: a zone prefix (%s) is not supported: set the zone in schedule.timezone", s.Cron, first))
		case first == "@every":
			add("schedule.cron", fmt.Sprintf("%q: @every is not supported: use five fields (minute hour day-of-month month day-of-week), evaluated in schedule.timezone", s.Cron))
		default:
			if _, err := cron.ParseStandard(spec); err != nil {
				add("schedule.cron", fmt.Sprintf("%q: %v (five fields: minute hour day-of-month month day-of-week)", s.Cron, err))
			}
		}
	}
	if s.Timezone != "" {
		// The zone is read as the expansion and the scheduler read it (LoadZone): a spelling
		// taken here is one they take.
		if msg := zoneProblem(s.Timezone, ""); msg != "" {
			add("schedule.timezone", msg)
		}
	}
	switch s.Missed {
	case "", "skip", "run-last":
	default:
		add("schedule.missed", fmt.Sprintf("%q: want skip or run-last", s.Missed))
	}
	if s.Grace != "" {
		if v, err := ParseDuration(s.Grace); err != nil || v <= 0 {
			add("schedule.grace", fmt.Sprintf("%q is not a positive duration (e.g. 1h, 1d)", s.Grace))
		}
	}
}

func (d *Definition) validateSendHours(add func(field, msg string)) {
	w := d.SendHoursSpec
	if len(w.Days) == 0 && w.From == "" && w.To == "" && w.Timezone == "" {
		return
	}
	for _, day := range w.Days {
		if !days[strings.ToLower(day)] {
			add("send_window.days", fmt.Sprintf("%q: want mon, tue, wed, thu, fri, sat or sun", day))
		}
	}
	for _, f := range []struct{ name, v string }{{"from", w.From}, {"to", w.To}} {
		if !hhmmRE.MatchString(f.v) {
			add("send_window."+f.name, fmt.Sprintf("%q: want a local time HH:MM (e.g. 09:00)", f.v))
		}
	}
	if w.From != "" && w.From == w.To {
		add("send_window.to", "equals from: the window would be empty")
	}
	if w.Timezone != "" && w.Timezone != "recipient" {
		if msg := zoneProblem(w.Timezone, "recipient"); msg != "" {
			add("send_window.timezone", msg)
		}
	}
}

// AudiencePath resolves the audience file relative to the campaign file. The file is opened
// only inside the campaigns root (see FileRules).
func (d *Definition) AudiencePath() string {
	if filepath.IsAbs(d.Audience.File) || d.Path == "" {
		return d.Audience.File
	}
	return filepath.Join(filepath.Dir(d.Path), d.Audience.File)
}

// rawPosition is the line and column of PARAMKEY.raw[i].value (or the nearest node that
// exists) in the file, paramKey a dotted path ("parameters").
func rawPosition(root *yaml.Node, paramKey string, i int) (line, col int) {
	n := find(root, append(strings.Split(paramKey, "."), "raw")...)
	if n == nil {
		n = root
	} else if n.Kind == yaml.SequenceNode && i < len(n.Content) {
		n = n.Content[i]
		if v := find(n, "value"); v != nil {
			n = v
		}
	}
	return n.Line, n.Column
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// GraceDuration is how late a missed tick may still run under missed: run-last (default 1h).
func (s Schedule) GraceDuration() time.Duration {
	if s.Grace == "" {
		return time.Hour
	}
	v, _ := ParseDuration(s.Grace)
	return v
}
