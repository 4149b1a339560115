// Channel and lock benchmarks for Go. See docs/benchmarks.md, section 3.
//
// Usage: sync BENCH N [--contenders K]
//
//	pingpong   round trip between two goroutines over two unbuffered channels (ns/rt)
//	chan1      one producer sends N ints through a channel of capacity 128 to one consumer (ns/msg)
//	chan4      four producers send N/4 each through one channel of capacity 128 (ns/msg)
//	select4    four producers send N/4 each on their own unbuffered channel; one consumer
//	           receives all N with a select over the four (ns/msg)
//	mutex      one goroutine locks and unlocks a sync.Mutex N times (ns/op)
//	mutexK     K goroutines (--contenders) lock, bump a counter, unlock; N in total (ns/op)
//
// The worker count is GOMAXPROCS, set by run.sh. Prints one line "RESULT key=value ...",
// the same keys as the Rust contenders.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// Capacity of the buffered channel in chan1/chan4, the same in every contender.
const capacity = 128

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: sync pingpong|chan1|chan4|select4|mutex|mutexK N [--contenders K]")
		os.Exit(2)
	}
	bench := os.Args[1]
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		panic(err)
	}
	// The flag package stops at the first positional argument, so parse what follows them.
	contenders := flag.Int("contenders", 4, "mutexK: goroutines contending for the lock")
	flag.Int("workers", 1, "ignored: Go's worker count is GOMAXPROCS")
	if err := flag.CommandLine.Parse(os.Args[3:]); err != nil {
		os.Exit(2)
	}
	switch bench {
	case "pingpong":
		pingpong(n)
	case "chan1":
		buffered(n, 1)
	case "chan4":
		buffered(n, 4)
	case "select4":
		select4(n)
	case "mutex":
		mutex(n)
	case "mutexK":
		mutexContended(n, *contenders)
	default:
		panic("unknown benchmark " + bench)
	}
}

func report(key string, elapsed time.Duration, n int) {
	fmt.Printf("RESULT %s=%.3f _n=%d\n", key, float64(elapsed.Nanoseconds())/float64(n), n)
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
	report("ns/rt", time.Since(start), n)
	close(ping)
}

// buffered: p producers send n values in total through one channel of capacity 128; the
// main goroutine receives them all.
func buffered(n, p int) {
	ch := make(chan int, capacity)
	per := n / p
	start := time.Now()
	for j := 0; j < p; j++ {
		go func() {
			for i := 0; i < per; i++ {
				ch <- i
			}
		}()
	}
	sum := 0
	for i := 0; i < per*p; i++ {
		sum += <-ch
	}
	report("ns/msg", time.Since(start), per*p)
	if sum != p*per*(per-1)/2 {
		panic("buffered: wrong sum")
	}
}

// select4: four producers, each on its own unbuffered channel; the main goroutine takes
// all values with a select over the four.
func select4(n int) {
	var chs [4]chan int
	for j := range chs {
		chs[j] = make(chan int)
	}
	per := n / 4
	start := time.Now()
	for j := range chs {
		ch := chs[j]
		go func() {
			for i := 0; i < per; i++ {
				ch <- i
			}
		}()
	}
	sum := 0
	for i := 0; i < 4*per; i++ {
		select {
		case v := <-chs[0]:
			sum += v
		case v := <-chs[1]:
			sum += v
		case v := <-chs[2]:
			sum += v
		case v := <-chs[3]:
			sum += v
		}
	}
	report("ns/msg", time.Since(start), 4*per)
	if sum != 4*per*(per-1)/2 {
		panic("select4: wrong sum")
	}
}

// mutex: lock and unlock with nobody else around.
func mutex(n int) {
	var mu sync.Mutex
	counter := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		mu.Lock()
		counter++
		mu.Unlock()
	}
	report("ns/op", time.Since(start), n)
	if counter != n {
		panic("mutex: wrong count")
	}
}

// mutexContended: k goroutines share n lock/bump/unlock rounds.
func mutexContended(n, k int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter := 0
	per := n / k
	start := time.Now()
	for j := 0; j < k; j++ {
		wg.Add(1)
		go func() {
			for i := 0; i < per; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	report("ns/op", time.Since(start), per*k)
	if counter != per*k {
		panic("mutexK: wrong count")
	}
}
