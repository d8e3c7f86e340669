package rkeys

import "strconv"

// FollowupActive is the sorted set of follow-up run ids ("RUN~RULE") the outbox sweep looks
// at, scored by the last time an entry was created in each (unix ms). A run leaves it once its
// outbox is empty and it has had no new entry for a while; its next entry brings it back.
func FollowupActive() string { return Prefix + "followup:active" }

// FollowupsPaused is the sorted set of paused follow-up run ids ("RUN~RULE"), scored by when
// each was paused (unix ms). Follow-up runs are not in the run list; this is how `run show`,
// `run resume` of the run they follow and herald_run_paused find them.
func FollowupsPaused() string { return Prefix + "followup:paused" }

// FollowupsHeld is the sorted set of the completed runs whose follow-ups an operator paused
// (the run hash's followups field 'paused', ledger.PauseFollowups), scored by when they were
// paused (unix ms), from which herald_run_paused reports them whatever the run's age. Like
// ActiveRuns it has no hash tag, so it lives in another Cluster slot than the runs' keys and
// the follow-ups script does not write it: the Go call that paused, resumed or cancelled them
// brings it in line with the run hash after the script, and a reader drops a run it finds no
// longer held.
func FollowupsHeld() string { return Prefix + "followups:held" }

// FollowupsHeldBackfill is how far the one walk of Runs that lists the completed runs whose
// follow-ups were paused before FollowupsHeld existed has gone: a position in Runs (oldest
// first), "done" once the walk reached its end.
func FollowupsHeldBackfill() string { return Prefix + "followups:held:backfill" }

// FollowupRunsV1 is the set that registered follow-up runs before FollowupActive; the sweep
// moves what it holds into FollowupActive and deletes it.
func FollowupRunsV1() string { return Prefix + "followup:runs" }

// FollowupOutbox is a follow-up run's hash recipient → the task payload of an entry whose
// task may not exist yet; FollowupDue holds each one's due time.
func FollowupOutbox(run string) string { return Run(run) + ":fu:outbox" }

// FollowupDue is the sorted set of a follow-up run's FollowupOutbox entries, scored by when
// their task is due (the entry's creation, unix ms).
func FollowupDue(run string) string { return Run(run) + ":fu:due" }

// Tags is a run's hash recipient → the tags on_reply rules gave them, sorted and joined by
// commas.
func Tags(run string) string { return Run(run) + ":tags" }

// FollowupOnce is the marker of a campaign's rule under once_per: campaign: recipient → the
// run that gave them the follow-up.
func FollowupOnce(campaign, rule string) string {
	return Prefix + "followup:{" + campaign + "}:once:" + rule
}

// KeptFallback is one bucket of a run's kept fallback templates, bucketed as the run's ledger
// (LedgerBucket): recipient field (phone digits, or the recipient as written) → the send task
// payload of the session message's fallback template (campaigns.KindFallback). The worker
// writes it just before a session message's request; the webhook receiver reads it when
// Connectly reports the accepted message undelivered because the customer's window had
// closed, and sends the fallback then, as a follow-up (ledger.LateFallbackRule).
func KeptFallback(runID string, bucket int) string {
	return Prefix + "run:{" + runID + "}:fb:" + strconv.Itoa(bucket)
}
