package rkeys

// Conversation is the sorted set of one recipient's replies in a run (conversation.History):
// each joined inbound message as a small JSON member, scored by its time (unix ms), capped and
// expiring. run is the run replied to (a reply to one of its follow-ups is kept under the
// run it follows), so the key lives in the run's Cluster slot; recipient is its ledger key
// ("+" and digits, or "bsuid:<id>").
func Conversation(run, recipient string) string { return Run(run) + ":conv:" + recipient }
