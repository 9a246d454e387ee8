// Go's side of test/benchmark-http.c: COUNT GET requests to URL at once,
// a goroutine each, on one net/http Transport that keeps COUNT idle
// connections per host. Every answer must be 200 with the body
// "done MS\n" (MS from the URL's /wait/MS). Go raises its soft limit on
// open files to the hard limit by itself (Go 1.19 and later).
//
//	go run test/bench-go-http.go URL [COUNT]   (default 10000)
//
// Prints one line for benchmark-http, from the first request to the last
// answer read:
//
//	result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
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

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench-go-http URL [COUNT]")
		os.Exit(2)
	}
	url := os.Args[1]
	count := 10000
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n <= 0 {
			fmt.Fprintln(os.Stderr, "usage: bench-go-http URL [COUNT]")
			os.Exit(2)
		}
		count = n
	}
	ms := ""
	if m := regexp.MustCompile(`/wait/(\d+)`).FindStringSubmatch(url); m != nil {
		ms = m[1]
	}
	expected := "done " + ms + "\n"

	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        count,
		MaxIdleConnsPerHost: count,
	}}
	var ok, failed int64
	var firstErr atomic.Value
	fail := func(what string) {
		atomic.AddInt64(&failed, 1)
		firstErr.CompareAndSwap(nil, strings.Join(strings.Fields(what), " "))
	}

	u0, s0 := cpuMs()
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(count)
	for i := 0; i < count; i++ {
		go func() {
			defer wg.Done()
			res, err := client.Get(url)
			if err != nil {
				fail(err.Error())
				return
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				fail(err.Error())
			} else if res.StatusCode != 200 || string(body) != expected {
				fail(fmt.Sprintf("HTTP %d, body %q", res.StatusCode, body))
			} else {
				atomic.AddInt64(&ok, 1)
			}
		}()
	}
	wg.Wait()
	wall := float64(time.Since(t0).Nanoseconds()) / 1e6
	u1, s1 := cpuMs()
	first := "-"
	if e, isString := firstErr.Load().(string); isString {
		first = e
	}
	fmt.Printf("result %.3f %.3f %.3f %.3f %d %d %s\n", wall,
		(u1-u0)+(s1-s0), u1-u0, s1-s0, ok, failed, first)
}
