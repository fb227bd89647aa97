package workerpool

import (
	"context"
	"fmt"
	"sync"
)

// Task is one kernel call: Size matters only to hash.
type Task struct {
	Kernel string
	Seed   uint64
	Rounds int
	Size   int
}

// Do runs t's kernel. It assumes Check has accepted t.
func (t Task) Do() string {
	if t.Kernel == "hash" {
		return Hash(t.Seed, t.Rounds, t.Size)
	}
	return Spin(t.Seed, t.Rounds)
}

// Run runs tasks on a bounded pool of workers goroutines fed from a channel,
// Go's counterpart of the Python executors, and returns their outputs in task
// order. Every task is checked before any runs. When ctx is done no further
// task starts (one already running finishes, since the kernels do not poll)
// and Run returns ctx.Err().
func Run(ctx context.Context, workers int, tasks []Task) ([]string, error) {
	return run(ctx, workers, tasks, Task.Do)
}

// run is Run with the work function a parameter, so that tests can observe
// how many workers run at once.
func run(ctx context.Context, workers int, tasks []Task, do func(Task) string) ([]string, error) {
	if workers < 1 {
		return nil, fmt.Errorf("workers: %d is less than 1", workers)
	}
	for i, t := range tasks {
		if err := Check(t.Kernel, t.Rounds, t.Size); err != nil {
			return nil, fmt.Errorf("task %d: %w", i, err)
		}
	}
	out := make([]string, len(tasks))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(tasks)) {
		wg.Go(func() {
			for i := range jobs {
				out[i] = do(tasks[i]) // each index is written by one worker only
			}
		})
	}
feed:
	for i := range tasks {
		if ctx.Err() != nil { // select picks at random when a worker is also ready
			break
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
