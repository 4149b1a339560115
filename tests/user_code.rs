//! User code the runtime calls on its own paths — drops of what a coroutine owns, the logger —
//! may panic or park there, and the worker must go on serving every other coroutine. These
//! cases were found by an audit: each of them used to stop the worker thread (and with it
//! every coroutine parked on it) or leave a park token in a state that panicked later.
//!
//! One worker, so that "the worker survived" means the same thread went on running
//! coroutines (with two, the other one would steal the unstarted ones); hence a test binary
//! of its own. The logger is process-wide, so it is installed once and only acts while a
//! test switches it on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

fn one_worker() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        coronet::Builder::new()
            .workers(1)
            .build_global()
            .expect("the only runtime of this test binary");
        log::set_logger(&PARKING_LOGGER).expect("the only logger of this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Joins `h` from this plain thread, failing the test if it has not finished in 10 s (a dead
/// worker never runs it).
fn join_within<T>(h: coronet::JoinHandle<T>, what: &str) -> std::thread::Result<T> {
    let until = Instant::now() + Duration::from_secs(10);
    while !h.is_finished() {
        assert!(Instant::now() < until, "{what}: not finished after 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    h.join()
}

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("PanicsOnDrop dropped");
    }
}

#[test]
fn a_detached_result_that_panics_when_dropped_leaves_the_worker_running() {
    one_worker();
    // The handle is gone, so the runtime drops the result itself, outside the closure.
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let d = done.clone();
    drop(coronet::go(move || {
        d.store(true, Ordering::SeqCst);
        PanicsOnDrop
    }));
    let later = coronet::go(|| 7);
    assert_eq!(join_within(later, "a coroutine spawned after").unwrap(), 7);
    assert!(
        done.load(Ordering::SeqCst),
        "the detached coroutine ran first"
    );
}

/// The same result, with the handle dropped after the coroutine finished: then the handle
/// holds the last reference and drops the result, on the thread that drops it, where the
/// panic must not surface either (found as a flaky failure of the test above, which drops
/// its handle while the coroutine may or may not have finished).
#[test]
fn a_finished_result_that_panics_when_dropped_with_its_handle_panics_nobody() {
    one_worker();
    let h = coronet::go(|| PanicsOnDrop);
    let until = Instant::now() + Duration::from_secs(10);
    while !h.is_finished() {
        assert!(Instant::now() < until, "the coroutine never finished");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(h); // the last reference: the result drops here, on this thread
}

#[test]
fn a_closure_that_panics_when_dropped_unstarted_leaves_the_worker_running() {
    one_worker();
    // No stack this size can be mapped, so the worker drops the closure unrun.
    let owned = PanicsOnDrop;
    let h = coronet::Spawn::new().stack_size(1 << 46).go(move || {
        let _keep = &owned;
    });
    let err = join_within(h, "the coroutine that could not start").unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .expect("the reason, as a String");
    assert!(!msg.is_empty());
    assert_eq!(
        join_within(coronet::go(|| 8), "a later coroutine").unwrap(),
        8
    );
}

/// Waits in its drop for a message from a coroutine of the same (only) worker.
struct ReceivesOnDrop(Option<coronet::chan::Receiver<()>>);

impl Drop for ReceivesOnDrop {
    fn drop(&mut self) {
        if let Some(rx) = self.0.take() {
            let _ = rx.recv();
        }
    }
}

/// The closure of a coroutine that could not start is dropped unrun; a capture that waits
/// as it drops must not wait on the scheduler, where it parked the worker thread itself and
/// the coroutine that would end the wait never ran again (fifth audit).
#[test]
fn a_closure_that_waits_when_dropped_unstarted_leaves_the_worker_running() {
    one_worker();
    let (tx, rx) = coronet::chan::bounded::<()>(0);
    let sender = coronet::go(move || {
        coronet::time::sleep(Duration::from_millis(20));
        let _ = tx.send(());
    });
    let owned = ReceivesOnDrop(Some(rx));
    let h = coronet::Spawn::new().stack_size(1 << 46).go(move || {
        let _keep = &owned;
    });
    assert!(join_within(h, "the coroutine that could not start").is_err());
    assert_eq!(
        join_within(coronet::go(|| 9), "a later coroutine").unwrap(),
        9
    );
    join_within(sender, "the coroutine the drop waits for").unwrap();
}

/// While `PARK_LOGGING` is on, logging "park coroutine …" takes `LOGGER_LOCK`, a coronet
/// mutex another coroutine holds: the logger itself parks, on the very path that is parking
/// the coroutine — and its own park would log "park coroutine" again, which the runtime must
/// not turn into endless recursion.
static PARK_LOGGING: AtomicBool = AtomicBool::new(false);
static LOGGER_LOCK: coronet::sync::Mutex<()> = coronet::sync::Mutex::new(());

struct ParkingLogger;
static PARKING_LOGGER: ParkingLogger = ParkingLogger;

impl log::Log for ParkingLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        if record.target() == "coronet::runtime::worker"
            && record.args().to_string().contains("epoll_wait")
        {
            forward_sleep_line();
        }
        if PARK_LOGGING.load(Ordering::SeqCst)
            && record.args().to_string().starts_with("park coroutine")
        {
            drop(LOGGER_LOCK.lock());
        }
    }

    fn flush(&self) {}
}

/// While set, the worker's "going to sleep" lines go to this channel, as many as the count
/// says: a logger that hands records to a writer coroutine.
static FORWARD_SLEEPS: std::sync::Mutex<Option<(coronet::chan::Sender<()>, usize)>> =
    std::sync::Mutex::new(None);

fn forward_sleep_line() {
    let mut f = FORWARD_SLEEPS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((tx, left)) = f.as_mut() {
        if *left > 0 {
            *left -= 1;
            let _ = tx.send(());
        }
    }
}

#[test]
fn a_logger_that_wakes_a_coroutine_as_the_worker_goes_to_sleep() {
    // The worker's last log line before epoll_wait wakes the writer coroutine, on this same
    // worker. It used to come after the worker's last look for work, so the worker slept
    // with the writer in its run queue until something else woke it.
    one_worker();
    let (tx, rx) = coronet::chan::unbounded::<()>();
    let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let g = got.clone();
    let writer = coronet::go(move || {
        for () in rx {
            g.fetch_add(1, Ordering::SeqCst);
        }
    });
    std::thread::sleep(Duration::from_millis(50)); // the writer parks in recv
    *FORWARD_SLEEPS.lock().unwrap() = Some((tx, 3));
    coronet::go(|| ()); // wake the worker, so that it goes to sleep again
    let until = Instant::now() + Duration::from_secs(10);
    while got.load(Ordering::SeqCst) < 3 {
        assert!(
            Instant::now() < until,
            "the writer took {} of 3 records: it was left in the run queue of a sleeping worker",
            got.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    FORWARD_SLEEPS.lock().unwrap().take(); // the writer's channel closes
    join_within(writer, "the writer").unwrap();
}

/// Joins a coroutine when dropped.
struct JoinOnDrop(
    Option<coronet::JoinHandle<u32>>,
    &'static std::sync::atomic::AtomicU32,
);

impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        let h = self.0.take().expect("joined once");
        // a receive and a lock too, as std's would work here
        let (tx, rx) = coronet::chan::bounded::<u32>(1);
        coronet::go(move || tx.send(1).unwrap());
        let lock = coronet::sync::Mutex::new(0);
        *lock.lock() += rx.recv().unwrap();
        self.1
            .store(h.join().unwrap() + *lock.lock(), Ordering::SeqCst);
    }
}

#[test]
fn a_thread_local_destructor_can_wait_on_coroutines() {
    // The destructor runs after coronet's own record of the thread is gone (its thread-local
    // was first used after this one's, and they go in reverse order): waiting there used to
    // panic in a destructor, which aborts the process.
    one_worker();
    static GOT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    thread_local!(static LATE: std::cell::RefCell<Option<JoinOnDrop>> = const {
        std::cell::RefCell::new(None)
    });
    std::thread::spawn(|| {
        LATE.with(|_| ()); // registers its destructor before coronet's record exists
        let h = coronet::go(|| {
            coronet::time::sleep(Duration::from_millis(50));
            6
        });
        LATE.with(|l| *l.borrow_mut() = Some(JoinOnDrop(Some(h), &GOT)));
        // a join that waits makes coronet's record of this thread, after LATE's
        coronet::go(|| coronet::time::sleep(Duration::from_millis(5)))
            .join()
            .unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(GOT.load(Ordering::SeqCst), 7);
}

/// The eventfds open in this process: a plain thread's socket waits get one each.
fn eventfds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("eventfd"))
        .count()
}

/// Reads from its stream with a short per-call timeout as it drops.
struct ReadOnDrop(
    std::sync::Arc<coronet::net::TcpStream>,
    &'static std::sync::atomic::AtomicU32,
);

impl Drop for ReadOnDrop {
    fn drop(&mut self) {
        use std::io::Read;
        if (&*self.0).read(&mut [0u8; 1]).is_err() {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_socket_wait_in_a_thread_local_destructor_leaves_no_fd_behind() {
    // The wait runs on the late record of a thread whose own record is gone, and gets it
    // an eventfd to be woken through. That record was leaked, and its eventfd stayed open:
    // one fd per such thread (found by a leak hunt). It is given back when the thread ends.
    one_worker();
    const THREADS: usize = 200;
    static TIMED_OUT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    thread_local!(static LATE: std::cell::RefCell<Option<ReadOnDrop>> = const {
        std::cell::RefCell::new(None)
    });
    let listener = coronet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = coronet::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let server = std::sync::Arc::new(server);
    let before = eventfds();
    for _ in 0..THREADS {
        let server = server.clone();
        std::thread::spawn(move || {
            let first = server.clone();
            // registered before coronet's record of the thread, so destroyed after it
            LATE.with(|l| *l.borrow_mut() = Some(ReadOnDrop(server, &TIMED_OUT)));
            use std::io::Read;
            let _ = (&*first).read(&mut [0u8; 1]); // makes coronet's record
        })
        .join()
        .unwrap();
    }
    let after = eventfds();
    assert_eq!(
        TIMED_OUT.load(Ordering::SeqCst),
        THREADS as u32,
        "every late read waited"
    );
    // Other tests of this binary run beside this one, with eventfds of their own threads.
    assert!(
        after < before + THREADS / 4,
        "{before} eventfds before {THREADS} threads, {after} after"
    );
}

#[test]
fn a_logger_that_parks_while_a_coroutine_parks_does_not_corrupt_the_park() {
    one_worker();
    let r = coronet::run(|| {
        let held = LOGGER_LOCK.lock();
        PARK_LOGGING.store(true, Ordering::SeqCst);
        let (tx, rx) = coronet::chan::bounded::<u32>(0);
        // Its recv parks; the park's log line parks again in the logger, on the held lock.
        let waiter = coronet::go(move || rx.recv().unwrap());
        for _ in 0..10 {
            coronet::yield_now();
        }
        drop(held); // the logger goes on, then the recv's own park
        for _ in 0..10 {
            coronet::yield_now();
        }
        tx.send(5).unwrap();
        let got = waiter.join();
        PARK_LOGGING.store(false, Ordering::SeqCst);
        got
    });
    assert_eq!(r.unwrap(), 5);
    // And the worker still serves.
    assert_eq!(
        join_within(coronet::go(|| 9), "a later coroutine").unwrap(),
        9
    );
}
