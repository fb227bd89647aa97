package loadgen

import (
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// timerfd is a Linux timer file whose expiry wakes a goroutine through Go's
// netpoller (the file is non-blocking, so os.File registers it there).
type timerfd struct {
	fd          int
	f           *os.File
	monoOrigin  int64 // CLOCK_MONOTONIC, in ns, at the clock's origin
	interrupted atomic.Bool
	buf         [8]byte
}

// newTimerfd returns a timer measuring from origin, or nil if the kernel
// offers none.
func newTimerfd(origin time.Time) *timerfd {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	// Go's monotonic clock is CLOCK_MONOTONIC: pin origin on it, reading
	// it on both sides of a time.Now to within a microsecond.
	var a, b unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &a)
	since := time.Since(origin)
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &b)
	mono := (a.Nano() + b.Nano()) / 2
	return &timerfd{fd: fd, f: os.NewFile(uintptr(fd), "timerfd"), monoOrigin: mono - int64(since)}
}

// sleepUntil blocks until t (an offset from origin); false means it was
// interrupted or the timer failed.
func (tf *timerfd) sleepUntil(t time.Duration) bool {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(tf.monoOrigin + int64(t))}
	if err := unix.TimerfdSettime(tf.fd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		return false
	}
	if tf.interrupted.Load() { // interrupt may have fired before Settime
		return false
	}
	if _, err := tf.f.Read(tf.buf[:]); err != nil {
		return false
	}
	return !tf.interrupted.Load()
}

// interrupt ends the current sleep, and makes every later one return false.
func (tf *timerfd) interrupt() {
	tf.interrupted.Store(true)
	spec := unix.ItimerSpec{Value: unix.Timespec{Nsec: 1}} // long past: fires now
	_ = unix.TimerfdSettime(tf.fd, unix.TFD_TIMER_ABSTIME, &spec, nil)
}

func (tf *timerfd) close() { _ = tf.f.Close() }
