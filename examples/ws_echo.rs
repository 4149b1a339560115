//! A WebSocket echo server: tungstenite's blocking API on coronet `TcpStream`s, one coroutine
//! per connection.
//!
//! ```text
//! cargo run --example ws_echo                  # serve on 127.0.0.1:7080
//! cargo run --example ws_echo -- 0.0.0.0:9080  # serve elsewhere
//! cargo run --example ws_echo -- --demo        # serve, run 100 clients, print, exit
//! ```
//!
//! tungstenite is written for blocking `Read + Write` streams (or nonblocking ones, with
//! `WouldBlock` handed back to the caller). coronet's `TcpStream` is the blocking kind to
//! tungstenite and parks the coroutine underneath, so `tungstenite::accept` and
//! `WebSocket::read` are used exactly as their documentation shows for `std::net`.
//! Text and binary messages come back as they were sent; pings are answered with pongs and a
//! close with a close, by tungstenite itself.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};
use tungstenite::handshake::HandshakeRole;
use tungstenite::{Error, HandshakeError, Message};

/// How long a client may take to send its HTTP upgrade request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn serve(listener: TcpListener) {
    let mut backoff = Duration::ZERO;
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                backoff = Duration::ZERO;
                coronet::go(move || {
                    // for error messages; a peer already gone has no address
                    let peer = stream
                        .peer_addr()
                        .map_or_else(|e| e.to_string(), |a| a.to_string());
                    if let Err(e) = handle(stream) {
                        eprintln!("ws_echo: {peer}: {e}");
                    }
                });
            }
            Err(e) => {
                // EMFILE and friends: back off as echo.rs does, keep serving open connections
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("ws_echo: {e}; retrying in {backoff:?}");
                coronet::time::sleep(backoff);
            }
        }
    }
}

/// One connection: the HTTP upgrade, then echo until the close handshake is done.
fn handle(tcp: TcpStream) -> Result<(), Error> {
    // the deadline covers every read of the upgrade request, then is lifted for the session
    tcp.set_deadline(Some(Instant::now() + HANDSHAKE_TIMEOUT))?;
    let mut ws = finished(tungstenite::accept(tcp))?;
    ws.get_ref().set_deadline(None)?;
    loop {
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg)?,
            // ping or close: tungstenite queued the pong or the closing reply, and sends it at
            // the start of the next read
            Ok(_) => {}
            // the close handshake finished: dropping `ws` closes the socket
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// The outcome of a handshake on a blocking stream, which is never `Interrupted`: only a
/// nonblocking stream hands `WouldBlock` back mid-handshake, and coronet's parks instead.
fn finished<T, R: HandshakeRole>(r: Result<T, HandshakeError<R>>) -> Result<T, Error> {
    r.map_err(|e| match e {
        HandshakeError::Failure(e) => e,
        HandshakeError::Interrupted(_) => Error::Io(io::Error::other(
            "WebSocket handshake interrupted on a blocking stream",
        )),
    })
}

/// A client coroutine: `rounds` text and binary round trips, then the close handshake.
fn client(addr: SocketAddr, id: usize, rounds: usize) -> Result<(), Error> {
    let (mut ws, _response) = finished(tungstenite::client(
        format!("ws://{addr}/"),
        TcpStream::connect(addr)?,
    ))?;
    for round in 0..rounds {
        let text = format!("client {id:3} message {round:4}");
        let sent = if round % 2 == 0 {
            Message::text(text)
        } else {
            Message::binary(text.into_bytes())
        };
        ws.send(sent.clone())?;
        let back = ws.read()?;
        if back != sent {
            return Err(Error::Io(io::Error::other(format!(
                "sent {sent:?}, got {back:?}"
            ))));
        }
    }
    ws.close(None)?;
    // read until the server's closing reply completes the handshake
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// The demo's clients: 100 concurrent sessions, few enough messages that the demo (and the
/// test that runs it) stays quick in a debug build.
const DEMO_CLIENTS: usize = 100;
const DEMO_ROUNDS: usize = 20;

fn demo(listener: TcpListener) {
    let addr = listener.local_addr().unwrap();
    coronet::go(move || serve(listener));
    let start = Instant::now();
    let clients: Vec<_> = (0..DEMO_CLIENTS)
        .map(|id| coronet::go(move || client(addr, id, DEMO_ROUNDS)))
        .collect();
    for c in clients {
        c.join().expect("client coroutine").expect("client");
    }
    println!(
        "ws_echo demo: {DEMO_CLIENTS} WebSocket clients x {DEMO_ROUNDS} messages on {addr} in {:.2?}, all closed cleanly",
        start.elapsed()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let demo_mode = args.iter().any(|a| a == "--demo");
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| {
            if demo_mode {
                "127.0.0.1:0".into()
            } else {
                "127.0.0.1:7080".into()
            }
        });
    coronet::run(move || {
        let listener = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| {
            eprintln!("ws_echo: {e}");
            std::process::exit(1);
        });
        if demo_mode {
            demo(listener);
        } else {
            println!("ws_echo: listening on {}", listener.local_addr().unwrap());
            serve(listener);
        }
    });
}
