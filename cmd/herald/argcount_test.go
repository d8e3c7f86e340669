package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// Every command given more arguments than it takes says so with its usage line, in place of
// cobra's bare "accepts 1 arg(s), received 9" (or "unknown command" of a command taking none).
func TestEveryCommandsArgCountErrorNamesItsUsage(t *testing.T) {
	t.Parallel()
	a := &app{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard, now: time.Now}
	var leaves []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		// Commands that take any number of arguments (validate FILE...) have no count to get
		// wrong from above.
		if c.Runnable() && !strings.HasSuffix(c.Use, "...") {
			leaves = append(leaves, c)
		}
	}
	walk(a.rootCmd(io.Discard, io.Discard))
	if len(leaves) < 30 {
		t.Fatalf("%d commands found", len(leaves))
	}
	extra := strings.Fields(strings.Repeat("x ", 9))
	for _, c := range leaves {
		path := strings.Fields(c.CommandPath())[1:]
		code, _, errOut := herald(t, nil, append(path, extra...)...)
		usage := "(usage: " + strings.TrimSuffix(c.UseLine(), " [flags]") + ")\n"
		if code != exitUsage || !strings.HasPrefix(errOut, "herald: "+strings.Join(path, " ")+": ") || !strings.HasSuffix(errOut, usage) ||
			!strings.Contains(errOut, "got 9 arguments") {
			t.Errorf("%s with 9 arguments: exit %d, stderr %q", c.CommandPath(), code, errOut)
		}
	}
}
