// Go's side of test/benchmark-submit.c: work submitted one at a time to a
// group that runs it, on goroutines with GOMAXPROCS the cores (Go's
// default). The group is errgroup's core (not in the standard library,
// and there is no network to fetch it): a WaitGroup and the first error.
//
//	bench-go-submit spawn COUNT MS
//	    COUNT goroutines, started one by one, each sleeps MS ms; then
//	    wait for the group.
//	bench-go-submit chain COUNT
//	    a chain of COUNT goroutines: each yields once (runtime.Gosched)
//	    and then starts the next, in the same group; wait for the group.
//
// Prints one line for benchmark-submit, from the first goroutine started
// to the group's end:
//
//	result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-
//
// and, when IOB_BENCH_SETUP_FD names a file descriptor, "setup MS" there:
// the time the loop that starts the goroutines took.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// group: errgroup.Group without its context.
type group struct {
	wg   sync.WaitGroup
	once sync.Once
	err  error
}

func (g *group) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.once.Do(func() { g.err = err })
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	return g.err
}

func cpuMs() (user, sys float64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()) / 1e6, float64(ru.Stime.Nano()) / 1e6
}

func number(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		fmt.Fprintln(os.Stderr, "bench-go-submit: not a number:", s)
		os.Exit(2)
	}
	return n
}

var ok int64

func link(g *group, i, n int) func() error {
	return func() error {
		runtime.Gosched()
		atomic.AddInt64(&ok, 1)
		if i+1 < n {
			g.Go(link(g, i+1, n))
		}
		return nil
	}
}

func main() {
	spawn := len(os.Args) == 4 && os.Args[1] == "spawn"
	if !spawn && !(len(os.Args) == 3 && os.Args[1] == "chain") {
		fmt.Fprintln(os.Stderr,
			"usage: bench-go-submit spawn COUNT MS | chain COUNT")
		os.Exit(2)
	}
	count := number(os.Args[2])
	var g group
	u0, s0 := cpuMs()
	t0 := time.Now()
	if spawn {
		d := time.Duration(number(os.Args[3])) * time.Millisecond
		for i := 0; i < count; i++ {
			g.Go(func() error {
				time.Sleep(d)
				atomic.AddInt64(&ok, 1)
				return nil
			})
		}
	} else if count > 0 {
		g.Go(link(&g, 0, count))
	}
	setup := float64(time.Since(t0).Nanoseconds()) / 1e6
	err := g.Wait()
	wall := float64(time.Since(t0).Nanoseconds()) / 1e6
	u1, s1 := cpuMs()
	first, failed := "-", count-int(ok)
	if err != nil {
		first = err.Error()
	}
	fmt.Printf("result %.1f %.1f %.1f %.1f %d %d %s\n", wall, u1-u0+s1-s0,
		u1-u0, s1-s0, ok, failed, first)
	if fd, e := strconv.Atoi(os.Getenv("IOB_BENCH_SETUP_FD")); e == nil {
		syscall.Write(fd, []byte(fmt.Sprintf("setup %.1f\n", setup)))
	}
}
