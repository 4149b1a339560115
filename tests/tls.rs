//! `examples/tls_echo.rs` and `examples/ws_echo.rs`, run as programs against real clients:
//! rustls and tungstenite clients from plain threads and from coroutines, and
//! `openssl s_client` when it is installed (skipped with a printed reason when not; `.ci/run`
//! installs it).
//!
//! What is checked: echo through TLS and WebSocket, 100 concurrent clients in coroutines, a
//! 512 KiB TLS message sent and echoed at the same time (full duplex, so neither side can get by
//! with buffering), text/binary/ping/close frames, and that clients speaking garbage or the
//! wrong protocol are hung up on promptly while the server lives on and serves the next one.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use coronet::sync::Barrier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

mod util;
use util::examples::{example, have, run, Server};
use util::pattern;

/// Generous: the machine is shared and noisy; a healthy run answers in milliseconds.
const PATIENCE: Duration = Duration::from_secs(20);

/// How long a client that sent garbage waits to be hung up on. Half the examples' 10 s
/// handshake deadline: a server that missed the garbage and only gave up at its deadline
/// fails, while a healthy one answers in milliseconds.
const GARBAGE_PATIENCE: Duration = Duration::from_secs(5);

/// A plain std socket to `addr` that gives up instead of hanging.
fn std_connect(addr: &str) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// A coronet socket to `addr` whose reads give up instead of hanging; an error as text, for
/// `clients_all_open_at_once`.
fn coroutine_connect(addr: &str) -> Result<coronet::net::TcpStream, String> {
    let s = coronet::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(PATIENCE))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// Sends `garbage` on a fresh connection and returns what came back before the server hung
/// up. A reset counts as hanging up: a server that closes with our bytes still unread in its
/// socket makes the kernel send RST instead of FIN. A timeout fails the test.
fn hung_up_on(addr: &str, garbage: &[u8]) -> Vec<u8> {
    let mut s = std_connect(addr);
    s.set_read_timeout(Some(GARBAGE_PATIENCE)).unwrap();
    // the server may hang up before it has read everything: then the write fails, which is fine
    let _ = s.write_all(garbage);
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "not hung up on after sending {} bytes of garbage: {e}",
            garbage.len()
        ),
    }
    answer
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

/// Sends `data` as one message while reading its echo at the same time, on two threads
/// sharing one TLS session, and returns what came back. Sending everything before reading
/// could deadlock once the socket buffers fill (the server stops reading while its echo is
/// not read); this way the server's reads and writes each park and resume many times.
fn full_duplex_echo(
    tls: StreamOwned<ClientConnection, std::net::TcpStream>,
    data: &[u8],
) -> Vec<u8> {
    let StreamOwned { conn, sock } = tls;
    let conn = Arc::new(Mutex::new(conn));
    let mut wsock = sock.try_clone().unwrap();
    let writer = {
        let (conn, data) = (conn.clone(), data.to_vec());
        std::thread::spawn(move || -> io::Result<()> {
            // 16 KiB at a time: rustls buffers at most 64 KiB of records before we write them
            for chunk in data.chunks(16 << 10) {
                let mut records = Vec::new();
                {
                    let mut c = conn.lock().unwrap();
                    c.writer().write_all(chunk)?;
                    while c.wants_write() {
                        c.write_tls(&mut records)?;
                    }
                } // never hold the lock across a socket call: the reader needs it meanwhile
                wsock.write_all(&records)?;
            }
            Ok(())
        })
    };

    let mut back = Vec::with_capacity(data.len());
    let mut rsock = &sock;
    let mut buf = vec![0u8; 64 << 10];
    while back.len() < data.len() {
        let n = rsock.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {} of {} bytes", back.len(), data.len());
        let mut c = conn.lock().unwrap();
        let mut records = &buf[..n];
        while !records.is_empty() {
            c.read_tls(&mut records).unwrap();
            c.process_new_packets().unwrap();
            match c.reader().read_to_end(&mut back) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {} // all plaintext taken
                other => panic!("plaintext reader: {other:?}"),
            }
        }
    }
    writer.join().unwrap().unwrap();

    let conn = Arc::into_inner(conn).unwrap().into_inner().unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    tls_close(&mut tls).unwrap();
    back
}

#[test]
fn tls_echo_demo_runs_its_clients_and_prints_the_negotiated_suite() {
    let out = run(Command::new(example("tls_echo")).arg("--demo"));
    assert!(
        out.contains("a std::net client on a plain thread negotiated TLSv1_3 with TLS13_"),
        "{out}"
    );
    assert!(
        out.contains("100 coroutine clients x 20 round trips"),
        "{out}"
    );
}

#[test]
fn tls_echo_echoes_a_512_kib_message_to_a_rustls_client_on_a_plain_thread() {
    let mut server = Server::start("tls_echo");
    let mut tls = tls_client(std_connect(&server.addr));
    assert_eq!(round_trip(&mut tls, b"hello").unwrap(), b"hello");
    assert_eq!(tls.conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));

    // one 512 KiB message: many TLS records each way, so the server's reads and writes park
    // and resume mid-record
    let data = pattern(512 << 10, 7);
    let back = full_duplex_echo(tls, &data);
    let first_diff = back.iter().zip(&data).position(|(a, b)| a != b);
    assert!(
        back.len() == data.len() && first_diff.is_none(),
        "echo of {} bytes differs from the {} sent, first at byte {first_diff:?}",
        back.len(),
        data.len()
    );
    server.assert_alive();
}

/// Runs `n` client coroutines: each opens its session with `open`; all wait until every one
/// has (so the server holds `n` sessions at once) — also one whose `open` failed, so the others
/// do not wait forever — and then each goes on with `talk`. A failed open or a client's panic
/// fails the test, naming the client.
fn clients_all_open_at_once<C, O, T>(n: usize, open: O, talk: T)
where
    C: 'static,
    O: Fn(usize) -> Result<C, String> + Send + Sync + 'static,
    T: Fn(usize, C) + Send + Sync + 'static,
{
    coronet::run(move || {
        let all_open = Arc::new(Barrier::new(n));
        let (open, talk) = (Arc::new(open), Arc::new(talk));
        let clients: Vec<_> = (0..n)
            .map(|id| {
                let (all_open, open, talk) = (all_open.clone(), open.clone(), talk.clone());
                coronet::go(move || {
                    let opened = open(id);
                    all_open.wait();
                    let session = opened.unwrap_or_else(|e| panic!("client {id}: {e}"));
                    talk(id, session);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
    });
}

#[test]
fn tls_echo_serves_100_concurrent_rustls_clients_in_coroutines() {
    const CLIENTS: usize = 100;
    let mut server = Server::start("tls_echo");
    let addr = server.addr.clone();
    // every client finishes its handshake and one echo before any goes on, so the server
    // holds all 100 TLS sessions open at once
    clients_all_open_at_once(
        CLIENTS,
        move |id| {
            let hello = format!("hello {id}");
            let s = coroutine_connect(&addr)?;
            let mut tls = tls_client(s);
            let first = round_trip(&mut tls, hello.as_bytes()).map_err(|e| e.to_string())?;
            Ok((hello, first, tls))
        },
        |id, (hello, first, mut tls)| {
            assert_eq!(first, hello.as_bytes());
            let mut talk = || -> io::Result<()> {
                for round in 0..20 {
                    let msg = format!("client {id} round {round}");
                    assert_eq!(round_trip(&mut tls, msg.as_bytes())?, msg.as_bytes());
                }
                tls_close(&mut tls)
            };
            talk().unwrap_or_else(|e| panic!("client {id}: {e}"));
        },
    );
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
fn tls_echo_hangs_up_on_clients_that_do_not_speak_tls_and_keeps_serving() {
    let mut server = Server::start("tls_echo");
    let mut record_too_long = vec![0x16, 0x03, 0x01, 0xff, 0xff]; // a handshake record of 64 KiB
    record_too_long.extend_from_slice(&pattern(300, 1));
    let mut garbage = pattern(4000, 3);
    garbage[0] = 0x99; // not a TLS content type, whatever the pattern starts with
    for (what, sent) in [
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("binary garbage", garbage),
        ("a record longer than TLS allows", record_too_long),
    ] {
        let answer = hung_up_on(&server.addr, &sent);
        // at most a TLS alert record (content type 21) before the hang-up
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "{what}: expected nothing or a TLS alert, got {answer:?}"
        );
        server.assert_alive();
    }

    let mut tls = tls_client(std_connect(&server.addr));
    assert_eq!(round_trip(&mut tls, b"still here").unwrap(), b"still here");
    tls_close(&mut tls).unwrap();
    server.assert_alive();
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
        if let m @ (Message::Text(_) | Message::Binary(_)) = ws.read().unwrap() {
            return m;
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
        out.contains("100 WebSocket clients x 20 messages") && out.contains("closed cleanly"),
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
    clients_all_open_at_once(
        CLIENTS,
        move |_| {
            let s = coroutine_connect(&addr)?;
            let (ws, _) =
                tungstenite::client(format!("ws://{addr}/echo"), s).map_err(|e| e.to_string())?;
            Ok(ws)
        },
        |id, mut ws| {
            for round in 0..20 {
                let msg = if round % 2 == 0 {
                    Message::text(format!("client {id} round {round}"))
                } else {
                    Message::binary(vec![id as u8; round * 100])
                };
                assert_eq!(ws_round_trip(&mut ws, msg.clone()), msg);
            }
            ws_close(&mut ws);
        },
    );
    server.assert_alive();
}

#[test]
fn ws_echo_hangs_up_on_clients_that_do_not_ask_to_upgrade_and_keeps_serving() {
    let mut server = Server::start("ws_echo");
    let mut garbage = pattern(4000, 5);
    garbage[0] = 0; // not an HTTP method character, whatever the pattern starts with
                    // the first bytes of a TLS ClientHello: a client that dialed ws:// as if it were wss://
    let client_hello = [
        &[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1][..],
        &[0; 40],
    ];
    for (what, sent) in [
        (
            "a plain HTTP request",
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        ("binary garbage", garbage),
        ("a TLS ClientHello", client_hello.concat()),
    ] {
        let answer = hung_up_on(&server.addr, &sent);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            !answer.contains(" 101 "),
            "{what}: upgraded without a valid upgrade request: {answer}"
        );
        server.assert_alive();
    }

    let mut ws = ws_client(&server.addr, std_connect(&server.addr));
    let text = Message::text("still here");
    assert_eq!(ws_round_trip(&mut ws, text.clone()), text);
    ws_close(&mut ws);
    server.assert_alive();
}
