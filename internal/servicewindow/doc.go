// Package servicewindow tracks WhatsApp's customer service window: a business may send a
// customer free-form (session) messages for 24 hours after that customer's last inbound
// message, and Meta's daily messaging tier does not count a person whose window is open
// (reference 3.1). Connectly has no "window closes at" field, so Herald derives it from the
// time of each inbound message its webhook receiver sees. Connectly decides on its own clock
// when a request arrives, so when a session message is to go (Tracker.OpenFor) Herald counts
// a window closed a margin before it closes (DefaultMargin, or Tracker.SetMargin); Lookup
// reports the record as it is.
//
// # Per business number
//
// A customer opens a window by writing to one of the business's phone numbers, and only a
// send from that number is inside it: a session message from another number is refused, and
// a template from another number is counted by Meta's daily tier. So a window is recorded per
// business number when the inbound event names the number it was sent to (its recipient), and
// read for the number a send goes from (Lookup, Policy.Sources). An event that names no number
// is recorded with none, as every window recorded before Herald told numbers apart is; whether
// such a window counts for a send is decided in one place, Policy.UnnamedCounts (config key
// windows.scope): by default only when Herald sends from a single number.
//
// "Window" means several things in Herald (send hours, the expansion window of pending
// tasks); this package is only ever about the customer service window, shortened "csw" in
// its Redis keys.
//
// # Storage
//
// A business's windows live in rkeys.ServiceWindowBuckets hash buckets
// (herald:csw:{BUSINESS}:N): the customer's field (phone digits, or the BSUID), followed by '>'
// and the business number's digits for a window to a number (FieldTo) → unix seconds of their
// last inbound message. A customer's windows to every number share the bucket of the
// customer's field, so recording one event is one script on the same keys as before. Redis
// 7.0 has no per-field expiry (HEXPIRE came in 7.4), so a bucket's TTL is the close of its
// newest window, a reader decides from the recorded time, and a bucket drops its closed
// windows whenever a new window joins it (lua/touch.lua). Small buckets stay in Redis's compact listpack encoding; docs/benchmarks.md has the memory per
// open window measured against one string key per customer (measured with fields without a
// number; a number adds its digits and one byte to a field).
//
// A customer known by a phone number and a BSUID is recorded under both, so a lookup by
// either finds the window.
package servicewindow
