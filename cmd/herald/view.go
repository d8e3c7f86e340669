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

// viewCmd is a read-only command (use, short, args as for command): it reads a value from
// the configured Redis with read and prints it with text, or as JSON with --json (jsonHelp is
// the flag's help). Flags of its own go on the returned command, into variables read closes
// over.
func viewCmd[T any](a *app, use, short string, args cobra.PositionalArgs, jsonHelp string,
	read func(ctx context.Context, k conn, args []string) (T, error), text func(io.Writer, T) error) *cobra.Command {
	var asJSON bool
	cmd := a.redisCmd(use, short, args, func(ctx context.Context, k conn, args []string) error {
		v, err := read(ctx, k, args)
		if err != nil {
			return err
		}
		return a.print(asJSON, v, func(w io.Writer) error { return text(w, v) })
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, jsonHelp)
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
