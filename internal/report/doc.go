// Package report builds Herald's read models: what an operator sees of a run, a recipient,
// a customer's service window and the shared limits, with the functions that render them for
// people. The CLI (`herald run show`, `recipient explain`, `limits show`, `campaign plan`,
// `demo`), the metrics and a web console share these types, so every view of a run says the
// same thing; their JSON forms are the CLI's `--json` output.
//
// report reads Redis through the ledger, limits and service window packages and never
// writes; it imports no top-level package, so callers pass what a campaign says as plain
// values.
package report
