//! The tokio counterpart of `examples/http_hello.rs` for `wrk`: a minimal HTTP/1.1
//! keep-alive server, one task per connection, answering `GET /` with the same bytes
//! (`Hello, World!\n`, `Content-Type: text/plain`). Like the example it parses the request
//! line and headers by hand, skips `Content-Length` bodies, honours `Connection: close` and
//! HTTP/1.0, and closes a connection idle for 30 s (here a `tokio::time::timeout` per read,
//! where the example sets a read deadline per request).
//!
//! Usage: http_tokio 127.0.0.1:PORT [WORKERS] — prints `ready` once listening, runs until killed.

use coronet_bench::sys::full_backlog;
use coronet_bench::{ready, server_addr, server_workers};
use std::os::fd::AsRawFd;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 16 << 10;
const IDLE: Duration = Duration::from_secs(30);

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
                Ok((conn, _)) => drop(tokio::spawn(serve(conn))),
                Err(e) => eprintln!("http_tokio: accept: {e}"),
            }
        }
    });
}

enum Route {
    Hello,
    NotFound,
    BadMethod,
}

/// A parsed request head: does the client keep the connection, how long is its body.
struct Head {
    route: Route,
    head_only: bool,
    keep_alive: bool,
    body: usize,
}

async fn serve(mut conn: TcpStream) {
    conn.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut have = 0;
    let mut out = Vec::with_capacity(256);
    loop {
        let (head, len) = loop {
            if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                match parse(&buf[..end]) {
                    Some(h) => break (h, end + 4),
                    None => {
                        let _ = conn
                            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n")
                            .await;
                        return;
                    }
                }
            }
            if have > MAX_HEAD {
                return;
            }
            if have == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            match tokio::time::timeout(IDLE, conn.read(&mut buf[have..])).await {
                Ok(Ok(n)) if n > 0 => have += n,
                _ => return,
            }
        };
        // Skip the body: what is buffered, then the rest from the socket.
        let buffered = (have - len).min(head.body);
        let mut body_left = head.body - buffered;
        buf.copy_within(len + buffered..have, 0);
        have -= len + buffered;
        while body_left > 0 {
            let want = body_left.min(buf.len());
            match conn.read(&mut buf[..want]).await {
                Ok(n) if n > 0 => body_left -= n,
                _ => return,
            }
        }
        let (status, body): (&str, &[u8]) = match head.route {
            Route::Hello => ("200 OK", b"Hello, World!\n"),
            Route::NotFound => ("404 Not Found", b"not found\n"),
            Route::BadMethod => ("405 Method Not Allowed", b"method not allowed\n"),
        };
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        if !head.keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head.head_only {
            out.extend_from_slice(body);
        }
        if conn.write_all(&out).await.is_err() || !head.keep_alive {
            return;
        }
    }
}

/// Parses the head (without its final blank line); `None` for anything malformed.
fn parse(head: &[u8]) -> Option<Head> {
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path, version) = (first.next()?, first.next()?, first.next()?);
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return None,
    };
    let mut body = 0;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body = value.parse().ok().filter(|n| *n <= 1 << 20)?;
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        }
    }
    Some(Head {
        route: match (method, path) {
            ("GET" | "HEAD", "/") => Route::Hello,
            ("GET" | "HEAD", _) => Route::NotFound,
            _ => Route::BadMethod,
        },
        head_only: method == "HEAD",
        keep_alive,
        body,
    })
}
