package expand

// SetBeforeQueue installs f as the writer's hook before its second stage takes a planned
// batch (nil removes it) and returns a func that restores the previous hook.
func SetBeforeQueue(f func(planDone <-chan struct{})) (restore func()) {
	var p *func(<-chan struct{})
	if f != nil {
		p = &f
	}
	old := beforeQueue.Swap(p)
	return func() { beforeQueue.Store(old) }
}
