package rkeys_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// TestKeyShapes pins every key Herald writes: a changed key would orphan the data of every
// running install (runs, ledgers, limits, definitions), so it must fail here first.
func TestKeyShapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"Runs", rkeys.Runs(), "herald:runs"},
		{"ActiveRuns", rkeys.ActiveRuns(), "herald:runs:active"},
		{"ActiveRunsBackfill", rkeys.ActiveRunsBackfill(), "herald:runs:active:backfill"},
		{"Campaigns", rkeys.Campaigns(), "herald:campaigns"},
		{"CampaignRuns", rkeys.CampaignRuns("spring"), "herald:campaign:spring:runs"},
		{"Run", rkeys.Run("R1"), "herald:run:{R1}"},
		{"Counts", rkeys.Counts("R1"), "herald:run:{R1}:counts"},
		{"Codes", rkeys.Codes("R1"), "herald:run:{R1}:codes"},
		{"RunPicked", rkeys.RunPicked("R1"), "herald:run:{R1}:pick"},
		{"LedgerBucket", rkeys.LedgerBucket("R1", 7), "herald:run:{R1}:l:7"},
		{"History", rkeys.History("R1", 7), "herald:run:{R1}:h:7"},
		{"Recent", rkeys.Recent("R1"), "herald:run:{R1}:recent"},
		{"Unknown", rkeys.Unknown("R1"), "herald:run:{R1}:unk"},
		{"UnknownPayloads", rkeys.UnknownPayloads("R1"), "herald:run:{R1}:unk:p"},
		{"Delivery", rkeys.Delivery("R1"), "herald:run:{R1}:dlv"},
		{"InboundSeen", rkeys.InboundSeen("R1", "m:abc"), "herald:run:{R1}:in:m:abc"},
		{"ResendRuns", rkeys.ResendRuns(), "herald:resend:runs"},
		{"Suppressed", rkeys.Suppressed(), "herald:suppressed"},
		{"Audit", rkeys.Audit(), "herald:audit"},
		{"TaskIDKey", rkeys.TaskIDKey(), "herald:taskid:key"},
		{"WebhookParked", rkeys.WebhookParked(), "herald:webhooks:parked"},
		{"SenderLimit", rkeys.SenderLimit("B1", "+15550001"), "herald:limit:{B1}:sender:+15550001"},
		{"RunLimit", rkeys.RunLimit("B1", "R1"), "herald:limit:{B1}:run:R1"},
		{"PairLimit", rkeys.PairLimit("B1", "+15550001", "+15559999"), "herald:limit:{B1}:pair:+15550001:+15559999"},
		{"BusinessLimit", rkeys.BusinessLimit("B1"), "herald:limit:{B1}:business"},
		{"SenderBackoff", rkeys.SenderBackoff("B1", "+15550001"), "herald:limit:{B1}:backoff:+15550001"},
		{"PairBackoff", rkeys.PairBackoff("B1", "+15550001", "+15550002"), "herald:limit:{B1}:pairbackoff:+15550001:+15550002"},
		{"SenderThrottled", rkeys.SenderThrottled("B1", "+15550001", 1767225600), "herald:limit:{B1}:throttled:+15550001:1767225600"},
		{"LimitUse", rkeys.LimitUse(rkeys.SenderLimit("B1", "+15550001"), 1767225600), "herald:limit:{B1}:sender:+15550001:use:1767225600"},
		{"ConversationRecent", rkeys.ConversationRecent("B1", 7), "herald:conv:{B1}:r:7"},
		{"ConversationRuns", rkeys.ConversationRuns("B1"), "herald:conv:{B1}:runs"},
		{"ConversationSeqs", rkeys.ConversationSeqs("B1"), "herald:conv:{B1}:seq"},
		{"Conversation", rkeys.Conversation("R1", "+15550001"), "herald:run:{R1}:conv:+15550001"},
		{"InboundJoin", rkeys.InboundJoin("B1", "m:01JABC"), "herald:conv:join:B1:m:01JABC"},
		{"InboundUndated", rkeys.InboundUndated("B1", "b:0f1e2d"), "herald:csw:undated:B1:b:0f1e2d"},
		{"Tier", rkeys.Tier("B1"), "herald:limit:{B1}:tier"},
		{"Reserved", rkeys.Reserved(rkeys.SenderLimit("B1", "+15550001"), "k3x9a"), "herald:limit:{B1}:resv:k3x9a"},
		{"ReservedOfTier", rkeys.Reserved(rkeys.Tier("B1"), "k3x9a"), "herald:limit:{B1}:resv:k3x9a"},
		{"Cap", rkeys.Cap("B1", "marketing", 12), "herald:limit:{B1}:cap:marketing:12"},
		{"ServiceWindow", rkeys.ServiceWindow("B1", 16383), "herald:csw:{B1}:16383"},
		{"Definitions", rkeys.Definitions(), "herald:defs"},
		{"DefinitionsGen", rkeys.DefinitionsGen(), "herald:defs:gen"},
		{"Definition", rkeys.Definition("spring"), "herald:def:{spring}"},
		{"DefinitionVersion", rkeys.DefinitionVersion("spring", 3), "herald:def:{spring}:v:3"},
		{"LastFire", rkeys.LastFire("spring"), "herald:def:{spring}:last_fire"},
		{"DefinitionFile", rkeys.DefinitionFile("spring", "ab12"), "herald:def:{spring}:f:ab12"},
		{"FollowupActive", rkeys.FollowupActive(), "herald:followup:active"},
		{"FollowupsPaused", rkeys.FollowupsPaused(), "herald:followup:paused"},
		{"FollowupsHeld", rkeys.FollowupsHeld(), "herald:followups:held"},
		{"FollowupsHeldBackfill", rkeys.FollowupsHeldBackfill(), "herald:followups:held:backfill"},
		{"FollowupRunsV1", rkeys.FollowupRunsV1(), "herald:followup:runs"},
		{"FollowupOutbox", rkeys.FollowupOutbox("R1~r1"), "herald:run:{R1~r1}:fu:outbox"},
		{"FollowupDue", rkeys.FollowupDue("R1~r1"), "herald:run:{R1~r1}:fu:due"},
		{"Tags", rkeys.Tags("R1"), "herald:run:{R1}:tags"},
		{"ReplyColumns", rkeys.ReplyColumns("R1", 7), "herald:run:{R1}:rc:7"},
		{"KeptFallback", rkeys.KeptFallback("R1", 7), "herald:run:{R1}:fb:7"},
		{"FollowupOnce", rkeys.FollowupOnce("spring", "r1"), "herald:followup:{spring}:once:r1"},
		{"ReadyProbe", rkeys.ReadyProbe("", "worker-h-1"), "herald:ready:worker-h-1"},
		{"ReadyProbeOfQueue", rkeys.ReadyProbe("herald:marketing", "worker-h-1"), "herald:ready:{herald:marketing}:worker-h-1"},
		{"ExpandQueue", rkeys.ExpandQueue, "herald:expand"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
		if !strings.HasPrefix(tc.got, rkeys.Prefix) {
			t.Errorf("%s = %q does not start with %q", tc.name, tc.got, rkeys.Prefix)
		}
	}
	// asynq's keys, which Herald reads and writes beside asynq: its layout, not Herald's
	// (TestAsynqKeysAreAsynqs checks them against the keys asynq writes).
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"AsynqTask", rkeys.AsynqTask("herald:marketing", "R1/0a1b"), "asynq:{herald:marketing}:t:R1/0a1b"},
		{"AsynqPending", rkeys.AsynqPending("herald:marketing"), "asynq:{herald:marketing}:pending"},
		{"AsynqScheduled", rkeys.AsynqScheduled("herald:marketing"), "asynq:{herald:marketing}:scheduled"},
		{"AsynqArchived", rkeys.AsynqArchived("herald:marketing"), "asynq:{herald:marketing}:archived"},
		{"AsynqActive", rkeys.AsynqActive("herald:marketing"), "asynq:{herald:marketing}:active"},
		{"AsynqLease", rkeys.AsynqLease("herald:marketing"), "asynq:{herald:marketing}:lease"},
		{"AsynqQueues", rkeys.AsynqQueues(), "asynq:queues"},
		{"AsynqWorkers", rkeys.AsynqWorkers(), "asynq:workers"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
		if !strings.HasPrefix(tc.got, rkeys.AsynqPrefix) {
			t.Errorf("%s = %q does not start with %q", tc.name, tc.got, rkeys.AsynqPrefix)
		}
	}
	if rkeys.CapBuckets != 1024 || rkeys.ServiceWindowBuckets != 16384 {
		t.Errorf("bucket counts %d, %d: every process must agree on them, and stored data is spread by them",
			rkeys.CapBuckets, rkeys.ServiceWindowBuckets)
	}
}

// TestHashTags checks that the keys one Lua script touches together land in one Cluster
// slot: every key of a run shares the tag {RUN}, every limit and service window key of a
// business shares {BUSINESS}, every key of a submitted campaign shares {CAMPAIGN}. Run ids,
// business ids and campaign ids holding the characters Redis reads as tag delimiters are
// part of the cases.
func TestHashTags(t *testing.T) {
	t.Parallel()
	for _, run := range []string{"R1", "spring-20260101T000000Z-a1b2c3", "r:with:colons"} {
		for _, k := range []string{
			rkeys.Run(run), rkeys.Counts(run), rkeys.Codes(run), rkeys.LedgerBucket(run, 0), rkeys.LedgerBucket(run, 16383),
			rkeys.History(run, 3), rkeys.RunPicked(run), rkeys.Recent(run), rkeys.Unknown(run), rkeys.UnknownPayloads(run), rkeys.Delivery(run),
			rkeys.InboundSeen(run, "m:01JABC"), rkeys.InboundSeen(run, "b:{other}"), rkeys.ReplyColumns(run, 3),
			rkeys.KeptFallback(run, 3), rkeys.Tags(run), rkeys.FollowupOutbox(run), rkeys.FollowupDue(run), rkeys.Conversation(run, "+15550001"),
		} {
			if got := rkeys.HashTag(k); got != run {
				t.Errorf("run key %q hashes on %q, want the run id %q", k, got, run)
			}
		}
	}
	for _, biz := range []string{"B1", "acme-42", ""} {
		want := biz
		if biz == "" {
			// A process with no business id: "{}" would be no tag, and a script's keys would
			// land in several slots.
			want = "_"
		}
		for _, k := range []string{
			rkeys.SenderLimit(biz, "+15550001"), rkeys.RunLimit(biz, "R1"), rkeys.PairLimit(biz, "+15550001", "+15559999"),
			rkeys.BusinessLimit(biz), rkeys.SenderBackoff(biz, "+15550001"), rkeys.PairBackoff(biz, "+15550001", "+15550002"), rkeys.SenderThrottled(biz, "+15550001", 1),
			rkeys.Tier(biz), rkeys.Cap(biz, "marketing", 0), rkeys.ServiceWindow(biz, 0),
			rkeys.LimitUse(rkeys.SenderLimit(biz, "+15550001"), 1), rkeys.LimitUse(rkeys.BusinessLimit(biz), 1),
			rkeys.ConversationRecent(biz, 3), rkeys.ConversationRuns(biz), rkeys.ConversationSeqs(biz),
			rkeys.Reserved(rkeys.SenderLimit(biz, "+15550001"), "k3x9a"), rkeys.Reserved(rkeys.Tier(biz), "k3x9a"),
		} {
			if got := rkeys.HashTag(k); got != want {
				t.Errorf("business key %q hashes on %q, want %q", k, got, want)
			}
		}
	}
	for _, k := range []string{rkeys.Definition("spring"), rkeys.DefinitionVersion("spring", 1), rkeys.DefinitionFile("spring", "ab12"), rkeys.LastFire("spring"),
		rkeys.FollowupOnce("spring", "r1")} {
		if got := rkeys.HashTag(k); got != "spring" {
			t.Errorf("definition key %q hashes on %q, want the campaign id", k, got)
		}
	}
	for _, k := range []string{rkeys.AsynqTask("herald:utility", "R1/0a1b"), rkeys.AsynqPending("herald:utility"),
		rkeys.AsynqScheduled("herald:utility"), rkeys.AsynqArchived("herald:utility"), rkeys.AsynqActive("herald:utility"), rkeys.AsynqLease("herald:utility")} {
		if got := rkeys.HashTag(k); got != "herald:utility" {
			t.Errorf("asynq key %q hashes on %q, want the queue's name", k, got)
		}
	}
	// An inbound message's pin and its undated mark are used alone: each hashes on its whole name,
	// not on the business.
	for _, k := range []string{rkeys.InboundJoin("B1", "m:01JABC"), rkeys.InboundJoin("acme-42", "b:0f1e2d"), rkeys.InboundUndated("B1", "m:01JABC")} {
		if got := rkeys.HashTag(k); got != k {
			t.Errorf("inbound pin %q hashes on %q, want its whole name", k, got)
		}
	}
	// A reservation's memo takes the tag of the key it is named after; a key with no tag hashes
	// whole, and so does the memo's tag made of it.
	for _, k := range []string{"rate", "herald:plain:key"} {
		if got := rkeys.HashTag(rkeys.Reserved(k, "t1")); got != rkeys.HashTag(k) {
			t.Errorf("memo of %q hashes on %q, want %q as the key does", k, got, rkeys.HashTag(k))
		}
	}
	if got := rkeys.HashTag(rkeys.ReadyProbe("herald:utility", "p")); got != "herald:utility" {
		t.Errorf("ready probe of a queue hashes on %q, want the queue's name as asynq's keys do", got)
	}
}

// TestHashTag pins CLUSTER KEYSLOT's rule for the part of a key that is hashed.
func TestHashTag(t *testing.T) {
	for key, want := range map[string]string{
		"herald:run:{r1}:l:3": "r1", "a{}b": "a{}b", "plain": "plain", "a{b": "a{b", "{x}{y}": "x", "a}{b}": "b",
	} {
		if got := rkeys.HashTag(key); got != want {
			t.Errorf("HashTag(%q) = %q, want %q", key, got, want)
		}
	}
}

// An expansion step's task id: the run id for the first, so replicas enqueue one; the run id,
// "/expand/" and the step for the others (run show and run repair find them by that prefix).
func TestExpandTaskIDs(t *testing.T) {
	const run = "spring/20260101T0900Z"
	if got := rkeys.ExpandTaskID(run, 0); got != run {
		t.Errorf("first step %q, want the run id", got)
	}
	if got := rkeys.ExpandTaskID(run, 3); got != run+"/expand/3" || !strings.HasPrefix(got, rkeys.ExpandStepPrefix(run)) {
		t.Errorf("step 3 %q, want %q under the step prefix %q", got, run+"/expand/3", rkeys.ExpandStepPrefix(run))
	}
}
