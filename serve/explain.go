package serve

import (
	"context"
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
// (a session message allowed only outside worker.window_margin of its close).
// A run that does not exist wraps ledger.ErrRunNotFound.
func ExplainRecipient(ctx context.Context, c config.Config, rdb redis.UniversalClient, p ExplainParams) (report.Explanation, error) {
	table, err := ErrorTable(c)
	if err != nil {
		return report.Explanation{}, err
	}
	return report.Explain(ctx, ledger.New(rdb, nil), rdb, report.ExplainParams{Run: p.Run, Recipient: p.Recipient, Shown: p.Shown,
		Business: c.Connectly.BusinessID, Windows: c.WindowPolicy(), WindowMargin: c.Worker.WindowMargin.D(), Table: table, RuleIDs: RunRuleIDs(c, rdb), Now: p.Now,
		Replies: conversation.NewHistory(rdb, nil).Read})
}
