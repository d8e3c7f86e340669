package conversation

import (
	"context"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
)

// SendRecorder returns the worker's OnSending function (worker.Worker.OnSending): a send of a
// campaign with on_reply (or of one of its follow-ups, under the run it follows) is recorded
// in idx, the index of recent sends, just before its request, so that plain-text replies join
// to its run until on_reply.until: the run that messaged the customer last, a follow-up's
// counted, takes them, so a typed answer to a follow-up's question joins the run that asked
// it (a reply to a message that then failed finds its entry failed and joins an older run,
// see Index.Join); the audience columns the send carries for
// follow-ups (SendPayload.ReplyCols) are stored in cols for the recipient in its run. It
// returns the error of a step that failed (the run's campaign could not be read, Redis did
// not answer), and the worker then makes no request: a message sent unrecorded would leave a
// typed answer to it joined to an older run, or to none.
func SendRecorder(resolve Resolver, idx *Index, cols *Columns) func(context.Context, campaigns.SendPayload) error {
	return func(ctx context.Context, p campaigns.SendPayload) error {
		id := p.Run
		if parent, _, ok := ledger.FollowupOf(id); ok {
			id = parent
		}
		info, ok, err := resolve(ctx, id)
		if err != nil || !ok || info.Def == nil || !info.Def.OnReply.Enabled() {
			return err
		}
		until := info.Run.Created.Add(info.Def.OnReply.UntilDuration())
		if err := idx.Record(ctx, id, ledger.BucketOf(p.To, info.Run.Buckets), p.To, until); err != nil {
			return err
		}
		if len(p.ReplyCols) > 0 && id == p.Run {
			return cols.Save(ctx, p.Address(), p.ReplyCols, until.Add(ColumnsMargin))
		}
		return nil
	}
}
