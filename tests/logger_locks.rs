//! A logger is user code, and a natural one takes coronet's own locks: it serialises its
//! output with a coronet `Mutex`, reads its settings under a coronet `RwLock`, or forwards
//! records to a writer through a coronet channel. The runtime logs on those types' paths,
//! so each of them must log only after releasing its internal lock; an audit found all
//! three logging under it, which deadlocked the first time the logger re-entered.
//!
//! The logger is process-wide, hence a test binary of its own. Every test ends well within
//! the watchdog's 30 s, or the process aborts with a message instead of hanging CI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::thread;
use std::time::Duration;

use coronet::chan::{self, Sender};
use coronet::sync::{Mutex, RwLock};

/// The logger's settings, read on every record.
static SETTINGS: RwLock<()> = RwLock::new(());
/// Where records go when no channel is set up.
static SINK: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The writer's channel, once a test has started one.
static FORWARD: OnceLock<std::sync::Mutex<Option<Sender<String>>>> = OnceLock::new();

struct LockingLogger;

impl log::Log for LockingLogger {
    /// The records of the types this logger uses, and the tests' own. Not the park's line:
    /// a thread queued on a lock that parks and logs into that same lock waits on itself,
    /// with std's locks as with coronet's; that is the logger's to avoid.
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        [
            "coronet::chan",
            "coronet::sync::mutex",
            "coronet::sync::rwlock",
            "logger_locks",
        ]
        .iter()
        .any(|t| m.target().starts_with(t))
    }
    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        // What this logger does logs again (its own mutex's hand-offs, its channel's wakes),
        // so it takes records nested one deep, which is what re-entering needs, and drops
        // deeper ones: unbounded, that recursion overflows a coroutine's stack under load.
        thread_local!(static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
        struct Nested;
        impl Drop for Nested {
            fn drop(&mut self) {
                DEPTH.with(|d| d.set(d.get() - 1));
            }
        }
        if DEPTH.with(|d| d.replace(d.get() + 1)) >= 2 {
            drop(Nested);
            return;
        }
        let _nested = Nested;
        let line = format!("{} {}", r.target(), r.args());
        // Read and let go: what follows may log again (a hand-off), and a nested read
        // behind a waiting writer would wait for this one, as with any reader-writer lock.
        drop(SETTINGS.read());
        let tx = FORWARD
            .get()
            .and_then(|f| f.lock().unwrap_or_else(|e| e.into_inner()).clone());
        match tx {
            Some(tx) => {
                let _ = tx.send(line);
            }
            None => {
                let mut sink = SINK.lock();
                if sink.len() < 10_000 {
                    sink.push(line);
                }
            }
        }
    }
    fn flush(&self) {}
}

static LOGGER: LockingLogger = LockingLogger;

fn setup() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        log::set_logger(&LOGGER).expect("the only logger of this binary");
        log::set_max_level(log::LevelFilter::Trace);
        thread::spawn(|| {
            thread::sleep(Duration::from_secs(30));
            eprintln!("logger_locks: a test still runs after 30 s (a logger deadlock?)");
            eprintln!("{}", coronet::dump());
            std::process::abort();
        });
    });
}

#[test]
fn a_logger_forwarding_through_a_channel_to_a_waiting_writer() {
    setup();
    let (tx, rx) = chan::unbounded::<String>();
    let writer = thread::spawn(move || rx.into_iter().count());
    // The writer is parked in recv, so the logger's send hands its record straight over.
    thread::sleep(Duration::from_millis(100));
    *FORWARD
        .get_or_init(|| std::sync::Mutex::new(None))
        .lock()
        .unwrap() = Some(tx);
    for i in 0..100 {
        log::info!("record {i}");
        if i % 10 == 0 {
            thread::sleep(Duration::from_millis(2)); // let the writer wait again
        }
    }
    // and from coroutines, whose parks and wake-ups log too
    let hs: Vec<_> = (0..4)
        .map(|i| coronet::go(move || log::info!("from coroutine {i}")))
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    // Dropped outside FORWARD's lock: the last sender's drop logs too.
    let tx = FORWARD.get().unwrap().lock().unwrap().take();
    drop(tx);
    assert!(writer.join().unwrap() >= 104);
}

#[test]
fn a_logger_that_takes_a_contended_coronet_mutex() {
    setup();
    // Holders sleep past the mutex's starvation threshold, so unlocks hand the lock to the
    // head waiter: the path that logged under the queue lock, which the logger then took.
    let stop = Arc::new(AtomicBool::new(false));
    let work = |stop: Arc<AtomicBool>| {
        move || {
            for _ in 0..20 {
                let mut g = SINK.lock();
                g.truncate(1_000);
                thread::sleep(Duration::from_millis(3));
                drop(g);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
    };
    let ts: Vec<_> = (0..3).map(|_| thread::spawn(work(stop.clone()))).collect();
    let cs: Vec<_> = (0..3).map(|_| coronet::go(work(stop.clone()))).collect();
    ts.into_iter().for_each(|t| t.join().unwrap());
    cs.into_iter().for_each(|c| c.join().unwrap());
    assert!(
        SINK.lock().iter().any(|l| l.contains("mutex: hand-off")),
        "no hand-off was logged: the test did not reach the path it checks"
    );
}

#[test]
fn a_logger_that_reads_settings_under_a_contended_coronet_rwlock() {
    setup();
    // Writers queue behind readers and readers behind writers, so grants go through the
    // queue: the path that logged under the queue lock, where the logger's read then waited.
    let work = |id: usize| {
        move || {
            for i in 0..30 {
                if (id + i) % 3 == 0 {
                    let _w = SETTINGS.write();
                    thread::sleep(Duration::from_millis(1));
                } else {
                    let _r = SETTINGS.read();
                    thread::sleep(Duration::from_millis(1));
                }
            }
        }
    };
    let ts: Vec<_> = (0..3).map(|i| thread::spawn(work(i))).collect();
    let cs: Vec<_> = (3..6).map(|i| coronet::go(work(i))).collect();
    ts.into_iter().for_each(|t| t.join().unwrap());
    cs.into_iter().for_each(|c| c.join().unwrap());
    assert!(
        SINK.lock().iter().any(|l| l.contains("rwlock: granted")),
        "no grant was logged: the test did not reach the path it checks"
    );
}
