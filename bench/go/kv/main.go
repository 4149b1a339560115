// The Go counterpart of examples/kv.rs for redis-benchmark: a Redis-protocol server with
// PING, GET and SET (plus empty answers to CONFIG and COMMAND, which redis-benchmark and
// redis-cli send first). One goroutine per connection reading through a bufio.Reader;
// answers go into a bufio.Writer that is flushed when no further request is buffered, so
// pipelined commands are answered in one write, as in the Rust servers. RESP arrays and
// inline commands both work.
//
// Usage: kv 127.0.0.1:PORT — prints "ready" once listening, runs until killed.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
)

const (
	shards  = 64 // as in the example: workers rarely contend
	maxBulk = 64 << 20
)

type shard struct {
	mu sync.Mutex
	m  map[string][]byte
}

var store [shards]shard

func shardOf(key []byte) *shard {
	h := fnv.New64a()
	h.Write(key)
	return &store[h.Sum64()%shards]
}

func main() {
	addr := "127.0.0.1:6380"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	for i := range store {
		store[i].m = make(map[string][]byte)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "kv_go: accept:", err)
			continue
		}
		go serve(c)
	}
}

var errProto = errors.New("protocol error")

func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 16<<10)
	w := bufio.NewWriterSize(c, 16<<10)
	for {
		args, err := readCommand(r)
		if err == errProto {
			w.WriteString("-ERR Protocol error\r\n")
			w.Flush()
			return
		}
		if err != nil {
			return
		}
		execute(args, w)
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// readLine returns one line without its CRLF.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errProto
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func readCommand(r *bufio.Reader) ([][]byte, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 || line[0] != '*' {
		// Inline: words separated by spaces. Copied: the next read reuses the buffer.
		return bytes.Fields(append([]byte(nil), line...)), nil
	}
	n, err := strconv.Atoi(string(line[1:]))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, errProto
	}
	args := make([][]byte, n)
	for i := range args {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		if len(line) == 0 || line[0] != '$' {
			return nil, errProto
		}
		size, err := strconv.Atoi(string(line[1:]))
		if err != nil || size < 0 || size > maxBulk {
			return nil, errProto
		}
		arg := make([]byte, size+2)
		if _, err := io.ReadFull(r, arg); err != nil {
			return nil, err
		}
		if arg[size] != '\r' || arg[size+1] != '\n' {
			return nil, errProto
		}
		args[i] = arg[:size]
	}
	return args, nil
}

func execute(args [][]byte, w *bufio.Writer) {
	if len(args) == 0 {
		return
	}
	switch cmd := string(bytes.ToLower(args[0])); {
	case cmd == "ping" && len(args) == 1:
		w.WriteString("+PONG\r\n")
	case cmd == "ping" && len(args) == 2:
		bulk(w, args[1])
	case cmd == "get" && len(args) == 2:
		s := shardOf(args[1])
		s.mu.Lock()
		v, ok := s.m[string(args[1])]
		s.mu.Unlock()
		if ok {
			bulk(w, v)
		} else {
			w.WriteString("$-1\r\n")
		}
	case cmd == "set" && len(args) == 3:
		s := shardOf(args[1])
		s.mu.Lock()
		s.m[string(args[1])] = args[2]
		s.mu.Unlock()
		w.WriteString("+OK\r\n")
	case cmd == "config" || cmd == "command":
		w.WriteString("*0\r\n")
	default:
		fmt.Fprintf(w, "-ERR unknown command or wrong number of arguments for '%s'\r\n", args[0])
	}
}

func bulk(w *bufio.Writer, v []byte) {
	w.WriteByte('$')
	w.WriteString(strconv.Itoa(len(v)))
	w.WriteString("\r\n")
	w.Write(v)
	w.WriteString("\r\n")
}
