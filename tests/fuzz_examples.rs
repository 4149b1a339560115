//! Bad input from the network never crashes the example servers (reliability issue 6).
//!
//! `examples/kv.rs` and `examples/http_hello.rs` run as real processes, one per test, and
//! proptest throws at them: fully random bytes, and structured-but-broken protocol — wrong
//! lengths, negative and huge counts, missing CRLFs, truncated frames, valid commands with
//! bad arguments, huge headers, bad `Content-Length` — pipelined among valid requests, split
//! at random points over several writes with small pauses, and ended by a half-close, a close
//! or a reset.
//!
//! What every case asserts:
//! - what the server sent back is well-formed (a sequence of whole RESP replies / HTTP
//!   responses), and the answers to the valid requests before the first broken one are exactly
//!   right — so a server that survives but desynchronises its output still fails;
//! - after our half-close the server answers and closes within 10 s (no hang);
//! - the process is alive, printed no panic (a handler panic is caught by the runtime, so the
//!   process would survive it — but the client gets no answer), and a fresh well-formed request
//!   on a new connection gets the right answer (PING → +PONG; GET / → 200 Hello).
//!
//! After each storm the server's open fds (`/proc/PID/fd`) come back to within 4 of their count
//! before it (96 cases: a leak of one fd per connection cannot hide in that slack).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, TestRunner};

mod util;
use util::examples::{example, spawn_listening};

/// Cases per storm: enough to hit each generator branch many times, small enough that the
/// file stays well under 20 s on a noisy 2-core machine.
const CASES: u32 = 96;
/// How long the server gets to answer and close after our half-close; far above any
/// legitimate latency, so hitting it means a hang.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Example processes (tests/util/examples.rs builds them; this Server also keeps stderr and counts fds)
// ---------------------------------------------------------------------------------------------

/// A server example on an ephemeral port; killed on drop. Its stderr is collected so that a
/// caught handler panic (which leaves the process alive) still fails the test.
struct Server {
    name: &'static str,
    child: Child,
    addr: String,
    stderr: Arc<Mutex<Vec<u8>>>,
    drain: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `name` with `127.0.0.1:0` and reads the address from its first line
    /// (`<name>: listening on ADDR`).
    fn start(name: &'static str) -> Server {
        let mut cmd = Command::new(example(name));
        cmd.arg("127.0.0.1:0")
            .env("RUST_BACKTRACE", "0")
            .stderr(Stdio::piped());
        let (mut child, addr) = spawn_listening(&mut cmd, name);
        // drain stderr so the server never blocks on a full pipe
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (sink, mut pipe) = (stderr.clone(), child.stderr.take().unwrap());
        let drain = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Server {
            name,
            child,
            addr,
            stderr,
            drain: Some(drain),
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr)
            .unwrap_or_else(|e| panic!("connect to {} at {}: {e}", self.name, self.addr));
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.set_write_timeout(Some(PATIENCE)).unwrap();
        s
    }

    /// Open fds of the server process.
    fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// Alive, no panic printed so far, and `probe` gets the right answer on a new connection.
    fn assert_healthy(&mut self, probe: fn(&Server)) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}); stderr:\n{}", self.name, self.log());
        }
        self.assert_no_panic();
        probe(self);
    }

    fn assert_no_panic(&self) {
        let log = self.log();
        assert!(!log.contains("panicked"), "{} panicked:\n{log}", self.name);
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// After a storm: the fd count comes back to `base` (slack for the runtime's own lazily
    /// created fds), then the process is stopped and its whole stderr checked for panics.
    fn finish(mut self, base: usize) {
        let end = Instant::now() + PATIENCE;
        let slack = 4;
        while self.fd_count() > base + slack && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let now = self.fd_count();
        assert!(
            now <= base + slack,
            "{} leaks fds: {now} open after the storm, {base} before",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        // the pipe closes with the process: the drain thread has read everything
        if let Some(d) = self.drain.take() {
            d.join().unwrap();
        }
        self.assert_no_panic();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // a failed test: make sure the process does not outlive it
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cases` against a fresh `server`, checking its health after each, then its fds.
fn storm<S: Strategy>(
    server: &'static str,
    probe: fn(&Server),
    strategy: S,
    case: fn(&Server, S::Value),
) where
    S::Value: std::fmt::Debug,
{
    let mut srv = Server::start(server);
    srv.assert_healthy(probe);
    let base = srv.fd_count();
    let srv = Mutex::new(srv);
    let config = Config {
        cases: CASES,
        // each shrink step is a real exchange with the server: keep shrinking bounded
        max_shrink_iters: 400,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&strategy, |input| {
        let mut s = srv.lock().unwrap_or_else(|e| e.into_inner());
        case(&s, input);
        s.assert_healthy(probe);
        Ok(())
    });
    let srv = srv.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = result {
        panic!("{e}\nserver stderr:\n{}", srv.log());
    }
    srv.finish(base);
}

// ---------------------------------------------------------------------------------------------
// Delivery: split the bytes over several writes, then half-close, close or reset
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum End {
    /// shutdown(Write), then read everything the server sends until it closes.
    ReadAll,
    /// Close without reading (FIN).
    Close,
    /// Close with SO_LINGER 0 (RST).
    Reset,
}

/// How one case's bytes go over the wire.
#[derive(Debug, Clone)]
struct Delivery {
    cuts: Vec<Index>,
    pause: Duration,
    end: End,
}

fn delivery(read_weight: u32) -> impl Strategy<Value = Delivery> {
    (
        prop::collection::vec(any::<Index>(), 0..6),
        0..3u64,
        prop_oneof![
            read_weight => Just(End::ReadAll),
            1 => Just(End::Close),
            1 => Just(End::Reset),
        ],
    )
        .prop_map(|(cuts, ms, end)| Delivery {
            cuts,
            pause: Duration::from_millis(ms),
            end,
        })
}

/// Sends `bytes` as `how` says. With `End::ReadAll` returns what the server answered before
/// it closed, or None if the connection was reset (the server closed with our data unread,
/// so the answer may be cut short).
fn deliver(srv: &Server, bytes: &[u8], how: &Delivery) -> Option<Vec<u8>> {
    let mut c = srv.connect();
    let mut cuts: Vec<usize> = how.cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut from = 0;
    for to in cuts {
        match c.write_all(&bytes[from..to]) {
            Ok(()) => {}
            // the server answered a framing error and closed: fine, stop writing
            Err(e) if is_reset(&e) => break,
            Err(e) => panic!("{}: write failed (not reading?): {e}", srv.name),
        }
        from = to;
        std::thread::sleep(how.pause);
    }
    match how.end {
        End::ReadAll => read_to_close(srv, c),
        End::Close => None,
        End::Reset => {
            reset(&c);
            None
        }
    }
}

fn read_to_close(srv: &Server, mut c: TcpStream) -> Option<Vec<u8>> {
    let _ = c.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if is_reset(&e) => return None,
            Err(e) => panic!(
                "{} neither answered nor closed within {PATIENCE:?} of our half-close ({e}); \
                 got so far: {:?}",
                srv.name,
                got.escape_ascii().to_string()
            ),
        }
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Drops `c` with SO_LINGER 0 so the close sends RST instead of FIN.
fn reset(c: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `c` owns an open socket for this call; the option value is a live `linger`
    // whose exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

// ---------------------------------------------------------------------------------------------
// What a request should get back
// ---------------------------------------------------------------------------------------------

/// The answer one request (or a few glued together) must get.
#[derive(Clone)]
enum Expect {
    /// Exactly these bytes.
    Exact(Vec<u8>),
    /// Exactly one well-formed reply, content unspecified (bad arguments: some error).
    One,
    /// Broken framing: from here on the server may answer anything well-formed, or close.
    Broken,
    /// The server closes here: nothing more may follow.
    Closed,
}

/// A piece of a request stream and what it must get back.
#[derive(Clone)]
struct Frame {
    bytes: Vec<u8>,
    expect: Vec<Expect>,
}

impl Frame {
    fn exact(bytes: impl Into<Vec<u8>>, answer: impl Into<Vec<u8>>) -> Frame {
        Frame {
            bytes: bytes.into(),
            expect: vec![Expect::Exact(answer.into())],
        }
    }

    fn broken(bytes: impl Into<Vec<u8>>) -> Frame {
        Frame {
            bytes: bytes.into(),
            expect: vec![Expect::Broken],
        }
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind: Vec<&str> = self
            .expect
            .iter()
            .map(|e| match e {
                Expect::Exact(_) => "exact",
                Expect::One => "one",
                Expect::Broken => "broken",
                Expect::Closed => "closed",
            })
            .collect();
        let shown = if self.bytes.len() > 200 {
            format!(
                "{}... ({} bytes)",
                self.bytes[..200].escape_ascii(),
                self.bytes.len()
            )
        } else {
            self.bytes.escape_ascii().to_string()
        };
        write!(f, "{kind:?} \"{shown}\"")
    }
}

/// Checks `out` against the frames' expectations, using `one` to measure one well-formed
/// answer (None if the front of its input is not one).
fn check_answers(out: &[u8], frames: &[Frame], one: fn(&[u8]) -> Option<usize>) {
    let shown = || out.escape_ascii().to_string();
    let mut at = 0;
    let mut broken = false;
    'frames: for e in frames.iter().flat_map(|f| &f.expect) {
        match e {
            Expect::Exact(want) => {
                assert!(
                    out[at..].starts_with(want),
                    "expected {:?} at byte {at} of the answer {:?}",
                    want.escape_ascii().to_string(),
                    shown()
                );
                at += want.len();
            }
            Expect::One => {
                at += one(&out[at..]).unwrap_or_else(|| {
                    panic!("no well-formed answer at byte {at} of {:?}", shown())
                })
            }
            Expect::Broken => {
                broken = true;
                break 'frames;
            }
            Expect::Closed => break 'frames,
        }
    }
    if !broken {
        assert_eq!(at, out.len(), "answers nobody asked for: {:?}", shown());
    }
    while at < out.len() {
        at += one(&out[at..])
            .unwrap_or_else(|| panic!("malformed answer at byte {at} of {:?}", shown()));
    }
}

fn concat(frames: &[Frame]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|f| f.bytes.iter().copied())
        .collect()
}

/// Bytes skewed towards the protocol's own punctuation, so random input often gets past the
/// first check of a parser.
fn noisy_bytes(
    alphabet: &'static [u8],
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![1 => any::<u8>(), 2 => select(alphabet)], len)
}

// ---------------------------------------------------------------------------------------------
// kv: RESP
// ---------------------------------------------------------------------------------------------

/// A RESP array of bulk strings, as clients send commands.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

/// Length of the one RESP reply at the front of `b`, if a whole well-formed one is there.
/// Simple strings and errors must not carry a CR or LF (they would split the reply).
fn resp_reply(b: &[u8]) -> Option<usize> {
    let end = b.windows(2).position(|w| w == b"\r\n")?;
    let line = &b[1..end];
    let number = || std::str::from_utf8(line).ok()?.parse::<i64>().ok();
    match b.first()? {
        b'+' | b'-' if !line.contains(&b'\r') && !line.contains(&b'\n') => Some(end + 2),
        b':' => number().map(|_| end + 2),
        b'$' => match number()? {
            -1 => Some(end + 2),
            n if n >= 0 => {
                let body = end + 2 + n as usize;
                (b.get(body..body + 2)? == b"\r\n").then_some(body + 2)
            }
            _ => None,
        },
        b'*' => {
            let mut at = end + 2;
            for _ in 0..number()? {
                at += resp_reply(&b[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}

fn kv_probe(srv: &Server) {
    let mut c = srv.connect();
    c.write_all(&resp(&[b"PING"])).unwrap();
    let mut got = [0u8; 7];
    c.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("kv did not answer a fresh PING: {e}"));
    assert_eq!(&got, b"+PONG\r\n");
}

/// Keys that are never set, so reads of them have a known answer.
fn unset_key() -> impl Strategy<Value = Vec<u8>> {
    "[a-z0-9]{1,8}".prop_map(|k| format!("unset:{k}").into_bytes())
}

/// Well-formed commands with exactly known answers.
fn kv_valid() -> impl Strategy<Value = Frame> {
    let value = || prop::collection::vec(any::<u8>(), 0..48);
    prop_oneof![
        Just(Frame::exact(resp(&[b"PING"]), "+PONG\r\n")),
        Just(Frame::exact("PING\r\n", "+PONG\r\n")),
        // empty commands get no answer at all
        Just(Frame::exact("*0\r\n", "")),
        Just(Frame::exact("\r\n", "")),
        value().prop_map(|v| Frame::exact(resp(&[b"ECHO", &v]), bulk(&v))),
        value().prop_map(|v| Frame::exact(resp(&[b"ping", &v]), bulk(&v))),
        "[a-zA-Z0-9]{1,16}"
            .prop_map(|w| Frame::exact(format!("ECHO  {w}\r\n"), bulk(w.as_bytes()))),
        ("[a-z0-9]{1,8}", value()).prop_map(|(k, v)| {
            let k = format!("set:{k}").into_bytes();
            let mut bytes = resp(&[b"SET", &k, &v]);
            bytes.extend(resp(&[b"GET", &k]));
            let mut want = b"+OK\r\n".to_vec();
            want.extend(bulk(&v));
            Frame::exact(bytes, want)
        }),
        unset_key().prop_map(|k| Frame::exact(resp(&[b"GET", &k]), "$-1\r\n")),
        unset_key().prop_map(|k| Frame::exact(resp(&[b"DEL", &k]), ":0\r\n")),
        unset_key().prop_map(|k| Frame::exact(resp(&[b"TTL", &k]), ":-2\r\n")),
        prop::collection::vec(unset_key(), 1..4).prop_map(|ks| {
            let mut args: Vec<&[u8]> = vec![b"MGET"];
            args.extend(ks.iter().map(|k| &k[..]));
            let mut want = format!("*{}\r\n", ks.len()).into_bytes();
            ks.iter().for_each(|_| want.extend_from_slice(b"$-1\r\n"));
            Frame::exact(resp(&args), want)
        }),
    ]
}

/// Numbers at and past the edges of what the commands accept.
fn edgy_number() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(vec![
            "0",
            "-1",
            "1",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "18446744073709551616",
            "99999999999999999999999",
            "+5",
            " 1",
            "1e3",
            "0x10",
            "",
            "abc",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        (0..100_000u64).prop_map(|n| n.to_string().into_bytes()),
    ]
}

/// Well-framed commands with bad or extreme arguments: exactly one answer each.
fn kv_bad_args() -> impl Strategy<Value = Frame> {
    // a small keyspace so SET, EXPIRE, TTL and INCR meet on the same keys across cases
    let key = || select(vec!["a", "b", "c"]).prop_map(|k| k.as_bytes().to_vec());
    let option = || {
        prop_oneof![
            select(vec![
                "EX", "PX", "ex", "px", "NX", "XX", "nx", "KEEPTTL", ""
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            edgy_number(),
        ]
    };
    let then = || select(vec!["TTL", "EXPIRE", "INCR", "GET", "DEL", "SET"]);
    let anything = || prop_oneof![edgy_number(), prop::collection::vec(any::<u8>(), 0..12)];
    let name = select(vec![
        "GET",
        "SET",
        "DEL",
        "INCR",
        "EXPIRE",
        "TTL",
        "MGET",
        "MSET",
        "ECHO",
        "PING",
        "COMMAND",
        "CONFIG",
        "sEt",
        "FLY",
        "",
        "A\r\nB",
        "\r\n+OK",
        "\u{7f}\u{0}",
    ]);
    prop_oneof![
        // SET with options, then another command on the same key
        (
            key(),
            anything(),
            prop::collection::vec(option(), 0..5),
            then(),
            edgy_number()
        )
            .prop_map(|(k, v, opts, then, n)| {
                let mut args: Vec<&[u8]> = vec![b"SET", &k, &v];
                args.extend(opts.iter().map(|o| &o[..]));
                let mut bytes = resp(&args);
                let then_args: Vec<&[u8]> = match then {
                    "EXPIRE" | "SET" => vec![then.as_bytes(), &k, &n],
                    _ => vec![then.as_bytes(), &k],
                };
                bytes.extend(resp(&then_args));
                Frame {
                    bytes,
                    expect: vec![Expect::One, Expect::One],
                }
            }),
        (key(), edgy_number()).prop_map(|(k, n)| Frame {
            bytes: resp(&[b"EXPIRE", &k, &n]),
            expect: vec![Expect::One],
        }),
        // any command name with any arguments (but at least the name: one answer)
        (name, prop::collection::vec(anything(), 0..5)).prop_map(|(name, rest)| {
            let mut args: Vec<&[u8]> = vec![name.as_bytes()];
            args.extend(rest.iter().map(|a| &a[..]));
            Frame {
                bytes: resp(&args),
                expect: vec![Expect::One],
            }
        }),
    ]
}

/// Framing errors: after one of these the server may answer anything well-formed, or close.
fn kv_broken() -> impl Strategy<Value = Frame> {
    let cmd = || {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..10), 1..4)
            .prop_map(|args| resp(&args.iter().map(|a| &a[..]).collect::<Vec<_>>()))
    };
    prop_oneof![
        // a bulk length off by a little
        (prop::collection::vec(any::<u8>(), 0..10), -3..=3i64)
            .prop_filter("a wrong length", |(_, d)| *d != 0)
            .prop_map(|(a, d)| {
                let mut b = format!("*1\r\n${}\r\n", a.len() as i64 + d).into_bytes();
                b.extend(a);
                b.extend_from_slice(b"\r\n");
                Frame::broken(b)
            }),
        // odd, negative and huge counts and lengths
        (
            select(vec![
                "*-1",
                "*-5",
                "*1048577",
                "*1048576",
                "*99999999999999999999",
                "*abc",
                "*",
                "* 1",
                "*1.5",
                "*+1",
                "*2",
            ]),
            select(vec![
                "$-1",
                "$-9",
                "$67108865",
                "$67108864",
                "$99999999999999999999",
                "$x",
                "$",
                ":1",
                "+OK",
                "$4",
            ]),
        )
            .prop_map(|(n, l)| Frame::broken(format!("{n}\r\n{l}\r\nPING\r\n"))),
        // a CRLF mangled somewhere in a valid command
        (
            cmd(),
            any::<Index>(),
            select(vec!["\n", "\r", "", "\r\r\n", "\n\r"])
        )
            .prop_map(|(mut b, i, sep)| {
                let crlfs: Vec<usize> = (0..b.len() - 1)
                    .filter(|&j| &b[j..j + 2] == b"\r\n")
                    .collect();
                let j = crlfs[i.index(crlfs.len())];
                b.splice(j..j + 2, sep.bytes());
                Frame::broken(b)
            }),
        // a valid command cut short
        (cmd(), any::<Index>()).prop_map(|(b, i)| Frame::broken(b[..i.index(b.len())].to_vec())),
        // an inline line with no end
        (1..40_000usize).prop_map(|n| Frame::broken(vec![b'A'; n])),
        noisy_bytes(b"*$:+-\r\n0123456789 PINGSET", 1..64).prop_map(Frame::broken),
    ]
}

#[test]
fn kv_survives_random_bytes() {
    storm(
        "kv",
        kv_probe,
        (
            noisy_bytes(b"*$:+-\r\n0123456789 PINGSETGET", 0..2048).prop_map(Frame::broken),
            delivery(3),
        ),
        |srv, (frame, how)| {
            if let Some(out) = deliver(srv, &frame.bytes, &how) {
                check_answers(&out, &[frame], resp_reply);
            }
        },
    );
}

#[test]
fn kv_survives_broken_and_pipelined_resp() {
    let frame = prop_oneof![6 => kv_valid(), 3 => kv_bad_args(), 2 => kv_broken()];
    storm(
        "kv",
        kv_probe,
        (prop::collection::vec(frame, 1..8), delivery(8)),
        |srv, (frames, how)| {
            if let Some(out) = deliver(srv, &concat(&frames), &how) {
                check_answers(&out, &frames, resp_reply);
            }
        },
    );
}

// ---------------------------------------------------------------------------------------------
// http_hello: HTTP/1.1
// ---------------------------------------------------------------------------------------------

const HELLO: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n";

/// Length of the one HTTP response at the front of `b`, if a whole well-formed one is there.
/// A response whose body is missing and that is followed by another response or the end is
/// taken as an answer to HEAD.
fn http_response(b: &[u8]) -> Option<usize> {
    let end = b.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&b[..end - 4]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?;
    let code: u16 = status.get(..3)?.parse().ok()?;
    if !(100..600).contains(&code) || status.as_bytes().get(3) != Some(&b' ') {
        return None;
    }
    let mut length = None;
    let mut close = false;
    for line in lines {
        let (name, value) = line.split_once(": ")?;
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().ok()?);
        }
        close |= name.eq_ignore_ascii_case("connection") && value == "close";
    }
    let rest = &b[end..];
    let len = if rest.is_empty() || rest.starts_with(b"HTTP/1.1 ") {
        end
    } else {
        end + length?
    };
    // the server closes after `Connection: close`: nothing may follow
    (len <= b.len() && (!close || len == b.len())).then_some(len)
}

fn http_probe(srv: &Server) {
    let mut c = srv.connect();
    c.write_all(b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got)
        .unwrap_or_else(|e| panic!("http_hello did not answer a fresh GET: {e}"));
    assert_eq!(
        got,
        format!("{HELLO}Connection: close\r\n\r\nHello, World!\n")
    );
}

/// A well-formed request and the exact response the example's routing gives it.
fn http_valid() -> impl Strategy<Value = Frame> {
    let header = (
        select(vec![
            "Host",
            "User-Agent",
            "Accept",
            "X-Fuzz",
            "host",
            "CONNECTION",
            "Connection",
        ]),
        "[ -~]{0,40}",
    );
    (
        select(vec!["GET", "HEAD", "POST", "DELETE", "get"]),
        select(vec!["/", "/x", "/a/b?c=d", "/%20"]),
        prop::collection::vec(header, 0..4),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(method, path, headers, body, close)| {
            let mut req = format!("{method} {path} HTTP/1.1\r\n");
            let mut keep_alive = true;
            for (name, value) in headers {
                // value is trimmed by the server; only exact close / keep-alive matter
                let value = if name.eq_ignore_ascii_case("connection") {
                    let v = if value.len() % 2 == 0 {
                        "keep-alive"
                    } else {
                        "close"
                    };
                    keep_alive = v == "keep-alive";
                    v.to_string()
                } else {
                    value
                };
                req += &format!("{name}: {value}\r\n");
            }
            if close {
                req += "Connection: close\r\n";
                keep_alive = false;
            }
            if !body.is_empty() {
                req += &format!("Content-Length: {}\r\n", body.len());
            }
            req += "\r\n";
            let mut bytes = req.into_bytes();
            bytes.extend(body);
            let (status, body): (&str, &str) = match (method, path) {
                ("GET" | "HEAD", "/") => ("200 OK", "Hello, World!\n"),
                ("GET" | "HEAD", _) => ("404 Not Found", "not found\n"),
                _ => ("405 Method Not Allowed", "method not allowed\n"),
            };
            let mut want = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
                body.len(),
                if keep_alive {
                    ""
                } else {
                    "Connection: close\r\n"
                }
            );
            if method != "HEAD" {
                want += body;
            }
            let mut expect = vec![Expect::Exact(want.into_bytes())];
            if !keep_alive {
                // the server closes after this answer: whatever follows gets nothing
                expect.push(Expect::Closed);
            }
            Frame { bytes, expect }
        })
}

/// Heads and bodies that are wrong in one way or another.
fn http_broken() -> impl Strategy<Value = Frame> {
    let token = || {
        prop_oneof![
            select(vec![
                "GET",
                "HEAD",
                "",
                "/",
                "HTTP/1.1",
                "HTTP/1.0",
                "HTTP/2",
                "HTTP/1.1 x"
            ])
            .prop_map(String::from),
            "[ -~]{0,12}",
        ]
    };
    let line = || noisy_bytes(b": \r\nHost-Length0123456789", 0..40);
    prop_oneof![
        // random request lines and header lines
        (
            token(),
            token(),
            token(),
            prop::collection::vec(line(), 0..4)
        )
            .prop_map(|(m, p, v, lines)| {
                let mut b = format!("{m} {p} {v}\r\n").into_bytes();
                for l in lines {
                    b.extend(l);
                    b.extend_from_slice(b"\r\n");
                }
                b.extend_from_slice(b"\r\n");
                Frame::broken(b)
            }),
        // a huge header: around the 16 KiB head limit and well past it
        (8_000..40_000usize).prop_map(|n| {
            Frame::broken(format!(
                "GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n",
                "a".repeat(n)
            ))
        }),
        // a bad, oversized or lying Content-Length
        (
            select(vec![
                "-1",
                "abc",
                "",
                "+5",
                " 7 ",
                "1048576",
                "1048577",
                "18446744073709551616",
                "5, 5",
                "0x10",
                "3",
            ]),
            prop::collection::vec(any::<u8>(), 0..16),
        )
            .prop_map(|(len, body)| {
                let mut b =
                    format!("POST / HTTP/1.1\r\nContent-Length: {len}\r\n\r\n").into_bytes();
                b.extend(body);
                Frame::broken(b)
            }),
        Just(Frame::broken(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )),
        // a valid request cut short
        (http_valid(), any::<Index>())
            .prop_map(|(f, i)| Frame::broken(f.bytes[..i.index(f.bytes.len())].to_vec())),
        noisy_bytes(b"GET / HTTP/1.1\r\n:", 1..256).prop_map(Frame::broken),
    ]
}

#[test]
fn http_hello_survives_random_bytes() {
    storm(
        "http_hello",
        http_probe,
        (
            noisy_bytes(b"GET / HTTP/1.1\r\n: Content-Length", 0..4096).prop_map(Frame::broken),
            delivery(3),
        ),
        |srv, (frame, how)| {
            if let Some(out) = deliver(srv, &frame.bytes, &how) {
                check_answers(&out, &[frame], http_response);
            }
        },
    );
}

#[test]
fn http_hello_survives_broken_and_pipelined_requests() {
    let frame = prop_oneof![3 => http_valid(), 1 => http_broken()];
    storm(
        "http_hello",
        http_probe,
        (prop::collection::vec(frame, 1..6), delivery(6)),
        |srv, (frames, how)| {
            if let Some(out) = deliver(srv, &concat(&frames), &how) {
                check_answers(&out, &frames, http_response);
            }
        },
    );
}

/// The inputs the storms above first found (kv panicked on them, or split its answer), as
/// one pipelined request: every command gets exactly its one right answer.
#[test]
fn kv_fuzz_regressions_get_one_well_formed_answer_each() {
    let mut srv = Server::start("kv");
    let max: &[u8] = b"9223372036854775807";
    let mut req = Vec::new();
    for cmd in [
        &[&b"SET"[..], b"fz:a", b"1"][..],
        &[b"EXPIRE", b"fz:a", max],
        &[b"SET", b"fz:c", b"v", b"EX", max],
        &[b"SET", b"fz:b", b"v", b"PX", max],
        &[b"TTL", b"fz:b"],
        &[b"A\r\n+OK\rB"],
        &[b"PING"],
    ] {
        req.extend(resp(cmd));
    }
    let how = Delivery {
        cuts: Vec::new(),
        pause: Duration::ZERO,
        end: End::ReadAll,
    };
    let out = deliver(&srv, &req, &how).expect("kv reset the connection");
    let mut answers = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let n = resp_reply(&out[at..])
            .unwrap_or_else(|| panic!("malformed: {:?}", out.escape_ascii().to_string()));
        answers.push(String::from_utf8_lossy(&out[at..at + n]).into_owned());
        at += n;
    }
    assert_eq!(answers.len(), 7, "{answers:?}");
    assert_eq!(answers[0], "+OK\r\n");
    assert!(
        answers[1].starts_with("-ERR invalid expire time"),
        "{answers:?}"
    );
    assert!(
        answers[2].starts_with("-ERR invalid expire time"),
        "{answers:?}"
    );
    assert_eq!(answers[3], "+OK\r\n");
    assert!(answers[4].starts_with(":92233720368547"), "{answers:?}");
    assert_eq!(answers[5], "-ERR unknown command 'A  +OK B'\r\n");
    assert_eq!(answers[6], "+PONG\r\n");
    srv.assert_healthy(kv_probe);
    let base = srv.fd_count();
    srv.finish(base);
}
