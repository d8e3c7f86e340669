package campaigns

import "github.com/heraldmsg/herald/internal/ledger"

// MarketingForSuppression reports whether a send of kind and category (SendPayload.Kind,
// SendPayload.Category) counts as marketing for the suppression list before it is queued
// (ledger.Suppression.Blocks): the expansion plans a recipient whose entry blocks it
// skipped(suppressed), and `campaign plan` counts it so. A template counts by its category
// (ledger.MarketingCategory); a session message does not, as it is left to the worker, which
// knows whether it counts as marketing and, from the customer's window, whether it or its
// fallback goes.
func MarketingForSuppression(kind, category string) bool {
	return kind != KindSession && ledger.MarketingCategory(category)
}
