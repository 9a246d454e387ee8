// Go's side of test/benchmark-file.c: COUNT files written at once, a
// goroutine each, with GOMAXPROCS the cores (Go's default): each file of
// its own in DIR (f0, f1...), KIB KiB of one shared buffer, created (or
// truncated), written, fsync'ed when FSYNC is 1, and closed. Go's runtime
// makes each blocking call on a thread it takes off the scheduler (and
// starts more as they block).
//
//	bench-go-files DIR COUNT KIB FSYNC
//
// Prints one line, from the first goroutine started to the last one done:
//
//	result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func cpuMs() (user, sys float64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()) / 1e6, float64(ru.Stime.Nano()) / 1e6
}

func write(name string, buf []byte, sync bool) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0666)
	if err != nil {
		return err
	}
	_, err = f.Write(buf)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: bench-go-files DIR COUNT KIB FSYNC")
		os.Exit(64)
	}
	dir := os.Args[1]
	count, _ := strconv.Atoi(os.Args[2])
	kib, _ := strconv.Atoi(os.Args[3])
	doSync := os.Args[4] == "1"
	buf := make([]byte, kib*1024)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	var ok, failed int64
	var first atomic.Value
	var wg sync.WaitGroup
	u0, s0 := cpuMs()
	t0 := time.Now()
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := write(filepath.Join(dir, "f"+strconv.Itoa(i)), buf, doSync)
			if err != nil {
				atomic.AddInt64(&failed, 1)
				first.CompareAndSwap(nil, err.Error())
			} else {
				atomic.AddInt64(&ok, 1)
			}
		}(i)
	}
	wg.Wait()
	wall := float64(time.Since(t0).Nanoseconds()) / 1e6
	u1, s1 := cpuMs()
	words := "-"
	if e, _ := first.Load().(string); e != "" {
		words = strings.Join(strings.Fields(e), " ")
	}
	fmt.Printf("result %.3f %.3f %.3f %.3f %d %d %s\n", wall, u1-u0+s1-s0,
		u1-u0, s1-s0, ok, failed, words)
	if failed != 0 {
		os.Exit(1)
	}
}
