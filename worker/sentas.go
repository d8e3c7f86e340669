package worker

// sentAs is the code an accepted send records: its message's (Message.SentAs), given whether
// its booking found the recipient's customer service window open. A booking that read no
// window counts the send as outside one.
func sentAs(j *job) string {
	b := j.bk.Booking
	return j.msg.SentAs(b != nil && b.InWindow)
}
