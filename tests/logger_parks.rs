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

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::thread;
use std::time::{Duration, Instant};

use coronet::chan::{self, Sender};

/// The coroutine whose park lines the logger sends through `FORWARD` (0: none).
static FORWARD_FOR: AtomicU64 = AtomicU64::new(0);
static FORWARD: Mutex<Option<Sender<String>>> = Mutex::new(None);
/// Forward only the park lines that name an fd.
static FD_LINES_ONLY: AtomicBool = AtomicBool::new(false);
/// Forward only the lines of a wait for an fd's lock (`task N may wait for an fd lock`).
static LOCK_LINES_ONLY: AtomicBool = AtomicBool::new(false);
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
        m.target().starts_with("coronet")
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
        let lock_line = line.starts_with("task ") && line.contains("fd lock");
        let Some(id) = line
            .strip_prefix("park coroutine ")
            .or_else(|| line.strip_prefix("task ").filter(|_| lock_line))
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
        if id == FORWARD_FOR.load(Ordering::SeqCst)
            && (!FD_LINES_ONLY.load(Ordering::SeqCst) || line.contains(" on fd "))
            && (!LOCK_LINES_ONLY.load(Ordering::SeqCst) || lock_line)
        {
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

/// Points `FORWARD` at a writer thread that takes a line every 300 ms, and returns it: it
/// ends, with the count of lines it took, once `FORWARD` is emptied.
fn slow_writer() -> thread::JoinHandle<usize> {
    let (log_tx, log_rx) = chan::bounded::<String>(0);
    *FORWARD.lock().unwrap() = Some(log_tx);
    thread::spawn(move || {
        let mut lines = 0;
        loop {
            thread::sleep(Duration::from_millis(300));
            match log_rx.recv() {
                Ok(_) => lines += 1,
                Err(_) => return lines,
            }
        }
    })
}

/// A coroutine blocked in `recv` (or a `select!`) is handed its value while its park line
/// sits in the logger's channel send, whose writer takes it only 300 ms later.
#[test]
fn a_wake_up_that_comes_while_the_logger_parks_the_coroutine_is_not_lost() {
    let _turn = setup();
    for select in [false, true] {
        let writer = slow_writer();
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

/// The same for a read parked on a socket, whose park line naming the fd used to be logged
/// apart from the park's guard, with the coroutine already in the fd's slot: a logger that
/// parked on that line took the netpoller's wake-up, and the read slept until its deadline
/// (found by a review). The logger here parks on the lines that name an fd only.
#[test]
fn a_socket_read_whose_park_line_parks_in_the_logger_still_gets_its_bytes() {
    use std::io::{Read, Write};
    let _turn = setup();
    FD_LINES_ONLY.store(true, Ordering::SeqCst);
    let writer = slow_writer();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    coronet::go(move || {
        let mut s = coronet::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        FORWARD_FOR.store(coronet::current().id(), Ordering::SeqCst);
        let mut buf = [0u8; 16];
        let start = Instant::now();
        let got = s.read(&mut buf).map_err(|e| e.to_string());
        FORWARD_FOR.store(0, Ordering::SeqCst);
        done_tx.send((got, start.elapsed())).unwrap();
    });
    let (mut peer, _) = listener.accept().unwrap();
    // the read is parked, its park line in the logger's send, the writer still asleep
    thread::sleep(Duration::from_millis(100));
    peer.write_all(b"hello").unwrap();
    let (got, took) = done_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    FD_LINES_ONLY.store(false, Ordering::SeqCst);
    assert_eq!(got, Ok(5));
    // the writer takes the line after 300 ms; the read's own timeout is 10 s
    assert!(took < Duration::from_secs(5), "the read took {took:?}");
    FORWARD.lock().unwrap().take();
    assert!(writer.join().unwrap() <= 1);
}

/// The same for a read queued behind another reader of the same `&TcpStream`: its line
/// about waiting for the fd's read lock was logged with it already queued, so a release
/// that granted it the lock while the logger parked it had its wake-up taken, and it slept
/// holding the grant (found by a review). The logger here parks on that line only.
#[test]
fn a_read_queued_for_the_lock_whose_line_parks_in_the_logger_still_gets_the_lock() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    let _turn = setup();
    LOCK_LINES_ONLY.store(true, Ordering::SeqCst);
    let writer = slow_writer();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    coronet::run(move || {
        let s = Arc::new(coronet::net::TcpStream::connect(addr).unwrap());
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        // the first reader holds the read lock, parked in its read
        let first = {
            let s = s.clone();
            coronet::go(move || (&*s).read(&mut [0u8; 1]).map_err(|e| e.to_string()))
        };
        coronet::time::sleep(Duration::from_millis(50));
        let second = {
            let s = s.clone();
            coronet::go(move || {
                FORWARD_FOR.store(coronet::current().id(), Ordering::SeqCst);
                let start = Instant::now();
                let got = (&*s).read(&mut [0u8; 1]).map_err(|e| e.to_string());
                FORWARD_FOR.store(0, Ordering::SeqCst);
                (got, start.elapsed())
            })
        };
        // the second waits for the lock, its line in the logger's send; the first gets its
        // byte and releases the lock, granting it to the second
        coronet::time::sleep(Duration::from_millis(100));
        peer.write_all(b"a").unwrap();
        assert_eq!(first.join().unwrap(), Ok(1));
        coronet::time::sleep(Duration::from_millis(400)); // the writer has taken the line
        peer.write_all(b"b").unwrap();
        done_tx.send(second.join().unwrap()).unwrap();
    });
    let (got, took) = done_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    LOCK_LINES_ONLY.store(false, Ordering::SeqCst);
    FORWARD.lock().unwrap().take();
    assert_eq!(got, Ok(1));
    assert!(took < Duration::from_secs(5), "the read took {took:?}");
    assert!(writer.join().unwrap() <= 1);
}
