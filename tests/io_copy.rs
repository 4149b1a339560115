//! `coronet::io::copy`: its kernel paths (sendfile, splice) and the buffered loop, on real
//! loopback sockets, from coroutines and plain threads; and how a copy ends when the other
//! side fails, a deadline passes, or the source is closed.

mod util;

use coronet::io::copy;
use coronet::net::{Shutdown, TcpListener, TcpStream};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use util::files::{block_pattern as pattern, temp_file};

/// A connected (client, server) pair.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

/// Reads `s` to its end on a plain thread.
fn read_all_on_thread(mut s: TcpStream) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    })
}

/// Small socket buffers, so a peer that stops reading stalls a copy after little data.
fn small_buffers(sender: &TcpStream, receiver: &TcpStream) {
    sender.set_send_buffer_size(16 << 10).unwrap();
    receiver.set_recv_buffer_size(16 << 10).unwrap();
}

/// Records coronet's `copy:` log lines, so a test can see which path a copy took.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("coronet::io")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            self.0.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn captured() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(c).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
        c
    })
}

fn logged(line: &str) -> bool {
    captured().0.lock().unwrap().iter().any(|l| l == line)
}

#[test]
fn file_to_socket_from_a_coroutine() {
    let capture = captured();
    // An odd length, so this test's log line is its own.
    let data = Arc::new(pattern((6 << 20) + 3));
    let file = temp_file("coroutine", &data);
    let (client, server) = tcp_pair();
    let reader = read_all_on_thread(client);
    let n = coronet::run(move || {
        let (mut file, mut server) = (file, server);
        copy(&mut file, &mut server).unwrap()
    });
    assert_eq!(n, data.len() as u64);
    assert_eq!(reader.join().unwrap(), *data);
    let line = format!("copy: Sendfile moved {} bytes", data.len());
    assert!(
        logged(&line),
        "no {line:?} in {:?}",
        capture.0.lock().unwrap()
    );
}

#[test]
fn file_to_socket_from_a_plain_thread_with_a_coroutine_reading() {
    let data = pattern(5 << 20);
    let mut file = temp_file("thread", &data);
    let (client, mut server) = tcp_pair();
    let reader = coronet::go(move || {
        let mut v = Vec::new();
        (&client).read_to_end(&mut v).unwrap();
        v
    });
    // `&File` and `&TcpStream` take the fast path too.
    assert_eq!(copy(&mut &file, &mut &server).unwrap(), data.len() as u64);
    server.shutdown(Shutdown::Write).unwrap();
    assert_eq!(reader.join().unwrap(), data);
    // The file position moved to the end, as reading would have moved it.
    assert_eq!(copy(&mut file, &mut server).unwrap(), 0);
}

#[test]
fn socket_to_socket_through_a_proxy() {
    let capture = captured();
    let len = (4 << 20) + 5;
    let data = pattern(len);

    // The server echoes with a copy from its connection into itself.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_addr = server.local_addr().unwrap();
    let echo = coronet::go(move || {
        let (s, _) = server.accept().unwrap();
        let n = copy(&mut &s, &mut &s).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        n
    });

    // The proxy copies each way in its own coroutine, passing end of file along.
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let relay = coronet::go(move || {
        let (c, _) = proxy.accept().unwrap();
        let s = TcpStream::connect(server_addr).unwrap();
        let (c, s) = (Arc::new(c), Arc::new(s));
        let (c2, s2) = (c.clone(), s.clone());
        let up = coronet::go(move || {
            let n = copy(&mut &*c2, &mut &*s2).unwrap();
            s2.shutdown(Shutdown::Write).unwrap();
            n
        });
        let down = copy(&mut &*s, &mut &*c).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        (up.join().unwrap(), down)
    });

    let client = TcpStream::connect(proxy_addr).unwrap();
    let mut tx = client.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        tx.write_all(&sent).unwrap();
        tx.shutdown(Shutdown::Write).unwrap();
    });
    let back = read_all_on_thread(client).join().unwrap();
    writer.join().unwrap();
    assert_eq!(back.len(), len);
    assert!(back == data, "the data came back altered");
    assert_eq!(relay.join().unwrap(), (len as u64, len as u64));
    assert_eq!(echo.join().unwrap(), len as u64);
    let line = format!("copy: Splice moved {len} bytes");
    let lines = capture.0.lock().unwrap();
    assert_eq!(
        lines.iter().filter(|l| **l == line).count(),
        3,
        "each of the three copies must splice: {lines:?}"
    );
}

/// A writer that is none of coronet's types.
struct Counting<W> {
    inner: W,
    writes: usize,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn other_readers_and_writers_take_the_buffered_loop() {
    // plain memory
    let data = pattern(300_000);
    let mut out = Vec::new();
    assert_eq!(copy(&mut &data[..], &mut out).unwrap(), data.len() as u64);
    assert_eq!(out, data);

    // a wrapped file into a socket, parking on write inside the loop
    let big = pattern(3 << 20);
    let file = temp_file("bufreader", &big);
    let (client, server) = tcp_pair();
    let reader = read_all_on_thread(client);
    let n = coronet::run(move || {
        let mut server = Counting {
            inner: server,
            writes: 0,
        };
        let n = copy(&mut BufReader::new(file), &mut server).unwrap();
        assert!(server.writes > 1, "went through the wrapper");
        n
    });
    assert_eq!(n, big.len() as u64);
    assert_eq!(reader.join().unwrap(), big);

    // a socket behind `dyn Read` into memory
    let (mut client, server) = tcp_pair();
    let sent = big.clone();
    let writer = std::thread::spawn(move || client.write_all(&sent).unwrap());
    let mut out = Vec::new();
    let src: &mut dyn Read = &mut &server;
    assert_eq!(copy(src, &mut out).unwrap(), big.len() as u64);
    writer.join().unwrap();
    assert_eq!(out, big);
}

/// Makes `s` send a reset when dropped.
fn reset_on_drop(s: &TcpStream) {
    s.set_linger(Some(Duration::ZERO)).unwrap();
}

fn assert_reset(err: &io::Error) {
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("write tcp "), "{err}");
}

#[test]
fn a_destination_that_resets_mid_copy_ends_it_with_an_error() {
    // sendfile
    let mut file = temp_file("reset", &vec![0x5a; 4 << 20]);
    let (mut client, mut server) = tcp_pair();
    small_buffers(&server, &client);
    let peer = std::thread::spawn(move || {
        let mut buf = vec![0; 64 << 10];
        client.read_exact(&mut buf).unwrap();
        reset_on_drop(&client);
    });
    let err = copy(&mut file, &mut server).unwrap_err();
    assert_reset(&err);
    peer.join().unwrap();

    // splice, in a coroutine; the source never ends
    let (mut feed, src) = tcp_pair();
    let (dst, mut client) = tcp_pair();
    small_buffers(&dst, &client);
    let feeder = std::thread::spawn(move || {
        let chunk = pattern(64 << 10);
        while feed.write_all(&chunk).is_ok() {}
    });
    let copier = coronet::go(move || {
        let r = copy(&mut &src, &mut &dst);
        drop(src); // stops the feeder
        r
    });
    let mut buf = vec![0; 64 << 10];
    client.read_exact(&mut buf).unwrap();
    reset_on_drop(&client);
    drop(client);
    assert_reset(&copier.join().unwrap().unwrap_err());
    feeder.join().unwrap();
}

fn assert_timed_out(err: &io::Error) {
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err:?}");
    assert!(err.to_string().starts_with("write tcp "), "{err}");
    assert!(err.to_string().ends_with("i/o timeout"), "{err}");
}

#[test]
fn a_write_deadline_stops_a_copy_to_a_peer_that_never_reads() {
    // sendfile, on a plain thread
    let mut file = temp_file("deadline", &vec![0x5a; 4 << 20]);
    let (idle, mut server) = tcp_pair();
    small_buffers(&server, &idle);
    let start = Instant::now();
    server
        .set_write_deadline(Some(start + Duration::from_millis(100)))
        .unwrap();
    assert_timed_out(&copy(&mut file, &mut server).unwrap_err());
    assert!(start.elapsed() >= Duration::from_millis(100));

    // splice, in a coroutine, with the deadline set while the copy is blocked
    let (mut feed, src) = tcp_pair();
    let (dst, idle2) = tcp_pair();
    small_buffers(&dst, &idle2);
    let feeder = std::thread::spawn(move || {
        let chunk = pattern(64 << 10);
        while feed.write_all(&chunk).is_ok() {}
    });
    let dst = Arc::new(dst);
    let d2 = dst.clone();
    let copier = coronet::go(move || {
        let r = copy(&mut &src, &mut &*d2);
        drop(src);
        r
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(!copier.is_finished(), "the copy should be blocked on write");
    dst.set_write_deadline(Some(Instant::now())).unwrap();
    assert_timed_out(&copier.join().unwrap().unwrap_err());
    feeder.join().unwrap();
    drop(idle);
    drop(idle2);
}

fn assert_closed(err: &io::Error, op: &str) {
    assert!(err.to_string().starts_with(&format!("{op} tcp ")), "{err}");
    assert!(
        err.to_string()
            .ends_with("use of closed network connection"),
        "{err}"
    );
}

#[test]
fn close_unblocks_a_copy() {
    // the source closed under a splice blocked on read, in a coroutine
    let (_quiet, src) = tcp_pair();
    let (dst, _sink) = tcp_pair();
    let src = Arc::new(src);
    let s2 = src.clone();
    let copier = coronet::go(move || copy(&mut &*s2, &mut &dst));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!copier.is_finished(), "the copy should be blocked on read");
    src.close().unwrap();
    assert_closed(&copier.join().unwrap().unwrap_err(), "read");

    // the destination closed under a sendfile blocked on write, on a plain thread
    let mut file = temp_file("close", &vec![0x5a; 4 << 20]);
    let (idle, server) = tcp_pair();
    small_buffers(&server, &idle);
    let server = Arc::new(server);
    let s2 = server.clone();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        s2.close().unwrap();
    });
    assert_closed(&copy(&mut file, &mut &*server).unwrap_err(), "write");
    closer.join().unwrap();
}

/// With `SIGPIPE` at its default action (death), a copy into a reset connection must still
/// return an error: `copy` then avoids `sendfile`, which cannot pass `MSG_NOSIGNAL`. Runs
/// in a child process, since changing the disposition would endanger the other tests.
#[test]
fn a_copy_into_a_reset_connection_survives_default_sigpipe() {
    const CHILD: &str = "CORONET_IO_COPY_SIGPIPE_CHILD";
    const NAME: &str = "a_copy_into_a_reset_connection_survives_default_sigpipe";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--test-threads=1", "--nocapture"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        return;
    }
    // SAFETY: restoring the default disposition of SIGPIPE; no handler is involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let (client, mut server) = tcp_pair();
    reset_on_drop(&client);
    drop(client);
    // Take the reset's ECONNRESET, so the next write is EPIPE, the error that signals.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.write(b"x").is_ok() {
        assert!(Instant::now() < deadline, "the reset never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut file = temp_file("sigpipe", &pattern(1 << 20));
    let err = copy(&mut file, &mut server).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err:?}");
}

/// `sendfile` and `splice` obey the open file's blocking mode, which a clone converted to
/// std turns on for the original too; such a copy must take the buffered loop (whose sends
/// and receives never block) instead of blocking its thread.
#[test]
fn a_socket_put_in_blocking_mode_by_a_std_clone_is_copied_without_blocking() {
    let capture = captured();
    // every byte arrives, through the buffered loop (the only test whose sendfile falls back)
    let data = pattern((1 << 20) + 7);
    let mut file = temp_file("blocking", &data);
    let (client, mut server) = tcp_pair();
    let std_clone: std::net::TcpStream = server.try_clone().unwrap().into();
    let reader = read_all_on_thread(client);
    assert_eq!(copy(&mut file, &mut server).unwrap(), data.len() as u64);
    drop((server, std_clone));
    assert_eq!(reader.join().unwrap(), data);
    assert!(
        logged("copy: Sendfile unsupported after 0 bytes, buffering the rest"),
        "{:?}",
        capture.0.lock().unwrap()
    );

    // sendfile to a peer that reads nothing for 3 s: the write deadline stops the copy. A
    // sendfile that blocked the thread would only return once the peer reads.
    let mut file = temp_file("blocking-deadline", &vec![0x5a; 4 << 20]);
    let (idle, mut server) = tcp_pair();
    small_buffers(&server, &idle);
    let std_clone: std::net::TcpStream = server.try_clone().unwrap().into();
    let late_reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        let mut idle = idle;
        io::copy(&mut idle, &mut io::sink()).unwrap()
    });
    let start = Instant::now();
    server
        .set_write_deadline(Some(start + Duration::from_millis(200)))
        .unwrap();
    assert_timed_out(&copy(&mut file, &mut server).unwrap_err());
    assert!(start.elapsed() < Duration::from_millis(2500), "blocked");
    drop((server, std_clone));
    late_reader.join().unwrap();

    // splice from a source that sends nothing for 3 s, in a coroutine: the read deadline
    // stops it; a splice that blocked the worker would only return with the late bytes.
    let (feed, src) = tcp_pair();
    let (dst, _sink) = tcp_pair();
    let std_clone: std::net::TcpStream = src.try_clone().unwrap().into();
    let late_feed = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        let mut feed = feed;
        let _ = feed.write_all(b"late");
        feed
    });
    let start = Instant::now();
    let copier = coronet::go(move || {
        src.set_read_deadline(Some(Instant::now() + Duration::from_millis(200)))
            .unwrap();
        copy(&mut &src, &mut &dst)
    });
    let err = copier.join().unwrap().unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(2500), "blocked");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err:?}");
    assert!(err.to_string().starts_with("read tcp "), "{err}");
    drop((late_feed.join().unwrap(), std_clone));
}

// TCP urgent data. `send(MSG_OOB)` puts one byte in the stream and marks it; `recv` skips
// that byte (or, with `SO_OOBINLINE`, returns it in line) and goes on, but `splice` stops
// at the mark and never passes it. A splice copy must still deliver what `std::io::copy`,
// a `recv` loop, delivers: not end early at the mark, nor wait there forever.

/// Sends `byte` as TCP urgent data.
fn send_urgent(s: &impl AsRawFd, byte: u8) {
    // SAFETY: the fd is open while `s` is borrowed; the buffer is one live byte.
    let n = unsafe { libc::send(s.as_raw_fd(), [byte].as_ptr().cast(), 1, libc::MSG_OOB) };
    assert_eq!(n, 1, "send(MSG_OOB): {}", io::Error::last_os_error());
}

/// Makes `s` receive urgent bytes in line (`SO_OOBINLINE`), where a `recv` returns them.
fn oob_inline(s: &TcpStream) {
    let on: libc::c_int = 1;
    // SAFETY: the fd is open while `s` is borrowed; the option value is a live `c_int`.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_OOBINLINE,
            std::ptr::addr_of!(on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_OOBINLINE: {}", io::Error::last_os_error());
}

/// Who runs a copy.
#[derive(Clone, Copy, Debug)]
enum Copier {
    /// `coronet::io::copy` in a coroutine.
    Coroutine,
    /// `coronet::io::copy` on a plain thread.
    Thread,
    /// `std::io::copy`, the reference.
    Std,
}

impl Copier {
    /// Copies `src` into `dst` to the end, then drops both.
    fn copy(self, src: TcpStream, dst: TcpStream) -> io::Result<u64> {
        match self {
            Copier::Coroutine => coronet::run(move || copy(&mut &src, &mut &dst)),
            Copier::Thread => copy(&mut &src, &mut &dst),
            Copier::Std => io::copy(&mut &src, &mut &dst),
        }
    }

    /// Starts that copy in the background.
    fn start(self, src: TcpStream, dst: TcpStream) -> Box<dyn FnOnce() -> io::Result<u64>> {
        match self {
            Copier::Coroutine => {
                let h = coronet::go(move || copy(&mut &src, &mut &dst));
                Box::new(move || h.join().unwrap())
            }
            _ => {
                let h = std::thread::spawn(move || self.copy(src, dst));
                Box::new(move || h.join().unwrap())
            }
        }
    }
}

/// `before`, the urgent byte `X` and `after`, queued at the source followed by its end,
/// copied by `how`: what the copy returned and what the destination received.
fn copy_urgent_then_eof(how: Copier, before: &[u8], after: &[u8], inline: bool) -> (u64, Vec<u8>) {
    let (mut feed, src) = tcp_pair();
    let (dst, mut dst_r) = tcp_pair();
    if inline {
        oob_inline(&src);
    }
    feed.write_all(before).unwrap();
    send_urgent(&feed, b'X');
    feed.write_all(after).unwrap();
    feed.shutdown(Shutdown::Write).unwrap();
    // All of it, end of file included, is queued at `src` before the copy starts.
    std::thread::sleep(Duration::from_millis(100));
    let n = how.copy(src, dst).unwrap();
    let mut got = Vec::new();
    dst_r.read_to_end(&mut got).unwrap();
    (n, got)
}

#[test]
fn urgent_data_before_end_of_file_is_copied_as_std_copies_it() {
    let cases: [(&[u8], &[u8]); 4] = [(b"abc", b"def"), (b"", b"def"), (b"abc", b""), (b"", b"")];
    for (before, after) in cases {
        for inline in [false, true] {
            let mut want = before.to_vec();
            if inline {
                want.push(b'X');
            }
            want.extend_from_slice(after);
            for how in [Copier::Std, Copier::Coroutine, Copier::Thread] {
                let (n, got) = copy_urgent_then_eof(how, before, after, inline);
                assert_eq!(
                    (n, String::from_utf8_lossy(&got)),
                    (want.len() as u64, String::from_utf8_lossy(&want)),
                    "{how:?}, {:?} X {:?}, inline {inline}",
                    String::from_utf8_lossy(before),
                    String::from_utf8_lossy(after),
                );
            }
        }
    }
}

/// When the urgent byte and the bytes around it reach a source that stays open.
#[derive(Clone, Copy, Debug)]
enum Arrival {
    /// All queued before the copy starts.
    BeforeTheCopy,
    /// All at once, while the copy waits on the empty source.
    WhileItWaits,
    /// `abc` and the urgent byte while it waits; `def` a moment later, when the copy has
    /// reached the mark with nothing behind it.
    RestLater,
}

/// `abc`, an urgent byte and `def` reach a source that stays open (with a 5 s read
/// deadline), copied by `how`: the 6 bytes must come through while the source is open,
/// and the copy then ends with the source's end of file.
fn copy_urgent_from_open_source(how: Copier, arrival: Arrival) {
    let (mut feed, src) = tcp_pair();
    let (dst, mut dst_r) = tcp_pair();
    src.set_read_deadline(Some(Instant::now() + Duration::from_secs(5)))
        .unwrap();
    let start = Instant::now();
    let pause = || std::thread::sleep(Duration::from_millis(100));
    let copier = match arrival {
        Arrival::BeforeTheCopy => {
            feed.write_all(b"abc").unwrap();
            send_urgent(&feed, b'X');
            feed.write_all(b"def").unwrap();
            pause();
            how.start(src, dst)
        }
        Arrival::WhileItWaits => {
            let copier = how.start(src, dst);
            pause();
            feed.write_all(b"abc").unwrap();
            send_urgent(&feed, b'X');
            feed.write_all(b"def").unwrap();
            copier
        }
        Arrival::RestLater => {
            let copier = how.start(src, dst);
            pause();
            feed.write_all(b"abc").unwrap();
            send_urgent(&feed, b'X');
            pause();
            feed.write_all(b"def").unwrap();
            copier
        }
    };
    // A copy that stalls at the mark ends at the deadline and drops `dst`: this read then
    // fails with the bytes it got so far.
    let mut got = [0; 6];
    let r = dst_r.read_exact(&mut got);
    assert!(
        r.is_ok() && got == *b"abcdef",
        "{how:?}, {arrival:?}: {r:?} after {:?}, {:?}",
        start.elapsed(),
        String::from_utf8_lossy(&got)
    );
    feed.shutdown(Shutdown::Write).unwrap();
    assert_eq!(copier().unwrap(), 6, "{how:?}, {arrival:?}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{how:?}, {arrival:?}"
    );
    let mut rest = Vec::new();
    dst_r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"", "{how:?}, {arrival:?}");
}

#[test]
fn urgent_data_does_not_stall_a_copy_from_a_coroutine() {
    for arrival in [
        Arrival::BeforeTheCopy,
        Arrival::WhileItWaits,
        Arrival::RestLater,
    ] {
        copy_urgent_from_open_source(Copier::Coroutine, arrival);
    }
}

#[test]
fn urgent_data_does_not_stall_a_copy_on_a_plain_thread() {
    for arrival in [
        Arrival::BeforeTheCopy,
        Arrival::WhileItWaits,
        Arrival::RestLater,
    ] {
        copy_urgent_from_open_source(Copier::Thread, arrival);
    }
    // The reference behaves the same.
    copy_urgent_from_open_source(Copier::Std, Arrival::BeforeTheCopy);
}

/// Megabytes, an urgent byte, megabytes, written while `how` copies from a source that
/// stays open until all of it has arrived (so the copy must pass the mark on its own, not
/// at end of file): every byte but the urgent one arrives, in order, exactly once; those
/// before the mark went through `splice`.
fn copy_urgent_mid_stream(how: Copier, before: usize, after: usize) {
    let capture = captured();
    let data = Arc::new(pattern(before + after));
    let (feed, src) = tcp_pair();
    let (dst, mut dst_r) = tcp_pair();
    // Deadlines, so a copy that stalls at the mark fails the test instead of hanging it.
    src.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)))
        .unwrap();
    dst.set_write_deadline(Some(Instant::now() + Duration::from_secs(10)))
        .unwrap();
    let len = data.len();
    let reader = std::thread::spawn(move || {
        let mut got = vec![0; len];
        let r = dst_r.read_exact(&mut got);
        (r, got, dst_r)
    });
    let copier = how.start(src, dst);
    // A blocking std socket, so the urgent send waits for room like `write_all`.
    let mut feed: std::net::TcpStream = feed.into();
    let sent = data.clone();
    let feeder = std::thread::spawn(move || -> io::Result<std::net::TcpStream> {
        feed.write_all(&sent[..before])?;
        send_urgent(&feed, b'!');
        feed.write_all(&sent[before..])?;
        Ok(feed)
    });
    let (r, got, mut dst_r) = reader.join().unwrap();
    assert!(
        r.is_ok(),
        "{how:?}: {r:?}; the copy ended with {:?}",
        copier()
    );
    assert!(got == *data, "{how:?}: the data arrived altered");
    // Now the end of file, which ends the copy; nothing follows the data.
    feeder
        .join()
        .unwrap()
        .unwrap()
        .shutdown(Shutdown::Write)
        .unwrap();
    assert_eq!(copier().unwrap(), len as u64, "{how:?}");
    let mut rest = Vec::new();
    dst_r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), 0, "{how:?}");
    let line =
        format!("copy: Splice stopped at an urgent mark after {before} bytes, buffering the rest");
    assert!(
        logged(&line),
        "{how:?}: no {line:?} in {:?}",
        capture.0.lock().unwrap()
    );
}

#[test]
fn urgent_data_in_the_middle_of_a_long_copy() {
    // Odd lengths, so each copy's log line is its own.
    copy_urgent_mid_stream(Copier::Coroutine, (3 << 20) + 11, (3 << 20) + 1);
    copy_urgent_mid_stream(Copier::Thread, (2 << 20) + 13, (4 << 20) + 3);
}
