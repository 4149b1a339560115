// Runtime-core benchmarks for Go; run with GOMAXPROCS=1. See docs/benchmarks.md.
//
// Usage: rt spawn N | batch N | pingpong N | idle N [--sleep SECS]
// (flags follow the positional arguments, as for the Rust contenders).
//
// Prints one line "RESULT key=value ...", the same keys as the Rust contenders.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const batch = 1000

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: rt spawn|batch|pingpong|idle N [--sleep SECS]")
		os.Exit(2)
	}
	bench := os.Args[1]
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		panic(err)
	}
	// The flag package stops at the first positional argument, so parse what follows them.
	sleep := flag.Float64("sleep", 10, "idle: seconds each goroutine sleeps")
	if err := flag.CommandLine.Parse(os.Args[3:]); err != nil {
		os.Exit(2)
	}
	switch bench {
	case "spawn":
		spawnJoin(n)
	case "batch":
		spawnBatch(n)
	case "pingpong":
		pingpong(n)
	case "idle":
		idle(n, time.Duration(*sleep*float64(time.Second)))
	default:
		panic("unknown benchmark " + bench)
	}
	// Parked goroutines are not worth waiting for.
	os.Exit(0)
}

// spawnJoin starts one empty goroutine and waits for it (a WaitGroup per op), n times.
func spawnJoin(n int) {
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
	ns := float64(time.Since(start).Nanoseconds())
	fmt.Printf("RESULT ns/op=%.3f _ops=%d\n", ns/float64(n), n)
}

// spawnBatch starts 1000 empty goroutines, then waits for all of them; until n ran.
func spawnBatch(n int) {
	rounds := (n + batch - 1) / batch
	var wg sync.WaitGroup
	start := time.Now()
	for r := 0; r < rounds; r++ {
		wg.Add(batch)
		for i := 0; i < batch; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	ns := float64(time.Since(start).Nanoseconds())
	fmt.Printf("RESULT ns/op=%.3f _ops=%d\n", ns/float64(rounds*batch), rounds*batch)
}

// pingpong passes a token between two goroutines over two unbuffered channels.
func pingpong(n int) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if <-pong != i {
			panic("pingpong: wrong value")
		}
	}
	ns := float64(time.Since(start).Nanoseconds())
	close(ping)
	fmt.Printf("RESULT ns/rt=%.3f _rts=%d\n", ns/float64(n), n)
}

// idle parks n goroutines in time.Sleep and reports the memory they take.
func idle(n int, sleep time.Duration) {
	before := rssKiB()
	var parked int64
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&parked, 1)
			time.Sleep(sleep)
		}()
	}
	for atomic.LoadInt64(&parked) < int64(n) {
		time.Sleep(time.Millisecond)
	}
	spawnS := time.Since(start).Seconds()
	after := rssKiB()
	fmt.Printf("RESULT bytes/each=%.3f _n=%d _rss_before_MiB=%.3f _rss_after_MiB=%.3f setup_s=%.3f\n",
		float64((after-before)*1024)/float64(n), n, float64(before)/1024, float64(after)/1024, spawnS)
}

// rssKiB reads VmRSS from /proc/self/status.
func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := s.Text(); strings.HasPrefix(line, "VmRSS:") {
			rest := strings.TrimPrefix(line, "VmRSS:")
			v, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				panic(err)
			}
			return v
		}
	}
	panic("no VmRSS in /proc/self/status")
}
