//! Echo server on tokio's `current_thread` runtime, one task per connection.
//!
//! Usage: echo_tokio 127.0.0.1:PORT — prints `ready` once listening, runs until killed.

use coronet_bench::{ready, server_addr, ECHO_BUF};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind(server_addr()).await.expect("bind");
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
