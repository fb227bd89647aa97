// Command hello is the reference target for measuring load generators: a
// net/http server answering GET / with a 26-byte JSON hello (see
// internal/hello). Pin it to its own CPU when comparing generators.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/patternbench/patternbench/go/internal/hello"
	"github.com/patternbench/patternbench/go/internal/serve"
)

func main() {
	fs := flag.NewFlagSet("hello", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "127.0.0.1:8090", "address to serve on")
	if err := fs.Parse(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "hello: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}
	if err := run(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

// run serves until SIGTERM or SIGINT, then stops accepting connections and
// gives the requests in flight at most 5 s to finish.
func run(listen string) error {
	return serve.UntilSignal([]serve.Endpoint{{Addr: listen, Handler: hello.Handler()}}, 5*time.Second)
}
