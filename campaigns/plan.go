package campaigns

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/logx"
)

// PlanOptions configure Plan.
type PlanOptions struct {
	// Samples is how many request bodies to render, from the first sendable rows. Default 3;
	// negative renders none.
	Samples int
	// Examples is how many skipped rows to describe per reason. Default 3.
	Examples int
	// Progress, when set, is called every 65,536 rows with the rows read so far.
	Progress func(rows int)
	// Recipient, when set, is called with the row of every recipient that would be sent to, in
	// file order (after duplicates and invalid rows are taken out).
	Recipient func(row Row)
	// Wire encodes the samples as the configured client encodes its sends (where a BSUID
	// recipient goes, whether campaignName goes out); the zero value is the client's default.
	Wire connectly.Wire
	// CheckFollowups renders each on_reply rule's follow-up with every recipient's row
	// (PlanReport.FollowupProblems): the pre-flight of `campaign plan` and `validate --rows`.
	// A run's start, which reads the audience only to count its invalid rows, leaves it off:
	// it costs as much as the rest of the pass again.
	CheckFollowups bool
}

// SkippedRow describes one row that would not be sent.
type SkippedRow struct {
	Row    int    `json:"row"`
	Line   int    `json:"line"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// PlanReport is what a campaign would do, computed from its audience without sending.
type PlanReport struct {
	File       string `json:"file"`
	Audience   string `json:"audience"`
	Rows       int    `json:"rows"`
	Recipients int    `json:"recipients"`
	// Skipped counts rows that would not be sent, by reason (duplicate, invalid_phone, ...).
	Skipped map[string]int `json:"skipped"`
	// Examples shows the first skipped rows of each reason.
	Examples []SkippedRow `json:"examples"`
	// Languages counts recipients per template language.
	Languages map[string]int `json:"languages"`
	// Samples are the exact request bodies for the first recipients ("RUN" stands for the
	// run id, which exists only once the campaign is sent): template sends, or a session
	// campaign's session sends.
	Samples []json.RawMessage `json:"samples"`
	// Session describes a session campaign's sends; nil for a template campaign.
	Session *SessionPlan `json:"session,omitempty"`
	// FollowupProblems are the on_reply rules whose follow-up would not render for some
	// recipients (plan_followups.go).
	FollowupProblems []FollowupProblem `json:"followup_problems,omitempty"`
	// FollowupNote says which rules' follow-ups were rendered with the first recipient's row
	// only, not every recipient's (over the check's bound, plan_followups.go); "" when none.
	FollowupNote string `json:"followup_note,omitempty"`
}

// SessionPlan is what a session campaign does at send time.
type SessionPlan struct {
	// Kind is the message's content kind (text, attachment, list...).
	Kind connectly.SessionKind `json:"kind"`
	// Path is the session send endpoint, with {businessId}.
	Path string `json:"path"`
	// WindowClosed is what happens to a recipient whose 24-hour window is closed at send
	// time: "skip" (skipped, window_closed, no request) or "fallback" (FallbackTemplate is
	// sent instead).
	WindowClosed string `json:"window_closed"`
	// FallbackTemplate names the fallback template and its default language.
	FallbackTemplate string `json:"fallback_template,omitempty"`
	// FallbackSamples are the fallback's request bodies for the same recipients as Samples.
	FallbackSamples []json.RawMessage `json:"fallback_samples,omitempty"`
}

// Note is one sentence on what happens to recipients whose window is closed.
func (s *SessionPlan) Note() string {
	if s.WindowClosed == "fallback" {
		return "recipients whose 24-hour window is closed at send time are sent the fallback template " + s.FallbackTemplate + " instead (counted separately)"
	}
	return "recipients whose 24-hour window is closed at send time are skipped (window_closed), without a request"
}

// InvalidReasons are the skip reasons that count as invalid rows (duplicates do not).
var InvalidReasons = []string{"invalid_phone", "missing_phone", "missing_recipient", "invalid_bsuid", SkipBSUIDNotSupported, "invalid_row", "invalid_params"}

// InvalidShare is the share of rows skipped as invalid.
func (r PlanReport) InvalidShare() float64 {
	if r.Rows == 0 {
		return 0
	}
	n := 0
	for _, reason := range InvalidReasons {
		n += r.Skipped[reason]
	}
	return float64(n) / float64(r.Rows)
}

// CheckInvalidShare returns an error when more rows are invalid than the campaign allows
// (audience.max_invalid_share), naming the counts and the first examples.
func (r PlanReport) CheckInvalidShare(max float64) error {
	share := r.InvalidShare()
	if share <= max {
		return nil
	}
	var b strings.Builder
	audience := logx.Escape(r.Audience)
	fmt.Fprintf(&b, "%s: %.1f%% of %d rows are invalid, more than audience.max_invalid_share (%.1f%%)", audience, share*100, r.Rows, max*100)
	for _, reason := range InvalidReasons {
		if n := r.Skipped[reason]; n > 0 {
			fmt.Fprintf(&b, "; %s %d", reason, n)
		}
	}
	for _, e := range r.Examples {
		if e.Reason != "duplicate" {
			fmt.Fprintf(&b, "\n  %s:%d: row %d: %s: %s", audience, e.Line, e.Row, e.Reason, logx.EscapeControl(e.Detail))
		}
	}
	return errors.New(b.String())
}

// Plan streams the definition's audience and reports what a run would send. Memory stays
// small whatever the audience size: duplicates are found through 64-bit hashes of recipients.
func Plan(d *Definition, sender string, o PlanOptions) (PlanReport, error) {
	if o.Samples == 0 {
		o.Samples = 3
	}
	if o.Samples < 0 {
		o.Samples = 0
	}
	if o.Examples == 0 {
		o.Examples = 3
	}
	rep := PlanReport{File: d.Path, Audience: d.AudiencePath(), Skipped: map[string]int{}, Languages: map[string]int{},
		Examples: []SkippedRow{}, Samples: []json.RawMessage{}}
	r, err := NewRenderer(d)
	if err != nil {
		return rep, err
	}
	if d.IsSession() {
		rep.Session = &SessionPlan{Kind: d.Message.Kind(), Path: connectly.SessionPath("{businessId}"), WindowClosed: "skip"}
		if d.HasFallback() {
			rep.Session.WindowClosed = "fallback"
			rep.Session.FallbackTemplate = d.Template.Name + " (" + d.Template.Language + ")"
			rep.Session.FallbackSamples = []json.RawMessage{}
		}
	}
	ar, err := OpenAudience(d)
	if err != nil {
		return rep, err
	}
	defer ar.Close()
	seed := maphash.MakeSeed()
	var seen hashSet
	examples := map[string]int{}
	skip := func(row Row, reason, detail string) {
		rep.Skipped[reason]++
		if examples[reason] < o.Examples {
			examples[reason]++
			rep.Examples = append(rep.Examples, SkippedRow{Row: row.N, Line: row.Line, Reason: reason, Detail: detail})
		}
	}
	// Rows are read in order by one goroutine, resolved (phone normalisation, rendering) in
	// batches on every core, and counted back in file order, so duplicates, examples and
	// samples are the same as in a sequential pass.
	var fc *followupCheck
	if o.CheckFollowups {
		fc = newFollowupCheck(d)
	}
	tally := newFollowupTally(fc, o.Examples)
	done := make(chan struct{})
	defer close(done)
	for b := range resolveFollowups(ar, r, fc, done, maxInFlight) {
		if b.err != nil {
			return rep, b.err
		}
		for _, it := range b.items {
			row := it.row
			rep.Rows++
			if o.Progress != nil && rep.Rows&0xFFFF == 0 {
				o.Progress(rep.Rows)
			}
			if row.SkipReason != "" {
				skip(row, row.SkipReason, row.Err.Error())
				continue
			}
			if it.renderErr != nil {
				skip(row, "invalid_params", it.renderErr.Error())
				continue
			}
			if !seen.add(maphash.String(seed, row.Recipient)) {
				skip(row, "duplicate", "recipient already on an earlier row")
				continue
			}
			rep.Recipients++
			tally.add(row, it.followups)
			if row.Language != "" { // a session campaign without a fallback has none
				rep.Languages[row.Language]++
			}
			if o.Recipient != nil {
				o.Recipient(row)
			}
			if len(rep.Samples) < o.Samples {
				if err := addSamples(&rep, d, sender, o.Wire, it); err != nil {
					return rep, fmt.Errorf("row %d: %w", row.N, err)
				}
			}
		}
		b.release()
	}
	rep.FollowupProblems = tally.problems(rep.Recipients)
	rep.FollowupNote = fc.note()
	return rep, nil
}

// addSamples adds the exact request bodies of one recipient to the report: its template send,
// or its session send (and the fallback template's, when the campaign has one).
func addSamples(rep *PlanReport, d *Definition, sender string, w connectly.Wire, it resolved) error {
	row := it.row
	p := SendPayload{Run: "RUN", To: row.Recipient, Campaign: d.ID}
	templateBody := func() ([]byte, error) {
		return w.EncodeTemplate(connectly.TemplateMessage{
			Number: row.Recipient, TemplateName: d.Template.Name, Language: row.Language,
			Parameters: it.params, Sender: sender, CallbackData: p.Callback(), CampaignName: d.ID,
		})
	}
	if !d.IsSession() {
		body, err := templateBody()
		if err != nil {
			return err
		}
		rep.Samples = append(rep.Samples, body)
		return nil
	}
	content, err := DecodeSession(it.session)
	if err != nil {
		return err
	}
	body, err := w.EncodeSession(connectly.SessionMessage{To: row.Recipient, Sender: sender,
		CallbackData: p.Callback(), CampaignName: d.ID, Content: content})
	if err != nil {
		return err
	}
	rep.Samples = append(rep.Samples, body)
	if d.HasFallback() {
		body, err := templateBody()
		if err != nil {
			return err
		}
		rep.Session.FallbackSamples = append(rep.Session.FallbackSamples, body)
	}
	return nil
}

// resolved is one row after resolution and rendering.
type resolved struct {
	row    Row
	params []connectly.Parameter
	// session is a session campaign's rendered message (SessionRenderer.Render).
	session   json.RawMessage
	renderErr error
	// followups are the on_reply follow-ups that would not render for the row (Plan's check),
	// a bit a rule (followupRows.check).
	followups uint64
	// off is the audience file offset just after the row (see AudienceReader.Offset).
	off int64
}

// renderedBytes estimates the memory a row's rendered parameters and message hold.
func (it *resolved) renderedBytes() int64 {
	n := int64(len(it.session))
	for _, p := range it.params {
		n += 32 + int64(len(p.Value))
	}
	return n
}

type resolvedBatch struct {
	seq   int
	items []resolved
	err   error
	// size is what the batch counts in its flight (rowBytes and renderedBytes of its rows).
	size   int64
	flight *flight
}

// release returns the batch's bytes to its flight: the consumer is done with it.
func (b *resolvedBatch) release() {
	if b.flight != nil {
		b.flight.release(b.size)
		b.flight = nil
	}
}

// Reading ahead is bounded by bytes, not rows: a batch ends at maxBatchRows rows or at
// maxBatchBytes, and the reader starts no batch while the batches read and not yet released
// by the consumer hold maxInFlight bytes or more (rowBytes of their rows, and what rendering
// them added). The rows read ahead then hold about maxInFlight plus a few batches (the one
// being read, those the consumer holds), however wide or long the rows and however many
// cores render them; a row is at most campaigns.max_record_bytes of text.
const (
	maxBatchRows        = 1024
	maxBatchBytes int64 = 1 << 20
	maxInFlight   int64 = 16 << 20
)

// flight counts the bytes of the batches between the reader and the consumer.
type flight struct {
	mu   sync.Mutex
	used int64
	max  int64
	// freed wakes the reader after a release.
	freed chan struct{}
	// waits counts the times the reader waited for bytes to be released (for tests).
	waits int
}

func newFlight(max int64) *flight { return &flight{max: max, freed: make(chan struct{}, 1)} }

// wait returns once the batches in flight hold less than max bytes, or false once done is
// closed.
func (f *flight) wait(done <-chan struct{}) bool {
	for first := true; ; first = false {
		f.mu.Lock()
		ok := f.used < f.max
		if !ok && first {
			f.waits++
		}
		f.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-f.freed:
		case <-done:
			return false
		}
	}
}

func (f *flight) add(n int64) {
	f.mu.Lock()
	f.used += n
	f.mu.Unlock()
}

func (f *flight) release(n int64) {
	f.add(-n)
	select {
	case f.freed <- struct{}{}:
	default:
	}
}

// resolveBatches reads the audience in batches, resolves and renders them on every core, and
// yields the batches in file order. A read error ends the stream with a batch carrying it.
// The consumer calls release on each batch once done with it; closing done stops the
// goroutines early. The reader keeps only the columns the campaign reads (narrow).
func resolveBatches(ar *AudienceReader, r *Renderer, done <-chan struct{}) <-chan resolvedBatch {
	return resolveWithin(ar, r, done, maxInFlight)
}

// resolveWithin is resolveBatches with maxInFlight set to max.
func resolveWithin(ar *AudienceReader, r *Renderer, done <-chan struct{}, max int64) <-chan resolvedBatch {
	return resolveFollowups(ar, r, nil, done, max)
}

// resolveFollowups is resolveWithin that also checks each rendered row's on_reply follow-ups
// with fc (nil: none).
func resolveFollowups(ar *AudienceReader, r *Renderer, fc *followupCheck, done <-chan struct{}, max int64) <-chan resolvedBatch {
	ar.narrow(r.reads())
	fl := newFlight(max)
	batchBytes := min(maxBatchBytes, max)
	workers := runtime.GOMAXPROCS(0)
	raw := make(chan resolvedBatch, workers)
	cooked := make(chan resolvedBatch, workers)
	out := make(chan resolvedBatch, workers)

	go func() { // reader
		defer close(raw)
		for seq := 0; ; seq++ {
			if !fl.wait(done) {
				return
			}
			b := resolvedBatch{seq: seq, flight: fl, items: make([]resolved, 0, maxBatchRows)}
			for len(b.items) < maxBatchRows && b.size < batchBytes {
				row, err := ar.NextRaw()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.err = err
					break
				}
				b.items = append(b.items, resolved{row: row, off: ar.Offset()})
				b.size += ar.size
			}
			last := b.err != nil || (len(b.items) < maxBatchRows && b.size < batchBytes)
			if len(b.items) > 0 || b.err != nil {
				fl.add(b.size)
				select {
				case raw <- b:
				case <-done:
					return
				}
			}
			if last {
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() { // resolvers
			defer wg.Done()
			fu := fc.rows()
			for b := range raw {
				var rendered int64
				for i := range b.items {
					it := &b.items[i]
					ar.Resolve(&it.row)
					if it.row.SkipReason == "" {
						it.params, it.renderErr = r.Render(it.row.Cols)
						if it.renderErr == nil && r.session != nil {
							it.session, it.renderErr = r.session.Render(it.row.Cols)
						}
						if it.renderErr == nil {
							it.followups = fu.check(it.row.Cols)
						}
						rendered += it.renderedBytes()
					}
				}
				b.size += rendered
				fl.add(rendered)
				select {
				case cooked <- b:
				case <-done:
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(cooked)
	}()

	go func() { // reorder
		defer close(out)
		pending := map[int]resolvedBatch{}
		next := 0
		for b := range cooked {
			pending[b.seq] = b
			for {
				nb, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				next++
				select {
				case out <- nb:
				case <-done:
					return
				}
			}
		}
	}()
	return out
}
