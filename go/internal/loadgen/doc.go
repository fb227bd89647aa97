// Package loadgen is patternbench's open-loop load generator. It sends
// requests at a target arrival rate whatever the answers (as wrk2 does), so
// that a stalled server shows as latency instead of silently lowering the
// load: a closed-loop generator such as Locust waits for each answer before
// the next request and so hides stalls (coordinated omission). Every latency
// is measured twice, from the request's intended send time (corrected) and
// from its actual send time (uncorrected), into HDR histograms.
//
// A single scheduler goroutine computes the intended times (constant: start +
// i/rate; Poisson: cumulative exponential draws, seeded) and hands each due
// request to a pool of workers bounded by --max-in-flight; when the pool is
// full, further requests wait, and the wait counts in their slip and in their
// corrected latency. HTTP goes through one keep-alive HTTP/1.1 transport with
// as many connections as requests in flight; gRPC makes unary calls, or with
// --grpc-stream server-streaming ones, with a pre-encoded request (see
// grpcTarget).
//
// # Varying the request
//
// A {rand:N} placeholder, N ≥ 1, is replaced per request by an integer in
// [0, N), and a {rand:LO..HI} placeholder by one in [LO, HI] (ids that start
// at 1): in the URL's path and query, in --body, and in the values of
// --grpc-vary (a varint's: {rand:N} only). One uniform draw per request, from its own stream seeded by
// --seed, covers all of them: each placeholder takes one mixed-radix digit
// of it (the URL's first, then the body's, then each --grpc-vary's in order),
// so they are independent and uniform, and the product of every N must fit
// in 63 bits. A body without placeholders is built once, as is the whole
// request when nothing varies; with placeholders the body is rendered per
// request with its own Content-Length (the raw client writes it into the
// request it builds anyway, without allocating; the net/http client
// allocates the body per request, since its transport may read a body after
// the call has returned).
//
// --grpc-vary FIELD:KIND:TEMPLATE appends a top-level field to the encoded
// --grpc-request-base64 on every call, with protowire's encoding: KIND string
// (length-delimited: string or bytes) or varint (int32, int64, uint32,
// uint64, bool, enum, as a non-negative value; not sint32/sint64 nor fixed
// widths), TEMPLATE text with {rand:N} for a string, exactly one {rand:N} or a
// decimal number for a varint. A protobuf parser keeps the last occurrence of
// a non-repeated scalar field, so the caller may encode the request with or
// without that field and every call carries its own value (for a repeated
// field the value is one more element). Each session builds the message in a
// buffer of its own, and the codec hands grpc-go a copy (pooled above 1 KiB),
// because grpc-go may still write a message out after its call returned.
//
// # gRPC
//
// Calls go over --grpc-conns HTTP/2 connections with a raw codec: the
// request is sent as encoded, the answers are received whole but not
// decoded. Answers up to 64 MiB are accepted, unary and streamed
// (grpc.MaxCallRecvMsgSize; grpc-go's default is 4 MiB, and 1,000 items of
// 4,096 float features are 16 MB). With --grpc-stream the method is
// server-streaming: a call opens the stream with the request, receives every
// message until the end of the stream, and counts as one request, whose
// latency runs to the end of the stream (corrected from the intended send
// time, uncorrected from the actual one, as a unary call's), within
// --timeout for the whole stream. Each message's arrival is noted too: the
// first one's time from the intended send, and the gap between consecutive
// messages of a stream, go into histograms of their own (result "stream").
// A stream that fails after some messages is an error of its status's kind,
// as a unary call; its messages still count.
//
// # Ceiling
//
// Measured on the 2-core development machine, hello (go/cmd/hello) pinned
// alone on CPU 1 with GOMAXPROCS=1, the generator alone on CPU 0:
//
//	taskset -c 0 wrk -t1 -c32 -d5s URL        72.5k, 75.0k, 73.4k req/s
//	taskset -c 0 env GOMAXPROCS=1 loadgen --url URL --rate R --duration 5s --warmup 1s
//
// loadgen keeps up (achieved ≥ 99% of the target, slip p99 < 5 ms) up to
// 60k req/s with --max-in-flight 32 (wrk's connection count) or 256, using
// about 76% of its core: 0.82 of wrk, and there the server, not loadgen, is
// the limit. With the default cap of 4096 it keeps up to 45-50k: bursts let
// the pool grow to hundreds of connections, and this server, on one core,
// loses throughput as they multiply, down to 50k req/s at 4096 connections.
// The generator's own cost is mostly system calls (write, read, epoll: 77%
// of its CPU in pprof); the scheduler and histogram recording are a few
// percent. --cpuprofile writes a profile of any run. (These figures predate
// the counting of bytes on the wire, which adds one uncontended atomic add,
// on the connection's own counter, to each read and write system call; an
// A/B of the binaries before and after it on 2026-11-29 kept 35,000 req/s
// on schedule alike and fell behind alike at 45,000.)
//
// # Result JSON
//
// --json FILE writes one object, atomically (temporary file and rename):
//
//	engine              "loadgen".
//	load_model          "open-loop".
//	arrival             "constant" or "poisson", as --arrival.
//	url                 --url as given, {rand:N} placeholders included.
//	rate.target         --rate, requests per second.
//	rate.achieved       requests per second actually sent during the window:
//	                    the measured requests whose actual send time fell
//	                    before the window closed, divided by
//	                    window.duration_s. Below target when the generator
//	                    (or the in-flight cap) fell behind the schedule.
//	window.start_unix   wall-clock start of the measured window (after the
//	                    warm-up), seconds since the Unix epoch, fractional.
//	window.duration_s   length of the measured window in seconds: --duration,
//	                    or the part that elapsed before an interrupt.
//	requests            requests (with --grpc-stream, streams) whose intended
//	                    send time fell in the window (those after an
//	                    interrupt are never sent and not counted); every one
//	                    was sent and completed or failed, or was abandoned
//	                    unsent (kind "unsent" below).
//	errors              how many of those failed.
//	error_kinds         failures by kind, each a count: "HTTP <status>" for a
//	                    non-2xx answer, "timeout" (no complete answer within
//	                    --timeout), "connection" (dial refused, reset, EOF,
//	                    malformed answer), "grpc <Code>" for a non-OK gRPC
//	                    status such as "grpc Unavailable", and "unsent": a
//	                    scheduler still behind one second after the window
//	                    gives up on its backlog, and records each request it
//	                    never sent with its wait so far as corrected latency
//	                    and slip (a lower bound; dropping them would hide the
//	                    stall). Any "unsent" means the window was not fully
//	                    offered. {} when no request failed.
//	histograms.corrected    latency from the intended send time to the end of
//	                    the answer (with --grpc-stream, of the stream) or
//	                    the error, microseconds.
//	histograms.uncorrected  latency from the actual send time, microseconds:
//	                    what a closed-loop generator would report.
//	histograms.slip     actual minus intended send time, microseconds: how
//	                    late the generator was (timer granularity, CPU
//	                    starvation, waiting for the in-flight cap).
//	                    Each histogram holds one value per measured request,
//	                    failures included (unsent ones in corrected and slip
//	                    only), as the base64 text of HdrHistogram's
//	                    compressed V2 encoding (lowest 1, highest 3.6e9 =
//	                    one hour, 3 significant digits), which Python's hdrh
//	                    decodes with HdrHistogram.decode.
//	generator.cpu_seconds   user + system CPU time of the whole loadgen
//	                    process over the window (getrusage RUSAGE_SELF),
//	                    seconds.
//	generator.cpu_percent   cpu_seconds as a percentage of one core over the
//	                    same wall-clock span; 100 is one core saturated, and
//	                    it can exceed 100 when GOMAXPROCS > 1.
//	generator.gomaxprocs    Go's GOMAXPROCS: the cores loadgen could use.
//	generator.max_in_flight --max-in-flight.
//	generator.in_flight_cap_hit true if a request ever had to wait because
//	                    max_in_flight requests were outstanding: the target
//	                    was then not offered the full open-loop load.
//	interrupted         true if SIGINT or SIGTERM cut the run short.
//	wire_sent_bytes     bytes loadgen wrote to its connections during the
//	                    window (the counters are read when the window opens
//	                    and when the scheduler closes it, like
//	                    generator.cpu_seconds), all connections together:
//	                    HTTP/1.1 request lines, headers and bodies, or HTTP/2
//	                    frames with gRPC's message framing, HPACK headers,
//	                    settings and pings; TCP/IP headers are not counted.
//	                    Per request: wire_sent_bytes / requests (over a
//	                    window long enough that the requests straddling its
//	                    edges do not matter, and none "unsent").
//	wire_received_bytes the same, read from the connections: answers with
//	                    their headers and framing.
//	stream              only with --grpc-stream (absent otherwise), over the
//	                    streams counted in requests (intended send in the
//	                    window), failed ones included:
//	stream.messages     messages received.
//	stream.messages_per_s   messages / window.duration_s.
//	stream.histograms.first_message time from a stream's intended send to
//	                    its first message, microseconds; one value per
//	                    stream that received any.
//	stream.histograms.gap   time between consecutive messages of one stream,
//	                    microseconds; messages−1 values per stream.
//	                    Both histograms are encoded as histograms.corrected.
package loadgen
