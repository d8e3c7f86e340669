package fakeconnectly

import "time"

// DemoRules is the realistic fault mix of `herald demo` and `herald fake-connectly --faults
// demo`. Each rule picks a stable share of numbers:
//
//   - permanent refusals: 2% invalid numbers, 1% opted out;
//   - 5xx that were not sent and succeed on retry: 3% a 503 once, 1% a 500 with the JSON
//     error body twice, 0.5% a 502 proxy page once;
//   - 5xx after which the message did go out: 0.5% a 500 with the JSON error body, 0.2% a
//     504 with no body; a sender that resends on them sends twice;
//   - 3% throttled once: 2% a 429 with Connectly's error body, 1% a bare 429;
//   - 0.3% accepted with the answer lost, and 5% answered 40 ms late.
func DemoRules() []Rule {
	return []Rule{
		{Percent: 2, Salt: "invalid", Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"},
		{Percent: 1, Salt: "optout", Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
		{Percent: 3, Salt: "5xx-once", Status: 503, Times: 1},
		{Percent: 1, Salt: "5xx-twice", Status: 500, Times: 2},
		{Percent: 0.5, Salt: "502-gateway", Status: 502, Body: BodyGateway, Times: 1},
		{Percent: 0.5, Salt: "500-sent", Status: 500, Sent: true, Times: 1},
		{Percent: 0.2, Salt: "504-empty-sent", Status: 504, Body: BodyEmpty, Sent: true, Times: 1},
		{Percent: 2, Salt: "429", Status: 429, Times: 1},
		{Percent: 1, Salt: "429-bare", Status: 429, Body: BodyEmpty, Times: 1},
		{Percent: 0.3, Salt: "lost", LoseResponse: true, Times: 1},
		{Percent: 5, Salt: "slow", Latency: 40 * time.Millisecond},
	}
}

// DemoWebhooks is the webhook mix of `herald demo` and `herald fake-connectly --webhooks
// demo`, calling address signed with secret, events spaced by delay: most messages are read,
// a quarter stop at delivered, 3% at sent, 2% fail in delivery (a quarter of those opt-outs).
// Readers reply by DemoReplies. 5% of events come twice and 10% of messages have their
// events out of order.
func DemoWebhooks(address, secret string, delay time.Duration) WebhookConfig {
	return WebhookConfig{
		URL: address, Secret: secret, Delay: delay, DuplicatePercent: 5, ReorderPercent: 10,
		Fates: []Fate{
			{Percent: 0.5, Salt: "df-optout", Status: HookDeliveryFailed, Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
			{Percent: 1.5, Salt: "df", Status: HookDeliveryFailed, Code: "ERROR_CODE_UNSPECIFIED"},
			{Percent: 3, Salt: "sent-only", Status: HookSent},
			{Percent: 25, Salt: "not-read", Status: HookDelivered},
		},
		Replies: DemoReplies(),
	}
}

// DemoSalt is the salt of DemoReplies' shares of the template's readers.
const DemoSalt = "demo-reply"

// DemoTemplate is the template whose quick-reply buttons the demo's readers tap: the
// template of `herald demo`'s campaign, whose on_reply answers "Yes, show me" and "No
// thanks". The demo gives the fake no template definitions, so the taps name it
// (Reply.Template): under any other template (a fallback such as order_status, when
// `herald fake-connectly --webhooks demo` serves other campaigns) nobody taps.
const DemoTemplate = "spring_promo"

// DemoReplies is the reply mix of the demo, for conversations. Readers of a template message
// answer in disjoint shares of the numbers (ReplyMix with DemoSalt, so MatchReply tells who
// does what):
//
//   - 20% tap "Yes, show me" (payload SPRING_YES) under DemoTemplate, in the four button
//     forms in turn (one of them a top-level buttonResponse with no message object);
//   - 10% tap "No thanks" (SPRING_NO) under DemoTemplate, likewise;
//   - 5% type the keyword "price?";
//   - 2% write STOP, typed or quoting the message in turn.
//
// Readers of another template in the first two shares do not reply. A quarter of the
// readers of a session message (a follow-up) answer it once, with "Thanks!" typed or
// quoting it (the quoted form carries the follow-up's callbackData): replies to follow-ups.
func DemoReplies() []Reply {
	mix := ReplyMix(DemoSalt,
		Reply{Percent: 20, Kind: KindTemplate, Template: DemoTemplate, Button: "Yes, show me", Payload: "SPRING_YES", Shapes: ButtonShapes},
		Reply{Percent: 10, Kind: KindTemplate, Template: DemoTemplate, Button: "No thanks", Payload: "SPRING_NO", Shapes: ButtonShapes},
		Reply{Percent: 5, Kind: KindTemplate, Text: "price?", Shape: ReplyText},
		Reply{Percent: 2, Kind: KindTemplate, Text: "STOP", Shapes: []string{ReplyText, ReplyQuoted}},
	)
	return append(mix, Reply{Percent: 25, Salt: "demo-followup", Kind: KindSession, Times: 1, Text: "Thanks!",
		Shapes: []string{ReplyText, ReplyQuoted}})
}
