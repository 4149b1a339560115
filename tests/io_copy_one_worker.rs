//! `coronet::io::copy` on a runtime of one worker (the whole binary's, hence a file of its
//! own), where what a copy does to the worker shows in the coroutines beside it: beside
//! another writer on the same socket, a file sent with `sendfile` arrives in one
//! piece, as Go's `SendFile` delivers it, because the copy holds the socket's write lock
//! from its first byte to its last. One worker makes the test exact: the copy yields to the
//! worker's other coroutines every 16 MiB, and a lock taken per `sendfile` call would be free
//! at that moment for the writer beside it, which runs right then.

mod util;

use coronet::io::copy;
use coronet::net::{Shutdown, TcpListener, TcpStream};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::files::{block_pattern, temp_file};

/// The messages `write_all` sends beside a copy: 64 bytes unlike any run of the file's.
const MESSAGE: &[u8; 64] = b"<message from another writer, whole or not at all.............>\n";

/// Checks that `got` is `file` in one piece with `messages` whole `MESSAGE`s around it.
fn assert_file_in_one_piece(got: &[u8], file: &[u8], messages: usize) {
    let at = got
        .windows(64)
        .position(|w| w == &file[..64])
        .expect("the file's first bytes never arrived");
    assert_eq!(at % 64, 0, "the file cut a message");
    let end = at + file.len();
    assert!(end <= got.len(), "the file arrived short");
    if let Some(i) = (0..file.len()).find(|&i| got[at + i] != file[i]) {
        let near = &got[at + i..(at + i + 64).min(got.len())];
        panic!(
            "byte {i} of the file is not the file's: {:?}",
            String::from_utf8_lossy(near)
        );
    }
    let rest: Vec<u8> = [&got[..at], &got[end..]].concat();
    assert_eq!(rest.len(), messages * 64, "messages lost or cut");
    assert!(
        rest.chunks(64).all(|m| m == MESSAGE),
        "a message was mangled"
    );
}

/// The one worker, and the right to use it: each test measures what happens on it, so they
/// run one at a time (side by side, the first test's busy writer delayed the second's
/// sleeper by 600 ms on one core: the eighth audit's flaky hunt).
fn one_worker() -> std::sync::MutexGuard<'static, ()> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONCE.call_once(|| {
        coronet::Builder::new()
            .workers(1)
            .build_global()
            .expect("the only runtime of this test binary");
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_file_sent_with_sendfile_is_not_cut_by_another_writer() {
    let _worker = one_worker();
    // past the copy's 16 MiB yield
    let data = block_pattern((20 << 20) + 64);
    let mut file = temp_file("whole", &data);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        client.read_to_end(&mut v).unwrap();
        v
    });
    let server: Arc<TcpStream> = Arc::new(server);
    let (n, messages) = coronet::run(move || {
        let done = Arc::new(AtomicBool::new(false));
        let (s, d) = (server.clone(), done.clone());
        // until the copy is over, a message each time the worker comes round
        let writer = coronet::go(move || {
            let mut sent = 0;
            while sent < 2 || !d.load(Ordering::Acquire) {
                (&*s).write_all(MESSAGE).unwrap();
                sent += 1;
                coronet::yield_now();
            }
            sent
        });
        let s = server.clone();
        let copier = coronet::go(move || copy(&mut file, &mut &*s).unwrap());
        let n = copier.join().unwrap();
        done.store(true, Ordering::Release);
        let messages = writer.join().unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        (n, messages)
    });
    assert_eq!(n, data.len() as u64);
    assert_file_in_one_piece(&reader.join().unwrap(), &data, messages);
}

/// A `File` that is a pipe: `sendfile` refuses it, and the buffered loop's reads block
/// until the writer writes. In a coroutine they must not block the worker (found by an
/// audit: a coroutine sleeping 25 ms beside such a copy woke 2 s late).
#[test]
fn a_copy_from_a_pipe_file_does_not_block_the_worker() {
    let _worker = one_worker();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds `pipe` writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both are new fds of this test's own.
    let (mut src, mut feed) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    let feeder = std::thread::spawn(move || {
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(600));
            feed.write_all(b"tick").unwrap();
        }
    });
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut server, _) = l.accept().unwrap();
    let (copied, worst) = coronet::run(move || {
        // the sleeper first, so that it is asleep when the copy starts
        let sleeper = coronet::go(|| {
            let mut worst = Duration::ZERO;
            for _ in 0..60 {
                let t = Instant::now();
                coronet::time::sleep(Duration::from_millis(25));
                worst = worst.max(t.elapsed());
            }
            worst
        });
        let copier = coronet::go(move || copy(&mut src, &mut server).unwrap());
        (copier.join().unwrap(), sleeper.join().unwrap())
    });
    feeder.join().unwrap();
    assert_eq!(copied, 12);
    let mut got = [0u8; 12];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got.as_slice(), b"tick".repeat(3).as_slice());
    // a worker blocked in the pipe's read for 600 ms at a time would show here as a sleep
    // of about 600 ms; anything under 400 ms is left to a stalled machine
    assert!(
        worst < Duration::from_millis(400),
        "a 25 ms sleep took {worst:?}"
    );
}
