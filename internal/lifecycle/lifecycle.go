// Package lifecycle starts the parts of a Herald process in order and stops them in reverse.
//
// A process (herald worker, scheduler, webhooks, dashboard, demo) is a few long-running
// components on shared clients: an asynq server, a webhook receiver, an ops endpoint, a
// reclaimer. A Group starts them in the order they were added; if one fails to start, the
// ones already started are stopped, newest first, and Start returns its error. Stop runs in
// two passes, both newest first: Quiesce stops every component's intake (no new work taken),
// then Stop lets each finish what it holds and releases it. Resources added first (a Redis
// client) are therefore released last. Stop is safe to call more than once and from a
// deferred call after a failed Start.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Component is one part of a process. Every field but Name may be nil.
type Component struct {
	// Name identifies the component in errors ("start webhooks: ...").
	Name string
	// Start starts the component and returns once it runs; work it does in the background
	// stays in the background.
	Start func() error
	// Quiesce stops the component taking new work without waiting for work in flight
	// (asynq's Server.Stop). The group quiesces every started component before it stops any.
	Quiesce func()
	// Stop waits for work in flight (within the component's own timeout) and releases the
	// component. It is called once, after Quiesce.
	Stop func() error
}

// Group starts components in order and stops them in reverse. The zero value is ready to
// use. Components may be added after a Start: the next Start starts them, so a process can
// hold a resource it opened first (a Redis client) in the group before building the rest.
type Group struct {
	mu       sync.Mutex
	comps    []Component
	started  int
	stopped  bool
	stopErr  error
	failOnce sync.Once
	failed   chan error
}

// New returns a group of comps, to start in that order.
func New(comps ...Component) *Group {
	return &Group{comps: comps}
}

// Add appends components to start after those already added. Adding to a stopped group
// panics.
func (g *Group) Add(comps ...Component) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		panic("lifecycle: Add after Stop")
	}
	g.comps = append(g.comps, comps...)
}

// Start starts the components not started yet, in order. When one fails, every started
// component (those of earlier Starts too) is quiesced and stopped in reverse, and Start
// returns an error wrapping the failure.
func (g *Group) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return errors.New("lifecycle: start after stop")
	}
	for g.started < len(g.comps) {
		c := g.comps[g.started]
		if c.Start != nil {
			if err := c.Start(); err != nil {
				stopErr := g.stopLocked()
				return errors.Join(fmt.Errorf("start %s: %w", c.Name, err), stopErr)
			}
		}
		g.started++
	}
	return nil
}

// Stop quiesces every started component, newest first, then stops them in the same order.
// It returns the stop errors joined; a second call does nothing and returns the same.
func (g *Group) Stop() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopLocked()
}

func (g *Group) stopLocked() error {
	if g.stopped {
		return g.stopErr
	}
	g.stopped = true
	started := g.comps[:g.started]
	for i := len(started) - 1; i >= 0; i-- {
		if q := started[i].Quiesce; q != nil {
			q()
		}
	}
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		if s := started[i].Stop; s != nil {
			if err := s(); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", started[i].Name, err))
			}
		}
	}
	g.stopErr = errors.Join(errs...)
	return g.stopErr
}

// Fail reports that a component stopped on its own (an HTTP server whose Serve failed): Run
// returns err. Only the first failure is kept.
func (g *Group) Fail(err error) {
	g.failOnce.Do(func() {
		g.mu.Lock()
		ch := g.failChan()
		g.mu.Unlock()
		ch <- err
	})
}

// failChan returns the channel of the first failure; g.mu is held.
func (g *Group) failChan() chan error {
	if g.failed == nil {
		g.failed = make(chan error, 1)
	}
	return g.failed
}

// Run starts the group, waits until ctx is done or a component fails, then stops the group.
// It returns the start error, else the failure, else the stop errors.
func (g *Group) Run(ctx context.Context) error {
	if err := g.Start(); err != nil {
		return err
	}
	g.mu.Lock()
	failed := g.failChan()
	g.mu.Unlock()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-failed:
	}
	return errors.Join(runErr, g.Stop())
}
