//! Echo server on tokio, one task per connection: the `current_thread` runtime with one
//! worker, the multi-thread runtime with more.
//!
//! Usage: echo_tokio 127.0.0.1:PORT [WORKERS] — prints `ready` once listening, runs until killed.

use coronet_bench::sys::full_backlog;
use coronet_bench::{ready, server_addr, server_workers, ECHO_BUF};
use std::os::fd::AsRawFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let rt = match server_workers() {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    }
    .enable_all()
    .build()
    .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind(server_addr()).await.expect("bind");
        full_backlog(listener.as_raw_fd());
        ready();
        loop {
            match listener.accept().await {
                Ok((conn, _)) => drop(tokio::spawn(echo(conn))),
                Err(e) => eprintln!("echo_tokio: accept: {e}"),
            }
        }
    });
}

async fn echo(mut conn: TcpStream) {
    conn.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
