//! A logger that parks the very coroutine whose park line it logs: the runtime logs
//! `park coroutine N (why)` before the park, and a logger that forwards its lines through a
//! coronet channel to a slow writer parks there. A wake-up that came meanwhile was taken by
//! that inner park, and the outer park then slept for ever (found by an audit of the
//! channels, 13 of 13 runs). And a logger that panicked on a park line unwound out of the
//! park with the coroutine still queued as a lock's waiter (a mutex granted to it stayed
//! locked for good), or out of an unpark in the middle of a lock's loop over the waiters it
//! granted (the rest never woken: an audit of the sync types); it also left this thread's
//! "logging" mark set, so no park of the thread was logged again. The runtime now drops a
//! record whose logger panics and goes on.
//!
//! The logger is process-wide, hence a test binary of its own; its tests take turns. Every
//! test ends well within the watchdog's 30 s, or the process aborts with a message.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::thread;
use std::time::Duration;

use coronet::chan::{self, Sender};

/// The coroutine whose park lines the logger sends through `FORWARD` (0: none).
static FORWARD_FOR: AtomicU64 = AtomicU64::new(0);
static FORWARD: Mutex<Option<Sender<String>>> = Mutex::new(None);
/// The coroutine whose park lines are counted in `COUNTED`.
static COUNT_FOR: AtomicU64 = AtomicU64::new(0);
static COUNTED: AtomicUsize = AtomicUsize::new(0);
/// The coroutine whose next park line makes the logger panic.
static PANIC_FOR: AtomicU64 = AtomicU64::new(0);
/// The coroutine whose next unpark line makes the logger panic.
static PANIC_ON_UNPARK_OF: AtomicU64 = AtomicU64::new(0);

struct ParkingLogger;

impl log::Log for ParkingLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "coronet::runtime::park"
    }
    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = r.args().to_string();
        if let Some(id) = line
            .strip_prefix("unpark coroutine ")
            .and_then(|id| id.parse::<u64>().ok())
        {
            if PANIC_ON_UNPARK_OF
                .compare_exchange(id, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                panic!("the logger panics on an unpark line");
            }
        }
        let Some(id) = line
            .strip_prefix("park coroutine ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|id| id.parse::<u64>().ok())
        else {
            return;
        };
        if id == COUNT_FOR.load(Ordering::SeqCst) {
            COUNTED.fetch_add(1, Ordering::SeqCst);
        }
        if PANIC_FOR
            .compare_exchange(id, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            panic!("the logger panics on a park line");
        }
        if id == FORWARD_FOR.load(Ordering::SeqCst) {
            let tx = FORWARD.lock().unwrap().clone();
            if let Some(tx) = tx {
                let _ = tx.send(line); // parks this coroutine until the writer takes it
            }
        }
    }
    fn flush(&self) {}
}

static LOGGER: ParkingLogger = ParkingLogger;

/// Installs the logger and the watchdog once; returns this test's turn.
fn setup() -> MutexGuard<'static, ()> {
    static INIT: Once = Once::new();
    static TURN: Mutex<()> = Mutex::new(());
    INIT.call_once(|| {
        log::set_logger(&LOGGER).expect("the only logger of this binary");
        log::set_max_level(log::LevelFilter::Trace);
        thread::spawn(|| {
            thread::sleep(Duration::from_secs(30));
            eprintln!("logger_parks: a test still runs after 30 s (a lost wake-up?)");
            eprintln!("{}", coronet::dump());
            std::process::abort();
        });
    });
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A coroutine blocked in `recv` (or a `select!`) is handed its value while its park line
/// sits in the logger's channel send, whose writer takes it only 300 ms later.
#[test]
fn a_wake_up_that_comes_while_the_logger_parks_the_coroutine_is_not_lost() {
    let _turn = setup();
    for select in [false, true] {
        let (log_tx, log_rx) = chan::bounded::<String>(0);
        *FORWARD.lock().unwrap() = Some(log_tx);
        let writer = thread::spawn(move || {
            let mut lines = 0;
            loop {
                thread::sleep(Duration::from_millis(300)); // a slow writer
                match log_rx.recv() {
                    Ok(_) => lines += 1,
                    Err(_) => return lines,
                }
            }
        });
        let (x_tx, x_rx) = chan::bounded::<u32>(0);
        let (_y_tx, y_rx) = chan::bounded::<u32>(0);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        coronet::go(move || {
            FORWARD_FOR.store(coronet::current().id(), Ordering::SeqCst);
            let v = if select {
                coronet::select! {
                    recv(x_rx) -> v => v.unwrap(),
                    recv(y_rx) -> v => v.unwrap(),
                }
            } else {
                x_rx.recv().unwrap()
            };
            FORWARD_FOR.store(0, Ordering::SeqCst);
            done_tx.send(v).unwrap();
        });
        // the coroutine is in the logger's send by now, the writer still asleep
        thread::sleep(Duration::from_millis(100));
        x_tx.send(7).unwrap(); // a rendezvous: returns once the value is the coroutine's
        let got = done_rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            got,
            Ok(7),
            "select: {select}: the value was handed over, never received"
        );
        FORWARD.lock().unwrap().take();
        // at most its one park line went out (none if it found the value without parking):
        // the retry after the spurious return was not logged
        assert!(writer.join().unwrap() <= 1, "select: {select}");
    }
}

/// After a logger panicked on a park line (the record dropped, the coroutine unharmed), the
/// parks of that worker thread are logged again.
#[test]
fn parks_are_logged_again_after_the_logger_panicked() {
    let _turn = setup();
    coronet::run(|| {
        // each on this coroutine's worker: the mark a panic left is that thread's
        let parks = |n: usize| {
            coronet::Spawn::new()
                .same_worker()
                .go(move || {
                    COUNT_FOR.store(coronet::current().id(), Ordering::SeqCst);
                    for _ in 0..n {
                        coronet::time::sleep(Duration::from_millis(1));
                    }
                    COUNT_FOR.store(0, Ordering::SeqCst);
                })
                .join()
                .unwrap()
        };
        let before = COUNTED.load(Ordering::SeqCst);
        parks(5);
        assert!(COUNTED.load(Ordering::SeqCst) >= before + 5);
        let slept = coronet::Spawn::new()
            .same_worker()
            .go(|| {
                PANIC_FOR.store(coronet::current().id(), Ordering::SeqCst);
                coronet::time::sleep(Duration::from_millis(1));
                PANIC_FOR.load(Ordering::SeqCst)
            })
            .join();
        assert_eq!(
            slept.ok(),
            Some(0),
            "the logger panicked, and the sleep went on"
        );
        let before = COUNTED.load(Ordering::SeqCst);
        parks(5);
        let logged = COUNTED.load(Ordering::SeqCst) - before;
        assert!(
            logged >= 5,
            "{logged} of 5 parks logged after the logger's panic"
        );
    });
}

/// A mutex's waiter whose park line makes the logger panic, and a condvar's `notify_all`
/// whose first unpark line does: the lock still passes on and every waiter is woken.
#[test]
fn a_logger_that_panics_leaves_locks_and_condvars_working() {
    use coronet::sync::{Condvar, Mutex};
    use std::sync::Arc;
    let _turn = setup();
    let sleep = |ms| coronet::time::sleep(Duration::from_millis(ms));
    coronet::run(move || {
        let m = Arc::new(Mutex::new(0u32));
        let holder = {
            let m = m.clone();
            coronet::go(move || {
                let mut g = m.lock();
                sleep(100);
                *g += 1;
            })
        };
        sleep(20);
        let waiter = {
            let m = m.clone();
            coronet::go(move || {
                PANIC_FOR.store(coronet::current().id(), Ordering::SeqCst);
                *m.lock() += 1; // queued behind the holder; its park line panics
            })
        };
        holder.join().unwrap();
        let waited = waiter.join();
        // (it left a dead waiter queued, to which the unlock handed the lock for good)
        let free = (0..500).any(|_| m.try_lock().is_some() || (sleep(10), false).1);
        assert!(
            free,
            "the mutex stayed locked after its holder and waiter left"
        );
        assert!(waited.is_ok(), "the logger's panic stays in the logger");
        assert_eq!(*m.lock(), 2);

        let st = Arc::new((Mutex::new(false), Condvar::new()));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let st = st.clone();
                coronet::go(move || {
                    let mut g = st.0.lock();
                    while !*g {
                        g = st.1.wait(g);
                    }
                })
            })
            .collect();
        sleep(50);
        // the first waiter's unpark line panics, in the middle of notify_all's loop
        PANIC_ON_UNPARK_OF.store(waiters[0].coroutine().id(), Ordering::SeqCst);
        *st.0.lock() = true;
        st.1.notify_all();
        // (the two behind it were never woken)
        let done = |w: &coronet::JoinHandle<()>| w.is_finished();
        let all_done = (0..500).any(|_| waiters.iter().all(done) || (sleep(10), false).1);
        assert!(all_done, "notify_all left waiters asleep");
        for w in waiters {
            w.join().unwrap();
        }
    });
}
