// Go's side of test/benchmark-loops.c, on goroutines with GOMAXPROCS the
// cores (Go's default):
//
//	bench-go-loops mixed COUNT MS CPU_US
//	    COUNT goroutines at once, each sleeps MS ms, then computes CPU_US
//	    microseconds of its thread's own CPU time (as iob_kind_mixed does:
//	    the same spin on CLOCK_THREAD_CPUTIME_ID).
//	bench-go-loops tcp HOST:PORT COUNT MS
//	    COUNT requests at once to iobound-slow-service, a connection
//	    each: send "wait MS\n", expect "done MS\n".
//
// Prints one line for benchmark-loops, from the first operation to the
// last one's end:
//
//	result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

func cpuMs() (user, sys float64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()) / 1e6, float64(ru.Stime.Nano()) / 1e6
}

// The calling thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID is 3).
func threadCPUNs() int64 {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 3,
		uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

var sink uint32

func compute(us int64) {
	end := threadCPUNs() + us*1000
	x := uint32(1)
	for threadCPUNs() < end {
		for k := 0; k < 1024; k++ {
			x = x*1664525 + 1013904223
		}
	}
	atomic.AddUint32(&sink, x)
}

func number(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		fmt.Fprintln(os.Stderr, "bench-go-loops: not a number:", s)
		os.Exit(2)
	}
	return n
}

func main() {
	if len(os.Args) != 5 || (os.Args[1] != "mixed" && os.Args[1] != "tcp") {
		fmt.Fprintln(os.Stderr,
			"usage: bench-go-loops mixed COUNT MS CPU_US | tcp HOST:PORT COUNT MS")
		os.Exit(2)
	}
	var ok, failed int64
	var firstErr atomic.Value
	fail := func(err string) {
		atomic.AddInt64(&failed, 1)
		firstErr.CompareAndSwap(nil, err)
	}
	var wg sync.WaitGroup
	u0, s0 := cpuMs()
	t0 := time.Now()
	if os.Args[1] == "mixed" {
		count, ms, cpuUs := number(os.Args[2]), number(os.Args[3]), number(os.Args[4])
		wg.Add(count)
		for i := 0; i < count; i++ {
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(ms) * time.Millisecond)
				compute(int64(cpuUs))
				atomic.AddInt64(&ok, 1)
			}()
		}
	} else {
		addr, count, ms := os.Args[2], number(os.Args[3]), os.Args[4]
		request, expected := "wait "+ms+"\n", "done "+ms+"\n"
		wg.Add(count)
		for i := 0; i < count; i++ {
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					fail(err.Error())
					return
				}
				defer c.Close()
				if _, err = c.Write([]byte(request)); err != nil {
					fail(err.Error())
					return
				}
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil || line != expected {
					fail(fmt.Sprintf("answer %q, %v", line, err))
					return
				}
				atomic.AddInt64(&ok, 1)
			}()
		}
	}
	wg.Wait()
	wall := float64(time.Since(t0).Nanoseconds()) / 1e6
	u1, s1 := cpuMs()
	first := "-"
	if e := firstErr.Load(); e != nil {
		first = e.(string)
	}
	fmt.Printf("result %.1f %.1f %.1f %.1f %d %d %s\n", wall, u1-u0+s1-s0,
		u1-u0, s1-s0, ok, failed, first)
}
