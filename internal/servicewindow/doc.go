// Package servicewindow tracks WhatsApp's customer service window: a business may send a
// customer free-form (session) messages for 24 hours after that customer's last inbound
// message, and Meta's daily messaging tier does not count a person whose window is open
// (reference 3.1). Connectly has no "window closes at" field, so Herald derives it from the
// time of each inbound message its webhook receiver sees. Connectly decides on its own clock
// when a request arrives, so when a session message is to go (Tracker.Open, OpenFor) Herald
// counts a window closed a margin before it closes (DefaultMargin, or Tracker.SetMargin);
// Lookup reports the record as it is.
//
// "Window" means several things in Herald (send hours, the expansion window of pending
// tasks); this package is only ever about the customer service window, shortened "csw" in
// its Redis keys.
//
// # Storage
//
// A business's windows live in rkeys.ServiceWindowBuckets hash buckets
// (herald:csw:{BUSINESS}:N): the customer's field (phone digits, or the BSUID) → unix seconds
// of their last inbound message. Redis 7.0 has no per-field expiry (HEXPIRE came in 7.4), so
// a bucket's TTL is the close of its newest window, a reader decides from the recorded time,
// and a bucket drops its closed windows whenever a new customer joins it (lua/touch.lua). Small
// buckets stay in Redis's compact listpack encoding; docs/benchmarks.md has the memory per
// open window measured against one string key per customer.
//
// A customer known by a phone number and a BSUID is recorded under both, so a lookup by
// either finds the window.
package servicewindow
