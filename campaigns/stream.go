package campaigns

import (
	"encoding/json"

	"github.com/heraldmsg/herald/internal/connectly"
)

// Resolved is an audience row after resolution (recipient, language or skip reason) and
// rendering of its parameters (and of a session campaign's message).
type Resolved struct {
	Row    Row
	Params []connectly.Parameter
	// Session is a session campaign's message rendered for the row (SessionRenderer.Render);
	// nil for a template campaign, or when RenderErr is set.
	Session   json.RawMessage
	RenderErr error
	// Offset is the audience file offset just after the row, for AudienceReader.SeekRow.
	Offset int64
}

// StreamBatch is a run of consecutive resolved rows, or the read error that ends a stream.
type StreamBatch struct {
	Rows []Resolved
	Err  error
}

// Stream reads the audience in batches of up to 1,024 rows on one goroutine, resolves and
// renders them on every core, and yields them in file order, ahead of the consumer by a
// bounded number of bytes (see maxInFlight). The rows hold only the columns the campaign
// reads (AudienceReader.narrow). A read error ends the stream with a batch carrying it.
// Closing done stops the goroutines early; the reader must not be used directly meanwhile.
func Stream(ar *AudienceReader, r *Renderer, done <-chan struct{}) <-chan StreamBatch {
	out := make(chan StreamBatch, 2)
	in := resolveBatches(ar, r, done)
	go func() {
		defer close(out)
		for b := range in {
			sb := StreamBatch{Err: b.err, Rows: make([]Resolved, len(b.items))}
			for i, it := range b.items {
				sb.Rows[i] = Resolved{Row: it.row, Params: it.params, Session: it.session, RenderErr: it.renderErr, Offset: it.off}
			}
			b.release()
			select {
			case out <- sb:
			case <-done:
				return
			}
		}
	}()
	return out
}
