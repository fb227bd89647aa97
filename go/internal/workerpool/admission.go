package workerpool

import (
	"context"
	"time"
)

// task is one admitted request on its way through the pool. done is buffered
// so that a worker never waits for a handler that has already answered.
type task struct {
	Task
	ctx  context.Context // the request's: done at its deadline or when the client goes away
	done chan string
}

// admit takes a slot if fewer than Workers+Queue tasks are admitted and
// unfinished. It compares before it increments, so the count (and the
// workerpool_in_flight gauge read from it) never passes the bound, not even
// for an instant during a burst of refusals, and a refusal never blocks.
//
// A slot is released by the worker when the kernel has finished, or when the
// worker picks up a task whose context ended while it waited and drops it,
// never by the handler: a client that gives up frees nothing until the work
// it caused is over (for a task still queued, until a worker reaches and
// discards it). Every task in the channel holds a slot and the channel's
// capacity is Workers+Queue, so sending to it never blocks.
func (s *Service) admit() bool {
	limit := int64(s.cfg.Workers + s.cfg.Queue)
	for {
		n := s.admitted.Load()
		if n >= limit {
			return false
		}
		if s.admitted.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// worker runs tasks until Close.
func (s *Service) worker() {
	for {
		select {
		case <-s.quit:
			return
		case t := <-s.jobs:
			s.run(t)
		}
	}
}

// run runs one task, or drops it if its request's deadline passed or its
// client went away while it waited. The slot is released before the output is
// handed over, so that a client sending its next request as soon as it has
// the answer finds the slot free.
func (s *Service) run(t *task) {
	if t.ctx.Err() != nil {
		s.dropped.Add(1)
		s.admitted.Add(-1)
		return
	}
	start := time.Now()
	out := s.do(t.Task)
	s.m.task[t.Kernel].Observe(time.Since(start).Seconds())
	s.admitted.Add(-1)
	t.done <- out
}

// Close stops the workers (a running kernel finishes first) and drops the
// tasks still queued, releasing their slots; handlers still waiting answer
// 503. Call it after the HTTP server has shut down. It is safe to call more
// than once.
func (s *Service) Close() {
	s.once.Do(func() {
		close(s.quit)
		s.wg.Wait()
		for {
			select {
			case <-s.jobs:
				s.dropped.Add(1)
				s.admitted.Add(-1)
			default:
				return
			}
		}
	})
}
