package campaigns

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/words"
)

// Follow-ups checked against every row. A rule's follow-up is rendered, when the customer
// replies, from the recipient's audience columns (those OnReply.Columns lists, as the run's
// send carried them) and the reply. Plan (so campaign plan and campaign validate --rows)
// renders each rule's follow-up for every recipient, for a reply that matches the rule
// (SampleReplyFields): a recipient whose follow-up would not render would be skipped
// invalid_params when they reply. A rule that reads no column renders alike for every
// recipient: it is rendered once.
//
// The check is bounded per row and per rule, whatever the campaign file and the audience:
//   - Work: the follow-ups rendered with every row have at most maxFollowupRowNodes template
//     parts together (in file order). A rule past that is rendered with the first
//     recipient's row only, and the plan says so (PlanReport.FollowupNote). All of a row's
//     renders read one map of its columns, filled once a row.
//   - Memory: a row's result is one bit a rule (resolved.followups), the errors are not kept
//     (the tally renders again the few rows it gives as examples), and the tally keeps a bit
//     a row a failing rule (rowSet): at most MaxReplyRules bits a row to the end of the pass.

// maxFollowupRowNodes bounds the template parse nodes of the follow-ups rendered with every
// row, summed over the rules: a quarter of what one render of the campaign's own parameters
// may have (maxRenderNodes), so the check adds at most about as much again as the campaign's
// render (at about 0.25 µs a node, ~0.5 ms a row). A real rule has some dozen parts
// ({{ .first_name | default "there" }} is 6): 32 rules of 64 parts each fit.
const maxFollowupRowNodes = maxRenderNodes / 4

// A row's failing rules are a bit mask of the check's rules.
var _ [64 - MaxReplyRules]struct{}

// FollowupProblem is an on_reply rule whose follow-up would not render for some recipients.
type FollowupProblem struct {
	Rule string `json:"rule"`
	// Failing counts the recipients whose follow-up would not render, of Recipients checked:
	// those the campaign would be sent to (campaign plan also takes out the suppressed and
	// the expired, WithoutRows; not those the frequency caps would hold back).
	Failing    int `json:"failing"`
	Recipients int `json:"recipients"`
	// FirstRowOnly says the rule's follow-up was rendered with the first recipient's row
	// only (it is over the check's bound, PlanReport.FollowupNote): Failing and Recipients
	// are then 1.
	FirstRowOnly bool `json:"first_row_only,omitempty"`
	// Examples are the first of those rows, each with why (Reason invalid_params, the
	// follow-up's skip reason).
	Examples []SkippedRow `json:"examples"`
	// field and at are where the rule is written (ReplyRule.Where).
	field string
	at    Position
	// rows are the numbers of the failing rows (WithoutRows).
	rows rowSet
}

// rowSet is a set of row numbers: a bit a row, up to the highest row added.
type rowSet struct {
	words []uint64
	n     int
}

// add adds row r (r >= 0), reporting whether it was not in the set yet.
func (s *rowSet) add(r int) bool {
	w := r >> 6
	if w >= len(s.words) {
		s.words = slices.Grow(s.words, w+1-len(s.words))[:w+1]
	}
	bit := uint64(1) << (r & 63)
	if s.words[w]&bit != 0 {
		return false
	}
	s.words[w] |= bit
	s.n++
	return true
}

func (s *rowSet) has(r int) bool {
	w := r >> 6
	return r >= 0 && w < len(s.words) && s.words[w]&(uint64(1)<<(r&63)) != 0
}

// without returns a copy of s without the rows gone.
func (s *rowSet) without(gone []int32) rowSet {
	out := rowSet{words: slices.Clone(s.words)}
	for _, r := range gone {
		if w := int(r) >> 6; r >= 0 && w < len(out.words) {
			out.words[w] &^= uint64(1) << (r & 63)
		}
	}
	for _, w := range out.words {
		out.n += bits.OnesCount64(w)
	}
	return out
}

// WithoutRows returns problems without the rows gone (their numbers, ascending: recipients
// campaign plan finds suppressed or expired, who are never sent the campaign and so never
// reply) out of recipients left: the failing counts and examples of the others, and only the
// rules still failing for some.
func WithoutRows(problems []FollowupProblem, gone []int32, recipients int) []FollowupProblem {
	var out []FollowupProblem
	for _, p := range problems {
		kept := p.rows.without(gone)
		if kept.n == 0 {
			continue
		}
		examples := p.Examples[:0:0]
		for _, e := range p.Examples {
			if _, found := slices.BinarySearch(gone, int32(e.Row)); !found {
				examples = append(examples, e)
			}
		}
		p.rows, p.Failing, p.Examples = kept, kept.n, examples
		if !p.FirstRowOnly {
			p.Recipients = recipients
		}
		out = append(out, p)
	}
	return out
}

// SampleReplyFields returns the reply fields (ReplyFieldReply, ReplyFieldButton,
// ReplyFieldListRow) of a reply that matches the rule, as campaign plan renders a follow-up
// for: a tap of its first button, a choice of its first list row, its first keyword typed,
// or "hello" for a rule matching any reply. (conversation.ReplyColumns gives the same of the
// reply conversation.PlanFollowups renders.)
func (r *ReplyRule) SampleReplyFields() map[string]string {
	f := map[string]string{ReplyFieldReply: "hello", ReplyFieldButton: "", ReplyFieldListRow: ""}
	switch {
	case len(r.Button) > 0:
		f[ReplyFieldReply], f[ReplyFieldButton] = r.Button[0], r.Button[0]
	case len(r.ListRow) > 0:
		f[ReplyFieldReply], f[ReplyFieldListRow] = r.ListRow[0], r.ListRow[0]
	case len(r.Keyword) > 0:
		f[ReplyFieldReply] = r.Keyword[0]
	}
	return f
}

// followupCheck renders the follow-ups of a campaign's rules for its rows. Its renderers are
// shared by Plan's resolvers; each resolver has its own followupRows.
type followupCheck struct {
	cols  []string
	rules []followupRule
	// rowNodes are the parse nodes of the perRow rules rendered with every row (at most
	// maxFollowupRowNodes), onceNodes those of the rules rendered with the first row only.
	perRow, rowNodes, onceNodes int
	// emptyFails is check's result for a row whose columns are all empty.
	emptyFails uint64
}

// followupRule is one rule's follow-up, as conversation.Payload renders it: the template's
// parameters, then the session message.
type followupRule struct {
	rule    *ReplyRule
	params  *Renderer
	session *SessionRenderer
	// reply are the sample reply's fields (SampleReplyFields).
	reply map[string]string
	// perRow says the follow-up reads a column and is rendered with every row; once that it
	// reads a column but is rendered with the first recipient's row only (over the bound);
	// neither that err is its one rendering's error.
	perRow, once bool
	// nodes are the parse nodes of its templates.
	nodes int
	err   error
}

// newFollowupCheck returns the check of def's rules' follow-ups, nil when no rule sends one.
func newFollowupCheck(def *Definition) *followupCheck {
	fc := &followupCheck{cols: def.OnReply.Columns()}
	for i := range def.OnReply.Rules {
		r := &def.OnReply.Rules[i]
		if r.None || (r.Template == nil && r.Message.IsZero()) {
			continue
		}
		fr := followupRule{rule: r, reply: r.SampleReplyFields()}
		for _, rd := range r.reads {
			fr.perRow = fr.perRow || !IsReplyField(rd.name)
		}
		if r.Template != nil {
			fr.params, fr.err = NewRenderer(&Definition{Parameters: r.Parameters})
		}
		if fr.err == nil && !r.Message.IsZero() {
			content, err := r.Message.Content()
			if err != nil {
				fr.err = fmt.Errorf("on_reply rule %s: %w", r.ID(), err)
			} else {
				fr.session, fr.err = NewSessionRenderer(content)
			}
		}
		fr.nodes = fr.countNodes()
		switch {
		case fr.err != nil:
			fr.perRow = false
		case !fr.perRow:
			fr.err = fr.render(fc.emptyCols(fr.reply))
		case fc.rowNodes+fr.nodes > maxFollowupRowNodes:
			fr.perRow, fr.once = false, true
			fc.onceNodes += fr.nodes
		default:
			fc.perRow++
			fc.rowNodes += fr.nodes
		}
		fc.rules = append(fc.rules, fr)
	}
	if len(fc.rules) == 0 {
		return nil
	}
	if fc.perRow > 0 {
		w := fc.rows()
		for i := range fc.rules {
			if fc.rules[i].perRow && w.render(i) != nil {
				fc.emptyFails |= 1 << i
			}
		}
	}
	return fc
}

// countNodes counts the parse nodes of the follow-up's templates, as the sandbox does.
func (fr *followupRule) countNodes() int {
	n := 0
	if fr.params != nil {
		for _, p := range fr.params.params {
			n += templateNodes(p.tpl)
		}
	}
	if fr.session != nil {
		for _, t := range fr.session.fields {
			n += templateNodes(t)
		}
	}
	return n
}

// emptyCols returns the columns a follow-up renders from: every column the rules read,
// empty, and the reply's fields.
func (fc *followupCheck) emptyCols(reply map[string]string) map[string]string {
	m := make(map[string]string, len(fc.cols)+len(reply))
	for _, c := range fc.cols {
		m[c] = ""
	}
	for k, v := range reply {
		m[k] = v
	}
	return m
}

// note says which rules are rendered with the first recipient's row only; "" when none.
func (fc *followupCheck) note() string {
	if fc == nil || fc.onceNodes == 0 {
		return ""
	}
	var ids []string
	for _, fr := range fc.rules {
		if fr.once {
			ids = append(ids, fr.rule.ID())
		}
	}
	return fmt.Sprintf("on_reply %s %s: rendered with the first recipient's row only, not every recipient's (%d template parts together; the check renders at most %d a row)",
		words.Plural(len(ids), "rule", "rules"), strings.Join(ids, ", "), fc.onceNodes, maxFollowupRowNodes)
}

// render renders the follow-up from cols, as conversation.Payload does.
func (fr *followupRule) render(cols map[string]string) error {
	if fr.params != nil {
		if _, err := fr.params.Render(cols); err != nil {
			return err
		}
	}
	if fr.session != nil {
		if _, err := fr.session.Content(cols); err != nil {
			return err
		}
	}
	return nil
}

// followupRows renders the follow-ups of one goroutine's rows from one map of columns, reused
// from row to row and from rule to rule: a row's columns are copied into it once, and each
// rule sets the reply's fields (never a column: OnReply.Columns leaves them out) before it
// renders. A render only reads the map.
type followupRows struct {
	fc   *followupCheck
	cols map[string]string
	// prev are the values of the columns of the last row rendered (nil before one), and
	// prevFails its result.
	prev      []string
	prevFails uint64
	// renders counts the follow-ups rendered (for tests).
	renders int
}

func (fc *followupCheck) rows() *followupRows {
	if fc == nil {
		return nil
	}
	return &followupRows{fc: fc, cols: fc.emptyCols(fc.rules[0].reply)}
}

// setRow copies the columns the rules read from a row.
func (w *followupRows) setRow(row map[string]string) {
	for _, c := range w.fc.cols {
		w.cols[c] = row[c]
	}
}

// render renders rule i with the row set last.
func (w *followupRows) render(i int) error {
	fr := &w.fc.rules[i]
	for k, v := range fr.reply {
		w.cols[k] = v
	}
	w.renders++
	return fr.render(w.cols)
}

// check returns the rules rendered with every row whose follow-up would not render for a row
// of columns row, a bit each (bit i for the check's rule i); 0 when every one would. (A rule
// reading no column fails for every row or none, and one over the bound is rendered with the
// first recipient's only: followupTally.add counts them.)
//
// A follow-up depends only on the columns the rules read (the helpers are functions of their
// arguments): a row whose columns are all empty, or the same as the row checked before, gets
// the result of that row without a render. (An audience often leaves a column empty in many
// rows, and those are the rows that fail.)
func (w *followupRows) check(row map[string]string) uint64 {
	if w == nil || w.fc.perRow == 0 {
		return 0
	}
	same, empty := w.prev != nil, true
	for i, c := range w.fc.cols {
		v := row[c]
		same = same && v == w.prev[i]
		empty = empty && v == ""
	}
	switch {
	case same:
		return w.prevFails
	case empty:
		return w.fc.emptyFails
	}
	w.setRow(row)
	var fails uint64
	for i := range w.fc.rules {
		if w.fc.rules[i].perRow && w.render(i) != nil {
			fails |= 1 << i
		}
	}
	if w.prev == nil {
		w.prev = make([]string, len(w.fc.cols))
	}
	for i, c := range w.fc.cols {
		w.prev[i] = row[c]
	}
	w.prevFails = fails
	return fails
}

// followupTally counts, in file order, the recipients whose follow-ups would not render.
type followupTally struct {
	fc *followupCheck
	// w renders again the rows given as examples (their errors are not kept), and the rules
	// rendered with the first recipient's row only.
	w     *followupRows
	rules []ruleTally
	max   int
	// first says the first recipient has been counted.
	first bool
}

// ruleTally is one rule's failing recipients.
type ruleTally struct {
	rows     rowSet
	examples []SkippedRow
}

func newFollowupTally(fc *followupCheck, examples int) *followupTally {
	if fc == nil {
		return nil
	}
	return &followupTally{fc: fc, w: fc.rows(), rules: make([]ruleTally, len(fc.rules)), max: examples}
}

// add counts a recipient's failing follow-ups: those of fails (check's), those that fail
// whatever the row, and, for the first recipient, those rendered with its row only.
func (t *followupTally) add(row Row, fails uint64) {
	if t == nil {
		return
	}
	first := !t.first
	t.first = true
	set := false
	for i := range t.fc.rules {
		fr := &t.fc.rules[i]
		var err error
		switch {
		case fr.err != nil:
			err = fr.err
		case fr.once && first, fails&(1<<i) != 0:
			if !set {
				t.w.setRow(row.Cols)
				set = true
			}
			if fr.once || len(t.rules[i].examples) < t.max {
				err = t.w.render(i)
			}
			if err == nil && !fr.once {
				// Not an example: the check's error is not needed.
				t.rules[i].rows.add(row.N)
				continue
			}
		}
		if err != nil {
			t.fail(row, i, err)
		}
	}
}

func (t *followupTally) fail(row Row, rule int, err error) {
	rt := &t.rules[rule]
	if !rt.rows.add(row.N) {
		return // the rule failed this row already
	}
	if len(rt.examples) < t.max {
		rt.examples = append(rt.examples, SkippedRow{Row: row.N, Line: row.Line, Reason: "invalid_params", Detail: err.Error()})
	}
}

// problems returns the rules that failed for some of recipients, in the rules' order.
func (t *followupTally) problems(recipients int) []FollowupProblem {
	if t == nil {
		return nil
	}
	var out []FollowupProblem
	for i := range t.rules {
		rt := &t.rules[i]
		if rt.rows.n == 0 {
			continue
		}
		fr := &t.fc.rules[i]
		field, at := fr.rule.Where("", -1)
		p := FollowupProblem{Rule: fr.rule.ID(), Failing: rt.rows.n, Recipients: recipients, Examples: rt.examples,
			field: field, at: at, rows: rt.rows}
		if fr.once {
			p.FirstRowOnly, p.Recipients = true, 1
		}
		out = append(out, p)
	}
	return out
}

// text says what the problem is, on one line, with the audience's name for the examples.
func (p FollowupProblem) text(audience string) string {
	var b strings.Builder
	if p.FirstRowOnly {
		fmt.Fprintf(&b, "the follow-up of rule %s would not render for the first recipient, who would get none when they reply (skipped invalid_params; rendered with that row only, its follow-up being over the bound of the check)",
			p.Rule)
	} else {
		fmt.Fprintf(&b, "the follow-up of rule %s would not render for %d of %d recipients, who would get none when they reply (skipped invalid_params)",
			p.Rule, p.Failing, p.Recipients)
	}
	for _, e := range p.Examples {
		fmt.Fprintf(&b, "; %s:%d: row %d: %s", logx.Escape(audience), e.Line, e.Row, logx.EscapeControl(e.Detail))
	}
	return b.String()
}

// FollowupProblem says which on_reply rules' follow-ups would not render for some recipients
// (FollowupProblems), nil when none: campaign plan's problem.
func (r PlanReport) FollowupProblem() error {
	if len(r.FollowupProblems) == 0 {
		return nil
	}
	parts := make([]string, len(r.FollowupProblems))
	for i, p := range r.FollowupProblems {
		parts[i] = "on_reply: " + p.text(r.Audience)
	}
	return fmt.Errorf("%s", strings.Join(parts, "\n"))
}

// FollowupErrors are FollowupProblems as campaign validate --rows reports them: one problem
// at each failing rule's place in file.
func (r PlanReport) FollowupErrors(file string) Errors {
	var errs Errors
	for _, p := range r.FollowupProblems {
		errs = append(errs, FieldError{File: file, Line: p.at.Line, Column: p.at.Column, Field: p.field, Msg: p.text(r.Audience)})
	}
	return errs
}
