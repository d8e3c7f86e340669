package campaigns

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/logx"
)

// Validation is one campaign file's result of Validate, as `campaign validate --json` prints it.
type Validation struct {
	File string `json:"file"`
	OK   bool   `json:"ok"`
	// Errors are the problems as text, "file:line:col: field: message" where they have a
	// place, as the first form of --json gave them; Problems are the same problems, in the same
	// order (the file's), each with its parts.
	Errors   []string     `json:"errors"`
	Problems []FieldError `json:"problems"`
	// RowsRead says whether the audience's rows were read (ValidateOptions.Rows); without it
	// only the audience file and its header were checked.
	RowsRead bool `json:"rows_read"`
	// Rows and Skipped are the audience's rows and those that would not be sent, by reason
	// (with Rows).
	Rows    int            `json:"rows,omitempty"`
	Skipped map[string]int `json:"skipped,omitempty"`
	// Notes say what could not be checked (on_reply buttons without the API).
	Notes []string `json:"notes,omitempty"`
}

// ValidateOptions say how far Validate checks a campaign file.
type ValidateOptions struct {
	// Files are the rules the campaign's files are read under.
	Files FileRules
	// Rows reads every audience row, as Plan does, and checks the share of invalid ones.
	Rows bool
	// OnReply, when set, checks the on_reply rules beyond their syntax: the problems it finds,
	// and notes on what it could not check.
	OnReply func(*Definition) (errs, notes []string)
	// Progress, when set with Rows, is told the rows read so far (every 65,536, as
	// PlanOptions.Progress) and about how many the audience file has (its line count).
	Progress func(rows, about int)
	// Senders are the config's senders: a campaign naming another is noted (UnlistedSender).
	Senders []config.Sender
}

// Validate checks one campaign file: the definition, then its audience file and header
// (where it is, what it is, its encoding and columns) and the columns its templates and
// replies read, then
// its on_reply rules, then with o.Rows every row. Every problem is one error, as
// file:line:col: field: message where it has a place. A problem does not end the checks: a
// check is skipped only when what it reads is unusable (the audience checks when the audience
// block did not decode or names no file, the on_reply checks when on_reply, the message or a
// template did not decode), and the rows are read only when the definition and the header
// have no problem.
func Validate(path string, o ValidateOptions) (r Validation) {
	r = Validation{File: path, RowsRead: o.Rows}
	v := validation{file: path}
	defer v.finish(&r)
	fail := v.add
	data, err := ReadFile(path)
	if err != nil {
		fail(fmt.Errorf("campaign: %w", err))
		return r
	}
	p := parseFile(path, data, false)
	if len(p.errs) > 0 {
		fail(p.errs)
	}
	def := p.def
	if def == nil {
		return r
	}
	def.Files = o.Files
	if n := UnlistedSender(def, o.Senders); n != "" {
		r.Notes = append(r.Notes, n)
	}
	headerOK := false
	if def.Audience.File != "" && p.broken.usable("audience") {
		header, err := audienceHeader(def)
		if err != nil {
			fail(audienceProblem(def, err))
		} else {
			headerOK = true
			// The columns the templates and the follow-ups read (a JSON Lines audience has
			// no header to check them against).
			var errs Errors
			if header != nil {
				errs = columnProblems(def, p.reads, header)
			}
			if p.broken.usable("on_reply") {
				errs = append(errs, replyColumnProblems(def, header)...)
			}
			if len(errs) > 0 {
				fail(errs)
			}
		}
	}
	// The on_reply checks read the rules, the messages and templates they answer, and the
	// pass-through parameters that may carry a button's payload.
	if o.OnReply != nil && def.OnReply.checked() && p.broken.usable("on_reply", "message", "template", "fallback_template", "parameters") {
		errs, notes := o.OnReply(def)
		r.Notes = append(r.Notes, notes...)
		for _, e := range errs {
			v.addText(e)
		}
	}
	if !o.Rows || len(p.errs) > 0 || !headerOK {
		return r
	}
	po := PlanOptions{Samples: -1, CheckFollowups: true}
	if o.Progress != nil {
		about, _ := CountLines(def) // an error is the plan's too
		po.Progress = func(rows int) { o.Progress(rows, about) }
	}
	rep, err := Plan(def, "", po)
	r.Rows, r.Skipped = rep.Rows, rep.Skipped
	at := FieldError{File: def.Path, Line: def.AudienceAt.Line, Column: def.AudienceAt.Column, Field: "audience.file"}
	if errs := rep.FollowupErrors(def.Path); len(errs) > 0 {
		fail(errs)
	}
	if rep.FollowupNote != "" {
		r.Notes = append(r.Notes, rep.FollowupNote)
	}
	if err != nil {
		var ae *AudienceError
		if !errors.As(err, &ae) {
			e := at
			e.Msg = err.Error()
			err = Errors{e}
		}
		fail(audienceProblem(def, err))
	} else if err := rep.CheckInvalidShare(def.Audience.MaxInvalidShare); err != nil {
		at.Msg = err.Error()
		v.addLines(at)
	}
	return r
}

// audienceProblem gives an *AudienceError its place in the campaign file, at audience.file.
func audienceProblem(def *Definition, err error) error {
	var ae *AudienceError
	if errors.As(err, &ae) {
		return Errors{ae.FieldError(def)}
	}
	return err
}

// validation collects Validate's problems: each with its parts, and as text.
type validation struct {
	file     string
	problems []FieldError
	texts    []string
}

// add records err's problems: each of an Errors, else err as one problem without a place.
func (v *validation) add(err error) {
	var fe Errors
	if !errors.As(err, &fe) {
		v.problems = append(v.problems, FieldError{File: v.file, Msg: err.Error()})
		v.texts = append(v.texts, err.Error())
		return
	}
	for _, e := range fe {
		v.problems = append(v.problems, e)
		v.texts = append(v.texts, e.Error())
	}
}

// addLines records a problem whose message Herald wrote on several lines, every part it quotes
// escaped (the invalid share's, with a line per example row): its text keeps the lines, each
// with its control characters escaped, where FieldError.Error would escape the newlines too.
func (v *validation) addLines(e FieldError) {
	first, rest, more := strings.Cut(e.Msg, "\n")
	head := e
	head.Msg = first
	text := head.Error()
	if more {
		for _, line := range strings.Split(rest, "\n") {
			text += "\n" + logx.EscapeControl(line)
		}
	}
	v.problems = append(v.problems, e)
	v.texts = append(v.texts, text)
}

// addText records a problem given as text (the on_reply checks'), read back into its parts.
func (v *validation) addText(s string) {
	v.problems = append(v.problems, problemOf(v.file, s))
	v.texts = append(v.texts, s)
}

// finish puts the problems in r in the order of the file (a problem without a place first),
// whatever check found them.
func (v *validation) finish(r *Validation) {
	idx := make([]int, len(v.problems))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		pa, pb := v.problems[idx[a]], v.problems[idx[b]]
		if pa.Line != pb.Line {
			return pa.Line < pb.Line
		}
		return pa.Column < pb.Column
	})
	r.Errors, r.Problems = make([]string, 0, len(idx)), make([]FieldError, 0, len(idx))
	for _, i := range idx {
		r.Errors = append(r.Errors, v.texts[i])
		r.Problems = append(r.Problems, v.problems[i])
	}
	r.OK = len(idx) == 0
}

var (
	// placeRE reads "LINE:COL: rest" after a problem's file name.
	placeRE = regexp.MustCompile(`^(\d+):(\d+): (.*)$`)
	// fieldRE reads a field path ("on_reply.rules[0].button") and the message after it.
	fieldRE = regexp.MustCompile(`^([A-Za-z0-9_]+(?:\[\d+\])*(?:\.[A-Za-z0-9_]+(?:\[\d+\])*)*): (.*)$`)
)

// problemOf reads a problem written as FieldError.Error writes it back into its parts; text
// that does not name the file is a problem without a place.
func problemOf(file, s string) FieldError {
	rest, ok := strings.CutPrefix(s, file+":")
	if !ok {
		return FieldError{File: file, Msg: s}
	}
	fe := FieldError{File: file, Msg: strings.TrimPrefix(rest, " ")}
	if m := placeRE.FindStringSubmatch(rest); m != nil {
		fe.Line, _ = strconv.Atoi(m[1])
		fe.Column, _ = strconv.Atoi(m[2])
		fe.Msg = m[3]
	}
	if m := fieldRE.FindStringSubmatch(fe.Msg); m != nil {
		fe.Field, fe.Msg = m[1], m[2]
	}
	return fe
}
