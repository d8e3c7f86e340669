package main

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
)

// `message send` refuses a customer who opted out of every message, naming the entry and
// --ignore-suppression, which sends anyway and is in the audit log; a customer who stopped
// marketing messages only is answered, and the output says they did.
func TestMessageSendSuppression(t *testing.T) {
	t.Parallel()
	const stopped, noMarketing = "+14155553002", "+14155553003"
	b := newSupportBench(t)
	b.open(t, stopped)
	b.open(t, noMarketing)
	l := ledger.New(b.rdb, nil)
	if err := l.Suppress(context.Background(), stopped, "ON_REPLY"); err != nil {
		t.Fatal(err)
	}
	if err := l.Suppress(context.Background(), noMarketing, "131050"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := herald(t, b.env, "message", "send", "--to", stopped, "--text", "Your refund is on its way")
	if code != exitError || !strings.Contains(errOut, "on the suppression list for every message (ON_REPLY) since ") ||
		!strings.Contains(errOut, "--ignore-suppression") || !strings.Contains(out, "Suppressed for every message (ON_REPLY) since ") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if n := len(b.fake.Received()); n != 0 {
		t.Fatalf("fake received %d requests", n)
	}
	code, out, errOut = herald(t, b.env, "message", "send", "--to", stopped, "--text", "Your refund is on its way", "--ignore-suppression", "--json", "--actor", "ana")
	var res conversation.SupportResult
	oneJSON(t, out, &res)
	if code != 0 || res.Outcome != conversation.OutcomeSent || !res.IgnoredSuppression || res.Suppression == nil || res.Suppression.Reason != "ON_REPLY" {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if es := b.audit(t); len(es) != 1 || es[0].Actor != "ana" || !strings.HasSuffix(es[0].Detail, ", ignored as asked") {
		t.Fatalf("audit %+v", es)
	}
	code, out, errOut = herald(t, b.env, "message", "send", "--to", noMarketing, "--text", "Your refund is on its way")
	if code != 0 || !strings.Contains(out, "Sent       message id ") ||
		!strings.Contains(out, "Suppressed for marketing (131050) since ") || !strings.Contains(out, "a support message is not marketing") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}
