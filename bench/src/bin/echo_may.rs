//! Echo server on may (one worker unless told otherwise), one coroutine per connection.
//!
//! Usage: echo_may 127.0.0.1:PORT [WORKERS] — prints `ready` once listening, runs until killed.

use coronet_bench::sys::full_backlog;
use coronet_bench::{ready, server_addr, server_workers, ECHO_BUF};
use may::go;
use may::net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

fn main() {
    // No core pinning of its own: run.sh pins the whole process with taskset.
    may::config()
        .set_workers(server_workers())
        .set_worker_pin(false);
    go!(|| {
        let listener = TcpListener::bind(server_addr()).expect("bind");
        full_backlog(listener.as_raw_fd());
        ready();
        for conn in listener.incoming() {
            match conn {
                Ok(conn) => drop(go!(move || echo(conn))),
                Err(e) => eprintln!("echo_may: accept: {e}"),
            }
        }
    })
    .join()
    .unwrap();
}

fn echo(mut conn: TcpStream) {
    conn.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
