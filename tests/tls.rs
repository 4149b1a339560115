//! `examples/tls_echo.rs` and `examples/ws_echo.rs`, run as programs against real clients:
//! rustls and tungstenite clients from a plain thread and from coroutines, and
//! `openssl s_client` when it is installed (skipped with a printed reason when not).
//!
//! This file shares no code with `tests/examples.rs`; the two small helpers that start an
//! example are copied so each file reads on its own.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use coronet::sync::Barrier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// Generous: the machine is shared and noisy; a healthy run answers in milliseconds.
const PATIENCE: Duration = Duration::from_secs(20);

/// Builds the examples once (a nested `cargo build`, same target dir) and returns the path
/// of one. `cargo test` does not build plain examples as binaries.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo build --examples failed");
    });
    // target/debug/deps/tls-HASH → target/debug/examples/NAME
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    p.pop();
    p.push("examples");
    p.push(name);
    assert!(p.exists(), "{} not built", p.display());
    p
}

/// A server example on an ephemeral port; killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// Starts `name` with `127.0.0.1:0` and reads the address from its first line
    /// (`<name>: listening on ADDR`).
    fn start(name: &str) -> Server {
        let mut child = Command::new(example(name))
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(
            first.contains("listening on"),
            "{name} printed {first:?} instead of its address"
        );
        let addr = first.trim().rsplit(' ').next().unwrap().to_string();
        Server { child, addr }
    }

    /// The server must still be running (no crash on what we sent).
    fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "server exited: {:?}",
            self.child.try_wait()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipped: `{tool}` is not installed");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A plain std socket to `addr` that gives up instead of hanging.
fn std_connect(addr: &str) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

// --- TLS ------------------------------------------------------------------------------------

const CERT_PEM: &[u8] = include_bytes!("../examples/tls/cert.pem");

/// A rustls client config that trusts the example's test certificate and nothing else, so
/// every handshake below also checks the chain and the name `localhost`.
fn client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(CERT_PEM) {
                roots.add(cert.unwrap()).unwrap();
            }
            Arc::new(
                ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

fn tls_client<S: Read + Write>(sock: S) -> StreamOwned<ClientConnection, S> {
    let name = ServerName::try_from("localhost").unwrap();
    StreamOwned::new(ClientConnection::new(client_config(), name).unwrap(), sock)
}

/// Sends `msg` and reads back exactly as many bytes.
fn round_trip<S: Read + Write>(tls: &mut S, msg: &[u8]) -> io::Result<Vec<u8>> {
    tls.write_all(msg)?;
    tls.flush()?;
    let mut back = vec![0u8; msg.len()];
    tls.read_exact(&mut back)?;
    Ok(back)
}

/// Our close_notify, then the server's: a clean TLS end of stream is `Ok(0)`.
fn tls_close<S: Read + Write>(tls: &mut StreamOwned<ClientConnection, S>) -> io::Result<()> {
    tls.conn.send_close_notify();
    tls.flush()?;
    let mut rest = [0u8; 16];
    match tls.read(&mut rest)? {
        0 => Ok(()),
        n => Err(io::Error::other(format!("{n} bytes after close_notify"))),
    }
}

#[test]
fn tls_echo_demo_runs_its_clients_and_prints_the_negotiated_suite() {
    let out = run(Command::new(example("tls_echo")).arg("--demo"));
    assert!(
        out.contains("a std::net client on a plain thread negotiated TLSv1_3 with TLS13_"),
        "{out}"
    );
    assert!(
        out.contains("100 coroutine clients x 100 round trips"),
        "{out}"
    );
}

#[test]
fn tls_echo_serves_a_rustls_client_on_a_plain_thread() {
    let mut server = Server::start("tls_echo");
    let mut tls = tls_client(std_connect(&server.addr));
    assert_eq!(round_trip(&mut tls, b"hello").unwrap(), b"hello");
    assert_eq!(tls.conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));

    // 256 KiB in 16 KiB pieces: many TLS records each way, so the server's reads and writes
    // park and resume mid-record
    let data: Vec<u8> = (0..256 << 10)
        .map(|i: u32| (i * 7 + i / 251) as u8)
        .collect();
    for chunk in data.chunks(16 << 10) {
        assert_eq!(round_trip(&mut tls, chunk).unwrap(), chunk);
    }
    tls_close(&mut tls).unwrap();
    server.assert_alive();
}

#[test]
fn tls_echo_serves_100_concurrent_rustls_clients_in_coroutines() {
    const CLIENTS: usize = 100;
    let mut server = Server::start("tls_echo");
    let addr = server.addr.clone();
    coronet::run(move || {
        // every client finishes its handshake and one echo before any goes on, so the server
        // holds all 100 TLS sessions open at once
        let all_open = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (addr, all_open) = (addr.clone(), all_open.clone());
                coronet::go(move || -> io::Result<()> {
                    let hello = format!("hello {id}");
                    let opened = coronet::net::TcpStream::connect(addr.as_str()).and_then(|s| {
                        s.set_read_timeout(Some(PATIENCE))?;
                        let mut tls = tls_client(s);
                        Ok((round_trip(&mut tls, hello.as_bytes())?, tls))
                    });
                    all_open.wait(); // also on error: the others must not wait forever
                    let (first, mut tls) = opened?;
                    assert_eq!(first, hello.as_bytes());
                    for round in 0..20 {
                        let msg = format!("client {id} round {round}");
                        assert_eq!(round_trip(&mut tls, msg.as_bytes())?, msg.as_bytes());
                    }
                    tls_close(&mut tls)
                })
            })
            .collect();
        for (id, c) in clients.into_iter().enumerate() {
            let result = c.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            result.unwrap_or_else(|e| panic!("client {id}: {e}"));
        }
    });
    server.assert_alive();
}

#[test]
fn tls_echo_answers_openssl_s_client_and_its_certificate_verifies() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start("tls_echo");
    let cert = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tls/cert.pem");
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &server.addr, "-brief"])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args(["-CAfile", cert, "-verify_return_error"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello from openssl\n").unwrap();

    // stdin stays open until the echo is back: s_client quits at stdin's EOF, maybe before
    // the answer arrives
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(PATIENCE);
    if line.is_err() {
        let _ = child.kill();
    }
    drop(stdin); // EOF: s_client sends close_notify and exits
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        line.as_deref(),
        Ok("hello from openssl\n"),
        "no echo; s_client said: {log}"
    );
    assert!(out.status.success(), "{out:?}: {log}");
    assert!(log.contains("Protocol version: TLSv1.3"), "{log}");
    assert!(log.contains("Verification: OK"), "{log}");
    server.assert_alive();
}

#[test]
fn tls_echo_drops_a_client_that_speaks_plain_text_and_keeps_serving() {
    let mut server = Server::start("tls_echo");
    let mut plain = std_connect(&server.addr);
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    // the server answers with at most a TLS alert and hangs up; a timeout here fails
    plain.read_to_end(&mut answer).unwrap();
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "expected nothing or a TLS alert record, got {answer:?}"
    );

    server.assert_alive();
    let mut tls = tls_client(std_connect(&server.addr));
    assert_eq!(round_trip(&mut tls, b"still here").unwrap(), b"still here");
    tls_close(&mut tls).unwrap();
}

// --- WebSocket ------------------------------------------------------------------------------

fn ws_client<S: Read + Write>(addr: &str, sock: S) -> WebSocket<S> {
    match tungstenite::client(format!("ws://{addr}/echo"), sock) {
        Ok((ws, response)) => {
            assert_eq!(response.status(), 101, "{response:?}");
            ws
        }
        Err(e) => panic!("WebSocket handshake with {addr}: {e}"),
    }
}

/// Sends `msg` and returns the next data message (pings and pongs are skipped).
fn ws_round_trip<S: Read + Write>(ws: &mut WebSocket<S>, msg: Message) -> Message {
    ws.send(msg).unwrap();
    loop {
        match ws.read().unwrap() {
            m @ (Message::Text(_) | Message::Binary(_)) => return m,
            _ => {}
        }
    }
}

/// Our close, the server's reply, and then the end of the connection, which the server
/// closes once the handshake is done (RFC 6455 §7.1.1: the server closes TCP first).
fn ws_close<S: Read + Write>(ws: &mut WebSocket<S>) {
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    let mut replied = false;
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => replied = true,
            Ok(other) => panic!("after close: {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close handshake: {e}"),
        }
    }
    assert!(replied, "the server never answered our close");
    let mut rest = [0u8; 16];
    assert_eq!(
        ws.get_mut().read(&mut rest).unwrap(),
        0,
        "socket still open"
    );
}

#[test]
fn ws_echo_demo_runs_its_clients_and_exits() {
    let out = run(Command::new(example("ws_echo")).arg("--demo"));
    assert!(
        out.contains("100 WebSocket clients x 100 messages") && out.contains("closed cleanly"),
        "{out}"
    );
}

#[test]
fn ws_echo_echoes_text_binary_and_ping_then_closes_cleanly() {
    let mut server = Server::start("ws_echo");
    let mut ws = ws_client(&server.addr, std_connect(&server.addr));

    let text = Message::text("héllo, 世界");
    assert_eq!(ws_round_trip(&mut ws, text.clone()), text);
    // every byte value, and large enough to take several reads and writes on each side
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
    let binary = Message::binary(bytes);
    assert_eq!(ws_round_trip(&mut ws, binary.clone()), binary);
    let empty = Message::binary(Vec::new());
    assert_eq!(ws_round_trip(&mut ws, empty.clone()), empty);

    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match ws.read().unwrap() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }

    ws_close(&mut ws);
    server.assert_alive();
}

#[test]
fn ws_echo_serves_100_concurrent_clients_in_coroutines() {
    const CLIENTS: usize = 100;
    let mut server = Server::start("ws_echo");
    let addr = server.addr.clone();
    coronet::run(move || {
        let all_open = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (addr, all_open) = (addr.clone(), all_open.clone());
                coronet::go(move || {
                    let opened = coronet::net::TcpStream::connect(addr.as_str())
                        .map_err(|e| e.to_string())
                        .and_then(|s| {
                            s.set_read_timeout(Some(PATIENCE)).unwrap();
                            tungstenite::client(format!("ws://{addr}/echo"), s)
                                .map_err(|e| e.to_string())
                        });
                    all_open.wait(); // also on error: the others must not wait forever
                    let (mut ws, _) = opened.unwrap_or_else(|e| panic!("client {id}: {e}"));
                    for round in 0..20 {
                        let msg = if round % 2 == 0 {
                            Message::text(format!("client {id} round {round}"))
                        } else {
                            Message::binary(vec![id as u8; round * 100])
                        };
                        assert_eq!(ws_round_trip(&mut ws, msg.clone()), msg);
                    }
                    ws_close(&mut ws);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
    });
    server.assert_alive();
}

#[test]
fn ws_echo_refuses_a_plain_http_request_and_keeps_serving() {
    let mut server = Server::start("ws_echo");
    let mut plain = std_connect(&server.addr);
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    // no upgrade headers: the server must hang up (a timeout here fails), never echo
    plain.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.contains("101 Switching Protocols"),
        "upgraded without an Upgrade header: {answer}"
    );

    server.assert_alive();
    let mut ws = ws_client(&server.addr, std_connect(&server.addr));
    let text = Message::text("still here");
    assert_eq!(ws_round_trip(&mut ws, text.clone()), text);
    ws_close(&mut ws);
}
