// Package hello is the reference target of loadgen's ceiling measurements: a
// net/http server that answers GET / with a fixed 26-byte JSON body and does
// nothing else, so that comparing generators against it (loadgen, wrk)
// measures the generators, not the service.
package hello

import (
	"net/http"
	"strconv"
)

// Body is the answer to GET /: the usual hello-world JSON object and a
// newline, as json.Encoder writes it, 26 bytes.
const Body = `{"message":"hello world"}` + "\n"

var (
	body       = []byte(Body)
	bodyLength = []string{strconv.Itoa(len(Body))}
	healthy    = []byte(`{"status":"ok"}`)
	healthyLen = []string{strconv.Itoa(len(healthy))}
	jsonType   = []string{"application/json"}
)

// Handler serves GET / and GET /healthz; anything else is a 404. Headers are
// set as pre-built slices, so that a request allocates nothing in the
// handler itself.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		write(w, body, bodyLength)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		write(w, healthy, healthyLen)
	})
	return mux
}

func write(w http.ResponseWriter, b []byte, length []string) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = length
	_, _ = w.Write(b)
}
