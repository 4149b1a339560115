// The Go counterpart of examples/http_hello.rs for wrk: a minimal hand-written HTTP/1.1
// keep-alive server (not net/http), one goroutine per connection, answering GET / with the
// same bytes. Like the example it parses the request line and headers by hand, skips
// Content-Length bodies, honours "Connection: close" and HTTP/1.0, and closes a connection
// idle for 30 s (a read deadline set per request, as the example does). Responses are
// flushed when no further request is buffered, so pipelined requests share a write.
//
// Usage: http 127.0.0.1:PORT — prints "ready" once listening, runs until killed.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

const idle = 30 * time.Second

func main() {
	addr := "127.0.0.1:8080"
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
			fmt.Fprintln(os.Stderr, "http_go: accept:", err)
			continue
		}
		go serve(c)
	}
}

func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	w := bufio.NewWriterSize(c, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		parts := bytes.Split(bytes.TrimRight(line, "\r\n"), []byte(" "))
		if len(parts) != 3 {
			w.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n")
			w.Flush()
			return
		}
		method, path, version := string(parts[0]), string(parts[1]), string(parts[2])
		var keepAlive bool
		switch version {
		case "HTTP/1.1":
			keepAlive = true
		case "HTTP/1.0":
			keepAlive = false
		default:
			return
		}
		body := 0
		for {
			h, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			h = bytes.TrimRight(h, "\r\n")
			if len(h) == 0 {
				break
			}
			i := bytes.IndexByte(h, ':')
			if i < 0 {
				return
			}
			name, value := string(h[:i]), string(bytes.TrimSpace(h[i+1:]))
			switch {
			case equalFold(name, "content-length"):
				body, err = strconv.Atoi(value)
				if err != nil || body < 0 || body > 1<<20 {
					return
				}
			case equalFold(name, "connection"):
				if equalFold(value, "close") {
					keepAlive = false
				} else if equalFold(value, "keep-alive") {
					keepAlive = true
				}
			}
		}
		if _, err := io.CopyN(io.Discard, r, int64(body)); err != nil {
			return
		}
		status, text := "200 OK", "Hello, World!\n"
		if method != "GET" && method != "HEAD" {
			status, text = "405 Method Not Allowed", "method not allowed\n"
		} else if path != "/" {
			status, text = "404 Not Found", "not found\n"
		}
		w.WriteString("HTTP/1.1 ")
		w.WriteString(status)
		w.WriteString("\r\nContent-Type: text/plain\r\nContent-Length: ")
		w.WriteString(strconv.Itoa(len(text)))
		w.WriteString("\r\n")
		if !keepAlive {
			w.WriteString("Connection: close\r\n")
		}
		w.WriteString("\r\n")
		if method != "HEAD" {
			w.WriteString(text)
		}
		if r.Buffered() == 0 || !keepAlive {
			if w.Flush() != nil {
				return
			}
		}
		if !keepAlive {
			return
		}
	}
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }
