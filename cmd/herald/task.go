package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/asynqbatch"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/serve"
	"github.com/heraldmsg/herald/tasks"
)

func (a *app) taskCmd() *cobra.Command {
	var (
		state       string // ls
		actState    string // retry, archive, delete --all
		limit, page int
		reveal      bool
		all         bool
		actJSON     bool // retry, archive, delete
		force       bool // archive, delete
		by          auditFlags
	)
	ls := viewCmd(a, view[[]tasks.View]{
		Use: "ls QUEUE", Short: "List a queue's tasks in one state (pending, active, scheduled, retry, archived, completed)",
		Args: cobra.ExactArgs(1), JSONHelp: "print as JSON", Text: printTasks,
		Read: func(_ context.Context, k conn, args []string) ([]tasks.View, error) {
			in, table, err := k.inspect()
			if err != nil {
				return nil, err
			}
			views, err := tasks.List(tasks.ListParams{Inspector: in, Table: table, Queue: taskQueue(args[0]), State: state,
				PageSize: limit, Page: page, Reveal: reveal})
			if errors.As(err, new(tasks.TaskStateError)) {
				return nil, usageError{err}
			}
			return views, err
		},
	})
	ls.Flags().StringVar(&state, "state", "pending", "task state: "+strings.Join(tasks.States, ", "))
	countFlag(ls.Flags(), &limit, "limit", 20, "tasks per page (1 or more)")
	countFlag(ls.Flags(), &page, "page", 1, "page number (1 or more)")

	show := viewCmd(a, view[tasks.View]{
		Use: "show QUEUE TASK_ID", Short: "One task: decoded payload (run, recipient), retries, last error and its class, ledger state",
		Args: cobra.ExactArgs(2), JSONHelp: "print as JSON", Text: printTask,
		Read: func(ctx context.Context, k conn, args []string) (tasks.View, error) {
			in, table, err := k.inspect()
			if err != nil {
				return tasks.View{}, err
			}
			return tasks.Read(ctx, tasks.ReadParams{Inspector: in, Ledger: k.ledger(), Table: table, Queue: taskQueue(args[0]), Task: args[1], Reveal: reveal})
		},
	})

	act := func(use, short, action string) *cobra.Command {
		c := command(use+" QUEUE [TASK_ID]", short, cobra.RangeArgs(1, 2), func(ctx context.Context, args []string) error {
			if all == (len(args) == 2) {
				return usageError{errors.New("give a TASK_ID, or --all with --state")}
			}
			return a.withRedis(ctx, func(k conn) error {
				in, _, err := k.inspect()
				if err != nil {
					return err
				}
				p := tasks.TaskActionParams{Inspector: in, Ledger: k.ledger(), Tasks: asynqbatch.New(k.rdb), Action: action, Queue: taskQueue(args[0]), All: all, State: actState,
					Force: force, Audit: by.record(k.rdb)}
				if !all {
					p.Task = args[1]
				}
				res, err := tasks.ActOnTasks(ctx, p)
				if errors.As(err, new(tasks.TaskStateError)) || errors.As(err, new(tasks.ExpansionTaskError)) {
					return usageError{err}
				}
				if err != nil {
					return err
				}
				return a.print(actJSON, res, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "%s %s: %s\n", action, res.Target, res.Detail())
					return err
				})
			})
		})
		c.Flags().BoolVar(&all, "all", false, "act on every task of the queue in --state")
		c.Flags().StringVar(&actState, "state", "", "with --all: the state to act on")
		c.Flags().BoolVar(&actJSON, "json", false, "print the result as JSON: action, queue, task or state, target, tasks, recipients_skipped, recipients_unknown, recipients_requeued, resends_withdrawn, retries_withdrawn, expansions_stopped")
		if action != "retry" {
			c.Flags().BoolVar(&force, "force", false, "also "+action+" the expansion task of a run that has not read its whole audience (refused without it: nothing else reads the rest; herald run repair RUN --apply starts it again)")
		}
		by.add(c, reasonInAuditLog)
		return c
	}
	retry := act("retry", "Run a scheduled, retry or archived task now", "retry")
	archive := act("archive", "Archive a pending, scheduled or retry task (its recipient stays queued in the ledger)", "archive")
	del := act("delete", "Delete a task; a send task's recipient becomes skipped(deleted) in the ledger, or, if a worker died sending to it, unknown(TASK_DELETED) (sent again under at-least-once)", "delete")
	expansionGuard := `
A task of herald:expand that carries on the expansion of a run not expanded yet (the chain of
such tasks is the only thing that reads the rest of the run's audience) is refused (exit 2)
unless --force: without it the rows not read would never be planned and the run would never
finish. To stop such a run, herald run cancel RUN; after a forced ` + "%s" + `, herald run repair RUN
--apply ` + "%s" + `.`
	archive.Long = archive.Short + ".\n" + fmt.Sprintf(expansionGuard, "archive", "retries the archived task")
	del.Long = del.Short + ".\n" + fmt.Sprintf(expansionGuard, "delete", "starts the expansion again")

	for _, c := range []*cobra.Command{ls, show} {
		c.Flags().BoolVar(&reveal, "reveal", false, "show full numbers")
	}
	return group("task", "Inspect and act on single tasks in asynq's queues", ls, show, retry, archive, del)
}

// printTasks renders tasks as `task ls` does.
func printTasks(w io.Writer, views []tasks.View) error {
	rows := make([][]string, 0, len(views))
	for _, v := range views {
		rows = append(rows, []string{v.ID, v.Run, v.Recipient, strconv.Itoa(v.Retried), truncate(v.LastError, 60)})
	}
	return printTable(w, []string{"ID", "RUN", "RECIPIENT", "RETRIED", "LAST ERROR"}, rows)
}

// printTask renders one task as `task show` does.
func printTask(w io.Writer, v tasks.View) error {
	fmt.Fprintf(w, "Task       %s (%s, queue %s)\nState      %s, retried %d of %d\n", v.ID, v.Type, v.Queue, v.State, v.Retried, v.MaxRetry)
	if v.Run != "" {
		fmt.Fprintf(w, "Run        %s\nRecipient  %s\n", v.Run, v.Recipient)
	}
	if v.Ledger != "" {
		fmt.Fprintf(w, "Ledger     %s, %d attempts\n", v.Ledger, *v.Attempts)
	}
	if v.LastError != "" {
		fmt.Fprintf(w, "Last error %s\n", v.LastError)
		if v.Class != "" {
			fmt.Fprintf(w, "Class      %s (%s)\n", v.Class, v.ErrorCode)
		}
	}
	if !v.NextAt.IsZero() {
		fmt.Fprintf(w, "Next at    %s\n", v.NextAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// inspect returns an asynq Inspector on the command's Redis and the configured table of
// Connectly's codes.
func (k conn) inspect() (*asynq.Inspector, *connectly.Table, error) {
	table, err := serve.ErrorTable(k.c)
	if err != nil {
		return nil, nil, err
	}
	return asynq.NewInspectorFromRedisClient(k.rdb), table, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// taskQueue is the queue a task command's QUEUE names: one of Herald's send queues by its
// full name or without "herald:" (as queue pause takes them, tasks.Queue), else the name as
// given (asynq answers for a queue it does not know).
func taskQueue(name string) string {
	if q, err := tasks.Queue(name); err == nil {
		return q
	}
	return name
}
