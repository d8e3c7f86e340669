package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
)

// validateResult is one file's result in `campaign validate --json`.
type validateResult struct {
	File   string   `json:"file"`
	OK     bool     `json:"ok"`
	Errors []string `json:"errors"`
	// RowsRead says whether the audience's rows were read (--rows); without it only the
	// audience file and its header were checked.
	RowsRead bool `json:"rows_read"`
	// Rows and Skipped are the audience's rows and those that would not be sent, by reason
	// (with --rows).
	Rows    int            `json:"rows,omitempty"`
	Skipped map[string]int `json:"skipped,omitempty"`
	// Notes say what could not be checked (on_reply buttons without the API).
	Notes []string `json:"notes,omitempty"`
}

// fileRules maps the config's campaigns section onto the rules campaign files are read under.
func fileRules(c config.Config) campaigns.FileRules {
	return campaigns.FileRules{Root: c.Campaigns.Root, MaxRecordBytes: c.Campaigns.MaxRecordBytes,
		MaxFileBytes: c.Campaigns.MaxFileBytes, MaxRows: c.Campaigns.MaxRows}
}

// loadCampaign loads a campaign file to be read under the config's file rules.
func loadCampaign(c config.Config, path string) (*campaigns.Definition, error) {
	def, err := campaigns.Load(path)
	if err != nil {
		return nil, err
	}
	def.Files = fileRules(c)
	return def, nil
}

// validateFile checks one campaign file: the definition, then its audience file and header
// (where it is, what it is, its encoding and columns), then with rows every row.
func validateFile(c config.Config, path string, rows bool) validateResult {
	r := validateResult{File: path, OK: true, Errors: []string{}, RowsRead: rows}
	fail := func(err error) {
		r.OK = false
		var fe campaigns.Errors
		if !errors.As(err, &fe) {
			r.Errors = append(r.Errors, err.Error())
			return
		}
		for _, e := range fe {
			r.Errors = append(r.Errors, e.Error())
		}
	}
	def, err := loadCampaign(c, path)
	if err != nil {
		fail(err)
		return r
	}
	if err := campaigns.CheckAudience(def); err != nil {
		var ae *campaigns.AudienceError
		if errors.As(err, &ae) {
			err = campaigns.Errors{ae.FieldError(def)}
		}
		fail(err)
		return r
	}
	if err := campaigns.CheckReplyColumns(def); err != nil {
		fail(err)
		return r
	}
	if errs, notes := checkOnReply(c, def); len(errs) > 0 || len(notes) > 0 {
		r.Notes = notes
		if len(errs) > 0 {
			r.OK = false
			r.Errors = append(r.Errors, errs...)
		}
	}
	if !rows {
		return r
	}
	rep, err := campaigns.Plan(def, "", campaigns.PlanOptions{Samples: -1})
	if err == nil {
		err = rep.CheckInvalidShare(def.Audience.MaxInvalidShare)
	}
	r.Rows, r.Skipped = rep.Rows, rep.Skipped
	if err != nil {
		var ae *campaigns.AudienceError
		if errors.As(err, &ae) {
			err = campaigns.Errors{ae.FieldError(def)}
		} else {
			err = campaigns.Errors{{File: def.Path, Line: def.AudienceAt.Line, Column: def.AudienceAt.Column, Field: "audience.file", Msg: err.Error()}}
		}
		fail(err)
	}
	return r
}

func (a *app) campaignValidateCmd() *cobra.Command {
	var asJSON, rows bool
	cmd := a.configCmd("validate FILE...", "Check campaign files: every problem as file:line:col, exit 1 if any", cobra.MinimumNArgs(1),
		func(_ context.Context, c config.Config, args []string) error {
			results := make([]validateResult, 0, len(args))
			bad := 0
			for _, f := range args {
				r := validateFile(c, f, rows)
				if !r.OK {
					bad++
				}
				results = append(results, r)
			}
			if err := a.print(asJSON, results, func(w io.Writer) error { printValidated(w, results); return nil }); err != nil {
				return err
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d campaign files have problems", bad, len(args))
			}
			return nil
		})
	cmd.Long = `Check campaign files: the definition, and its audience file as far as can be known
without reading rows: that it is a regular file inside the campaigns root (campaigns.root,
default the campaign file's folder), within the size bound, UTF-8, with a header naming the
phone (or bsuid) column once. Every problem is printed as file:line:col: field: message.

Rows are not read unless --rows is given: then every row is read, as by campaign plan, and a
file with more invalid rows than audience.max_invalid_share allows is a problem too.`
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one result per file as JSON")
	cmd.Flags().BoolVar(&rows, "rows", false, "also read every audience row (as campaign plan does) and check the share of invalid rows")
	return cmd
}

// printValidated renders validate's results as text: a valid file's ok line, then every
// file's notes and problems.
func printValidated(w io.Writer, results []validateResult) {
	for _, r := range results {
		if r.OK {
			fmt.Fprintf(w, "ok  %s (%s)\n", r.File, rowsNote(r))
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "note: %s: %s\n", r.File, n)
		}
		for _, e := range r.Errors {
			fmt.Fprintln(w, e)
		}
	}
}

// rowsNote says how far a valid file's audience was read.
func rowsNote(r validateResult) string {
	if !r.RowsRead {
		return "audience header checked; rows not read: use --rows or campaign plan"
	}
	reasons := make([]string, 0, len(r.Skipped))
	for reason, n := range r.Skipped {
		reasons = append(reasons, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(reasons)
	rows := fmt.Sprintf("%d rows", r.Rows)
	if r.Rows == 1 {
		rows = "1 row"
	}
	if len(reasons) == 0 {
		return "audience: " + rows + ", none skipped"
	}
	return "audience: " + rows + ", skipped " + strings.Join(reasons, ", ")
}
