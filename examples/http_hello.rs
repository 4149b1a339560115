//! An HTTP/1.1 keep-alive "hello" server: one coroutine per connection, plain blocking code.
//!
//! ```text
//! cargo run --release --example http_hello                 # serve on 127.0.0.1:8080
//! cargo run --release --example http_hello -- 0.0.0.0:9000
//! curl -v http://127.0.0.1:8080/
//! wrk -t2 -c100 -d10s http://127.0.0.1:8080/
//! ```
//!
//! The parser is by hand and deliberately small: request line, headers, `Content-Length`
//! bodies (read and discarded), `Connection: close` and HTTP/1.0 without keep-alive. Anything
//! else gets `400 Bad Request` and the connection is closed; nothing the client sends can
//! crash the server. A connection is closed once a request has not come in, or its answer
//! not gone out, within 30 s (a deadline on both directions, renewed per request: a client
//! that pipelines requests and never reads its answers is cut off like an idle one).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};

/// Largest request head we accept; more is a 431.
const MAX_HEAD: usize = 16 * 1024;
/// Largest body we read (and discard); more is a 413.
const MAX_BODY: usize = 1 << 20;
const IDLE: Duration = Duration::from_secs(30);

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    // The calling thread is the runtime's first worker and the process ends with this
    // closure, as a Go program ends with main: one thread in all on one CPU.
    let err = coronet::Builder::new()
        .main(move || {
            let listener = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| {
                eprintln!("http_hello: {e}");
                std::process::exit(1);
            });
            println!(
                "http_hello: listening on {}",
                listener.local_addr().unwrap()
            );
            let mut backoff = Duration::ZERO;
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        backoff = Duration::ZERO;
                        coronet::go(move || {
                            if let Err(e) = serve(stream) {
                                if e.kind() != io::ErrorKind::TimedOut {
                                    eprintln!("http_hello: {e}");
                                }
                            }
                        });
                    }
                    // EMFILE and friends: back off as Go's http.Server does, keep serving
                    Err(e) => {
                        backoff =
                            (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                        eprintln!("http_hello: {e}; retrying in {backoff:?}");
                        coronet::time::sleep(backoff);
                    }
                }
            }
        })
        .unwrap_err();
    eprintln!("http_hello: cannot start the runtime: {err}");
    std::process::exit(1);
}

/// What the parser made of one request head. Method and path borrow from the read buffer:
/// owning them cost two allocations and frees per request (about 175 instructions).
#[derive(Debug, PartialEq)]
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    keep_alive: bool,
    content_length: usize,
}

#[derive(Debug, PartialEq)]
enum Parse<'a> {
    /// The head is complete; it was this many bytes long.
    Done(Request<'a>, usize),
    /// Need more bytes.
    Partial,
    /// Answer with this status and close.
    Bad(u16, &'static str),
}

/// Parses a request head from the front of `buf`.
fn parse(buf: &[u8]) -> Parse<'_> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Parse::Bad(431, "Request Header Fields Too Large")
        } else {
            Parse::Partial
        };
    };
    if end > MAX_HEAD {
        // a whole head that arrived in one read is bounded too
        return Parse::Bad(431, "Request Header Fields Too Large");
    }
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Parse::Bad(400, "Bad Request");
    };
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (first.next(), first.next(), first.next(), first.next())
    else {
        return Parse::Bad(400, "Bad Request");
    };
    if method.is_empty() || !path.starts_with('/') {
        return Parse::Bad(400, "Bad Request");
    }
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Parse::Bad(505, "HTTP Version Not Supported"),
    };
    let mut content_length = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parse::Bad(400, "Bad Request");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) if n <= MAX_BODY => content_length = n,
                Ok(_) => return Parse::Bad(413, "Payload Too Large"),
                Err(_) => return Parse::Bad(400, "Bad Request"),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Parse::Bad(501, "Not Implemented");
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        }
    }
    Parse::Done(
        Request {
            method,
            path,
            keep_alive,
            content_length,
        },
        end + 4,
    )
}

fn serve(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut have = 0;
    let mut out = Vec::with_capacity(256);
    loop {
        stream.set_deadline(Some(Instant::now() + IDLE))?;
        // Decided while the request still borrows the buffer, which the body skip reuses.
        let (answer, content_length, head_len) = loop {
            match parse(&buf[..have]) {
                Parse::Done(req, n) => break (Answer::to(&req), req.content_length, n),
                Parse::Partial => {
                    if have == buf.len() {
                        buf.resize(buf.len() * 2, 0);
                    }
                    let n = stream.read(&mut buf[have..])?;
                    if n == 0 {
                        return Ok(()); // the client closed between requests
                    }
                    have += n;
                }
                Parse::Bad(code, reason) => {
                    let body = format!("{code} {reason}\n");
                    let resp = format!(
                        "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    stream.write_all(resp.as_bytes())?;
                    return Ok(());
                }
            }
        };
        // Skip the body: what is buffered, then the rest from the socket.
        let mut body_left = content_length;
        let buffered = (have - head_len).min(body_left);
        body_left -= buffered;
        let consumed = head_len + buffered;
        buf.copy_within(consumed..have, 0);
        have -= consumed;
        while body_left > 0 {
            let want = body_left.min(buf.len());
            let n = stream.read(&mut buf[..want])?;
            if n == 0 {
                return Ok(());
            }
            body_left -= n;
        }

        // Appended piece by piece: `write!` through `core::fmt` cost about 500 instructions a
        // request (callgrind under wrk), a tenth of the whole server's user-space share.
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(answer.status.as_bytes());
        out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
        push_decimal(&mut out, answer.body.len());
        out.extend_from_slice(b"\r\n");
        if !answer.keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !answer.head_only {
            out.extend_from_slice(answer.body);
        }
        stream.write_all(&out)?;
        if !answer.keep_alive {
            return Ok(());
        }
    }
}

/// The response to one request: what it needs of the request, owned by nobody.
struct Answer {
    status: &'static str,
    body: &'static [u8],
    head_only: bool,
    keep_alive: bool,
}

impl Answer {
    fn to(req: &Request<'_>) -> Answer {
        let (status, body): (_, &[u8]) = match (req.method, req.path) {
            ("GET" | "HEAD", "/") => ("200 OK", b"Hello, World!\n"),
            ("GET" | "HEAD", _) => ("404 Not Found", b"not found\n"),
            _ => ("405 Method Not Allowed", b"method not allowed\n"),
        };
        Answer {
            status,
            body,
            head_only: req.method == "HEAD",
            keep_alive: req.keep_alive,
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_rejects_junk() {
        let Parse::Done(r, n) = parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest") else {
            panic!()
        };
        assert_eq!((r.method, r.path, r.keep_alive, n), ("GET", "/", true, 27));
        let Parse::Done(r, _) = parse(b"POST /a HTTP/1.0\r\nContent-Length: 5\r\n\r\n") else {
            panic!()
        };
        assert_eq!((r.keep_alive, r.content_length), (false, 5));
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost"), Parse::Partial);
        assert!(matches!(parse(b"GARBAGE\r\n\r\n"), Parse::Bad(400, _)));
        assert!(matches!(parse(b"GET / HTTP/2\r\n\r\n"), Parse::Bad(505, _)));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Parse::Bad(400, _)
        ));
        assert!(matches!(parse(&[b'a'; MAX_HEAD + 1]), Parse::Bad(431, _)));
        let mut whole = b"GET / HTTP/1.1\r\nX: ".to_vec();
        whole.resize(MAX_HEAD + 10, b'a');
        whole.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(parse(&whole), Parse::Bad(431, _)));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n\xff: x\r\n\r\n"),
            Parse::Bad(400, _)
        ));
    }

    #[test]
    fn pushes_decimals() {
        for n in [0, 7, 10, 14, 99, 100, 18, usize::MAX] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }
}
