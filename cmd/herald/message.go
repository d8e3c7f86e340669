package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
)

// maxMessageFile bounds a --file message.
const maxMessageFile = 1 << 20

// messageResult is what `message send` prints (--json).
type messageResult struct {
	To     string                `json:"to"`
	Kind   connectly.SessionKind `json:"kind"`
	Window report.Window         `json:"window"`
	// MessageID is Connectly's id of the message sent; empty with --dry-run.
	MessageID string `json:"message_id,omitempty"`
	DryRun    bool   `json:"dry_run,omitempty"`
	// Request is the exact request body (--dry-run).
	Request json.RawMessage `json:"request,omitempty"`
}

// messageSend is one `message send`: who, what, and how it is reported.
type messageSend struct {
	to      string // E.164 or bsuid:...
	sender  string
	content connectly.SessionContent
	actor   string
	dryRun  bool
	reveal  bool
	now     func() time.Time
}

// readMessageFile reads a session message from a YAML or JSON file (by its extension; the keys
// a campaign's message: block takes). Unknown keys are errors.
func readMessageFile(path string) (connectly.SessionContent, error) {
	var c connectly.SessionContent
	f, err := os.Open(path)
	if err != nil {
		return c, usageError{err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMessageFile+1))
	if err != nil {
		return c, err
	}
	if len(data) > maxMessageFile {
		return c, usageError{fmt.Errorf("%s: larger than %d bytes", path, maxMessageFile)}
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(&c)
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		err = dec.Decode(&c)
	}
	if err != nil {
		return c, usageError{fmt.Errorf("%s: %w", path, err)}
	}
	return c, nil
}

// sendMessage answers one customer (conversation.Answer) and reports it as `message send`
// prints it: the customer masked unless m.reveal, the request body with --dry-run (client nil).
// Errors wrapping conversation.ErrWindowClosed (Herald's record or Connectly's refusal) come
// with a result to print.
func sendMessage(ctx context.Context, rdb redis.UniversalClient, c config.Config, client *connectly.Client, m messageSend) (messageResult, error) {
	now := m.now()
	out, err := conversation.Answer(ctx, rdb, client, conversation.AnswerParams{
		Business: c.Connectly.BusinessID, Wire: c.Connectly.Wire(), Margin: c.Worker.WindowMargin.D(),
		To: m.to, Sender: m.sender, Content: m.content, Actor: operator(m.actor), Now: now})
	if out.Request == nil {
		return messageResult{}, usageError{err}
	}
	shown := m.to
	if !m.reveal {
		shown = logx.Phone(m.to)
	}
	w := report.WindowOf(out.Window, c.Connectly.BusinessID, shown, now)
	res := messageResult{To: shown, Kind: m.content.Kind(), Window: w, DryRun: client == nil, MessageID: out.MessageID}
	if client == nil {
		res.Request = out.Request
		if !m.reveal {
			res.Request = report.MaskRequests([]json.RawMessage{out.Request})[0]
		}
	}
	switch {
	case connectly.IsWindowClosed(err):
		return res, fmt.Errorf("%w: Connectly refused the message as outside %s's window (Herald's record: %s); send an approved template: %w",
			conversation.ErrWindowClosed, shown, w.Line(now), err)
	case errors.Is(err, conversation.ErrWindowClosed) && w.Open:
		return res, fmt.Errorf("%w: %s's window is %s, within worker.window_margin (%s) of its close, too near for Connectly's "+
			"clock to agree; send an approved template (a campaign with template:), or wait for them to write",
			err, shown, w.Line(now), c.Worker.WindowMargin.D())
	case errors.Is(err, conversation.ErrWindowClosed):
		return res, fmt.Errorf("%w: %s's window is %s; a session message cannot reach them now: send an approved template "+
			"(a campaign with template:), or wait for them to write", err, shown, w.Line(now))
	}
	return res, err
}

func (a *app) messageCmd() *cobra.Command {
	var (
		to, region, text, file, sender, actor string
		asJSON, dryRun, reveal                bool
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
				if content, err = readMessageFile(file); err != nil {
					return err
				}
			}
			// The config is read once the message is known to be well formed.
			c, err := a.config()
			if err != nil {
				return err
			}
			if sender, err = c.SenderFor(sender); err != nil {
				return usageError{fmt.Errorf("%w: give --sender", err)}
			}
			var client *connectly.Client
			if !dryRun {
				if client, err = connectlyClient(c, 0); err != nil {
					return err
				}
			}
			return a.connected(ctx, c, func(rdb redis.UniversalClient) error {
				res, err := sendMessage(ctx, rdb, c, client, messageSend{to: id, sender: sender, content: content, actor: actor,
					dryRun: dryRun, reveal: reveal, now: time.Now})
				if res.Kind != "" && (err == nil || errors.Is(err, conversation.ErrWindowClosed)) {
					if perr := a.print(asJSON, res, func(w io.Writer) error { printMessage(w, res); return nil }); perr != nil {
						return perr
					}
				}
				return err
			})
		})
	send.Long = `Send one session message (free-form: text, an attachment, a location, reply buttons, a list, a
product) to one customer, through Connectly with the configured business and API key. WhatsApp
allows it only within 24 hours of the customer's last message: Herald looks up the customer's
window (recorded by its webhook receiver) and refuses when it is closed; reach them with an
approved template instead. Every send is recorded in the audit log (herald audit).

--text sends a text message. --file reads any kind from YAML or JSON, with the keys of a
campaign's message: block, e.g.
  text: Which day suits you?
  reply_buttons:
    buttons:
      - {id: mon, text: Monday}
      - {id: tue, text: Tuesday}
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
	return group("message", "Session messages to one customer (support staff)", send)
}

func printMessage(w io.Writer, r messageResult) {
	fmt.Fprintf(w, "Customer   %s\nWindow     %s\nMessage    %s\n", r.To, r.Window.Line(time.Now()), r.Kind)
	switch {
	case r.DryRun:
		var buf bytes.Buffer
		_ = json.Indent(&buf, r.Request, "  ", "  ")
		fmt.Fprintf(w, "\nRequest (dry run, not sent): POST %s\n  %s\n", connectly.SessionPath("{businessId}"), buf.String())
	case r.MessageID != "":
		fmt.Fprintf(w, "Sent       message id %s\n", r.MessageID)
	}
}
