// Echo server in Go, one goroutine per connection; run with GOMAXPROCS=1.
//
// Usage: echo 127.0.0.1:PORT — prints "ready" once listening, runs until killed.
// Go sets TCP_NODELAY on every connection by default, as the Rust servers do by hand.
package main

import (
	"fmt"
	"net"
	"os"
)

const bufSize = 32 << 10 // the same as io.Copy's buffer and the Rust servers'

func main() {
	addr := "127.0.0.1:7000"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo_go: accept:", err)
			continue
		}
		go echo(c)
	}
}

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}
