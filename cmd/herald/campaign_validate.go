package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
)

// validateResult is one file's result in `campaign validate --json`.
type validateResult struct {
	File   string   `json:"file"`
	OK     bool     `json:"ok"`
	Errors []string `json:"errors"`
}

func (a *app) campaignValidateCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check campaign files: every problem as file:line:col, exit 1 if any",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			results := make([]validateResult, 0, len(args))
			bad := 0
			for _, f := range args {
				r := validateResult{File: f, OK: true, Errors: []string{}}
				if _, err := campaigns.Load(f); err != nil {
					r.OK = false
					bad++
					var fe campaigns.Errors
					if errors.As(err, &fe) {
						for _, e := range fe {
							r.Errors = append(r.Errors, e.Error())
						}
					} else {
						r.Errors = append(r.Errors, err.Error())
					}
				}
				results = append(results, r)
			}
			if asJSON {
				if err := writeJSON(a.stdout, results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					if r.OK {
						fmt.Fprintf(a.stdout, "ok  %s\n", r.File)
					}
					for _, e := range r.Errors {
						fmt.Fprintln(a.stdout, e)
					}
				}
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d campaign files have problems", bad, len(args))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one result per file as JSON")
	return cmd
}
