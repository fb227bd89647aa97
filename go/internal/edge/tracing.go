package edge

import (
	"context"
	"fmt"
	"net/http"

	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ServiceName is the traces' service.name.
const ServiceName = "edge"

// propagator reads and writes W3C traceparent (and tracestate): from the client's headers, into
// the core's gRPC metadata.
var propagator = propagation.TraceContext{}

// newTracerProvider is the SDK's provider of --trace otlp: spans batched to the OTLP/HTTP
// endpoint, new traces sampled at --trace-sample, a client's sampling decision followed.
// Nothing is sent until the first batch; Shutdown flushes what is left.
func newTracerProvider(ctx context.Context, cfg Config) (*sdktrace.TracerProvider, error) {
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.OTLPEndpoint))
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.TraceSample))),
	), nil
}

// startServerSpan starts a call's SERVER span, the child of the client's traceparent if it
// sent one.
func startServerSpan(ctx context.Context, tracer trace.Tracer, r *http.Request) (context.Context, trace.Span) {
	ctx = propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	return tracer.Start(ctx, r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.Path),
		))
}

// endServerSpan ends a call's span with its status; a 5xx (never sent 499s aside) is an error,
// as the HTTP semantic conventions have it for servers.
func endServerSpan(span trace.Span, c *call) {
	span.SetAttributes(semconv.HTTPResponseStatusCode(c.status), attribute.String("edge.request_id", c.id))
	if c.status >= 500 {
		span.SetStatus(otelcodes.Error, "")
	}
	span.End()
}

// startClientSpan starts the CLIENT span of one attempt and writes its traceparent into the
// attempt's outgoing metadata.
func startClientSpan(ctx context.Context, tracer trace.Tracer, method string, attempt int) (context.Context, trace.Span) {
	ctx, span := tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.RPCSystemNameGRPC,
			semconv.RPCMethod(method),
			attribute.Int("edge.attempt", attempt),
		))
	carrier := propagation.MapCarrier{}
	propagator.Inject(ctx, carrier)
	for k, v := range carrier {
		ctx = metadata.AppendToOutgoingContext(ctx, k, v)
	}
	return ctx, span
}

// endClientSpan ends an attempt's span with its gRPC status.
func endClientSpan(span trace.Span, err error) {
	st := status.Convert(err)
	span.SetAttributes(semconv.RPCResponseStatusCode(recsvc.CodeName(st.Code())))
	if st.Code() != codes.OK {
		span.SetStatus(otelcodes.Error, st.Message())
	}
	span.End()
}
