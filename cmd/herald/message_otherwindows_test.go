package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/servicewindow"
)

// A customer who wrote to another of the business's numbers is not told apart from one who
// never wrote: the refusal names the number they wrote to and the --sender that reaches
// them, and the window recorded with no number that windows.scope leaves out.
func TestMessageSendNamesOtherWindows(t *testing.T) {
	t.Parallel()
	const customer, numberA, numberB = "+14155552671", "+14155550100", "+14155550101"
	b := newSupportBench(t)
	cfg := writeConfig(t, "senders:\n  - number: \""+numberA+"\"\n  - number: \""+numberB+"\"\n")
	tr := servicewindow.New(b.rdb, time.Now)
	tr.SetPolicy(servicewindow.Policy{Senders: []string{numberA, numberB}})
	if _, err := tr.TouchTo(context.Background(), "biz", numberB, []string{customer}, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := herald(t, b.env, "--config", cfg, "message", "send", "--to", customer, "--sender", numberA, "--text", "hi")
	if code != exitError || !strings.Contains(errOut, "they wrote to "+numberB) || !strings.Contains(errOut, "--sender "+numberB) ||
		!strings.Contains(out, "Sender     ********0100\nWindow     closed: no inbound message in the last 24 h\n  to ********0101  open, closes ") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	// A window recorded with no number counts for neither of two senders.
	const other = "+14155553002"
	b.open(t, other)
	code, out, errOut = herald(t, b.env, "--config", cfg, "message", "send", "--to", other, "--sender", numberA, "--text", "hi")
	if code != exitError || !strings.Contains(errOut, "named no business number") || !strings.Contains(errOut, "windows.scope") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if n := len(b.fake.Received()); n != 0 {
		t.Fatalf("fake received %d requests", n)
	}
}
