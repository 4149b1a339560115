//! Echo server on coronet with one worker, one coroutine per connection — the same code as
//! `echo_std` with `std::net` replaced by `coronet::net` and `thread::spawn` by `coronet::go`,
//! the runtime started on the main thread (`Builder::main`).
//!
//! Usage: echo_coronet 127.0.0.1:PORT [WORKERS] — prints `ready` once listening, runs until killed.

use coronet::net::{TcpListener, TcpStream};
use coronet_bench::{ready, server_addr, server_workers, ECHO_BUF};
use std::io::{Read, Write};

fn main() {
    // The calling thread is the worker: with one worker the process has one thread, as the
    // epoll loop and tokio's current_thread server have (Builder::main says why it counts).
    let err = coronet::Builder::new()
        .workers(server_workers())
        .main(|| {
            let listener = TcpListener::bind(server_addr()).expect("bind");
            ready();
            for conn in listener.incoming() {
                match conn {
                    Ok(conn) => drop(coronet::go(move || echo(conn))),
                    Err(e) => eprintln!("echo_coronet: accept: {e}"),
                }
            }
        })
        .unwrap_err();
    panic!("coronet runtime: {err}");
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
