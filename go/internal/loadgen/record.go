package loadgen

import (
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry, shared with the Python harness (bench/stats.py): 1 µs
// to one hour at three significant digits.
const (
	histLowest  = 1
	histHighest = 3_600_000_000
	histDigits  = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// micros converts a duration to whole microseconds, rounded, and clamped to
// the histogram's range so that recording never fails: a negative value can
// only come from a clock read out of order by a few nanoseconds, and nothing
// waits an hour under a per-request timeout.
func micros(d time.Duration) int64 {
	us := (d + 500*time.Nanosecond) / time.Microsecond
	switch {
	case us < 0:
		return 0
	case us > histHighest:
		return histHighest
	}
	return int64(us)
}

// recorder collects the measured requests. Workers record into one of a few
// shards, each under its own mutex, and the shards are merged once at the
// end. One histogram triple per worker would avoid the locks but costs
// 3×184 KiB per worker, 2.2 GiB at 4096 workers; a single mutex is cheap
// when uncontended (BenchmarkRecord compares the two), and shards keep it
// uncontended with GOMAXPROCS > 1.
type recorder struct {
	shards    []shard
	streaming bool
}

// shard is one lock's worth of measurements, padded so that two shards'
// mutexes never share a cache line.
type shard struct {
	mu          sync.Mutex
	corrected   *hdrhistogram.Histogram
	uncorrected *hdrhistogram.Histogram
	slip        *hdrhistogram.Histogram
	first, gap  *hdrhistogram.Histogram // streaming only, else nil
	messages    int64                   // streaming only
	requests    int64
	sentInTime  int64 // sent before the window closed: the achieved rate's numerator
	errors      int64
	kinds       map[string]int64
	_           [64]byte
}

// newRecorder makes a recorder of the given number of shards; streaming adds
// the histograms of streamed messages.
func newRecorder(shards int, streaming bool) *recorder {
	r := &recorder{shards: make([]shard, shards), streaming: streaming}
	for i := range r.shards {
		s := &r.shards[i]
		s.corrected, s.uncorrected, s.slip = newHistogram(), newHistogram(), newHistogram()
		if streaming {
			s.first, s.gap = newHistogram(), newHistogram()
		}
		s.kinds = map[string]int64{}
	}
	return r
}

// record adds one measured request, seen by worker w: corrected latency from
// the intended send time, uncorrected from the actual one, and the slip
// between the two. kind is "" for a success. For a streaming call, msgs are
// the arrival times of its messages: the first one's time from the intended
// send, and the gaps between consecutive ones, are recorded too.
func (r *recorder) record(w int, intended, sent, end time.Duration, inTime bool, kind string, msgs []time.Duration) {
	c, u, sl := micros(end-intended), micros(end-sent), micros(sent-intended)
	s := &r.shards[w%len(r.shards)]
	s.mu.Lock()
	_ = s.corrected.RecordValue(c) // cannot fail: micros clamps
	_ = s.uncorrected.RecordValue(u)
	_ = s.slip.RecordValue(sl)
	if r.streaming && len(msgs) > 0 {
		_ = s.first.RecordValue(micros(msgs[0] - intended))
		for i := 1; i < len(msgs); i++ {
			_ = s.gap.RecordValue(micros(msgs[i] - msgs[i-1]))
		}
		s.messages += int64(len(msgs))
	}
	s.requests++
	if inTime {
		s.sentInTime++
	}
	if kind != "" {
		s.errors++
		s.kinds[kind]++
	}
	s.mu.Unlock()
}

// recordUnsent adds a request of the window that was never sent, given up at
// time at (see engine.abandon): an error of kind "unsent", in the corrected
// and slip histograms but not the uncorrected one, since it had no send.
func (r *recorder) recordUnsent(intended, at time.Duration) {
	late := micros(at - intended)
	s := &r.shards[0]
	s.mu.Lock()
	_ = s.corrected.RecordValue(late)
	_ = s.slip.RecordValue(late)
	s.requests++
	s.errors++
	s.kinds[KindUnsent]++
	s.mu.Unlock()
}

// totals is the merged content of all shards.
type totals struct {
	corrected, uncorrected, slip *hdrhistogram.Histogram
	requests, sentInTime, errors int64
	kinds                        map[string]int64
	// Streaming only: the first message's latency and the gaps between
	// messages (nil histograms otherwise), and the messages received.
	first, gap *hdrhistogram.Histogram
	messages   int64
}

// merge adds up the shards; call it after every worker has stopped.
func (r *recorder) merge() totals {
	t := totals{
		corrected: newHistogram(), uncorrected: newHistogram(), slip: newHistogram(),
		kinds: map[string]int64{},
	}
	if r.streaming {
		t.first, t.gap = newHistogram(), newHistogram()
	}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		t.corrected.Merge(s.corrected)
		t.uncorrected.Merge(s.uncorrected)
		t.slip.Merge(s.slip)
		if r.streaming {
			t.first.Merge(s.first)
			t.gap.Merge(s.gap)
			t.messages += s.messages
		}
		t.requests += s.requests
		t.sentInTime += s.sentInTime
		t.errors += s.errors
		for k, n := range s.kinds {
			t.kinds[k] += n
		}
		s.mu.Unlock()
	}
	return t
}

// encodeHistogram returns the base64 text of the compressed V2 encoding, the
// form HdrHistogram's other implementations (Python's hdrh included) decode.
func encodeHistogram(h *hdrhistogram.Histogram) (string, error) {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("encode histogram: %w", err)
	}
	return string(b), nil
}

// DecodeHistogram is the inverse of the encoding in the result JSON.
func DecodeHistogram(text string) (*hdrhistogram.Histogram, error) {
	h, err := hdrhistogram.Decode([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}
