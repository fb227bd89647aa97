package edge

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// With tracing on, a call is a SERVER span continuing the client's traceparent, with a CLIENT
// span per attempt under it, whose traceparent the core receives.
func TestTracing(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = provider.Shutdown(t.Context()) })
	e := startEdge(t, testConfig(core.addr), Options{TracerProvider: provider})

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	resp, body := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`,
		"traceparent", "00-"+traceID+"-"+parentID+"-01")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	spans := recorder.Ended()
	var server, client sdktrace.ReadOnlySpan
	for _, s := range spans {
		switch s.SpanKind() {
		case trace.SpanKindServer:
			server = s
		case trace.SpanKindClient:
			client = s
		}
	}
	if len(spans) != 2 || server == nil || client == nil {
		t.Fatalf("spans %v, want a server and a client span", spans)
	}
	if server.SpanContext().TraceID().String() != traceID || server.Parent().SpanID().String() != parentID || !server.Parent().IsRemote() {
		t.Errorf("the server span %v does not continue the client's trace (parent %v)", server.SpanContext(), server.Parent())
	}
	if client.Parent().SpanID() != server.SpanContext().SpanID() || client.SpanContext().TraceID() != server.SpanContext().TraceID() {
		t.Errorf("the client span's parent is %v, not the server span %v", client.Parent(), server.SpanContext())
	}
	if client.Name() != methodRecommend || server.Name() != "POST "+restserver.RecommendPath {
		t.Errorf("span names %q, %q", server.Name(), client.Name())
	}
	want := "00-" + traceID + "-" + client.SpanContext().SpanID().String() + "-01"
	if got := core.calls()[0].md.Get("traceparent"); len(got) != 1 || got[0] != want {
		t.Errorf("the core got traceparent %q, want %q", got, want)
	}
	if l := e.logs.lines(t, "request"); len(l) != 1 || l[0]["trace_id"] != traceID {
		t.Errorf("log %v", l)
	}

	// Without a traceparent, a new trace; every attempt its own client span.
	calls := failFirst(core, 1, errUnavailable)
	post(t, e.addr, restserver.StreamPath, `{"userId": "a", "limit": 1}`)
	post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`)
	if calls.Load() != 2 {
		t.Fatalf("%d attempts, want 2", calls.Load())
	}
	spans = recorder.Ended()[2:]
	if len(spans) != 5 { // stream: server + client; recommend: server + 2 clients
		t.Fatalf("%d spans, want 5", len(spans))
	}
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindServer && (s.Parent().IsValid() || s.SpanContext().TraceID().String() == traceID) {
			t.Errorf("a call without traceparent continued %v", s.Parent())
		}
	}
}

// With tracing off the core gets no traceparent and the log no trace_id.
func TestNoTracing(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	e := startEdge(t, testConfig(core.addr), Options{})
	post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`,
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if got := core.calls()[0].md.Get("traceparent"); len(got) != 0 {
		t.Errorf("the core got traceparent %q", got)
	}
	if l := e.logs.lines(t, "request"); len(l) != 1 || l[0]["trace_id"] != nil {
		t.Errorf("log %v", l)
	}
}

// --trace otlp batches the spans to the OTLP/HTTP endpoint and flushes them on Close.
func TestOTLPExportOnClose(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	var posts atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(collector.Close)
	cfg := testConfig(core.addr)
	cfg.Trace, cfg.OTLPEndpoint = "otlp", collector.URL+"/v1/traces"
	s, err := New(t.Context(), cfg, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, restserver.RecommendPath, strings.NewReader(`{"userId": "a", "limit": 1}`)))
	if w.Code != 200 || posts.Load() != 0 {
		t.Fatalf("%d, %d exports before Close", w.Code, posts.Load())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil || posts.Load() != 1 {
		t.Errorf("Close: %v, %d exports, want 1", err, posts.Load())
	}
}
