package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) messageCmd() *cobra.Command {
	var (
		to, region, text, file, sender, actor string
		asJSON, dryRun, reveal, noSuppression bool
	)
	send := command("send --to NUMBER|bsuid:BSUID (--text TEXT | --file message.yaml|json)",
		"Answer one customer with a session message, if their 24-hour window is open", cobra.NoArgs,
		func(ctx context.Context, _ []string) error {
			if to == "" {
				return usageError{errors.New("--to is required")}
			}
			if (text == "") == (file == "") {
				return usageError{errors.New("give exactly one of --text and --file")}
			}
			id, err := customerID(to, region)
			if err != nil {
				return err
			}
			content := connectly.SessionContent{Text: text}
			if file != "" {
				// The campaign message: decoder: every problem, the checks of the message
				// included, as file:line:col: field: message.
				if content, err = campaigns.ReadMessageFile(file); err != nil {
					return usageError{err}
				}
			}
			// The config is read once the message is known to be well formed.
			c, err := a.config()
			if err != nil {
				return err
			}
			res, err := serve.SendMessage(ctx, serve.MessageParams{Config: c, Connect: a.connect(c), To: id, Sender: sender,
				Content: content, DryRun: dryRun, Reveal: reveal, Actor: actor, IgnoreSuppression: noSuppression})
			var unsendable conversation.UnsendableError
			var noSender *config.SenderRequiredError
			switch {
			case errors.As(err, &noSender):
				return usageError{fmt.Errorf("%w: give --sender", err)}
			case errors.As(err, &unsendable):
				return usageError{err}
			}
			// A result with an outcome is shown with its error (a closed window, a refusal, an
			// answer that leaves it unknown whether the message went out): --json prints it as
			// the one object on stdout, and the exit status is still non-zero.
			if res.Kind != "" && (err == nil || res.Outcome != "") {
				if perr := a.print(asJSON, res, func(w io.Writer) error { printMessage(w, res, c.Connectly.BusinessID); return nil }); perr != nil {
					return perr
				}
			}
			return err
		})
	send.Long = `Send one session message (free-form: text, an attachment, a location, reply buttons, a list, a
product) to one customer, through Connectly with the configured business and API key. WhatsApp
allows it only within 24 hours of the customer's last message: Herald looks up the customer's
window (recorded by its webhook receiver) and refuses when it is closed; reach them with an
approved template instead. A customer on the suppression list for every message (they sent
STOP, tapped Unsubscribe, or opted out) is refused, naming the entry: --ignore-suppression
sends anyway (when they asked for this answer), and the audit entry says so. One suppressed
for marketing only is answered: a support message is not marketing. Every request to Connectly is recorded in the audit log (herald audit
ls) with its outcome: the message id, refused or not sent with Connectly's code, or outcome
unknown. An answer that leaves it unknown whether the message went out (a 5xx, a connection
lost after the request was written) exits non-zero saying it may have been delivered: check
the conversation in Connectly's inbox before sending it again (--json prints "outcome":
"maybe_sent").

--text sends a text message. --file reads any kind from YAML or JSON, with the keys of a
campaign's message: block, e.g.
  text: Which day suits you?
  reply_buttons:
    buttons:
      - {id: mon, text: Monday}
      - {id: tue, text: Tuesday}
It is decoded as a campaign's message: is, and sent as written (its strings are not
templates); every problem is named at its place, a misspelt key with the closest known one:
  reply.yaml:4:3: attachment.file_name: unknown key "file_name" (did you mean "filename"?)
--dry-run prints the request body and sends nothing.`
	f := send.Flags()
	f.StringVar(&to, "to", "", "the customer: +E.164, a national number with --region, or bsuid:BSUID")
	f.StringVar(&region, "region", "", "country for a number written without country code (e.g. US)")
	f.StringVar(&text, "text", "", "send this text")
	f.StringVar(&file, "file", "", "send the message in this YAML or JSON file (any kind)")
	f.StringVar(&sender, "sender", "", "the business number to send from (default: the config's only sender; the business's number when it lists none; required when it lists several)")
	f.StringVar(&actor, "actor", "", "who is sending, for the audit log (default: the OS user)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.BoolVar(&dryRun, "dry-run", false, "print the request body and the window; send nothing")
	f.BoolVar(&reveal, "reveal", false, "show the number in full (masked to its last 4 digits by default)")
	f.BoolVar(&noSuppression, "ignore-suppression", false, "send to a customer on the suppression list for every message (who opted out); the audit log records it")
	return group("message", "Session messages to one customer (support staff)", send)
}

// printMessage renders a support reply; a dry run's request shows its path with business, the
// configured business id ({businessId} when none is configured).
func printMessage(w io.Writer, r conversation.SupportResult, business string) {
	now := time.Now()
	fmt.Fprintf(w, "Customer   %s\n", r.To)
	if r.Window.Sender != "" {
		fmt.Fprintf(w, "Sender     %s\n", r.Window.Sender)
	}
	fmt.Fprintf(w, "Window     %s\n", r.Window.Line(now))
	// A closed window comes with the customer's other windows, as window show lists them.
	for _, o := range r.Window.Numbers {
		fmt.Fprintf(w, "  to %s  %s\n", o.To, o.Line(now))
	}
	if o := r.Window.NoNumber; o != nil {
		fmt.Fprintf(w, "  no number  %s (the inbound messages named no business number)\n", o.Line(now))
	}
	fmt.Fprintf(w, "Message    %s\n", r.Kind)
	if s := r.Suppression; s != nil {
		note := "not sent (--ignore-suppression sends anyway)"
		switch {
		case s.Scope == string(ledger.ScopeMarketing):
			note = "a support message is not marketing: not stopped"
		case r.IgnoredSuppression:
			note = "ignored, as asked (--ignore-suppression; in the audit log)"
		}
		fmt.Fprintf(w, "Suppressed %s: %s\n", s.Entry(), note)
	}
	switch {
	case r.DryRun:
		var buf bytes.Buffer
		_ = json.Indent(&buf, r.Request, "  ", "  ")
		path := unescapePath(connectly.SessionPath("{businessId}"))
		if business != "" {
			path = connectly.SessionPath(business)
		}
		fmt.Fprintf(w, "\nRequest (dry run, not sent): POST %s\n  %s\n", path, buf.String())
	case r.MessageID != "":
		fmt.Fprintf(w, "Sent       message id %s\n", r.MessageID)
	case r.Outcome == conversation.OutcomeMaybeSent:
		fmt.Fprintf(w, "Outcome    unknown (%s): the message may have been delivered; check before sending it again\n", r.Code)
	case r.Outcome == conversation.OutcomeRefused:
		fmt.Fprintf(w, "Outcome    refused by Connectly (%s)\n", r.Code)
	case r.Outcome == conversation.OutcomeNotSent && r.Code != "":
		fmt.Fprintf(w, "Outcome    not sent (%s)\n", r.Code)
	}
}
