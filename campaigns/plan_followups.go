package campaigns

import (
	"fmt"
	"slices"
	"strings"

	"github.com/heraldmsg/herald/internal/logx"
)

// Follow-ups checked against every row. A rule's follow-up is rendered, when the customer
// replies, from the recipient's audience columns (those OnReply.Columns lists, as the run's
// send carried them) and the reply. Plan (so campaign plan and campaign validate --rows)
// renders each rule's follow-up for every recipient, for a reply that matches the rule
// (SampleReplyFields): a recipient whose follow-up would not render would be skipped
// invalid_params when they reply. A rule that reads no column renders alike for every
// recipient: it is rendered once.

// FollowupProblem is an on_reply rule whose follow-up would not render for some recipients.
type FollowupProblem struct {
	Rule string `json:"rule"`
	// Failing counts the recipients whose follow-up would not render, of Recipients checked:
	// those the campaign would be sent to (campaign plan also takes out the suppressed and
	// the expired, WithoutRows; not those the frequency caps would hold back).
	Failing    int `json:"failing"`
	Recipients int `json:"recipients"`
	// Examples are the first of those rows, each with why (Reason invalid_params, the
	// follow-up's skip reason).
	Examples []SkippedRow `json:"examples"`
	// field and at are where the rule is written (ReplyRule.Where).
	field string
	at    Position
	// rows are the numbers of the failing rows, ascending (WithoutRows).
	rows []int32
}

// WithoutRows returns problems without the rows gone (their numbers, ascending: recipients
// campaign plan finds suppressed or expired, who are never sent the campaign and so never
// reply) out of recipients left: the failing counts and examples of the others, and only the
// rules still failing for some.
func WithoutRows(problems []FollowupProblem, gone []int32, recipients int) []FollowupProblem {
	var out []FollowupProblem
	for _, p := range problems {
		kept := p.rows[:0:0]
		j := 0
		for _, r := range p.rows {
			for j < len(gone) && gone[j] < r {
				j++
			}
			if j < len(gone) && gone[j] == r {
				continue
			}
			kept = append(kept, r)
		}
		if len(kept) == 0 {
			continue
		}
		examples := p.Examples[:0:0]
		for _, e := range p.Examples {
			if _, found := slices.BinarySearch(gone, int32(e.Row)); !found {
				examples = append(examples, e)
			}
		}
		p.rows, p.Failing, p.Recipients, p.Examples = kept, len(kept), recipients, examples
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
}

// followupRule is one rule's follow-up, as conversation.Payload renders it: the template's
// parameters, then the session message.
type followupRule struct {
	rule    *ReplyRule
	params  *Renderer
	session *SessionRenderer
	// perRow says the follow-up reads a column; otherwise err is its one rendering's error.
	perRow bool
	err    error
}

// newFollowupCheck returns the check of def's rules' follow-ups, nil when no rule sends one.
func newFollowupCheck(def *Definition) *followupCheck {
	fc := &followupCheck{cols: def.OnReply.Columns()}
	for i := range def.OnReply.Rules {
		r := &def.OnReply.Rules[i]
		if r.None || (r.Template == nil && r.Message.IsZero()) {
			continue
		}
		fr := followupRule{rule: r}
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
		if fr.err != nil {
			fr.perRow = false
		} else if !fr.perRow {
			fr.err = fr.render(fc.rowCols(r))
		}
		fc.rules = append(fc.rules, fr)
	}
	if len(fc.rules) == 0 {
		return nil
	}
	return fc
}

// rowCols returns the columns a follow-up of r renders from: every column the rules read,
// empty, and the sample reply's fields.
func (fc *followupCheck) rowCols(r *ReplyRule) map[string]string {
	m := make(map[string]string, len(fc.cols)+3)
	for _, c := range fc.cols {
		m[c] = ""
	}
	for k, v := range r.SampleReplyFields() {
		m[k] = v
	}
	return m
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

// followupFail is one rule's follow-up failing for a row: the rule's index in the check.
type followupFail struct {
	rule int
	err  error
}

// followupRows renders the follow-ups of one resolver's rows: each rule's columns in a map of
// its own, reused from row to row. The keys are the same for every row, and the reply's
// fields set once stay: the columns copied (OnReply.Columns) are never reply fields.
type followupRows struct {
	fc   *followupCheck
	cols []map[string]string
}

func (fc *followupCheck) rows() *followupRows {
	if fc == nil {
		return nil
	}
	w := &followupRows{fc: fc, cols: make([]map[string]string, len(fc.rules))}
	for i, fr := range fc.rules {
		if fr.perRow {
			w.cols[i] = fc.rowCols(fr.rule)
		}
	}
	return w
}

// check returns the rules reading a column whose follow-up would not render for a row of
// columns row; nil when every one would. (A rule reading none fails for every row or none:
// followupTally.add counts it.)
func (w *followupRows) check(row map[string]string) []followupFail {
	if w == nil {
		return nil
	}
	var out []followupFail
	for i := range w.fc.rules {
		fr := &w.fc.rules[i]
		if !fr.perRow {
			continue
		}
		cols := w.cols[i]
		for _, c := range w.fc.cols {
			cols[c] = row[c]
		}
		if err := fr.render(cols); err != nil {
			out = append(out, followupFail{rule: i, err: err})
		}
	}
	return out
}

// followupTally counts, in file order, the recipients whose follow-ups would not render.
type followupTally struct {
	fc *followupCheck
	// failing are the numbers of each rule's failing rows, ascending.
	failing  [][]int32
	examples [][]SkippedRow
	max      int
}

func newFollowupTally(fc *followupCheck, examples int) *followupTally {
	if fc == nil {
		return nil
	}
	return &followupTally{fc: fc, failing: make([][]int32, len(fc.rules)), examples: make([][]SkippedRow, len(fc.rules)), max: examples}
}

// add counts a recipient's failing follow-ups: those of fails (check's), and those that
// fail whatever the row.
func (t *followupTally) add(row Row, fails []followupFail) {
	if t == nil {
		return
	}
	for i := range t.fc.rules {
		if fr := &t.fc.rules[i]; fr.err != nil {
			t.fail(row, i, fr.err)
		}
	}
	for _, f := range fails {
		t.fail(row, f.rule, f.err)
	}
}

func (t *followupTally) fail(row Row, rule int, err error) {
	if f := t.failing[rule]; len(f) > 0 && f[len(f)-1] == int32(row.N) {
		return // the rule failed this row already
	}
	t.failing[rule] = append(t.failing[rule], int32(row.N))
	if len(t.examples[rule]) < t.max {
		t.examples[rule] = append(t.examples[rule], SkippedRow{Row: row.N, Line: row.Line, Reason: "invalid_params", Detail: err.Error()})
	}
}

// problems returns the rules that failed for some of recipients, in the rules' order.
func (t *followupTally) problems(recipients int) []FollowupProblem {
	if t == nil {
		return nil
	}
	var out []FollowupProblem
	for i, rows := range t.failing {
		if len(rows) == 0 {
			continue
		}
		r := t.fc.rules[i].rule
		field, at := r.Where("", -1)
		out = append(out, FollowupProblem{Rule: r.ID(), Failing: len(rows), Recipients: recipients, Examples: t.examples[i],
			field: field, at: at, rows: rows})
	}
	return out
}

// text says what the problem is, on one line, with the audience's name for the examples.
func (p FollowupProblem) text(audience string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the follow-up of rule %s would not render for %d of %d recipients, who would get none when they reply (skipped invalid_params)",
		p.Rule, p.Failing, p.Recipients)
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
