//! TLS over coronet: rustls's blocking `StreamOwned` on a coronet `TcpStream`, unchanged.
//!
//! ```text
//! cargo run --example tls_echo                  # serve on 127.0.0.1:7443
//! cargo run --example tls_echo -- 0.0.0.0:8443  # serve elsewhere
//! cargo run --example tls_echo -- --demo        # serve, run clients, print what they negotiated
//! openssl s_client -connect 127.0.0.1:7443 -servername localhost -CAfile examples/tls/cert.pem
//! ```
//!
//! rustls knows nothing about coroutines: it calls `Read::read` and `Write::write` on whatever
//! socket it is given. Given a coronet `TcpStream`, a read that would block parks the coroutine
//! on the netpoller instead of blocking the thread, so one coroutine per TLS connection is the
//! same code you would write with `std::net` and one thread per connection. The demo's client
//! is literally that: one generic function, run on a `std::net::TcpStream` from a plain thread
//! and on coronet's `TcpStream` from coroutines.
//!
//! The certificate is `examples/tls/cert.pem`, self-signed for `localhost` and `127.0.0.1`; its
//! private key is published in this repository, so it is for tests and demos only.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CipherSuite, ProtocolVersion, StreamOwned};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

/// Built in, so the example runs from any directory. `examples/tls/make-cert.sh` made them.
const CERT_PEM: &[u8] = include_bytes!("tls/cert.pem");
const KEY_PEM: &[u8] = include_bytes!("tls/key.pem");

/// How long a client may take to finish its handshake before its coroutine gives up on it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn certs() -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(CERT_PEM)
        .collect::<Result<_, _>>()
        .expect("examples/tls/cert.pem is a PEM certificate")
}

fn server_config() -> Arc<ServerConfig> {
    let key = PrivateKeyDer::from_pem_slice(KEY_PEM).expect("examples/tls/key.pem is a PEM key");
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs(), key)
        .expect("the certificate matches the key");
    Arc::new(config)
}

/// A client that trusts our test certificate and nothing else.
fn client_config() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in certs() {
        roots
            .add(cert)
            .expect("the test certificate is a valid trust anchor");
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn serve(listener: TcpListener, config: Arc<ServerConfig>) {
    let mut backoff = Duration::ZERO;
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                backoff = Duration::ZERO;
                let config = config.clone();
                coronet::go(move || {
                    // for error messages; a peer already gone has no address
                    let peer = stream
                        .peer_addr()
                        .map_or_else(|e| e.to_string(), |a| a.to_string());
                    match handle(stream, config) {
                        // a peer that hangs up without close_notify is rude, not an error here
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
                        Err(e) => eprintln!("tls_echo: {peer}: {e}"),
                    }
                });
            }
            Err(e) => {
                // EMFILE and friends: back off as echo.rs does, keep serving open connections
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("tls_echo: {e}; retrying in {backoff:?}");
                coronet::time::sleep(backoff);
            }
        }
    }
}

/// One connection: handshake, echo, close_notify. Plain blocking rustls code.
fn handle(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<()> {
    // An absolute deadline bounds the whole handshake, however many reads it takes, so a
    // client that connects and stalls cannot hold this coroutine forever.
    tcp.set_deadline(Some(Instant::now() + HANDSHAKE_TIMEOUT))?;
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    tls.sock.set_deadline(None)?;

    echo(&mut tls)?;
    tls.conn.send_close_notify();
    tls.flush()
}

/// The echo loop of `examples/echo.rs`, over any `Read + Write`; here, a TLS stream.
fn echo<S: Read + Write>(stream: &mut S) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(()); // close_notify from the peer: EOF is Ok(0), as on a plain socket
        }
        stream.write_all(&buf[..n])?;
        stream.flush()?; // rustls buffers plaintext; flush sends the records now
    }
}

/// What a client saw: the protocol version and cipher suite it negotiated.
struct Negotiated {
    version: ProtocolVersion,
    suite: CipherSuite,
}

/// A TLS client over any blocking socket: `std::net::TcpStream` on a thread and coronet's
/// `TcpStream` in a coroutine run this same code. Sends `rounds` messages, checks each echo,
/// then closes with close_notify and waits for the server's.
fn client<S: Read + Write>(sock: S, id: usize, rounds: usize) -> io::Result<Negotiated> {
    let name = ServerName::try_from("localhost").expect("a valid DNS name");
    let conn = ClientConnection::new(client_config(), name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, sock);
    let mut back = [0u8; 64];
    for round in 0..rounds {
        let msg = format!("client {id:3} message {round:4}");
        tls.write_all(msg.as_bytes())?;
        tls.flush()?;
        tls.read_exact(&mut back[..msg.len()])?;
        if &back[..msg.len()] != msg.as_bytes() {
            return Err(io::Error::other(format!("sent {msg:?}, got {back:?}")));
        }
    }
    let negotiated = Negotiated {
        version: tls.conn.protocol_version().expect("handshake done"),
        suite: tls
            .conn
            .negotiated_cipher_suite()
            .expect("handshake done")
            .suite(),
    };
    tls.conn.send_close_notify();
    tls.flush()?;
    // the server answers with its own close_notify: a clean end of stream
    if tls.read(&mut back)? != 0 {
        return Err(io::Error::other("data after close_notify"));
    }
    Ok(negotiated)
}

/// The demo's clients: 100 concurrent TLS sessions, and few enough round trips
/// that the demo (and the test that runs it) stays quick in a debug build.
const DEMO_CLIENTS: usize = 100;
const DEMO_ROUNDS: usize = 20;

/// One client on a plain OS thread with `std::net`, then `DEMO_CLIENTS` client coroutines.
fn demo(listener: TcpListener) {
    let addr: SocketAddr = listener.local_addr().unwrap();
    coronet::go(move || serve(listener, server_config()));

    // A std client blocks its thread, so it runs on the blocking pool while this coroutine
    // parks: joining a thread of its own here would block this worker, and with one worker
    // (a one-core machine) the server coroutine beside it would never answer.
    let seen = coronet::spawn_blocking(move || client(std::net::TcpStream::connect(addr)?, 0, 10))
        .expect("std::net client");
    println!(
        "tls_echo demo: a std::net client on a plain thread negotiated {:?} with {:?}",
        seen.version, seen.suite
    );

    let start = Instant::now();
    let clients: Vec<_> = (1..=DEMO_CLIENTS)
        .map(|id| coronet::go(move || client(TcpStream::connect(addr)?, id, DEMO_ROUNDS)))
        .collect();
    for c in clients {
        let seen = c.join().expect("client coroutine").expect("coronet client");
        assert_eq!(seen.version, ProtocolVersion::TLSv1_3);
    }
    let took = start.elapsed();
    println!(
        "tls_echo demo: {DEMO_CLIENTS} coroutine clients x {DEMO_ROUNDS} round trips over TLSv1_3 on {addr} in {took:.2?}"
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
                "127.0.0.1:7443".into()
            }
        });
    coronet::run(move || {
        let listener = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| {
            eprintln!("tls_echo: {e}");
            std::process::exit(1);
        });
        if demo_mode {
            demo(listener);
        } else {
            println!("tls_echo: listening on {}", listener.local_addr().unwrap());
            serve(listener, server_config());
        }
    });
}
