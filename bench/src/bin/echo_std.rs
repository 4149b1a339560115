//! Echo server, one OS thread per connection (std::net, blocking I/O).
//!
//! Usage: echo_std 127.0.0.1:PORT — prints `ready` once listening, runs until killed.

use coronet_bench::sys::full_backlog;
use coronet_bench::{ready, server_addr, ECHO_BUF};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

fn main() {
    let listener = TcpListener::bind(server_addr()).expect("bind");
    full_backlog(listener.as_raw_fd());
    ready();
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                if let Err(e) = std::thread::Builder::new().spawn(move || echo(conn)) {
                    eprintln!("echo_std: cannot spawn a thread: {e}");
                }
            }
            Err(e) => eprintln!("echo_std: accept: {e}"),
        }
    }
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
