//! Signals delivered to threads that wait in coronet: a handler installed without
//! `SA_RESTART` makes every blocking syscall return EINTR, and a profiler or a signal storm
//! makes it happen thousands of times a second. Waits must neither end early nor stop
//! making progress. A test binary of its own: the handler is process-wide.

mod util;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

static DELIVERED: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    DELIVERED.fetch_add(1, Ordering::Relaxed);
}

/// The calling thread's kernel id.
fn gettid() -> libc::pid_t {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// Sleeps for `ts` inside a signal handler. nanosleep is async-signal-safe.
fn nap(ts: libc::timespec) {
    // SAFETY: `ts` is a valid timespec and no remainder is asked for.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}

/// A plain thread blocked in a read on `stream`, and its kernel id (for `util::signal_thread`).
fn reader_of(
    stream: &Arc<coronet::net::TcpStream>,
) -> (
    std::thread::JoinHandle<Result<usize, std::io::ErrorKind>>,
    libc::pid_t,
) {
    use std::io::Read;
    let (tid_tx, tid_rx) = mpsc::channel();
    let reading = stream.clone();
    let reader = std::thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        (&*reading).read(&mut [0u8; 8]).map_err(|e| e.kind())
    });
    (reader, tid_rx.recv().unwrap())
}

/// A thread that sends SIGUSR1 to thread `tid` as fast as it can until `stop`.
fn storm(tid: libc::pid_t, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            util::signal_thread(tid, libc::SIGUSR1);
        }
    })
}

/// A plain thread's `sleep` was std's, relative: after each signal it slept the remainder
/// the kernel reported, measured to the timer's expiry plus its 50 µs slack, so under
/// signals faster than that it never finished (found by an audit: five 2 ms sleeps ran
/// past 15 s in 4 of 5 runs; here twenty). Now it sleeps to the absolute deadline.
#[test]
fn a_plain_threads_sleep_ends_under_a_signal_storm() {
    util::install_signal_handler(libc::SIGUSR1, count_signal, 0); // no SA_RESTART
    let stop = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let sleeper = std::thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        // Let the storm start: a busy wait, as std's own sleep is what never ended.
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            std::hint::spin_loop();
        }
        let start = Instant::now();
        for _ in 0..20 {
            let t = Instant::now();
            coronet::time::sleep(Duration::from_millis(2));
            assert!(
                t.elapsed() >= Duration::from_millis(2),
                "a sleep ended early"
            );
        }
        done_tx.send(start.elapsed()).unwrap();
    });
    let before = DELIVERED.load(Ordering::Relaxed);
    let stormer = storm(tid_rx.recv().unwrap(), stop.clone());
    let took = done_rx.recv_timeout(Duration::from_secs(5));
    let delivered = DELIVERED.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    stormer.join().unwrap();
    sleeper.join().unwrap();
    let took = took.expect("twenty 2 ms sleeps still not done after 5 s of signals");
    assert!(
        delivered > 100,
        "only {delivered} signals reached the sleeper"
    );
    println!("20 x 2 ms slept in {took:?} through {delivered} signals");
}

extern "C" fn take_a_second(_: libc::c_int) {
    nap(libc::timespec {
        tv_sec: 1,
        tv_nsec: 0,
    });
}

/// `close` waits for the plain threads it wakes to leave `poll(2)`, which held the socket;
/// a signal handler can run in between for as long as it likes. The closer spun through
/// it on its worker, and the worker's other coroutines waited (found by an audit: a close
/// beside a 300 ms handler held a 10 ms sleep of the same worker back by 300 ms). Now it
/// parks once the wait has taken 10 ms, and the last thread out wakes it.
#[test]
fn close_waiting_for_a_thread_in_a_signal_handler_leaves_its_worker_free() {
    // One worker: the coroutines a test spawns share the closer's thread. SIGUSR2: the
    // sleep test counts SIGUSR1.
    util::one_worker();
    util::install_signal_handler(libc::SIGUSR2, take_a_second, libc::SA_RESTART);
    let listener = coronet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream =
        Arc::new(coronet::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap());
    let _peer = listener.accept().unwrap();
    let (reader, tid) = reader_of(&stream);
    std::thread::sleep(Duration::from_millis(100)); // the reader is in poll(2)
    let (closed_in, worst_tick) = coronet::run(move || {
        let ticker = coronet::go(|| {
            let mut worst = Duration::ZERO;
            for _ in 0..40 {
                let t = Instant::now();
                coronet::time::sleep(Duration::from_millis(10));
                worst = worst.max(t.elapsed());
            }
            worst
        });
        coronet::time::sleep(Duration::from_millis(20));
        util::signal_thread(tid, libc::SIGUSR2);
        coronet::time::sleep(Duration::from_millis(50)); // the handler is running
        let start = Instant::now();
        stream.close().unwrap();
        (start.elapsed(), ticker.join().unwrap())
    });
    let read = reader.join().unwrap();
    assert!(read.is_err(), "the reader was woken by close: {read:?}");
    // Still waited for the thread (whose poll held the socket) to leave.
    assert!(
        closed_in >= Duration::from_millis(500),
        "close returned after {closed_in:?}, with the thread still in its handler"
    );
    // The worker ran its other coroutine meanwhile: ten-millisecond sleeps, not one held
    // back by the whole second (wide margin for a loaded machine).
    assert!(
        worst_tick < Duration::from_millis(500),
        "a 10 ms sleep on the closer's worker took {worst_tick:?}"
    );
}

extern "C" fn take_three_ms(_: libc::c_int) {
    nap(libc::timespec {
        tv_sec: 0,
        tv_nsec: 3_000_000,
    });
}

/// `close` under a std `Mutex`, with a plain thread blocked in a read on the socket and a
/// coroutine of the same worker waiting for that `Mutex`: `close` must not park there (it
/// is documented safe under a std lock), or the waiting coroutine blocks the worker and the
/// closer is never resumed. The first version of the park above parked after a few spins,
/// whenever the woken thread was slow to leave (found by a review: it hung on a busy
/// machine); here a 3 ms signal handler makes it slow on any machine.
#[test]
fn close_under_a_std_mutex_beside_a_thread_in_poll_does_not_park() {
    util::one_worker(); // one worker: the coroutines spawned share the closer's thread
    util::install_signal_handler(libc::SIGWINCH, take_three_ms, libc::SA_RESTART);
    let lock = Arc::new(std::sync::Mutex::new(()));
    let listener = coronet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap();
    for round in 0..20 {
        let stream = Arc::new(coronet::net::TcpStream::connect(at).unwrap());
        let _peer = listener.accept().unwrap();
        let (reader, tid) = reader_of(&stream);
        std::thread::sleep(Duration::from_millis(5)); // the reader is in poll(2)
        util::signal_thread(tid, libc::SIGWINCH);
        std::thread::sleep(Duration::from_millis(1)); // its handler runs
        let (done_tx, done_rx) = mpsc::channel();
        let (closer_lock, other_lock, other_done) = (lock.clone(), lock.clone(), done_tx.clone());
        drop(coronet::go(move || {
            let _held = closer_lock.lock().unwrap();
            stream.close().unwrap();
            done_tx.send("closer").unwrap();
        }));
        drop(coronet::go(move || {
            drop(other_lock.lock().unwrap());
            other_done.send("other").unwrap();
        }));
        for _ in 0..2 {
            done_rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("round {round}: close under the lock hung its worker"));
        }
        let _ = reader.join().unwrap(); // woken by close: its answer is the closed error
    }
}
