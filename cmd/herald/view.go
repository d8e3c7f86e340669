package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
)

// conn is what a read-only command reads with: the config, and Redis open while it reads.
type conn struct {
	c   config.Config
	rdb redis.UniversalClient
}

// ledger is the ledger on the command's Redis.
func (k conn) ledger() *ledger.Ledger { return ledger.New(k.rdb, nil) }

// view is a read-only command: Use, Short and Args as for command; Read reads a value from the
// configured Redis and Text prints it, or --json (JSONHelp is the flag's help) prints it as
// JSON.
type view[T any] struct {
	Use, Short string
	Args       cobra.PositionalArgs
	JSONHelp   string
	Read       func(ctx context.Context, k conn, args []string) (T, error)
	Text       func(io.Writer, T) error
}

// viewCmd makes v's command. Flags of its own go on the returned command, into variables Read
// closes over.
func viewCmd[T any](a *app, v view[T]) *cobra.Command {
	var asJSON bool
	cmd := a.redisCmd(v.Use, v.Short, v.Args, func(ctx context.Context, k conn, args []string) error {
		val, err := v.Read(ctx, k, args)
		if err != nil {
			return err
		}
		return a.print(asJSON, val, func(w io.Writer) error { return v.Text(w, val) })
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, v.JSONHelp)
	return cmd
}

// printTable prints a header and rows as columns two spaces apart.
func printTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
