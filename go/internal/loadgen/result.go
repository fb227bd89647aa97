package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is the outcome of a run, in the shape of the result JSON (see the
// package documentation for the meaning and unit of every field).
type Result struct {
	Engine      string           `json:"engine"`
	LoadModel   string           `json:"load_model"`
	Arrival     string           `json:"arrival"`
	URL         string           `json:"url"`
	Rate        RateResult       `json:"rate"`
	Window      WindowResult     `json:"window"`
	Requests    int64            `json:"requests"`
	Errors      int64            `json:"errors"`
	ErrorKinds  map[string]int64 `json:"error_kinds"`
	Histograms  HistogramResult  `json:"histograms"`
	Stream      *StreamResult    `json:"stream,omitempty"` // --grpc-stream only
	Generator   GeneratorResult  `json:"generator"`
	Interrupted bool             `json:"interrupted"`

	WireSentBytes     int64 `json:"wire_sent_bytes"`
	WireReceivedBytes int64 `json:"wire_received_bytes"`

	// The decoded histograms, for the summary; not part of the JSON.
	corrected, uncorrected, slip *hdrhistogram.Histogram
	first, gap                   *hdrhistogram.Histogram // streaming only
}

// RateResult is the "rate" object.
type RateResult struct {
	Target   float64 `json:"target"`
	Achieved float64 `json:"achieved"`
}

// WindowResult is the "window" object.
type WindowResult struct {
	StartUnix float64 `json:"start_unix"`
	DurationS float64 `json:"duration_s"`
}

// HistogramResult is the "histograms" object: base64 compressed V2 HDR
// histograms in microseconds.
type HistogramResult struct {
	Corrected   string `json:"corrected"`
	Uncorrected string `json:"uncorrected"`
	Slip        string `json:"slip"`
}

// StreamResult is the "stream" object, present with --grpc-stream only.
type StreamResult struct {
	Messages     int64                 `json:"messages"`
	MessagesPerS float64               `json:"messages_per_s"`
	Histograms   StreamHistogramResult `json:"histograms"`
}

// StreamHistogramResult is the "stream.histograms" object: base64
// compressed V2 HDR histograms in microseconds, as "histograms".
type StreamHistogramResult struct {
	FirstMessage string `json:"first_message"`
	Gap          string `json:"gap"`
}

// GeneratorResult is the "generator" object.
type GeneratorResult struct {
	CPUSeconds     float64 `json:"cpu_seconds"`
	CPUPercent     float64 `json:"cpu_percent"`
	GOMAXPROCS     int     `json:"gomaxprocs"`
	MaxInFlight    int     `json:"max_in_flight"`
	InFlightCapHit bool    `json:"in_flight_cap_hit"`
}

// WriteJSON writes r to path atomically: a temporary file in the same
// directory, synced, then renamed over path, so that a reader never sees a
// half-written result, even if loadgen is killed while writing.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	b = append(b, '\n')
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// summaryPercentiles are the rows of the summary's latency table: wrk2's, up
// to 99.99%, and p95, the percentile k6 and Locust users look for first. Only
// the text has them; the JSON keeps the histograms, from which the harness
// computes any percentile.
var summaryPercentiles = []float64{50, 75, 90, 95, 99, 99.9, 99.99}

// WriteSummary prints the human summary, in the spirit of wrk2's.
func (r *Result) WriteSummary(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s load of %s, %s arrivals\n", r.LoadModel, r.URL, r.Arrival)
	if r.Interrupted {
		fmt.Fprintf(&b, "  INTERRUPTED after %.3fs of the measured window\n", r.Window.DurationS)
	}
	if n := r.ErrorKinds[KindUnsent]; n > 0 {
		fmt.Fprintf(&b, "  GAVE UP: %d requests of the window were never sent (the generator or the in-flight cap could not keep up)\n", n)
	}
	fmt.Fprintf(&b, "  Rate: target %.1f req/s, achieved %.1f req/s (%.1f%%)\n",
		r.Rate.Target, r.Rate.Achieved, 100*r.Rate.Achieved/r.Rate.Target)
	fmt.Fprintf(&b, "  Requests: %d in %.3fs, errors: %d", r.Requests, r.Window.DurationS, r.Errors)
	if len(r.ErrorKinds) > 0 {
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k := range r.ErrorKinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for i, k := range kinds {
			sep := ", "
			if i == 0 {
				sep = " ("
			}
			fmt.Fprintf(&b, "%s%s: %d", sep, k, r.ErrorKinds[k])
		}
		b.WriteString(")")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  Latency (ms)   %12s %12s\n", "corrected", "uncorrected")
	for _, p := range summaryPercentiles {
		fmt.Fprintf(&b, "  %10.3f%%    %12.3f %12.3f\n", p,
			ms(r.corrected.ValueAtPercentile(p)), ms(r.uncorrected.ValueAtPercentile(p)))
	}
	fmt.Fprintf(&b, "  %11s    %12.3f %12.3f\n", "max", ms(r.corrected.Max()), ms(r.uncorrected.Max()))
	fmt.Fprintf(&b, "  Schedule slip (ms): p50 %.3f, p99 %.3f, max %.3f\n",
		ms(r.slip.ValueAtPercentile(50)), ms(r.slip.ValueAtPercentile(99)), ms(r.slip.Max()))
	if r.Stream != nil && r.first != nil && r.gap != nil {
		fmt.Fprintf(&b, "  Stream: %d messages (%.1f msg/s); first message (ms): p50 %.3f, p99 %.3f, max %.3f; gap (ms): p50 %.3f, p99 %.3f, max %.3f\n",
			r.Stream.Messages, r.Stream.MessagesPerS,
			ms(r.first.ValueAtPercentile(50)), ms(r.first.ValueAtPercentile(99)), ms(r.first.Max()),
			ms(r.gap.ValueAtPercentile(50)), ms(r.gap.ValueAtPercentile(99)), ms(r.gap.Max()))
	}
	perRequest := func(n int64) float64 {
		if r.Requests == 0 {
			return 0
		}
		return float64(n) / float64(r.Requests)
	}
	fmt.Fprintf(&b, "  Wire: sent %d bytes, received %d bytes in the window (%.0f and %.0f per request)\n",
		r.WireSentBytes, r.WireReceivedBytes, perRequest(r.WireSentBytes), perRequest(r.WireReceivedBytes))
	capHit := "never reached"
	if r.Generator.InFlightCapHit {
		capHit = "REACHED (requests waited for a free slot)"
	}
	fmt.Fprintf(&b, "  Generator: CPU %.1f%% of one core (%.2fs), GOMAXPROCS %d, in-flight cap %d %s\n",
		r.Generator.CPUPercent, r.Generator.CPUSeconds, r.Generator.GOMAXPROCS, r.Generator.MaxInFlight, capHit)
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(us int64) float64 { return float64(us) / 1000 }
