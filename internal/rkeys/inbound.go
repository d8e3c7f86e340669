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

// InboundUndated marks that an inbound message of a business that carries no time (a shape
// the reference does not show) has opened its customer's window once, at the time its first
// copy arrived, so that a copy delivered again later does not stretch the window past the one
// Meta keeps. inbound names the message as for InboundJoin. It expires with the receiver's
// memory of a message. Read and written alone, with no hash tag, as InboundJoin.
func InboundUndated(business, inbound string) string {
	return Prefix + "csw:undated:" + business + ":" + inbound
}
