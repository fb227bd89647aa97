package workerpool

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func mixedTasks(n int) []Task {
	tasks := make([]Task, n)
	for i := range tasks {
		if i%3 == 0 {
			tasks[i] = Task{Kernel: "hash", Seed: uint64(i), Rounds: 2, Size: 64}
		} else {
			tasks[i] = Task{Kernel: "spin", Seed: uint64(i), Rounds: 1000 * (i % 7)}
		}
	}
	return tasks
}

func TestRunOrder(t *testing.T) {
	tasks := mixedTasks(50)
	for _, workers := range []int{1, 2, 4, 100} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			got, err := Run(context.Background(), workers, tasks)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tasks) {
				t.Fatalf("%d results for %d tasks", len(got), len(tasks))
			}
			for i, task := range tasks {
				if want := task.Do(); got[i] != want {
					t.Errorf("result %d = %q, want %q", i, got[i], want)
				}
			}
		})
	}
}

func TestRunEmpty(t *testing.T) {
	got, err := Run(context.Background(), 3, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Run(nil) = %v, %v; want no results, nil", got, err)
	}
}

func TestRunWorkerBound(t *testing.T) {
	tests := []struct{ workers, tasks, wantMax int }{
		{1, 20, 1},
		{3, 30, 3},
		{8, 4, 4}, // never more workers than tasks
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("workers=%d/tasks=%d", tt.workers, tt.tasks), func(t *testing.T) {
			var running, peak atomic.Int64
			do := func(task Task) string {
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(2 * time.Millisecond) // long enough for the others to start
				running.Add(-1)
				return task.Do()
			}
			if _, err := run(context.Background(), tt.workers, mixedTasks(tt.tasks), do); err != nil {
				t.Fatal(err)
			}
			if got := peak.Load(); got != int64(tt.wantMax) {
				t.Errorf("at most %d tasks ran at once, want %d", got, tt.wantMax)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var ran atomic.Int64
		do := func(task Task) string { ran.Add(1); return task.Do() }
		got, err := run(ctx, 2, mixedTasks(100), do)
		if !errors.Is(err, context.Canceled) || got != nil {
			t.Errorf("got %v, %v; want nil, context.Canceled", got, err)
		}
		if n := ran.Load(); n != 0 {
			t.Errorf("%d tasks ran after cancellation", n)
		}
	})
	t.Run("during", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var ran atomic.Int64
		do := func(task Task) string {
			if ran.Add(1) == 5 {
				cancel()
			}
			return task.Do()
		}
		got, err := run(ctx, 2, mixedTasks(1000), do)
		if !errors.Is(err, context.Canceled) || got != nil {
			t.Errorf("got %v, %v; want nil, context.Canceled", got, err)
		}
		if n := ran.Load(); n > 5+2 {
			t.Errorf("%d tasks ran; want at most those started before cancellation", n)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		tasks := make([]Task, 10_000)
		for i := range tasks {
			tasks[i] = Task{Kernel: "spin", Seed: uint64(i), Rounds: 100_000}
		}
		start := time.Now()
		_, err := Run(ctx, 2, tasks)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("Run returned after %v, long after its deadline", elapsed)
		}
	})
}

func TestRunRejects(t *testing.T) {
	tests := []struct {
		workers     int
		tasks       []Task
		errContains string
	}{
		{0, mixedTasks(3), "workers:"},
		{-1, nil, "workers:"},
		{2, []Task{{Kernel: "spin"}, {Kernel: "sleep"}}, "task 1: kernel:"},
		{2, []Task{{Kernel: "hash", Rounds: 1, Size: 7}}, "task 0: size:"},
	}
	for _, tt := range tests {
		var ran atomic.Int64
		do := func(task Task) string { ran.Add(1); return task.Do() }
		got, err := run(context.Background(), tt.workers, tt.tasks, do)
		if err == nil || !strings.HasPrefix(err.Error(), tt.errContains) || got != nil {
			t.Errorf("run(%d, %v) = %v, %v; want an error starting %q", tt.workers, tt.tasks, got, err, tt.errContains)
		}
		if ran.Load() != 0 {
			t.Errorf("run(%d, %v) ran tasks before rejecting them", tt.workers, tt.tasks)
		}
	}
}

var (
	benchCases = flag.String("workerpool.cases", "",
		"BenchmarkPool cases, kernel:rounds:size:tasks separated by commas (default: ~0.1, 1 and 10 ms spin, 1 MiB hash)")
	benchWorkers = flag.String("workerpool.workers", "",
		"BenchmarkPool worker counts separated by commas (default: 1, 2 and NumCPU)")
)

type benchCase struct {
	task  Task
	tasks int
}

// parseBenchFlags reads -workerpool.cases and -workerpool.workers, which the
// harness (bench/studies/pools_go.py) sets to its calibrated task sizes.
func parseBenchFlags() ([]benchCase, []int, error) {
	cases := []benchCase{ // ~1.6 ns per spin round
		{Task{Kernel: "spin", Rounds: 60_000}, 256},
		{Task{Kernel: "spin", Rounds: 600_000}, 64},
		{Task{Kernel: "spin", Rounds: 6_000_000}, 16},
		{Task{Kernel: "hash", Rounds: 1, Size: 1 << 20}, 64},
	}
	if *benchCases != "" {
		cases = nil
		for _, text := range strings.Split(*benchCases, ",") {
			var c benchCase
			fields := strings.Split(text, ":")
			if len(fields) != 4 {
				return nil, nil, fmt.Errorf("-workerpool.cases: %q is not kernel:rounds:size:tasks", text)
			}
			c.task.Kernel = fields[0]
			for i, dst := range []*int{&c.task.Rounds, &c.task.Size, &c.tasks} {
				n, err := strconv.Atoi(fields[i+1])
				if err != nil {
					return nil, nil, fmt.Errorf("-workerpool.cases: %q: %w", text, err)
				}
				*dst = n
			}
			if err := Check(c.task.Kernel, c.task.Rounds, c.task.Size); err != nil || c.tasks < 1 {
				return nil, nil, fmt.Errorf("-workerpool.cases: %q: invalid task (%v) or tasks < 1", text, err)
			}
			cases = append(cases, c)
		}
	}
	workers := []int{1, 2}
	if n := runtime.NumCPU(); n > 2 {
		workers = append(workers, n)
	}
	if *benchWorkers != "" {
		workers = nil
		for _, text := range strings.Split(*benchWorkers, ",") {
			n, err := strconv.Atoi(text)
			if err != nil || n < 1 {
				return nil, nil, fmt.Errorf("-workerpool.workers: %q is not a positive integer", text)
			}
			workers = append(workers, n)
		}
	}
	return cases, workers, nil
}

// BenchmarkPool runs batches of identical-cost tasks on each worker count and
// reports tasks/s. Sub-benchmarks are named
// kernel=K/rounds=R/size=S/tasks=T/workers=W, which bench/studies/pools_go.py parses.
func BenchmarkPool(b *testing.B) {
	cases, workerCounts, err := parseBenchFlags()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range cases {
		tasks := make([]Task, c.tasks)
		for i := range tasks {
			tasks[i] = c.task
			tasks[i].Seed = uint64(i)
		}
		for _, w := range workerCounts {
			name := fmt.Sprintf("kernel=%s/rounds=%d/size=%d/tasks=%d/workers=%d",
				c.task.Kernel, c.task.Rounds, c.task.Size, c.tasks, w)
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					if _, err := Run(context.Background(), w, tasks); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*len(tasks))/b.Elapsed().Seconds(), "tasks/s")
			})
		}
	}
}
