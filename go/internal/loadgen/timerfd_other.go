//go:build !linux

package loadgen

import "time"

// timerfd exists on Linux only; elsewhere sleeps use Go timers.
type timerfd struct{}

func newTimerfd(time.Time) *timerfd            { return nil }
func (*timerfd) sleepUntil(time.Duration) bool { return false }
func (*timerfd) interrupt()                    {}
func (*timerfd) close()                        {}
