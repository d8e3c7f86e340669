package campaigns

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/unicode/norm"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/yamlsize"
)

// OnReply is a campaign's reply rules: what Herald does when a recipient of one of its runs
// answers (a button tap, a list choice, a keyword, any message). Rules are tried in order and
// the first that matches wins (package conversation holds the matcher). It is written either
// as a list of rules, or as a mapping with until and rules:
//
//	on_reply:
//	  until: 72h
//	  rules:
//	    - button: "Yes, show me"
//	      message: {text: "Here it is: https://shop.example.com/spring"}
type OnReply struct {
	// Until is how long after a run starts a reply still triggers a rule (a Go duration or a
	// whole number of days, "7d"); empty means DefaultReplyUntil. Later replies are recorded
	// but trigger nothing.
	Until string `yaml:"until"`
	// Rules are matched in order.
	Rules []ReplyRule `yaml:"rules"`

	// seq is whether the rules were written as a bare list (for error field names).
	seq bool
	// cols are the audience columns the rules' follow-ups read, sorted (set by validation).
	cols []string
	// zoneCol is the audience's time zone column when a delayed follow-up reads it for the
	// send hours (FollowupZoneColumn), else "" (set by validation).
	zoneCol string
}

// Reply rule limits. Campaign files are untrusted: every list and value is bounded.
const (
	// DefaultReplyUntil is on_reply.until when unset: seven days after the run starts.
	DefaultReplyUntil = 7 * 24 * time.Hour
	// MaxReplyUntil is the longest on_reply.until accepted.
	MaxReplyUntil = 30 * 24 * time.Hour
	// MaxReplyDelay is the longest delay of a follow-up.
	MaxReplyDelay = 7 * 24 * time.Hour
	// MaxSessionReplyDelay is the longest delay of a follow-up that is a session message
	// without a template: the 24-hour window less an hour, since the worker counts a window
	// closed a margin before it closes (worker.window_margin, 2m by default) plus the longest
	// the send may still wait for its slot (retry.keep_place_for plus three times
	// retry.max_pace_wait). The config keeps those within servicewindow.MaxAhead, short of
	// the hour by servicewindow.FollowupLate, so a follow-up at this delay is still sent when
	// its task runs a little late. A longer delay would find the window closed, or closing,
	// every time.
	MaxSessionReplyDelay = servicewindow.Length - servicewindow.MaxAhead - servicewindow.FollowupLate
	// MaxReplyRules is the most rules a campaign may have.
	MaxReplyRules = 32
	// MaxReplyValues is the most values of one button, list_row or keyword match.
	MaxReplyValues = 20
	// MaxReplyValue is the longest value of a match, in characters.
	MaxReplyValue = 256
)

// Follow-up scopes of once_per.
const (
	// OncePerRun sends a rule's follow-up at most once per (run, recipient, rule): the default.
	OncePerRun = "run"
	// OncePerCampaign sends it at most once per (campaign, recipient, rule), across runs.
	OncePerCampaign = "campaign"
)

// ReplyRule is one on_reply rule: a match and what follows it.
type ReplyRule struct {
	// Name is a stable id for the rule (lower-case letters, digits, '_' and '-'); without it
	// the rule's id is its position, r1 for the first. Within a run the rules never change, so
	// a position serves there; but a once_per: campaign rule keeps its slot under its id across
	// the campaign's runs and versions, where a position moves when a rule is added or removed
	// before it: such a rule needs a name in a new campaign file (newFileProblems).
	Name string `yaml:"name"`

	// Exactly one of the four matches.

	// Button matches a quick-reply button by its payload, id or text (case and surrounding
	// spaces ignored); one value or a list.
	Button Words `yaml:"button"`
	// ListRow matches a list reply by its row id; one value or a list.
	ListRow Words `yaml:"list_row"`
	// Keyword matches typed text holding one of the keywords as a whole word (or a whole run
	// of words), case-insensitively; one value or a list.
	Keyword Words `yaml:"keyword"`
	// Any matches every reply.
	Any bool `yaml:"any"`

	// The follow-up: message, template, both (the template when the window has closed), or
	// none: true.

	// Message is a session message, kept as written; the session renderer takes it.
	Message ReplyMessage `yaml:"message"`
	// Template is a template to send instead of Message when the customer's window has closed
	// (or always, without Message). Its language defaults to the campaign's.
	Template *Template `yaml:"template"`
	// Parameters are Template's parameters, as the campaign's.
	Parameters Parameters `yaml:"parameters"`
	// None says the rule sends nothing (it only tags or suppresses, or stops later rules).
	None bool `yaml:"none"`

	// Delay is how long after the reply the follow-up is sent (a Go duration or a whole
	// number of days, "7d"; ParseDuration); none by default.
	Delay string `yaml:"delay"`
	// OncePer is OncePerRun (default) or OncePerCampaign.
	OncePer string `yaml:"once_per"`
	// Tag labels the recipient (e.g. interested); lower-case letters, digits, '_' and '-'.
	Tag string `yaml:"tag"`
	// Suppress puts the recipient on the suppression list (an "Unsubscribe" button).
	Suppress bool `yaml:"suppress"`

	// id is the rule's id, set by validation.
	id string
	// field and node are the rule's field name (on_reply[2]) and where it is written, set by
	// validation (Where).
	field string
	node  *yaml.Node
	// reads are the row names the rule's follow-up reads, where (set by validation).
	reads []columnRead
}

// ID returns the rule's id: its name, or "r" and its position counting from 1.
func (r *ReplyRule) ID() string { return r.id }

// Where says where a key of the rule is written in its campaign file, for a problem found
// after parsing (validation's own problems have their place already): the key's field name
// (on_reply[2].button) and the position of its value, or of its i-th value when the key holds
// a list. Key "" (or a key the rule does not write) gives the rule's own field and position.
// A rule not read from a file has no position, and its field names it by id.
func (r *ReplyRule) Where(key string, i int) (field string, at Position) {
	field = r.field
	if field == "" {
		field = "on_reply rule " + r.id
	}
	n := r.node
	if v := find(n, key); key != "" && v != nil {
		field += "." + key
		n = v
		if n.Kind == yaml.SequenceNode && i >= 0 && i < len(n.Content) {
			n = n.Content[i]
		}
	}
	if n == nil {
		return field, Position{}
	}
	return field, Position{Line: n.Line, Column: n.Column}
}

// DelayDuration returns the rule's delay (0 when none or invalid).
func (r *ReplyRule) DelayDuration() time.Duration {
	v, err := ParseDuration(r.Delay)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// Scope returns the rule's once_per scope, OncePerRun when unset.
func (r *ReplyRule) Scope() string {
	if r.OncePer == "" {
		return OncePerRun
	}
	return r.OncePer
}

// Words is one value or a list of values.
type Words []string

// decodeNode reads a scalar or a list of scalars.
func (w *Words) decodeNode(d *decoder, n *yaml.Node, field string) {
	const wantWords = "want a text value or a list of them, got "
	switch n.Kind {
	case yaml.ScalarNode:
		*w = Words{n.Value}
	case yaml.SequenceNode:
		out := make(Words, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				d.fail(c, field, wantWords+describe(c))
				return
			}
			out = append(out, c.Value)
		}
		*w = out
	default:
		d.fail(n, field, wantWords+describe(n))
	}
}

// ReplyMessage is a follow-up's session message as written in the campaign file. Herald
// keeps the node so the session renderer can decode it as the campaign-level message, and
// decodes it once, when the campaign file is read: Content returns that decoding for every
// reply rather than decoding the node again.
type ReplyMessage struct {
	// Node is the message as written; nil when the rule has none.
	Node *yaml.Node
	// decoded is Content's result for the node it names, set when the file is decoded.
	decoded *decodedMessage
}

// decodedMessage is a ReplyMessage's Content, for the node it was decoded from.
type decodedMessage struct {
	node    *yaml.Node
	content connectly.SessionContent
	err     error
}

// decodeNode keeps the node and decodes it, within the file's budget of nodes.
func (m *ReplyMessage) decodeNode(d *decoder, n *yaml.Node, field string) {
	m.Node, m.decoded = n, nil
	nodes, _ := yamlsize.Expanded(n, d.budget+1, maxDecodeBytes+1)
	if !d.spend(n, field, nodes) {
		return
	}
	c, err := m.decode()
	m.decoded = &decodedMessage{node: n, content: c, err: err}
}

var sessionContentType = reflect.TypeOf(connectly.SessionContent{})

// unknownKeys reports the keys of the message that a session message does not declare, as
// for the campaign-level message: at each key's place, under field (on_reply[0].message).
// The decoder would drop them, and the follow-up would go out without the part they meant
// (a reply_button: for reply_buttons: sends plain text).
func (m ReplyMessage) unknownKeys(file, field string) Errors {
	return unknownKeys(file, m.Node, sessionContentType, field+".")
}

// Content decodes the message as the session message it is. A key a session message does not
// declare is an error (*UnknownKeysError), so the follow-up is not sent without the part the
// key meant; a campaign that validates has none. The message decoded when the campaign file
// was read is returned as it is, shared: the caller must not change it (a renderer copies it).
func (m ReplyMessage) Content() (connectly.SessionContent, error) {
	if m.decoded != nil && m.decoded.node == m.Node {
		return m.decoded.content, m.decoded.err
	}
	return m.decode()
}

// decode is Content without the decoding kept.
func (m ReplyMessage) decode() (connectly.SessionContent, error) {
	var c connectly.SessionContent
	if m.Node == nil {
		return c, errors.New("no message")
	}
	if errs := m.unknownKeys("", "message"); len(errs) > 0 {
		return c, &UnknownKeysError{Problems: errs}
	}
	if err := m.Node.Decode(&c); err != nil {
		return c, fmt.Errorf("message: %w", err)
	}
	return c, nil
}

// UnknownKeysError is ReplyMessage.Content's error for the keys of a message that a session
// message does not declare: the problems campaign validation reports for them.
type UnknownKeysError struct {
	Problems Errors
}

func (e *UnknownKeysError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = fmt.Sprintf("%s: %s (line %d)", p.Field, p.Msg, p.Line)
	}
	return strings.Join(parts, "; ")
}

// IsZero reports whether the rule has no message.
func (m ReplyMessage) IsZero() bool { return m.Node == nil }

// onReplyMapping is on_reply written as a mapping.
type onReplyMapping struct {
	Until string      `yaml:"until"`
	Rules []ReplyRule `yaml:"rules"`
}

// decodeNode reads on_reply as a list of rules or as a mapping with until and rules.
func (o *OnReply) decodeNode(d *decoder, n *yaml.Node, field string) {
	switch n.Kind {
	case yaml.SequenceNode:
		o.seq = true
		d.decode(n, reflect.ValueOf(&o.Rules).Elem(), field)
	case yaml.MappingNode:
		var p onReplyMapping
		d.decode(n, reflect.ValueOf(&p).Elem(), field)
		o.Until, o.Rules = p.Until, p.Rules
	default:
		d.fail(n, field, "want a list of rules, or a mapping with until and rules, got "+describe(n))
	}
}

// checked reports whether validation went through the rules and gave each its id: not when
// there are too many to check.
func (o *OnReply) checked() bool {
	n := len(o.Rules)
	return n == 0 || o.Rules[n-1].id != ""
}

// Enabled reports whether the campaign has reply rules.
func (o *OnReply) Enabled() bool { return len(o.Rules) > 0 }

// UntilDuration returns how long after a run starts replies trigger rules.
func (o *OnReply) UntilDuration() time.Duration {
	if v, err := ParseDuration(o.Until); err == nil && v > 0 {
		return v
	}
	return DefaultReplyUntil
}

// Rule returns the rule with the given id.
func (o *OnReply) Rule(id string) (*ReplyRule, bool) {
	for i := range o.Rules {
		if o.Rules[i].id == id {
			return &o.Rules[i], true
		}
	}
	return nil, false
}

var ruleNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// positionalID reports whether name has the shape of a positional id (r1, r2, ...).
var positionalID = regexp.MustCompile(`^r[0-9]+$`)

// validateOnReply checks on_reply and gives every rule its id. root is the campaign's
// mapping node, for positions.
func (d *Definition) validateOnReply(path string, root *yaml.Node) Errors {
	o := &d.OnReply
	node := find(root, "on_reply")
	if node == nil {
		return nil
	}
	var errs Errors
	at := func(n *yaml.Node, field, msg string) {
		if n == nil {
			n = node
		}
		errs = append(errs, FieldError{File: path, Line: n.Line, Column: n.Column, Field: field, Msg: msg})
	}
	rulesNode, prefix := node, "on_reply"
	if !o.seq {
		rulesNode, prefix = find(node, "rules"), "on_reply.rules"
		errs = append(errs, unknownKeys(path, node, reflect.TypeOf(onReplyMapping{}), "on_reply.")...)
		if o.Until != "" {
			v, err := ParseDuration(o.Until)
			switch {
			case err != nil || v <= 0:
				at(find(node, "until"), "on_reply.until", fmt.Sprintf("%q is not a positive duration (e.g. 72h, 7d)", o.Until))
			case v > MaxReplyUntil:
				at(find(node, "until"), "on_reply.until", fmt.Sprintf("%q: at most %s", o.Until, limitIn(o.Until, MaxReplyUntil)))
			}
		}
	}
	if len(o.Rules) == 0 {
		at(rulesNode, prefix, "want at least one rule (button, list_row, keyword or any, and a follow-up)")
		return errs
	}
	if len(o.Rules) > MaxReplyRules {
		at(rulesNode, prefix, fmt.Sprintf("%d rules: at most %d", len(o.Rules), MaxReplyRules))
		return errs
	}
	ids := map[string]string{}
	for i := range o.Rules {
		r := &o.Rules[i]
		var rn *yaml.Node
		if rulesNode != nil && rulesNode.Kind == yaml.SequenceNode && i < len(rulesNode.Content) {
			rn = rulesNode.Content[i]
		}
		field := fmt.Sprintf("%s[%d]", prefix, i)
		errs = append(errs, unknownKeys(path, rn, reflect.TypeOf(ReplyRule{}), field+".")...)
		if !r.Message.IsZero() {
			errs = append(errs, r.Message.unknownKeys(path, field+".message")...)
		}
		// add reports a problem with the rule's key (the rule itself for "").
		add := func(key, msg string) {
			if key == "" {
				at(rn, field, msg)
				return
			}
			n := find(rn, strings.Split(key, ".")...)
			if n == nil {
				n = rn
			}
			at(n, field+"."+key, msg)
		}
		r.id = "r" + strconv.Itoa(i+1)
		r.field, r.node = field, rn
		if r.Name != "" {
			switch {
			case !ruleNameRE.MatchString(r.Name):
				add("name", fmt.Sprintf("%q: want lower-case letters, digits, '_' and '-', at most 32", r.Name))
			case positionalID.MatchString(r.Name):
				add("name", fmt.Sprintf("%q has the shape of a positional id (r1, r2, ...): choose another name", r.Name))
			default:
				r.id = r.Name
			}
		}
		if prev, dup := ids[r.id]; dup {
			add("name", fmt.Sprintf("%q is also the id of %s", r.id, prev))
		}
		ids[r.id] = field
		r.validateMatch(add)
		d.validateFollowUp(r, add)
		r.reads = ruleReads(r, rn, field, at)
	}
	o.cols = columnsRead(o.Rules)
	o.zoneCol = d.followupZoneColumn()
	return append(errs, hiddenRules(path, o.Rules)...)
}

// newFileProblems are the problems of a new campaign file (Parse, Load, Validate: `campaign
// validate`, `submit`, `send`, `plan`, the demo) that a campaign Herald has already taken
// (ParseStored: a submitted version, the copy kept of a run's file) is not refused for: rules
// added after versions were stored, which a stored version did not have to meet, so its
// scheduled runs and the replies to its runs go on after an upgrade. Its next version meets
// them when it is submitted.
//
// A once_per: campaign rule must have a name. Its slot (one follow-up per recipient across the
// campaign's runs, rkeys.FollowupOnce) is keyed by the rule's id and outlives the version that
// made it, and without a name the id is the rule's position: a rule inserted before it in the
// next version takes its position, and with it the slot, so the rule that held it answers the
// recipient a second time while the inserted one is refused as answered.
func (d *Definition) newFileProblems(path string) Errors {
	o := &d.OnReply
	if !o.checked() {
		return nil
	}
	var errs Errors
	for i := range o.Rules {
		r := &o.Rules[i]
		if r.OncePer != OncePerCampaign || r.Name != "" {
			continue
		}
		field, at := r.Where("", -1)
		errs = append(errs, FieldError{File: path, Line: at.Line, Column: at.Column, Field: field,
			Msg: fmt.Sprintf("once_per: campaign needs a name (name: ...): the rule answers a recipient once across "+
				"the campaign's runs, which is kept under its id from one version to the next, and without a name "+
				"its id is its position (%s), which another rule takes when a rule is added or removed before it", r.id)})
	}
	return errs
}

// hiddenRules reports what an earlier rule always matches first, so that it never matches
// (rules are tried in order, the first that matches wins): a rule after one with any: true,
// and a button, list_row or keyword value that an earlier rule of the same kind matches
// whatever the reply (the same button or row, a keyword holding an earlier keyword's words).
// A rule with suppress: true behind a rule without it is not reported: an opt-out is matched
// only among suppress: true rules, so it still reaches it (OptOutOnly says which such rules
// only an opt-out reaches).
func hiddenRules(path string, rules []ReplyRule) Errors {
	var errs Errors
	// Only what the bounds allow is compared (more is an error of its own): the comparison
	// is quadratic, and a hostile file of 30,000 keywords a rule would take minutes.
	rules = rules[:min(len(rules), MaxReplyRules)]
	report := func(r *ReplyRule, key string, i int, msg string) {
		field, at := r.Where(key, i)
		errs = append(errs, FieldError{File: path, Line: at.Line, Column: at.Column, Field: field, Msg: msg})
	}
	kinds := valueKinds()
	for i := range rules {
		r := &rules[i]
		behindAny := false
		for j := range rules[:i] {
			e := &rules[j]
			if e.Any && (e.Suppress || !r.Suppress) {
				report(r, "", -1, fmt.Sprintf("never matches: rule %s (%s) before it has any: true and matches every reply first", e.ID(), e.field))
				behindAny = true
				break
			}
		}
		if behindAny {
			continue
		}
		for _, m := range kinds {
		values:
			for k, v := range m.vals(r) {
				for j := range rules[:i] {
					e := &rules[j]
					if r.Suppress && !e.Suppress {
						continue
					}
					for _, w := range m.vals(e) {
						if m.coveredBy(v, w) {
							report(r, m.key, k, fmt.Sprintf("value %d %q never matches: rule %s (%s) before it matches %q first", k, v, e.ID(), e.field, w))
							continue values
						}
					}
				}
			}
		}
	}
	return errs
}

// valueKind is one kind of value a rule matches on (button, list_row, keyword): a rule's
// values of it, and when an earlier value matches every reply a value matches.
type valueKind struct {
	key       string
	vals      func(*ReplyRule) Words
	coveredBy func(v, earlier string) bool
}

// valueKinds returns the kinds of values rules match on, each rule's values within the
// bound of MaxReplyValues (more is an error of its own). Each value's keyword words are read
// once (normalising a 256-character value is not cheap, and each is compared with up to 620
// others).
func valueKinds() []valueKind {
	bounded := func(w Words) Words { return w[:min(len(w), MaxReplyValues)] }
	words := map[string][]string{}
	keywordWords := func(v string) []string {
		w, ok := words[v]
		if !ok {
			w = KeywordWords(v)
			words[v] = w
		}
		return w
	}
	return []valueKind{
		{"button", func(x *ReplyRule) Words { return bounded(x.Button) }, func(v, w string) bool {
			return strings.EqualFold(strings.Join(strings.Fields(v), " "), strings.Join(strings.Fields(w), " "))
		}},
		{"list_row", func(x *ReplyRule) Words { return bounded(x.ListRow) }, func(v, w string) bool {
			return strings.TrimSpace(v) == strings.TrimSpace(w)
		}},
		{"keyword", func(x *ReplyRule) Words { return bounded(x.Keyword) }, func(v, w string) bool {
			return holdsWords(keywordWords(v), keywordWords(w))
		}},
	}
}

// OptOutOnlyRule is a rule with suppress: true that only an opt-out reaches (OptOutOnly).
type OptOutOnlyRule struct {
	Rule *ReplyRule
	// Key is the rule's match: button, list_row or keyword.
	Key string
	// Before are the earlier rules without suppress that answer its other replies first: the
	// one with any: true (Any), or those that match its values, in order.
	Before []*ReplyRule
	Any    bool
}

// OptOutOnly returns the rules with suppress: true that only an opt-out reaches: those after
// a rule without suppress that has any: true, and those whose every value an earlier rule
// without suppress matches first. Match tries an opt-out (a reply the receiver took as one)
// only against the rules with suppress: true, and every other reply they match is answered by
// the earlier rule, so such a rule fires only when an opt-out matches one of its values
// (conversation.OptOutOnlyProblems judges that). A rule with any: true of its own (every
// opt-out reaches it), and one an earlier suppress: true rule hides (hiddenRules reports it),
// are not returned. The rules must have been validated.
func (o *OnReply) OptOutOnly() []OptOutOnlyRule {
	if !o.checked() {
		return nil
	}
	rules := o.Rules[:min(len(o.Rules), MaxReplyRules)]
	kinds := valueKinds()
	var out []OptOutOnlyRule
rules:
	for i := range rules {
		r := &rules[i]
		if !r.Suppress || r.Any {
			continue
		}
		var anyRule *ReplyRule
		for j := range rules[:i] {
			switch e := &rules[j]; {
			case e.Any && e.Suppress:
				continue rules
			case e.Any && anyRule == nil:
				anyRule = e
			}
		}
		if anyRule != nil {
			out = append(out, OptOutOnlyRule{Rule: r, Key: r.matchKey(), Before: []*ReplyRule{anyRule}, Any: true})
			continue
		}
		var before []*ReplyRule
		for _, m := range kinds {
			vals := m.vals(r)
			if len(vals) == 0 {
				continue
			}
		values:
			for _, v := range vals {
				for j := range rules[:i] {
					e := &rules[j]
					if e.Suppress {
						continue
					}
					for _, w := range m.vals(e) {
						if m.coveredBy(v, w) {
							if !slices.Contains(before, e) {
								before = append(before, e)
							}
							continue values
						}
					}
				}
				continue rules
			}
		}
		if len(before) > 0 {
			slices.SortFunc(before, func(a, b *ReplyRule) int { return indexOf(rules, a) - indexOf(rules, b) })
			out = append(out, OptOutOnlyRule{Rule: r, Key: r.matchKey(), Before: before})
		}
	}
	return out
}

// indexOf returns the position of r among rules.
func indexOf(rules []ReplyRule, r *ReplyRule) int {
	for i := range rules {
		if &rules[i] == r {
			return i
		}
	}
	return -1
}

// matchKey returns the key of the rule's match: button, list_row, keyword or any ("" for
// none).
func (r *ReplyRule) matchKey() string {
	switch {
	case r.Button != nil:
		return "button"
	case r.ListRow != nil:
		return "list_row"
	case r.Keyword != nil:
		return "keyword"
	case r.Any:
		return "any"
	}
	return ""
}

// holdsWords reports whether want appears as a consecutive run in words (a text holding the
// keyword words always holds want).
func holdsWords(words, want []string) bool {
	if len(want) == 0 {
		return false
	}
	for i := 0; i+len(want) <= len(words); i++ {
		if slices.Equal(words[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

// validateMatch checks that a rule has exactly one match and that its values are sound.
func (r *ReplyRule) validateMatch(add func(key, msg string)) {
	var set []string
	for _, m := range []struct {
		key  string
		vals Words
	}{{"button", r.Button}, {"list_row", r.ListRow}, {"keyword", r.Keyword}} {
		if m.vals == nil {
			continue
		}
		set = append(set, m.key)
		if len(m.vals) == 0 {
			add(m.key, "want at least one value")
		}
		if len(m.vals) > MaxReplyValues {
			add(m.key, fmt.Sprintf("%d values: at most %d", len(m.vals), MaxReplyValues))
			continue
		}
		seen := map[string]bool{}
		for j, v := range m.vals {
			norm := strings.ToLower(strings.TrimSpace(v))
			switch {
			case norm == "":
				add(m.key, fmt.Sprintf("value %d is empty", j))
			case utf8.RuneCountInString(v) > MaxReplyValue:
				add(m.key, fmt.Sprintf("value %d is longer than %d characters", j, MaxReplyValue))
			case m.key == "keyword" && len(KeywordWords(v)) == 0:
				add(m.key, fmt.Sprintf("value %d has no letter or digit: a keyword matches whole words", j))
			case seen[norm]:
				add(m.key, fmt.Sprintf("value %d is listed twice", j))
			}
			seen[norm] = true
		}
	}
	if r.Any {
		set = append(set, "any")
	}
	switch len(set) {
	case 0:
		add("", "a rule needs one match: button, list_row, keyword or any: true")
	case 1:
	default:
		add(set[1], fmt.Sprintf("a rule has one match; this one sets %s", strings.Join(set, " and ")))
	}
}

// validateFollowUp checks a rule's follow-up, delay, scope and labels.
func (d *Definition) validateFollowUp(r *ReplyRule, add func(key, msg string)) {
	hasMsg, hasTpl := !r.Message.IsZero(), r.Template != nil
	switch {
	case r.None && (hasMsg || hasTpl):
		add("none", "none: true sends nothing; remove message and template, or none")
	case !r.None && !hasMsg && !hasTpl:
		add("", "a rule needs a follow-up: message (a session message), template (+ parameters), or none: true")
	}
	if hasMsg {
		if n := r.Message.Node; n.Kind != yaml.MappingNode || len(n.Content) == 0 {
			add("message", "want a session message (a mapping such as {text: ...})")
		}
	}
	if !hasTpl && (len(r.Parameters.Values) > 0 || len(r.Parameters.Raw) > 0) {
		add("parameters", "parameters belong to a template follow-up; this rule has no template")
	}
	if hasTpl {
		t := r.Template
		if t.Name == "" {
			add("template", "template.name is required")
		} else if !templateNameRE.MatchString(t.Name) {
			add("template", fmt.Sprintf("template.name: %q: want lower-case letters, digits and '_', at most 512 (WhatsApp's rule for a template name)", t.Name))
		}
		if t.Language == "" {
			t.Language = d.Template.Language
		}
		if t.Language == "" {
			add("template", "template.language is required (e.g. en, en_US, pt_BR)")
		} else if msg := languageProblem(t.Language); msg != "" {
			add("template", "template.language: "+msg)
		}
		if len(t.Languages) > 0 || t.Category != "" {
			add("template", "a follow-up template takes name and language only (it is sent in the campaign's category)")
		}
		for name, tpl := range r.Parameters.Values {
			if paramOrder(name) < 0 {
				add("parameters", fmt.Sprintf("%s: unknown parameter name; want header_text|header_image|header_video|header_document, body_1..body_15, button_1_url or button_2_url", name))
				continue
			}
			if err := checkTemplate(name, tpl, false); err != nil {
				add("parameters", name+": "+err.Error())
			}
		}
		for _, p := range paramShapeProblems(r.Parameters) {
			add("parameters"+p.field, p.msg)
		}
		rawParams := r.Parameters.Raw
		if err := checkRenderSize(r.Parameters, paramNodes); err != nil {
			add("parameters", err.Error())
			if len(rawParams) > MaxRawParams {
				rawParams = nil // not checked one by one: each check runs the template
			}
		}
		for i, rp := range rawParams {
			if rp.Name == "" {
				add("parameters", fmt.Sprintf("raw[%d]: name is required", i))
			}
			if err := checkTemplate(rp.Name, rp.Value, true); err != nil {
				add("parameters", fmt.Sprintf("raw[%d].value: %s", i, err.Error()))
			}
		}
	}
	if r.Delay != "" {
		v, err := ParseDuration(r.Delay)
		switch {
		case err != nil || v < 0:
			add("delay", fmt.Sprintf("%q is not a duration (e.g. 10m, 2h, 7d)", r.Delay))
		case v > MaxReplyDelay:
			add("delay", fmt.Sprintf("%q: at most %s", r.Delay, limitIn(r.Delay, MaxReplyDelay)))
		// servicewindow.Length is WhatsApp's customer service window, inside which a session
		// message may be sent (reference 3.1).
		case v >= servicewindow.Length && hasMsg && !hasTpl:
			add("delay", fmt.Sprintf("%q: a session message this long after the reply always finds the customer's 24-hour window closed; add a template or shorten the delay", r.Delay))
		case v > MaxSessionReplyDelay && hasMsg && !hasTpl:
			add("delay", fmt.Sprintf("%q: a session message this long after the reply finds the customer's 24-hour window closing, and Herald sends one only while the window has a margin left (worker.window_margin) and time for the send's wait; at most %s, or add a template", r.Delay, limitIn(r.Delay, MaxSessionReplyDelay)))
		}
	}
	switch r.OncePer {
	case "", OncePerRun, OncePerCampaign:
	default:
		add("once_per", fmt.Sprintf("%q: want run or campaign", r.OncePer))
	}
	if r.Tag != "" && !ruleNameRE.MatchString(r.Tag) {
		add("tag", fmt.Sprintf("%q: want lower-case letters, digits, '_' and '-', at most 32", r.Tag))
	}
}

// KeywordWords splits text into the words a keyword match compares: maximal runs of letters,
// digits and combining marks, case-folded. It is the one definition of a "word" for keyword
// rules, shared by validation and the matcher.
func KeywordWords(text string) []string {
	var (
		out []string
		b   strings.Builder
	)
	flush := func() {
		if b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	for _, r := range norm.NFC.String(text) {
		if isWordRune(r) {
			b.WriteRune(foldRune(r))
			continue
		}
		flush()
	}
	flush()
	return out
}

// isWordRune reports whether r is part of a word: a letter, a digit or a combining mark (so
// an accent written as a separate code point stays in its word).
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// foldRune returns r's case-fold form: the lower case of the smallest rune of its simple
// case-folding orbit, so that every case of a letter (Σ, σ, ς; K, k and the Kelvin sign)
// folds alike.
func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return unicode.ToLower(least)
}

// Audience columns in follow-ups. A follow-up is created by the webhook receiver, which has no
// audience file: the columns its rules read travel with the run's sends instead. Validation
// lists them (OnReply.Columns), expansion puts their values in each send payload
// (SendPayload.ReplyCols), the worker stores them for the recipient in the run just before
// the request, and the receiver renders the follow-up from them and the reply.

// Reply fields: what a follow-up reads of the reply itself. A follow-up reading one of these
// names reads the reply, never an audience column of that name.
const (
	// ReplyFieldReply is what the customer sent: the typed text, else the button's or the row's text.
	ReplyFieldReply = "reply"
	// ReplyFieldButton is the tapped button's text (or payload).
	ReplyFieldButton = "button"
	// ReplyFieldListRow is the chosen list row's id.
	ReplyFieldListRow = "list_row"
)

// IsReplyField reports whether name is one of the reply fields.
func IsReplyField(name string) bool {
	return name == ReplyFieldReply || name == ReplyFieldButton || name == ReplyFieldListRow
}

// columnRead is one name a rule's follow-up reads from its row, and where.
type columnRead struct {
	name  string
	field string // e.g. on_reply.rules[2].message.text
	at    Position
}

// Columns returns the audience columns the rules' follow-ups read (reply fields excluded),
// sorted; none when they read only the reply.
func (o *OnReply) Columns() []string { return o.cols }

// Carries reports whether the run's sends carry audience columns for the follow-ups
// (PickColumns): the columns the rules read, or the time zone column of delayed follow-ups.
func (o *OnReply) Carries() bool { return len(o.cols) > 0 || o.zoneCol != "" }

// PickColumns returns the values of the columns the follow-ups read from an audience row
// (a column the row lacks as ""), and of the audience's time zone column when delayed
// follow-ups read it for the send hours (FollowupZoneColumn); nil when they need none: what a
// send payload carries.
func (o *OnReply) PickColumns(row map[string]string) map[string]string {
	if !o.Carries() {
		return nil
	}
	out := make(map[string]string, len(o.cols)+1)
	for _, c := range o.cols {
		out[c] = row[c]
	}
	if o.zoneCol != "" {
		out[o.zoneCol] = row[o.zoneCol]
	}
	return out
}

// FollowupZoneColumn is the audience column a delayed follow-up reads its recipient's zone
// from, as the campaign's sends read theirs (ZoneFor): audience.timezone, when the campaign
// has send hours in the recipient's zone and a rule's follow-up has a delay; else "". A
// follow-up with a delay is sent within the campaign's send hours, and the receiver that
// creates it has no audience file: the run's sends carry the column for it, with the columns
// the rules read (PickColumns).
func (o *OnReply) FollowupZoneColumn() string { return o.zoneCol }

// followupZoneColumn is FollowupZoneColumn, worked out from the definition.
func (d *Definition) followupZoneColumn() string {
	w := d.SendHoursSpec
	if d.Audience.Timezone == "" || (w.From == "" && w.To == "") || (w.Timezone != "" && w.Timezone != "recipient") {
		return ""
	}
	for i := range d.OnReply.Rules {
		if r := &d.OnReply.Rules[i]; !r.None && r.DelayDuration() > 0 {
			return d.Audience.Timezone
		}
	}
	return ""
}

// columnsRead returns the sorted audience columns the rules read.
func columnsRead(rules []ReplyRule) []string {
	seen := map[string]bool{}
	var out []string
	for i := range rules {
		for _, rd := range rules[i].reads {
			if !IsReplyField(rd.name) && !seen[rd.name] {
				seen[rd.name] = true
				out = append(out, rd.name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ruleReads lists the names rule r's message and parameters read from the row, each with
// the field and position it is read at. A template that reads the row as a whole, or a
// column by a computed name, is a problem: the columns to carry must be known before the
// run. Templates that do not compile are left to the checks that report them.
func ruleReads(r *ReplyRule, rn *yaml.Node, field string, at func(n *yaml.Node, field, msg string)) []columnRead {
	var out []columnRead
	read := func(sub, text string) {
		t, err := parseParam(sub, text)
		if err != nil {
			return
		}
		names, dynamic := rowReads(t.Tree)
		var pos Position
		n := locate(rn, sub)
		if n != nil {
			pos = Position{n.Line, n.Column}
		}
		if dynamic {
			at(n, field+"."+sub, "reads the audience row as a whole or a column by a computed name; a follow-up reads named columns (.first_name, or index . \"first name\")")
		}
		for _, name := range names {
			out = append(out, columnRead{name: name, field: field + "." + sub, at: pos})
		}
	}
	if n := r.Message.Node; n != nil && n.Kind == yaml.MappingNode {
		var c connectly.SessionContent
		if n.Decode(&c) == nil {
			_, _ = c.MapStrings(func(f, s string) (string, error) {
				read("message."+f, s)
				return s, nil
			})
		}
	}
	if r.Template != nil {
		names := make([]string, 0, len(r.Parameters.Values))
		for name := range r.Parameters.Values {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			read("parameters."+name, r.Parameters.Values[name])
		}
		for i, rp := range r.Parameters.Raw {
			read(fmt.Sprintf("parameters.raw[%d].value", i), rp.Value)
		}
	}
	return out
}

// rowReads lists the row names a template reads (.name, $.name, index . "name"), and says
// whether it also reads the row in a way no name gives: the row itself (. or $ as a value),
// or index with a computed key. Inside {{with}}, dot is the with's value, not the row.
func rowReads(tree *parse.Tree) (names []string, dynamic bool) {
	isRow := func(n parse.Node, rowDot bool) bool {
		switch n := n.(type) {
		case *parse.DotNode:
			return rowDot
		case *parse.VariableNode:
			return len(n.Ident) == 1 && n.Ident[0] == "$"
		}
		return false
	}
	var walk func(n parse.Node, rowDot bool)
	walk = func(n parse.Node, rowDot bool) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c, rowDot)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe, rowDot)
		case *parse.PipeNode:
			if n != nil {
				for _, c := range n.Cmds {
					walk(c, rowDot)
				}
			}
		case *parse.CommandNode:
			args := n.Args
			if id, ok := args[0].(*parse.IdentifierNode); ok && id.Ident == "index" && len(args) >= 3 && isRow(args[1], rowDot) {
				if s, ok := args[2].(*parse.StringNode); ok {
					names = append(names, s.Text)
					args = args[3:]
				} else {
					dynamic = true
				}
			}
			for _, a := range args {
				walk(a, rowDot)
			}
		case *parse.ChainNode:
			if isRow(n.Node, rowDot) && len(n.Field) > 0 {
				names = append(names, n.Field[0])
				return
			}
			walk(n.Node, rowDot)
		case *parse.IfNode:
			walk(n.Pipe, rowDot)
			walk(n.List, rowDot)
			walk(n.ElseList, rowDot)
		case *parse.WithNode:
			walk(n.Pipe, rowDot)
			walk(n.List, false)
			walk(n.ElseList, rowDot)
		case *parse.DotNode:
			dynamic = dynamic || rowDot
		case *parse.FieldNode:
			if rowDot {
				names = append(names, n.Ident[0])
			}
		case *parse.VariableNode:
			if n.Ident[0] == "$" {
				if len(n.Ident) > 1 {
					names = append(names, n.Ident[1])
				} else {
					dynamic = true
				}
			}
		}
	}
	if tree != nil && tree.Root != nil {
		walk(tree.Root, true)
	}
	return names, dynamic
}

// CheckReplyColumns checks the columns the on_reply rules read against the audience's header:
// each must be a column of the audience, and a rule reading a reply field (reply, button,
// list_row) must not find an audience column of that name too, since the follow-up would
// read the reply's and not the column. Each problem is a FieldError at the rule's field. A
// JSON Lines audience has no header and is not checked (a row without the column renders it
// empty). It returns nil, Errors, or the *AudienceError of a file that cannot be read.
func CheckReplyColumns(d *Definition) error {
	if len(d.OnReply.reads()) == 0 {
		return nil
	}
	header, err := audienceHeader(d)
	if err != nil {
		return err
	}
	if errs := replyColumnProblems(d, header); len(errs) > 0 {
		return errs
	}
	return nil
}

// reads returns the names the rules' follow-ups read, in the rules' order.
func (o *OnReply) reads() []columnRead {
	var reads []columnRead
	for i := range o.Rules {
		reads = append(reads, o.Rules[i].reads...)
	}
	return reads
}

// replyColumnProblems checks the columns the on_reply rules read against the audience's
// header (nil: a JSON Lines audience, not checked), as CheckReplyColumns says.
func replyColumnProblems(d *Definition, header []string) Errors {
	if header == nil {
		return nil
	}
	have := make(map[string]bool, len(header))
	for _, h := range header {
		have[h] = true
	}
	var cols []columnRead
	var errs Errors
	for _, rd := range d.OnReply.reads() {
		switch reply := IsReplyField(rd.name); {
		case reply && have[rd.name]:
			errs = append(errs, FieldError{File: d.Path, Line: rd.at.Line, Column: rd.at.Column, Field: rd.field,
				Msg: fmt.Sprintf("reads .%s, the reply's %s, and the audience also has a column %s: rename the column so a follow-up can read it", rd.name, rd.name, colName(rd.name))})
		case !reply:
			cols = append(cols, rd)
		}
	}
	errs = append(errs, columnProblems(d, cols, header)...)
	if len(errs) == 0 {
		return nil
	}
	return sortErrors(errs)
}

// FirstRowReplyColumns returns what PickColumns gives for the audience's first row that
// would be sent to (the row campaign plan renders follow-ups with): among the first
// firstRowScan rows, else the first row. Nil when the sends carry no column for the follow-ups
// or the file has no readable row. (Plan renders each follow-up for every row: PlanReport.FollowupProblems.)
func (d *Definition) FirstRowReplyColumns() map[string]string {
	if !d.OnReply.Carries() {
		return nil
	}
	ar, err := OpenAudience(d)
	if err != nil {
		return nil
	}
	defer ar.Close()
	var first map[string]string
	for range firstRowScan {
		row, err := ar.NextRaw()
		if err != nil {
			break
		}
		cols := d.OnReply.PickColumns(row.Cols)
		if first == nil {
			first = cols
		}
		if ar.Resolve(&row); row.SkipReason == "" {
			return cols
		}
	}
	return first
}

// firstRowScan is how many rows FirstRowReplyColumns reads for one that would be sent to.
const firstRowScan = 1000
