// Package conversation is what happens after a run's message: a recipient's reply (a button
// tap, a list choice, typed text) joined to the run entry it answers, matched against the
// campaign's on_reply rules, and the follow-up the matching rule names.
//
// The parts, each usable on its own:
//
//   - ReplyOf turns an inbound message, as internal/webhooks parses every shape of the
//     provider's messages webhook, into a Reply: what the customer chose or wrote.
//   - Match picks the first on_reply rule (campaigns.ReplyRule) a reply satisfies: a button
//     by payload, id or text; a list row by id; a keyword as a whole word of the typed text,
//     case-insensitively and Unicode-aware (MatchKeyword); or any reply.
//   - CheckOnReply checks the buttons (id or text) and list rows (id) rules name against
//     what the campaign may send: its session message, its rules' follow-up messages and,
//     when needed, the quick-reply buttons of its template (or fallback) in every language
//     and of its follow-up templates.
//   - Join finds the run entry (run, ledger bucket, recipient) a reply belongs to: from
//     Herald's callbackData on button and list replies, else from the per-business index of
//     recent sends (Index.Record at accept time, bounded and expiring with on_reply.until),
//     never to a run that messaged the customer after the reply was written; Followups pins
//     an inbound message's first join, so every copy of a webhook joins alike.
//   - Answer sends one session message to one customer outside any run (a support reply,
//     `herald message send`), only inside the window Herald recorded, and audits it.
//
// This package imports internal/webhooks; the receiver must not import it back. The receiver
// reaches conversation through a hook its caller installs (cmd/herald), which keeps the
// dependency one way.
package conversation
