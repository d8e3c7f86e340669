// Package campaigns holds what a campaign is: its definition (decoded from YAML with
// positions), its audience (streamed from CSV), the rendering of per-recipient template
// parameters, and the task vocabulary shared by the scheduler and the workers (task type
// names, payloads and constructors).
package campaigns
