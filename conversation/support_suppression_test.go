package conversation

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/ledger"
)

// A customer on the suppression list for every message (a STOP, an Unsubscribe tap) is not
// sent a support message unless it is asked for, and then the audit entry says so; one
// suppressed for marketing only is answered (a support message is not marketing), and the
// result says they are.
func TestSupportSuppression(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("EveryMessage", func(t *testing.T) {
		t.Parallel()
		b := newAnswerBench(t)
		if err := ledger.New(b.rdb, nil).Suppress(ctx, b.params.To, "INBOUND_OPT_OUT"); err != nil {
			t.Fatal(err)
		}
		p := SupportParams{AnswerParams: b.params}
		res, err := Support(ctx, b.rdb, b.client, p)
		if !errors.Is(err, ErrSuppressed) || res.Outcome != OutcomeNotSent || res.Suppression == nil ||
			res.Suppression.Scope != "all" || res.Suppression.Reason != "INBOUND_OPT_OUT" || res.Suppression.Since == nil ||
			!strings.Contains(err.Error(), "on the suppression list for every message (INBOUND_OPT_OUT) since ") ||
			!strings.Contains(err.Error(), "--ignore-suppression") {
			t.Fatalf("%+v, %v", res, err)
		}
		if n := len(b.fake.Received()); n != 0 || len(b.audit(t)) != 0 {
			t.Fatalf("sent %d, audit %+v", n, b.audit(t))
		}
		// A dry run says the same.
		if _, err := Support(ctx, b.rdb, nil, p); !errors.Is(err, ErrSuppressed) {
			t.Fatalf("dry run: %v", err)
		}
		p.IgnoreSuppression = true
		res, err = Support(ctx, b.rdb, b.client, p)
		if err != nil || res.Outcome != OutcomeSent || !res.IgnoredSuppression || res.Suppression == nil {
			t.Fatalf("ignoring it: %+v, %v", res, err)
		}
		es := b.audit(t)
		if len(es) != 1 || !strings.HasPrefix(es[0].Detail, "text message, id "+res.MessageID+"; suppressed for every message (INBOUND_OPT_OUT) since ") ||
			!strings.HasSuffix(es[0].Detail, ", ignored as asked") {
			t.Fatalf("audit %+v", es)
		}
	})

	t.Run("MarketingOnly", func(t *testing.T) {
		t.Parallel()
		b := newAnswerBench(t)
		if err := ledger.New(b.rdb, nil).Suppress(ctx, b.params.To, "131050"); err != nil {
			t.Fatal(err)
		}
		res, err := Support(ctx, b.rdb, b.client, SupportParams{AnswerParams: b.params})
		if err != nil || res.Outcome != OutcomeSent || res.Suppression == nil || res.Suppression.Scope != "marketing" || res.IgnoredSuppression {
			t.Fatalf("%+v, %v", res, err)
		}
		if es := b.audit(t); len(es) != 1 || es[0].Detail != "text message, id "+res.MessageID {
			t.Fatalf("audit %+v", es)
		}
	})
}
