package rkeys

import "strconv"

// ConversationRecent is one bucket of a business's index of recent sends that can be replied
// to (campaigns with on_reply): customer field (phone digits without '+', or the BSUID) →
// "SEQ:LEDGERBUCKET +LEFT ..." of the runs that messaged them, the last to message them first,
// each SEQ a run's number in ConversationRuns and LEFT the seconds its until had left then (a
// token of its own, so that an older reader skips it; conversation/join.go). The buckets are those of the customer service windows
// (ServiceWindowBuckets, the same hash of the field).
func ConversationRecent(business string, bucket int) string {
	return Prefix + "conv:" + bizTag(business) + ":r:" + strconv.Itoa(bucket)
}

// ConversationRuns is the hash numbering a business's runs in the recent-sends index: run id →
// SEQ.
func ConversationRuns(business string) string { return Prefix + "conv:" + bizTag(business) + ":runs" }

// ConversationSeqs is the hash from a run's SEQ to "RUN|UNTIL" (unix seconds after which its
// replies trigger nothing), and field "#", the last SEQ given.
func ConversationSeqs(business string) string { return Prefix + "conv:" + bizTag(business) + ":seq" }

// ReplyColumns is one bucket of a run's stored audience columns for follow-ups (the columns
// its on_reply rules read), bucketed as the run's ledger (LedgerBucket): recipient field
// (phone digits, or the BSUID) → the values as a JSON array, and field "#" → the column
// names as a JSON array, in the same order.
func ReplyColumns(runID string, bucket int) string {
	return Prefix + "run:{" + runID + "}:rc:" + strconv.Itoa(bucket)
}
