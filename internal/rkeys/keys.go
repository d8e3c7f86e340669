// Package rkeys builds every Redis key Herald uses, its own and the asynq keys it reads or
// writes beside asynq (asynq.go). No other package concatenates key strings.
//
// All keys of one run carry the run id as a Redis Cluster hash tag ("{run}"), so the ledger
// scripts, which touch several keys of one run at once, stay legal on a Cluster.
package rkeys

import (
	"strconv"
	"strings"
)

// Prefix starts every Herald key; asynq's own keys start with AsynqPrefix.
const Prefix = "herald:"

// Runs is a sorted set of run ids scored by creation time (unix milliseconds).
func Runs() string { return Prefix + "runs" }

// ActiveRuns is a sorted set of the ids of runs not yet ended (running or paused), scored by
// creation time (unix milliseconds), from which herald_run_recipients and herald_run_paused
// are reported. Like Runs it has no hash tag, so it lives in another Cluster slot than the
// runs' keys and no run script writes it: a run is added with the run lists (ledger.ListRun,
// after the run is stored and again by every expansion step) and taken out by the Go call
// that saw it end (a cancel, the outcome that completed it); a run found ended while listed
// is dropped by whoever reads it (the metrics collector).
func ActiveRuns() string { return Prefix + "runs:active" }

// ActiveRunsBackfill is how far the one walk of Runs that lists the running and paused runs
// created before ActiveRuns existed has gone: a position in Runs (oldest first), "done" once
// the walk reached its end.
func ActiveRunsBackfill() string { return Prefix + "runs:active:backfill" }

// Campaigns is a sorted set of campaign ids scored by their latest run's creation time.
func Campaigns() string { return Prefix + "campaigns" }

// CampaignRuns is a sorted set of the run ids of one campaign, scored by creation time.
func CampaignRuns(campaignID string) string { return Prefix + "campaign:" + campaignID + ":runs" }

// Run is the hash holding a run's metadata and lifecycle status.
func Run(runID string) string { return Prefix + "run:{" + runID + "}" }

// Counts is the hash of a run's per-state counters (and attempt/retry totals).
func Counts(runID string) string { return Prefix + "run:{" + runID + "}:counts" }

// RunPicked is the set of the recipients a retry run sends to again, picked from its parent's
// ledger when it was created; every expansion step of the run reads it.
func RunPicked(runID string) string { return Prefix + "run:{" + runID + "}:pick" }

// Codes is the hash counting a run's outcomes by "<state>:<code or reason>".
func Codes(runID string) string { return Prefix + "run:{" + runID + "}:codes" }

// LedgerBucket is one bucket of a run's recipient ledger: a hash from recipient key to its
// encoded entry. Recipients are spread over buckets small enough for Redis to keep each one
// in its compact encoding (a listpack) rather than a hash table.
func LedgerBucket(runID string, bucket int) string {
	return Prefix + "run:{" + runID + "}:l:" + strconv.Itoa(bucket)
}

// History is one bucket of a run's recipient histories: recipient → events
// ("outcome:attempt:code:unix s;..."), kept only for recipients whose story is more than one
// clean accept (retries, throttles, holds, failures, unknowns).
func History(runID string, bucket int) string {
	return Prefix + "run:{" + runID + "}:h:" + strconv.Itoa(bucket)
}

// Recent is a run's list of its last outcomes (codes, "ok" for accepted), newest first, used
// to detect a burst of one permanent code.
func Recent(runID string) string { return Prefix + "run:{" + runID + "}:recent" }

// Unknown is the sorted set of a run's unknown recipients waiting for their one resend (the
// campaign's unknown.resend_after), member "<ledger bucket>:<recipient field>", scored by when
// the resend is due (unix ms). A sweep leases a due member by moving its score ahead, and
// removes it once the resend task exists.
func Unknown(runID string) string { return Prefix + "run:{" + runID + "}:unk" }

// UnknownPayloads is the hash of the send task payloads of a run's Unknown members (member →
// payload), from which their resend task is built.
func UnknownPayloads(runID string) string { return Prefix + "run:{" + runID + "}:unk:p" }

// ResendRuns is the set of run ids whose campaign resends unknown recipients; the workers'
// sweep walks it and drops a run once it has finished with nothing left to resend.
func ResendRuns() string { return Prefix + "resend:runs" }

// Suppressed is the hash of recipients who opted out (recipient → "code|unix ms");
// expansion skips them in every run.
func Suppressed() string { return Prefix + "suppressed" }

// TaskIDKey is the deployment's secret key of send task ids (ledger.TaskIDs): 32 random
// bytes, hex, written once by whichever process needs it first.
func TaskIDKey() string { return Prefix + "taskid:key" }

// Audit is the list of operator actions, newest first (capped).
func Audit() string { return Prefix + "audit" }

// bizTag is the hash tag of a business's keys, "{BUSINESS}", which puts every key of the
// business in one Cluster slot so one script may touch several. An empty business id (a
// webhook receiver with no connectly.business_id) is tagged "{_}": "{}" is no tag at all,
// so its keys would hash on their whole names and a script given two of them would fail
// with CROSSSLOT on a Cluster.
func bizTag(business string) string {
	if business == "" {
		business = "_"
	}
	return "{" + business + "}"
}

// SenderLimit is the GCRA state of one sender number's rate limit. Sender and business limits
// share the business id as hash tag so one script can reserve both.
func SenderLimit(business, sender string) string {
	return Prefix + "limit:" + bizTag(business) + ":sender:" + sender
}

// RunLimit is the GCRA state of a run's own rate cap (the campaign's rate).
func RunLimit(business, runID string) string {
	return Prefix + "limit:" + bizTag(business) + ":run:" + runID
}

// PairLimit is the GCRA state of the pair limit between one sender and one recipient (about
// one message per 6 s to the same person, across campaigns).
func PairLimit(business, sender, recipient string) string {
	return Prefix + "limit:" + bizTag(business) + ":pair:" + sender + ":" + recipient
}

// BusinessLimit is the GCRA state of the business-wide request limit on Connectly's API.
func BusinessLimit(business string) string { return Prefix + "limit:" + bizTag(business) + ":business" }

// LimitUse counts the sends reserved from a rate limit (SenderLimit, BusinessLimit...) in one
// unix second, for `herald limits show` and the adaptive rate's share; it shares the limit's
// hash tag.
func LimitUse(limitKey string, sec int64) string {
	return limitKey + ":use:" + strconv.FormatInt(sec, 10)
}

// Reserved is the memo of one send's reservation (limits.Request), named by the token the
// reservation was made with: the first run of the reservation script writes its answer here,
// and a second run with the same token (a client that sent the command again after a lost
// answer) returns that answer and takes nothing more; a give-back marks what it gave back. It
// shares the hash tag of limitKey, one of the reservation's keys, so the script may touch it
// (a key with no tag and no braces hashes whole, as does the tag made of it here). It expires
// limits.MemoTTL after it was last written.
func Reserved(limitKey, token string) string {
	return Prefix + "limit:{" + HashTag(limitKey) + "}:resv:" + token
}

// HashTag is the part of key Redis Cluster hashes: the text inside the first "{...}" when it
// is not empty, else the whole key (the rule of CLUSTER KEYSLOT).
func HashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// PairBackoff counts a (sender, recipient) pair's pair-limit refusals in a row (Meta 131056),
// expiring a while after the last one.
func PairBackoff(business, sender, recipient string) string {
	return Prefix + "limit:" + bizTag(business) + ":pairbackoff:" + sender + ":" + recipient
}

// SenderBackoff is the adaptive factor of a sender's rate after Connectly or Meta throttled it,
// and the controller's last decrease.
func SenderBackoff(business, sender string) string {
	return Prefix + "limit:" + bizTag(business) + ":backoff:" + sender
}

// SenderThrottled counts the sends of a sender the provider throttled in one second (unix);
// with the per-second reservation counts of its rate limit, it gives the throttled share the
// adaptive controller follows. It expires a few seconds after the controller's window.
func SenderThrottled(business, sender string, sec int64) string {
	return Prefix + "limit:" + bizTag(business) + ":throttled:" + sender + ":" + strconv.FormatInt(sec, 10)
}

// Tier is the sorted set of recipients messaged in the rolling daily-tier window, scored by
// their last send (unix ms); all sender numbers of the business share it.
func Tier(business string) string { return Prefix + "limit:" + bizTag(business) + ":tier" }

// CapBuckets is the number of hash buckets of a frequency cap.
const CapBuckets = 1024

// Cap is one bucket of a category's frequency cap: recipient → the runs that messaged them
// within the cap's window and when.
func Cap(business, category string, bucket int) string {
	return Prefix + "limit:" + bizTag(business) + ":cap:" + category + ":" + strconv.Itoa(bucket)
}

// ServiceWindowBuckets is the number of hash buckets of a business's customer service
// windows. It is fixed: every process must agree on it to find a customer's bucket.
const ServiceWindowBuckets = 16384

// ServiceWindow is one bucket of a business's customer service windows: customer (phone
// digits without '+', or the BSUID), followed by '>' and the business number's digits for a
// window to that number (servicewindow.FieldTo; none for a window recorded with no number) →
// unix seconds of their last inbound message. A customer's windows to every number share a
// bucket. It shares the business hash tag with the limit keys, so a limits script may read it.
func ServiceWindow(business string, bucket int) string {
	return Prefix + "csw:" + bizTag(business) + ":" + strconv.Itoa(bucket)
}

// Delivery is the hash of a run's delivery-webhook statistics: the time-to-deliver histogram
// ("ttd:<bucket>"), delivery failures by code ("df:<code>") and class ("dfc:<class>"), and
// inbound replies ("replies", "button:<text>", "optouts").
func Delivery(runID string) string { return Prefix + "run:{" + runID + "}:dlv" }

// InboundSeen remembers that one inbound message (by its id, or a digest of it) was counted
// in a run's reply statistics, so a repeat of the same message is not counted again. It
// expires after the receiver's dedupe period.
func InboundSeen(runID, messageID string) string {
	return Prefix + "run:{" + runID + "}:in:" + messageID
}

// WebhookParked is the sorted set of delivery events that arrived before their send was
// recorded (the entry was still being sent), scored by when they first arrived (unix ms).
// The receiver applies them again until the entry is ready or they expire.
func WebhookParked() string { return Prefix + "webhooks:parked" }

// Definitions is the set of submitted campaign ids the scheduler runs (herald campaign
// submit adds, rm removes).
func Definitions() string { return Prefix + "defs" }

// DefinitionsGen is a counter bumped on every submit and rm, so schedulers notice changes
// with one GET.
func DefinitionsGen() string { return Prefix + "defs:gen" }

// Definition is the hash of one submitted campaign: its current version, the content hash,
// the campaign file's path, submit and remove times. Keys of one campaign share its id as
// hash tag.
func Definition(campaignID string) string { return Prefix + "def:{" + campaignID + "}" }

// DefinitionVersion is the hash of one version of a submitted campaign: the YAML text, the
// campaign file's path (audience paths resolve against it), the content hash and submit time.
// Versions are kept so a run can always read the version it started with.
func DefinitionVersion(campaignID string, version int) string {
	return Prefix + "def:{" + campaignID + "}:v:" + strconv.Itoa(version)
}

// DefinitionFile is the hash of one campaign file a run was started from with campaign send
// (its YAML text, path and content hash), kept under its content hash so that the run's
// later expansion steps, retries and follow-ups read what the run started with.
func DefinitionFile(campaignID, sha string) string {
	return Prefix + "def:{" + campaignID + "}:f:" + sha
}

// LastFire is the unix-millisecond fire time of the latest tick the schedulers handled for a
// campaign (fired or skipped), used to find ticks missed while no scheduler ran.
func LastFire(campaignID string) string { return Prefix + "def:{" + campaignID + "}:last_fire" }

// ReadyProbe is the key a process writes (with a short TTL) to prove Redis takes its writes,
// for /readyz. process names the process (role, host and pid). A probe for a queue carries
// the queue's name as hash tag, as asynq's own keys of that queue do ("asynq:{<queue>}:..."),
// so on a Cluster the write lands on the node that serves the queue; with queue "" the key
// has no hash tag.
func ReadyProbe(queue, process string) string {
	if queue == "" {
		return Prefix + "ready:" + process
	}
	return Prefix + "ready:{" + queue + "}:" + process
}
