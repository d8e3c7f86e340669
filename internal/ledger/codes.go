package ledger

import "github.com/heraldmsg/herald/internal/connectly"

// The codes Herald records itself, beside Connectly's answers (which connectly.Table
// classifies): a send that waited for Herald's own limits, a claim given back before any
// request, an entry made unknown. Readers (recipient explain, its timeline) take their class
// and meaning from CodeMeaning, never from the provider's table, whose fallback for a key it
// does not know is permanent.
const (
	// CodeRateLimit: the send waited for a rate-limit slot (the sender's or business's rate,
	// the person's pair interval) and its claim went back unused.
	CodeRateLimit = "RATE_LIMIT"
	// CodeDailyTier: the send waited for the daily messaging tier (unique recipients a day).
	CodeDailyTier = "DAILY_TIER"
	// CodeLateAfterClaim: a paced send came late to its slot after claiming and took a
	// fresh one.
	CodeLateAfterClaim = "LATE_AFTER_CLAIM"
	// CodeLateForPair: a send came to its last slot too late to keep the pair interval:
	// nothing was sent, and the task tries again later.
	CodeLateForPair = "LATE_FOR_PAIR"
	// CodePaceError: a claim given back because Redis did not answer the wait for the limits.
	CodePaceError = "PACE_ERROR"
	// CodeShutdown: a claim given back because the worker stopped while the send waited.
	CodeShutdown = "SHUTDOWN"
	// CodeClaimUnanswered: a claim given back because its answer never came.
	CodeClaimUnanswered = "CLAIM_UNANSWERED"
	// CodeSendUnrecorded: a claim given back because the send could not be recorded for the
	// replies to it, so it was not made.
	CodeSendUnrecorded = "SEND_UNRECORDED"
	// CodeSuppressionUnread: a claim given back because the suppression list could not be
	// read in its round trip: the send is not made unchecked, and the task tries again.
	CodeSuppressionUnread = "SUPPRESSION_UNREAD"
	// CodeFallbackUnkept: a claim given back because a session message's fallback could not
	// be kept for a late window refusal (KeepFallback), or one an earlier attempt kept could
	// not be dropped (the gate sends the fallback instead), in its round trip: nothing is sent,
	// and the task tries again.
	CodeFallbackUnkept = "FALLBACK_UNKEPT"
	// CodeDeliveryFailed: Connectly reported a failed delivery without a code or type.
	CodeDeliveryFailed = "DELIVERY_FAILED"
	// CodeClientError: Herald could not build the request (connectly.ErrorKey); nothing was
	// sent.
	CodeClientError = "CLIENT_ERROR"
)

// Classes of Herald's own codes (CodeMeaning), beside the provider's (connectly.Class).
const (
	// ClassPacing: the send waited for Herald's limits; no request was made and no attempt
	// used. Not a failure.
	ClassPacing = "pacing"
	// ClassRequeued: the claim went back before any request (Redis did not answer, the
	// worker stopped) and the task tries again. Not a failure.
	ClassRequeued = "requeued"
	// ClassUnknown: the message may have gone; the recipient reads as unknown.
	ClassUnknown = "unknown"
)

// heraldCodes holds the class and meaning of every code Herald records itself.
var heraldCodes = map[string]struct{ class, why string }{
	CodeRateLimit:      {ClassPacing, "waited for a rate-limit slot"},
	CodeDailyTier:      {ClassPacing, "waited for the daily messaging tier"},
	CodeLateAfterClaim: {ClassPacing, "came late to its paced slot and took a fresh one"},
	CodeLateForPair:    {ClassPacing, "came to its slot too late to keep the pair interval: waited for a later slot"},

	CodePaceError:         {ClassRequeued, "Redis did not answer the wait for the limits: nothing was sent, the send tries again"},
	CodeShutdown:          {ClassRequeued, "the worker stopped while the send waited: nothing was sent, the send tries again"},
	CodeClaimUnanswered:   {ClassRequeued, "the claim's answer from Redis was lost: nothing was sent, the send tries again"},
	CodeSendUnrecorded:    {ClassRequeued, "the send could not be recorded for replies: nothing was sent, the send tries again"},
	CodeSuppressionUnread: {ClassRequeued, "the suppression list could not be read: nothing was sent, the send tries again"},
	CodeFallbackUnkept:    {ClassRequeued, "the session message's fallback could not be kept (or dropped) for a late window refusal: nothing was sent, the send tries again"},

	CodeClaimFound:  {ClassUnknown, "an earlier attempt's claim was found: its worker died mid-request or its answer never came, so the message may have gone"},
	CodeTaskDeleted: {ClassUnknown, "its send task was deleted while a dead worker's claim held it, so the message may have gone"},
	CodeResendDeleted: {ClassUnknown, "its resend was withdrawn, never sent: its task was deleted while the resend waited " +
		"(held by a paused run, or for a worker), and the recipient is unknown again from its first message, which may have gone"},

	CodeDeliveryFailed: {connectly.ClassPermanent.String(), "Connectly reported the delivery failed without a code"},
	CodeClientError:    {connectly.ClassPermanent.String(), "Herald could not build the request: nothing was sent"},
}

// CodeMeaning returns the class and meaning of a code Herald itself records (not the
// provider's: those are in the connectly table); ok is false for any other code.
func CodeMeaning(code string) (class, why string, ok bool) {
	c, ok := heraldCodes[code]
	return c.class, c.why, ok
}
