package serve

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/logx"
)

// ValidateParams say which campaign file ValidateCampaign checks, and how far.
type ValidateParams struct {
	Path   string
	Config config.Config
	// Rows reads every audience row too (campaigns.ValidateOptions.Rows); Progress is told
	// how far.
	Rows     bool
	Progress func(rows, about int)
	// Senders notes a sender the config does not list (campaigns.UnlistedSender) among the
	// notes; the commands that warn of it their own way leave it false.
	Senders bool
}

// ValidateCampaign is the one check of a campaign file that `campaign validate`, `plan` and
// `send` give: campaigns.Validate under the config's file rules, its on_reply rules checked
// against what the campaign sends (CheckOnReply, its templates read from Connectly when it can
// be reached) and against the opt-out words the receiver applies (a suppress: true rule only
// an opt-out reaches must have an opt-out value: conversation.OptOutOnlyProblems, a new
// file's check that a scheduler's tick of a stored version does not make). Every problem of
// the file comes at once, each with its place.
func ValidateCampaign(ctx context.Context, p ValidateParams) campaigns.Validation {
	c := p.Config
	o := campaigns.ValidateOptions{Files: FileRules(c), Rows: p.Rows, Progress: p.Progress,
		OnReply: func(def *campaigns.Definition) ([]string, []string) {
			errs, notes := CheckOnReply(ctx, c, def)
			return append(errs, conversation.OptOutOnlyProblems(def, c.Webhooks.Words())...), notes
		}}
	if p.Senders {
		o.Senders = c.Senders
	}
	return campaigns.Validate(p.Path, o)
}

// CheckCampaign is ValidateCampaign without reading the audience's rows, as a refusal: nil
// when the file has no problem, else a *ProblemsError listing every one. The notes say what
// could not be checked.
func CheckCampaign(ctx context.Context, c config.Config, path string) (notes []string, err error) {
	r := ValidateCampaign(ctx, ValidateParams{Path: path, Config: c})
	return r.Notes, Refusal(r)
}

// Refusal is a validation's problems as one error (nil when it has none): a *ProblemsError,
// but a single problem without a place in the file (one that could not be read) as it is.
func Refusal(r campaigns.Validation) error {
	switch {
	case r.OK || len(r.Problems) == 0:
		return nil
	case len(r.Problems) == 1 && r.Problems[0].Line == 0 && r.Problems[0].Field == "":
		return errors.New(r.Errors[0])
	}
	return &ProblemsError{File: r.File, Texts: r.Errors, Problems: r.Problems}
}

// ProblemsError is a campaign file's problems, as campaign validate reports them: its text
// names the file and lists each problem on a line of its own; it unwraps to the problems as
// campaigns.Errors, each with its place (what a refusal under --json lists).
type ProblemsError struct {
	File     string
	Texts    []string
	Problems campaigns.Errors
}

func (e *ProblemsError) Error() string {
	return fmt.Sprintf("%s: %s (as campaign validate reports them):\n%s", logx.Escape(e.File), Count(len(e.Texts), "problem", "problems"),
		strings.Join(e.Texts, "\n"))
}

// Unwrap returns the problems with their places.
func (e *ProblemsError) Unwrap() error { return e.Problems }

// Count is n with its noun, singular for one: "1 problem", "3 problems".
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
