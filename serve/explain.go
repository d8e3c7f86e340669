package serve

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/report"
)

// ExplainParams name the recipient ExplainRecipient tells the story of.
type ExplainParams struct {
	Run string
	// Recipient is the normalised recipient (E.164 or bsuid:...); Shown is how it is printed.
	Recipient, Shown string
	Now              time.Time
}

// ExplainRecipient reads a recipient's story in a run (report.Explain) under config c: its
// codes classed by the configured table (ErrorTable: a table that does not build is an
// error), the follow-ups of the on_reply rules of the run's campaign (RunRuleIDs), its
// replies from the conversation record, and its service window in the configured business
// (WindowQuery).
// A run that does not exist wraps ledger.ErrRunNotFound.
func ExplainRecipient(ctx context.Context, c config.Config, rdb redis.UniversalClient, p ExplainParams) (report.Explanation, error) {
	table, err := ErrorTable(c)
	if err != nil {
		return report.Explanation{}, err
	}
	wq := WindowQuery(c, p.Recipient, p.Shown, p.Now)
	return report.Explain(ctx, ledger.New(rdb, nil), rdb, report.ExplainParams{Run: p.Run, Recipient: p.Recipient, Shown: p.Shown,
		Business: wq.Business, Windows: wq.Policy, WindowMargin: wq.Margin, WindowAhead: wq.Ahead, Table: table, RuleIDs: RunRuleIDs(c, rdb), Now: p.Now,
		Replies: conversation.NewHistory(rdb, nil).Read})
}

// WindowQuery reads customer's service windows under config c, at now, as the senders count
// them: `message send` refuses a session message within worker.window_margin of a window's
// close, and the workers a campaign's or follow-up's within that margin plus the longest its
// send waits after its window check (report.SendAhead of retry.keep_place_for and
// retry.max_pace_wait). Shown is how the customer is printed.
func WindowQuery(c config.Config, customer, shown string, now time.Time) report.WindowQuery {
	return report.WindowQuery{Business: c.Connectly.BusinessID, Customer: customer, Shown: shown, Policy: c.WindowPolicy(),
		Margin: c.Worker.WindowMargin.D(), Ahead: report.SendAhead(c.Retry.KeepPlaceFor.D(), c.Retry.MaxPaceWait.D()), Now: now}
}

// ErrNoBusiness says a customer's service window cannot be read: Herald records windows per
// business (connectly.business_id), and the config names none.
var ErrNoBusiness = errors.New("service windows are recorded per business: set connectly.business_id (env CONNECTLY_BUSINESS_ID) to read one")

// WindowsReadable says whether config c names the business whose service windows a command
// reads: nil, or ErrNoBusiness. Without one, every window would read as closed, whatever the
// customer wrote.
func WindowsReadable(c config.Config) error {
	if c.Connectly.BusinessID == "" {
		return ErrNoBusiness
	}
	return nil
}
