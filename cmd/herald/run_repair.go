package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/words"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) runRepairCmd() *cobra.Command {
	var (
		apply, asJSON bool
		by            auditFlags
	)
	cmd := a.redisCmd("repair RUN", "Find what keeps a run from ever finishing on its own, and with --apply repair it", cobra.ExactArgs(1),
		func(ctx context.Context, k conn, args []string) error {
			log, err := a.logger(k.c)
			if err != nil {
				return err
			}
			res, err := serve.RepairRun(ctx, serve.RepairParams{Config: k.c, Redis: k.rdb, Log: log, Run: args[0], Apply: apply,
				Audit: by.record(k.rdb), Now: a.now})
			if res.Run == "" {
				return notFound(args[0], err)
			}
			// What was found and done is printed even when the repair stopped part way.
			perr := a.print(asJSON, res, func(w io.Writer) error { return printRepair(w, res) })
			return errors.Join(perr, err)
		})
	cmd.Long = `Find the recipients of RUN that nothing will ever send or settle, and what keeps the run
from completing, and say what repair does of each; --apply does it. Without --apply nothing
changes.

  lost_expansion     the run has not read its whole audience and no expansion task of it is
                     left (in herald:expand, in any state but completed) nor running: nothing
                     would plan the rows not read yet. A new expansion step is enqueued; it
                     carries on from the run's cursors (no row is planned twice), and in a
                     cancelled run it makes the rows not read skipped(cancelled), so the run's
                     states add up to its audience. An expansion server (herald worker or
                     herald scheduler) runs it.
  expansion_archived the same with its expansion task archived (its retries used up): the
                     task is retried
  stranded_claim     submitting (a worker claimed it) with no task of it left in any send
                     queue, in any state but completed: unknown(TASK_DELETED), since the
                     message may have gone (not resent); in an at-least-once run too when
                     the run is cancelled or its send task cannot be rebuilt
  stranded_claim_requeued
                     the same in an at-least-once run: its send task is written again as
                     expansion wrote it (same id), and its claim sends again, as after a
                     dead worker's task is put back (a possible duplicate; nobody is left
                     unknown)
  stranded_resend    queued for its one resend with no task left (the resend waited, held by
                     a paused run or for a worker, and never made a request): the resend is
                     withdrawn, and the recipient is unknown again with the code it had
                     (history resend_withdrawn RESEND_DELETED; no longer counted as resent)
  lost_task          queued in a batch whose tasks were written, with no task left: its send
                     task is written again as expansion wrote it (same id, payload, queue)
  lost_task_skipped  the same when the task cannot be rebuilt (the run's campaign or audience
                     file is gone or changed, or its row no longer holds the recipient):
                     skipped(task_lost)
  cancelled_queued   queued in a cancelled run with no task left: skipped(cancelled)
  stranded_retry     queued for a retry after an answer that may follow a message that went
                     out (at-least-once), no task left, in a cancelled run or not rebuildable:
                     the retry is withdrawn, and the recipient is unknown with that answer's
                     code (history retry_withdrawn), never skipped
  resend_counter     the run's count of unknown recipients waiting for their resend differs
                     from its resend set: set to it
  resend_unlisted    recipients wait for their resend but the resend sweep does not look at
                     the run: listed for it
  completion         every row terminal and nothing waiting, but not completed: completed

A recipient whose task is gone but whose worker may still be running it (an asynq server
lists it, or its lease has not run out) is left alone: repair again later. Repair is safe
while workers run, and a second --apply finds nothing to do. An applied repair that changed
something is kept in the audit log.`
	cmd.Flags().BoolVar(&apply, "apply", false, "make the changes (without it, only say what they would be)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON: run, status, applied, findings (kind, does, found, repaired, samples), in_flight, moved, not_rebuilt")
	by.add(cmd, reasonInAuditLog)
	return cmd
}

// printRepair writes a repair for people.
func printRepair(w io.Writer, r serve.Repair) error {
	if len(r.Findings) == 0 {
		fmt.Fprintf(w, "run %s (%s): nothing to repair\n", r.Run, r.Status)
	} else {
		verb := "would repair"
		if r.Applied {
			verb = "repaired"
		}
		fmt.Fprintf(w, "run %s (%s): %s\n", r.Run, r.Status, verb)
		for _, f := range r.Findings {
			n := fmt.Sprint(f.Found)
			if r.Applied {
				n = fmt.Sprintf("%d of %d", f.Repaired, f.Found)
			}
			fmt.Fprintf(w, "  %-23s %-9s %s\n", f.Kind, n, f.Does)
			if len(f.Samples) > 0 {
				fmt.Fprintf(w, "  %-23s %-9s e.g. %s\n", "", "", strings.Join(f.Samples, ", "))
			}
		}
	}
	if r.NotRebuilt != "" {
		fmt.Fprintf(w, "send tasks not rebuilt: %s\n", r.NotRebuilt)
	}
	if r.InFlight > 0 {
		fmt.Fprintf(w, "%s no task left but a worker may still be running %s: left alone; repair again later\n",
			words.Count(r.InFlight, "recipient has", "recipients have"), words.Plural(r.InFlight, "its send", "theirs"))
	}
	if r.Moved > 0 {
		fmt.Fprintf(w, "%s while the repair looked at %s, or %s task id was taken: left alone\n",
			words.Count(r.Moved, "recipient changed", "recipients changed"), words.Plural(r.Moved, "it", "them"), words.Plural(r.Moved, "its", "their"))
	}
	if !r.Applied && len(r.Findings) > 0 {
		fmt.Fprintf(w, "nothing changed: herald run repair %s --apply repairs it\n", r.Run)
	}
	return nil
}
