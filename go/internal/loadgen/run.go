package loadgen

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoTarget is returned by Run when the target cannot be set up at all
// (for example a gRPC method that does not parse); a target that refuses
// connections is measured, as errors of kind "connection".
var ErrNoTarget = errors.New("no target")

// target sends requests of one kind (HTTP or gRPC). Each worker gets its own
// session, so a session may hold per-worker state (a buffer, a connection).
type target interface {
	session(worker int) session
	close()
}

// connector is implemented by sessions that hold a connection of their own:
// a new worker connects before it takes its first job (see acquire).
type connector interface {
	connect(ctx context.Context) error
}

// session sends one request at a time.
type session interface {
	// do sends the request for draw (the {rand:N} values, see
	// textTemplate) and waits for the whole answer, at most timeout. A
	// streaming call notes each message's arrival in log. It returns "" for
	// a success, else the error kind.
	do(ctx context.Context, draw uint64, log *msgLog) string
}

// msgLog is where a streaming call notes when each of its messages arrived,
// on the run's clock; its worker reuses it from call to call.
type msgLog struct {
	clock Clock
	at    []time.Duration
}

func (l *msgLog) arrived() { l.at = append(l.at, l.clock.Now()) }

// job is one request of the schedule, handed from the scheduler to a worker.
type job struct {
	intended time.Duration // offset from the start of the run
	draw     uint64        // {rand:N} values
	measured bool          // intended time in the measured window
}

// engine runs one schedule against one target.
type engine struct {
	cfg     *Config
	clock   Clock
	tgt     target
	rec     *recorder
	cpuTime func() time.Duration // process CPU time so far
	wire    *wireCounter         // the target's bytes on the wire; nil: none counted

	// Workers that wait for a job, most recently freed last: the scheduler
	// takes the last one, so that the same few workers (and connections)
	// stay hot while the load allows, instead of a round robin over every
	// connection ever opened, which would keep all of them cold on both
	// sides. freed wakes a scheduler waiting at the in-flight cap.
	mu      sync.Mutex
	idle    []*worker
	opening int // workers started but still connecting
	freed   chan struct{}

	workers []*worker // all started, ≤ MaxInFlight; scheduler only
	wg      sync.WaitGroup

	windowStart time.Duration
	windowEnd   atomic.Int64 // a time.Duration: moved earlier on interrupt
}

// worker is one goroutine sending one request at a time.
type worker struct {
	id   int
	jobs chan job // capacity 1: the scheduler never waits to hand one over
}

// schedStats is what the scheduler saw of the run.
type schedStats struct {
	interrupted bool
	capHit      bool
	// window is the length of the measured window: cfg.Duration, or less
	// when interrupted (zero if interrupted during the warm-up).
	window time.Duration
	// cpu is the process CPU time spent over cpuSpan, the wall-clock time
	// from the start of the window to the scheduler's end of it (later than
	// planned when the generator fell behind).
	cpu, cpuSpan time.Duration
	// wireSent and wireReceived are the bytes the target's connections
	// wrote and read over the same span.
	wireSent, wireReceived int64
}

// newEngine prepares a run of cfg, which must be valid, against tgt.
func newEngine(cfg *Config, clock Clock, tgt target, cpuTime func() time.Duration) *engine {
	shards := min(runtime.GOMAXPROCS(0), 16)
	e := &engine{
		cfg:         cfg,
		clock:       clock,
		tgt:         tgt,
		rec:         newRecorder(shards, cfg.GRPCStream),
		cpuTime:     cpuTime,
		freed:       make(chan struct{}, 1),
		windowStart: cfg.Warmup,
	}
	e.windowEnd.Store(int64(cfg.Warmup + cfg.Duration))
	return e
}

// run sends the schedule and returns the merged measurements. Cancelling ctx
// stops the schedule; the requests in flight still finish (each within
// cfg.Timeout).
func (e *engine) run(ctx context.Context) (schedStats, totals) {
	st := e.schedule(ctx)
	for _, w := range e.workers {
		close(w.jobs)
	}
	e.wg.Wait()
	return st, e.rec.merge()
}

// busy returns the number of requests in flight.
func (e *engine) busy() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.workers) - len(e.idle)
}

// schedule is the single scheduler goroutine: it walks the intended times
// and hands every request whose time has come to a worker, then sleeps until
// the next one. When it wakes late (timer granularity, a busy CPU) every
// request already due goes out in one batch, without sleeping in between; the
// clock is read again only when the next intended time is past the last
// reading. When MaxInFlight requests are outstanding it waits for a worker,
// and the wait shows as slip and in the corrected latency of everything it
// delays, as in wrk2. Requests it has still not sent giveUpAfter past the
// window are abandoned (see abandon).
func (e *engine) schedule(ctx context.Context) schedStats {
	var st schedStats
	done := ctx.Done()
	end := time.Duration(e.windowEnd.Load())
	arr := newArrivals(e.cfg, end)
	// The {rand:N} draws come from their own stream, seeded like the
	// arrivals, so that a seed fixes the sequence of targets too.
	var rng *rand.Rand
	if e.cfg.space > 1 {
		rng = rand.New(rand.NewPCG(e.cfg.Seed, 0x72616e64)) // "rand"
	}
	// A generator that cannot keep up gives up a while after the window,
	// rather than run on through the backlog for as long as it takes.
	giveUp := make(chan struct{})
	giveUpTimer := time.AfterFunc(end+giveUpAfter-e.clock.Now(), func() { close(giveUp) })
	defer giveUpTimer.Stop()
	// The process CPU time and the bytes on the wire at the start of the
	// window, sampled on time even when the scheduler is late.
	type sample struct {
		at, cpu        time.Duration
		sent, received int64
	}
	var first atomic.Pointer[sample]
	takeFirst := func() {
		s := &sample{at: e.clock.Now(), cpu: e.cpuTime()}
		s.sent, s.received = e.wire.snapshot()
		first.Store(s)
	}
	if d := e.windowStart - e.clock.Now(); d <= 0 {
		takeFirst()
	} else {
		startTimer := time.AfterFunc(d, takeFirst)
		defer startTimer.Stop()
	}
	now := e.clock.Now()
	for {
		t, ok := arr.next()
		if !ok {
			break
		}
		if t > now {
			now = e.clock.Now()
			if t > now {
				if !e.clock.SleepUntil(done, t) {
					st.interrupted = true
					break
				}
				now = e.clock.Now()
			}
		}
		w := e.acquire(ctx, giveUp, &st)
		if w == nil {
			if !st.interrupted {
				e.abandon(t, arr)
			}
			break
		}
		var draw uint64
		if rng != nil {
			draw = rng.Uint64N(e.cfg.space)
		}
		w.jobs <- job{intended: t, draw: draw, measured: t >= e.windowStart}
	}
	if !st.interrupted {
		st.interrupted = !e.clock.SleepUntil(done, end)
	}
	stop := e.clock.Now()
	if f := first.Load(); f != nil {
		st.cpu, st.cpuSpan = e.cpuTime()-f.cpu, stop-f.at
		sent, received := e.wire.snapshot()
		st.wireSent, st.wireReceived = sent-f.sent, received-f.received
	}
	st.window = e.cfg.Duration
	if st.interrupted {
		st.window = max(0, min(stop, end)-e.windowStart)
		e.windowEnd.Store(int64(e.windowStart + st.window))
	}
	return st
}

// acquire returns the most recently freed idle worker, or waits for one,
// and notes whether it waited because MaxInFlight requests were in flight.
// It returns nil if ctx is done first. The workers it starts send with ctx
// less its cancellation: an interrupt stops the schedule, not the requests
// in flight.
//
// While none is idle, the pool grows by one worker at a time: a new worker
// first opens its connection and only then joins the idle stack, and the
// next one is started only after that. The request waits meanwhile for
// whichever worker comes free first, the new one or one that finished. So a
// burst (the scheduler woke late, a GC pause, a slow second) is absorbed by
// the connections in hand as they come free, plus at most one being opened,
// instead of opening one connection per queued request: on one core,
// opening a connection costs several requests' worth of CPU, and that
// would make the generator later still, open more connections, and spiral
// up to the cap (measured: 4096 connections within half a second at 40k
// req/s). A truly slow target still gets a new connection every few tens of
// microseconds, as many as it keeps busy.
func (e *engine) acquire(ctx context.Context, giveUp <-chan struct{}, st *schedStats) *worker {
	done := ctx.Done()
	for {
		select {
		case <-done:
			st.interrupted = true
			return nil
		case <-giveUp:
			return nil
		default:
		}
		e.mu.Lock()
		if n := len(e.idle); n > 0 {
			w := e.idle[n-1]
			e.idle = e.idle[:n-1]
			e.mu.Unlock()
			return w
		}
		grow := e.opening == 0 && len(e.workers) < e.cfg.MaxInFlight
		if grow {
			e.opening++
		}
		e.mu.Unlock()
		if grow {
			w := &worker{id: len(e.workers), jobs: make(chan job, 1)}
			e.workers = append(e.workers, w)
			e.wg.Add(1)
			go e.work(context.WithoutCancel(ctx), w)
		} else if len(e.workers) >= e.cfg.MaxInFlight {
			st.capHit = true
		}
		select {
		case <-done:
			st.interrupted = true
			return nil
		case <-giveUp:
			return nil
		case <-e.freed:
		}
	}
}

// giveUpAfter is how long after the measured window the scheduler goes on
// sending the requests it is late with.
const giveUpAfter = time.Second

// abandon records the requests of the window still unsent when the
// scheduler gave up, first the one intended at t, then the rest of arr: each
// is an error of kind "unsent" whose corrected latency and slip are the time
// from its intended send to now, a lower bound of what it would have seen.
// Dropping them would hide exactly the stall that made them late.
func (e *engine) abandon(t time.Duration, arr *arrivals) {
	now := e.clock.Now()
	for ok := true; ok; t, ok = arr.next() {
		if t >= e.windowStart {
			e.rec.recordUnsent(t, now)
		}
	}
}

// work is one worker: it connects, then takes jobs until the schedule is
// over, sends each through its own session and records the measured ones,
// going back on the idle stack after each. Workers are started as the
// requests in flight reach a new high, so a slow target gets up to
// MaxInFlight of them and a fast one a handful.
func (e *engine) work(ctx context.Context, w *worker) {
	defer e.wg.Done()
	s := e.tgt.session(w.id)
	if c, ok := s.(connector); ok {
		_ = c.connect(ctx) // a failure shows on the first request, which retries
	}
	e.release(w, true)
	log := &msgLog{clock: e.clock}
	for j := range w.jobs {
		log.at = log.at[:0]
		sent := e.clock.Now()
		kind := s.do(ctx, j.draw, log)
		if j.measured {
			end := e.clock.Now()
			inTime := sent < time.Duration(e.windowEnd.Load())
			e.rec.record(w.id, j.intended, sent, end, inTime, kind, log.at)
		}
		e.release(w, false)
	}
}

// release puts w back on the idle stack and wakes the scheduler if it waits.
func (e *engine) release(w *worker, opened bool) {
	e.mu.Lock()
	e.idle = append(e.idle, w)
	if opened {
		e.opening--
	}
	e.mu.Unlock()
	select {
	case e.freed <- struct{}{}:
	default: // a wake-up is already pending
	}
}
