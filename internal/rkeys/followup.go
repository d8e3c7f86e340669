package rkeys

// FollowupRuns is the set of follow-up run ids ("RUN~RULE"), for the outbox sweep.
func FollowupRuns() string { return Prefix + "followup:runs" }

// FollowupOutbox is a follow-up run's sorted set of entries whose task may not exist yet,
// scored by creation (unix ms); FollowupDue holds each one's due time for its task.
func FollowupOutbox(run string) string { return Run(run) + ":fu:outbox" }

// FollowupDue is the hash recipient → when the follow-up task of a FollowupOutbox entry is due.
func FollowupDue(run string) string { return Run(run) + ":fu:due" }

// Tags is a run's hash recipient → the tag an on_reply rule gave them.
func Tags(run string) string { return Run(run) + ":tags" }

// FollowupOnce is the marker of a campaign's rule under once_per: campaign: recipient → the
// run that gave them the follow-up.
func FollowupOnce(campaign, rule string) string {
	return Prefix + "followup:{" + campaign + "}:once:" + rule
}
