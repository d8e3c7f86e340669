package conversation

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
)

// SendRecorder returns the worker's OnSending function (worker.Worker.OnSending): a send of a
// campaign with on_reply (or of one of its follow-ups, under the run it follows) is recorded
// in idx, the index of recent sends, just before its request, so that plain-text replies join
// to its run until on_reply.until (a reply to a message that then failed finds its entry
// failed and triggers nothing); the audience columns the send carries for follow-ups
// (SendPayload.ReplyCols) are stored in cols for the recipient in its run. A failure is
// logged: the send stands, only a reply to it may not join its run or read its columns.
func SendRecorder(resolve Resolver, idx *Index, cols *Columns, log zerolog.Logger) func(context.Context, campaigns.SendPayload) {
	return func(ctx context.Context, p campaigns.SendPayload) {
		id := p.Run
		if parent, _, ok := ledger.FollowupOf(id); ok {
			id = parent
		}
		info, ok, err := resolve(ctx, id)
		if err == nil && (!ok || info.Def == nil || !info.Def.OnReply.Enabled()) {
			return
		}
		if err == nil {
			until := info.Run.Created.Add(info.Def.OnReply.UntilDuration())
			err = idx.Record(ctx, id, ledger.BucketOf(p.To, info.Run.Buckets), p.To, until)
			if err == nil && len(p.ReplyCols) > 0 && id == p.Run {
				err = cols.Save(ctx, p.Address(), p.ReplyCols, until.Add(ColumnsMargin))
			}
		}
		if err != nil {
			log.Warn().Str(logx.KeyRun, p.Run).Err(err).Msg("on_reply: could not record the send for replies")
		}
	}
}
