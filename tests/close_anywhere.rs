//! `close` from wherever user code runs, with a call it wakes parked in a coroutine: under a
//! std `Mutex` that the call's worker waits for, beside a coroutine that keeps that worker
//! busy, from a logger on the scheduler, and from a logger inside the socket's own call.
//!
//! Found by a probe of the API (2026-12-07): when `close` waited for the calls it woke to
//! leave (Go's `csema`), each of these hung or waited for the busy coroutine. A started
//! coroutine runs only on its own worker, so waiting for it means waiting for whatever holds
//! that worker. `close` now releases the socket itself and waits for nobody (`poll/fd.rs`).
//!
//! One worker, so the woken call and whatever holds the worker share it; the logger is
//! process-wide, so this is a test binary of its own, and its tests run one at a time. A
//! watchdog aborts the process with a message if one still runs after 60 s.

use std::io::Read;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::thread;
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};

/// How long `close` may take: generous for a noisy 2-core machine. Each case's hang, or its
/// wait for the busy coroutine, is far longer.
const PROMPT: Duration = Duration::from_secs(1);

/// What the logger does with the next record that matches, once armed.
const IDLE: u8 = 0;
/// Close `TARGET` at a timer's fire, on the scheduler (outside any coroutine).
const AT_TIMER_FIRE: u8 = 1;
/// Close `TARGET` at the park line of a call on it, inside that very call.
const AT_PARK: u8 = 2;

static ARMED: AtomicU8 = AtomicU8::new(IDLE);
static TARGET: Mutex<Option<Arc<TcpStream>>> = Mutex::new(None);
/// What the logger's `close` returned, and how long it took.
static LOGGED_CLOSE: Mutex<Option<(bool, Duration)>> = Mutex::new(None);

struct ClosingLogger;

impl log::Log for ClosingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        let armed = ARMED.load(Ordering::SeqCst);
        if armed == IDLE || !r.target().starts_with("coronet") {
            return;
        }
        let line = r.args().to_string();
        let hit = match armed {
            AT_TIMER_FIRE => line.starts_with("timer fire: coroutine"),
            _ => line.starts_with("park coroutine") && line.contains(" on fd "),
        };
        if !hit || ARMED.swap(IDLE, Ordering::SeqCst) != armed {
            return;
        }
        let target = lock(&TARGET).clone().expect("a target to close");
        let t = Instant::now();
        let ok = target.close().is_ok();
        *lock(&LOGGED_CLOSE) = Some((ok, t.elapsed()));
    }
    fn flush(&self) {}
}

static LOGGER: ClosingLogger = ClosingLogger;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One worker, the logger, the watchdog; and the lock that runs the tests one at a time.
fn setup() -> MutexGuard<'static, ()> {
    static INIT: Once = Once::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    INIT.call_once(|| {
        coronet::Builder::new().workers(1).build_global().unwrap();
        log::set_logger(&LOGGER).expect("the only logger of this binary");
        log::set_max_level(log::LevelFilter::Trace);
        thread::spawn(|| {
            thread::sleep(Duration::from_secs(60));
            eprintln!("close_anywhere: a test still runs after 60 s (a close that hangs?)");
            std::process::abort();
        });
    });
    lock(&SERIAL)
}

/// A connected stream shared as `Arc`, its peer (kept open: no EOF), and a coroutine
/// parked in a read on it, which returns the read's error text.
fn parked_reader() -> (
    Arc<TcpStream>,
    std::net::TcpStream,
    coronet::JoinHandle<Result<usize, String>>,
) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let s = Arc::new(l.accept().unwrap().0);
    let s2 = s.clone();
    let reader = coronet::go(move || (&*s2).read(&mut [0u8; 16]).map_err(|e| e.to_string()));
    thread::sleep(Duration::from_millis(50));
    (s, peer, reader)
}

fn assert_closed(r: Result<usize, String>) {
    let e = r.unwrap_err();
    assert!(e.ends_with("use of closed network connection"), "{e}");
}

/// A coroutine that computes for 3 s holds the worker the woken read needs; `close` from a
/// thread returns at once all the same (it took the whole 3 s when it waited for the read).
#[test]
fn close_returns_while_the_woken_calls_worker_is_busy() {
    let _serial = setup();
    let (s, _peer, reader) = parked_reader();
    let busy = coronet::go(|| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            std::hint::spin_loop();
        }
    });
    thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    s.close().unwrap();
    let took = t.elapsed();
    assert!(took < PROMPT, "close took {took:?} behind a busy worker");
    busy.join().unwrap();
    assert_closed(reader.join().unwrap());
}

/// Go's shutdown idiom: close every registered connection under the registry's lock, while
/// a handler on the same worker waits for that lock (a std `Mutex`, held for a short
/// section that never parks, as `docs/porting.md` allows). It hung when `close` waited.
#[test]
fn close_under_a_std_mutex_that_the_woken_calls_worker_waits_for() {
    let _serial = setup();
    static REGISTRY: Mutex<Vec<Arc<TcpStream>>> = Mutex::new(Vec::new());
    let (s, _peer, reader) = parked_reader();
    lock(&REGISTRY).push(s);
    let (done_tx, done) = std::sync::mpsc::channel();
    let closer = thread::spawn(move || {
        let conns = lock(&REGISTRY);
        // a handler of the same worker now blocks that worker on the registry
        let handler = coronet::go(|| lock(&REGISTRY).len());
        thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        for c in conns.iter() {
            c.close().unwrap();
        }
        let took = t.elapsed();
        drop(conns);
        done_tx.send(took).unwrap();
        handler.join().unwrap()
    });
    let took = done
        .recv_timeout(Duration::from_secs(20))
        .expect("close under the registry's lock never returned");
    assert!(took < PROMPT, "close took {took:?}");
    assert_eq!(closer.join().unwrap(), 1);
    assert_closed(reader.join().unwrap());
    lock(&REGISTRY).clear();
}

/// A logger is user code, and runs on the scheduler for the runtime's own lines (here a
/// timer's fire), outside any coroutine: a `close` there cannot park. It blocked the worker
/// for good when `close` waited, since the call it woke needed that worker.
#[test]
fn close_from_a_logger_on_the_scheduler() {
    let _serial = setup();
    let (s, _peer, reader) = parked_reader();
    *lock(&TARGET) = Some(s);
    *lock(&LOGGED_CLOSE) = None;
    ARMED.store(AT_TIMER_FIRE, Ordering::SeqCst);
    coronet::go(|| coronet::time::sleep(Duration::from_millis(10)))
        .join()
        .unwrap();
    assert_closed(reader.join().unwrap());
    let (ok, took) = lock(&LOGGED_CLOSE).take().expect("the logger closed");
    assert!(ok && took < PROMPT, "close: {ok}, {took:?}");
    *lock(&TARGET) = None;
}

/// The runtime logs inside a call on the socket (the park's line, holding the call's lock
/// and reference), so a logger that closes that socket closes it from within its own call.
/// It waited for itself when `close` waited for the calls in flight.
#[test]
fn close_from_a_logger_inside_the_sockets_own_call() {
    let _serial = setup();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let _peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let s = Arc::new(l.accept().unwrap().0);
    *lock(&TARGET) = Some(s.clone());
    *lock(&LOGGED_CLOSE) = None;
    let read = coronet::go(move || {
        ARMED.store(AT_PARK, Ordering::SeqCst);
        (&*s).read(&mut [0u8; 16]).map_err(|e| e.to_string())
    });
    assert_closed(read.join().unwrap());
    let (ok, took) = lock(&LOGGED_CLOSE).take().expect("the logger closed");
    assert!(ok && took < PROMPT, "close: {ok}, {took:?}");
    *lock(&TARGET) = None;
}
