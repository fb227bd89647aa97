// Package latencysim simulates the backends of the fan-out benchmark: one HTTP
// handler per replica, each answering GET /backend/{name}/{item_id} after a delay
// drawn from a seeded distribution, so that runs are reproducible and the
// simulator, not the service under test, decides the latency shape.
package latencysim

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/patternbench/patternbench/go/internal/flagargs"
)

// Kinds of delay distribution a backend can use.
const (
	DistConstant  = "constant"
	DistLognormal = "lognormal"
)

// KnownBackends lists the backend names the fan-out service can call; the
// simulator answers any well-formed name, but --overrides must name one of
// these so that a typo fails loudly instead of silently using the defaults.
var KnownBackends = []string{
	"pricing", "inventory", "reviews", "shipping",
	"recommendations", "promotions", "ratings", "availability",
}

// Dist describes how one backend behaves: a base delay (constant, or lognormal
// around a median), an optional slow tail and an error rate. It is a value type
// so that overrides can copy and patch the defaults.
type Dist struct {
	Kind      string  // DistConstant or DistLognormal
	MedianMs  float64 // constant delay, or the median of the lognormal
	Sigma     float64 // lognormal shape: delay = median * exp(sigma * N(0,1))
	TailP     float64 // probability of adding TailMs
	TailMs    float64 // extra delay of the slow tail
	ErrorRate float64 // probability of answering 500
}

// Validate reports the first field of d that makes no sense. The returned error
// names the command-line flag of the field, which the caller may prefix with a
// backend name for overrides.
func (d Dist) Validate() error {
	switch d.Kind {
	case DistConstant, DistLognormal:
	default:
		return fmt.Errorf("--dist: unknown distribution %q (want constant or lognormal)", d.Kind)
	}
	for _, f := range []struct {
		flag string
		v    float64
	}{
		{"--median-ms", d.MedianMs},
		{"--sigma", d.Sigma},
		{"--tail-p", d.TailP},
		{"--tail-ms", d.TailMs},
		{"--error-rate", d.ErrorRate},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return fmt.Errorf("%s: must be a finite non-negative number, got %v", f.flag, f.v)
		}
	}
	if d.TailP > 1 {
		return fmt.Errorf("--tail-p: must be in [0,1], got %v", d.TailP)
	}
	if d.ErrorRate > 1 {
		return fmt.Errorf("--error-rate: must be in [0,1], got %v", d.ErrorRate)
	}
	return nil
}

// Sample draws one request's fate from r: how long to wait and whether to
// answer 500. The number of draws depends only on d, never on earlier results,
// so a replica's stream is reproducible for a given request order.
func (d Dist) Sample(r *rand.Rand) (delay time.Duration, fail bool) {
	ms := d.MedianMs
	if d.Kind == DistLognormal {
		ms *= math.Exp(d.Sigma * r.NormFloat64())
	}
	if d.TailP > 0 && r.Float64() < d.TailP {
		ms += d.TailMs
	}
	if d.ErrorRate > 0 {
		fail = r.Float64() < d.ErrorRate
	}
	return time.Duration(ms * float64(time.Millisecond)), fail
}

// override is one backend's entry in --overrides: every field is optional and,
// when present, replaces the flag default.
type override struct {
	Dist      *string  `json:"dist"`
	MedianMs  *float64 `json:"median_ms"`
	Sigma     *float64 `json:"sigma"`
	TailP     *float64 `json:"tail_p"`
	TailMs    *float64 `json:"tail_ms"`
	ErrorRate *float64 `json:"error_rate"`
}

func (o override) apply(d Dist) Dist {
	if o.Dist != nil {
		d.Kind = *o.Dist
	}
	if o.MedianMs != nil {
		d.MedianMs = *o.MedianMs
	}
	if o.Sigma != nil {
		d.Sigma = *o.Sigma
	}
	if o.TailP != nil {
		d.TailP = *o.TailP
	}
	if o.TailMs != nil {
		d.TailMs = *o.TailMs
	}
	if o.ErrorRate != nil {
		d.ErrorRate = *o.ErrorRate
	}
	return d
}

// Config is the whole simulator: the replicas' listen addresses, the seed of
// replica 0 (replica i uses Seed+i), the default distribution and the
// per-backend distributions that differ from it.
type Config struct {
	Listen    []string
	Seed      uint64
	Default   Dist
	Overrides map[string]Dist
}

// DistFor returns the distribution of backend name.
func (c *Config) DistFor(name string) Dist {
	if d, ok := c.Overrides[name]; ok {
		return d
	}
	return c.Default
}

// ParseOverrides lays the JSON object s (backend name → partial distribution)
// over def. Unknown backends, unknown fields, trailing data and invalid values
// are errors, because a silently ignored override would make a benchmark run
// measure something other than what was asked for.
func ParseOverrides(s string, def Dist) (map[string]Dist, error) {
	out := map[string]Dist{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var raw map[string]override
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("--overrides: malformed JSON: %v", err)
	}
	if raw == nil {
		return nil, errors.New("--overrides: want a JSON object, got null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("--overrides: trailing data after the JSON object")
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !known(name) {
			return nil, fmt.Errorf("--overrides: unknown backend %q (want one of %s)", name, strings.Join(KnownBackends, ", "))
		}
		d := raw[name].apply(def)
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("--overrides: %s: %s", name, overrideField(err.Error()))
		}
		out[name] = d
	}
	return out, nil
}

// overrideField rewrites "--median-ms: ..." as "median_ms: ...", the key the
// user wrote in the overrides JSON.
func overrideField(msg string) string {
	flagName, rest, ok := strings.Cut(msg, ": ")
	if !ok || !strings.HasPrefix(flagName, "--") {
		return msg
	}
	key := strings.ReplaceAll(strings.TrimPrefix(flagName, "--"), "-", "_")
	return key + ": " + rest
}

func known(name string) bool {
	for _, b := range KnownBackends {
		if b == name {
			return true
		}
	}
	return false
}

// ParseFlags reads the simulator's command line. The error, if any, is one
// line naming the offending flag, for the caller to print before exiting 2.
func ParseFlags(args []string) (Config, error) {
	fs := flag.NewFlagSet("latencysim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		listen    = fs.String("listen", "127.0.0.1:9101", "comma-separated listen addresses, one per replica")
		seed      = fs.Uint64("seed", 1, "seed of replica 0; replica i uses seed+i")
		overrides = fs.String("overrides", "", `JSON object: backend name -> partial distribution, e.g. {"reviews":{"median_ms":1000}}`)
		def       Dist
	)
	fs.StringVar(&def.Kind, "dist", DistConstant, "delay distribution: constant or lognormal")
	fs.Float64Var(&def.MedianMs, "median-ms", 1, "constant delay, or median of the lognormal, in ms")
	fs.Float64Var(&def.Sigma, "sigma", 0, "lognormal shape parameter")
	fs.Float64Var(&def.TailP, "tail-p", 0, "probability of the slow tail")
	fs.Float64Var(&def.TailMs, "tail-ms", 0, "extra delay of the slow tail in ms")
	fs.Float64Var(&def.ErrorRate, "error-rate", 0, "probability of answering 500")
	if err := flagargs.Parse(fs, args, "usage of latencysim:"); err != nil {
		return Config{}, err
	}
	cfg := Config{Seed: *seed, Default: def}
	for _, a := range strings.Split(*listen, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return Config{}, fmt.Errorf("--listen: empty address in %q", *listen)
		}
		cfg.Listen = append(cfg.Listen, a)
	}
	if err := def.Validate(); err != nil {
		return Config{}, err
	}
	var err error
	if cfg.Overrides, err = ParseOverrides(*overrides, def); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
