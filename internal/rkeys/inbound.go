package rkeys

// InboundJoin pins the join of one inbound message of a business (conversation's follow-ups):
// the run entry the message's first copy was joined to, or that it was joined to none, so that
// every later copy of the message (a retried webhook, a second receiver replica) is joined
// alike. inbound names the message (webhooks.InboundKey, cut to a digest when long). It
// expires once no copy can still come.
//
// It has no hash tag of its own: it is only ever read and written alone, so on a Cluster it
// hashes on its whole name, which spreads a business's pins over the slots rather than adding
// them to the slot of its other keys.
func InboundJoin(business, inbound string) string {
	return Prefix + "conv:join:" + business + ":" + inbound
}
