package scheduler

import "context"

// Round runs one turn of the poll loop now, for tests that must know where a turn begins.
func (s *Scheduler) Round(ctx context.Context) { s.round(ctx) }
