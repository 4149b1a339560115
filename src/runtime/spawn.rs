//! Spawning and joining coroutines: `go`, `try_go`, `Spawn`, `JoinHandle`, `run`; and the
//! calls a coroutine makes about itself: `park`, `current` (its `Coroutine` handle),
//! `yield_now`.

use std::cell::UnsafeCell;
use std::fmt;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;

use super::park as token;
use super::stack::Stack;
use super::task::{Task, Wait};
use super::worker::{self, NewTask};
use super::Runtime;

/// Where a coroutine's result waits for its joiner — and, until the coroutine starts, the
/// closure itself: one allocation per spawn holds both (the worker runs it as a [`Body`], the
/// `JoinHandle` waits on it as a [`Join`]).
///
/// No lock: each cell has one owner at a time, and `state` hands the result and the joiner's
/// record across.
///
/// | field    | written by                               | read by                              |
/// |----------|------------------------------------------|--------------------------------------|
/// | `stage`  | `new` (the closure), `Body::run` (takes  | the joiner, after it saw DONE        |
/// |          | it; stores the result before DONE)       |                                      |
/// | `waiter` | the joiner, while `state` = RUNNING      | `complete`, after its swap saw WAITING |
///
/// The closure and the result never exist at once, so they share `stage`: a packet (one per
/// coroutine, alive as long as it is) is as large as the larger of the two, not their sum.
///
/// `state` goes RUNNING → DONE (finished, nobody waiting yet) or RUNNING → WAITING (a joiner
/// is parked, its record is in `waiter`) → DONE; the swap to DONE tells the finisher whether it
/// owes the joiner an unpark.
struct Packet<T, F> {
    state: AtomicU8,
    stage: UnsafeCell<Stage<T, F>>,
    waiter: UnsafeCell<Option<Arc<Task>>>,
}

enum Stage<T, F> {
    /// Not started: the closure.
    Pending(F),
    /// Running, or its result already taken.
    Empty,
    /// Finished: the closure's result or panic.
    Done(thread::Result<T>),
}

const RUNNING: u8 = 0;
const WAITING: u8 = 1;
const DONE: u8 = 2;

// SAFETY: the cells are never accessed by two threads at once (see the table above): `stage`
// by the one `Body::run` call until its Release swap to DONE and by the joiner after its
// Acquire load of DONE, `waiter` by the joiner before its Release CAS to
// WAITING and by the finisher after its AcqRel swap read WAITING. What crosses threads is `F`
// (moved to the worker) and `T` and the `Arc<Task>` (moved to the joiner), all `Send`.
unsafe impl<T: Send, F: Send> Sync for Packet<T, F> {}
// SAFETY: as above; the packet owns an `F`, a `T` and an `Arc<Task>`, all `Send`.
unsafe impl<T: Send, F: Send> Send for Packet<T, F> {}

/// The last reference may go with a `JoinHandle` dropped on any thread after the coroutine
/// finished, or on the runtime's side: either way a result (or a panic payload, or an
/// unrun closure) that panics as it drops must not unwind into whoever let go last. The
/// panic is caught and ignored, as the runtime's own drops do (std aborts there instead).
/// Found by a flaky test: a detached result's panic surfaced in the thread that dropped
/// the handle whenever the coroutine had finished first.
impl<T, F> Drop for Packet<T, F> {
    fn drop(&mut self) {
        let stage = std::mem::replace(self.stage.get_mut(), Stage::Empty);
        leak_panic(panic::catch_unwind(AssertUnwindSafe(|| drop(stage))));
    }
}

impl<T, F> Packet<T, F> {
    fn new(f: F) -> Arc<Packet<T, F>> {
        Arc::new(Packet {
            state: AtomicU8::new(RUNNING),
            stage: UnsafeCell::new(Stage::Pending(f)),
            waiter: UnsafeCell::new(None),
        })
    }

    /// Stores the result and wakes the joiner if one is parked.
    fn complete(&self, r: thread::Result<T>) {
        // SAFETY: `run` owns `stage` until the swap below publishes it; the joiner reads it
        // only after seeing DONE.
        unsafe { *self.stage.get() = Stage::Done(r) };
        if self.state.swap(DONE, Ordering::AcqRel) == WAITING {
            // SAFETY: WAITING means the joiner stored its record before its Release CAS (which
            // our Acquire swap read) and leaves the cell alone from then on.
            let waiter = unsafe { (*self.waiter.get()).take() };
            if let Some(w) = waiter {
                w.unpark_owned();
            }
        }
    }
}

/// Puts the coroutine's name and id in front of a panic's report. std's default hook says
/// `thread 'coronet-worker-0' panicked at …`, the worker the coroutine ran on, which tells
/// thousands of handlers apart no better than nothing (found by the fifth audit; the
/// overflow report already names the coroutine). Installed once when the runtime starts,
/// in front of the hook set before (std's, or the user's), which still prints the message,
/// the location and the backtrace; a hook set later replaces both, as it would std's own.
pub(crate) fn install_panic_note() {
    // once: a start that failed (out of threads) may be retried
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            worker::with_current(|task| {
                let id = task.id;
                // Never `eprintln!`, which panics when stderr is gone (a closed pipe), and a
                // panic in a panic hook aborts; std's own hook ignores write errors too. (So
                // the line goes around the test harness's output capture, which only the
                // print macros see.)
                let mut err = std::io::stderr();
                let _ = match task.name() {
                    Some(name) => writeln!(err, "coroutine '{name}' (id {id}) panicked:"),
                    None => writeln!(err, "coroutine '<unnamed>' (id {id}) panicked:"),
                };
            });
            previous(info);
        }));
    });
}

/// The worker's side of a spawn: run the closure, or report that it could not start.
///
/// Called exactly once per packet: the only handle of this type lives in the `NewTask`, which
/// `Local::start` (`runtime/worker.rs`) consumes.
pub(crate) trait Body: Send + Sync {
    /// `failed` is `Some` when the coroutine could not start (its stack could not be
    /// mapped); the closure is then dropped unrun and `join` gets the reason.
    fn run(self: Arc<Self>, failed: Option<io::Error>);
}

impl<T, F> Body for Packet<T, F>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send,
{
    fn run(self: Arc<Self>, failed: Option<io::Error>) {
        // SAFETY: `run` is called once per packet (see `Body`), and until it publishes DONE
        // nothing else touches `stage`.
        let f = match unsafe { std::mem::replace(&mut *self.stage.get(), Stage::Empty) } {
            Stage::Pending(f) => Some(f),
            _ => None,
        };
        let r = match (failed, f) {
            (None, Some(f)) => panic::catch_unwind(AssertUnwindSafe(f)),
            (Some(e), f) => {
                // This runs on the scheduler, outside any coroutine: a capture whose drop
                // waits (a channel, a lock, a join) would park the worker thread itself, and
                // the coroutines that could end the wait are this worker's (found by the
                // fifth audit: the worker stopped for good). So the closure is dropped on
                // the blocking pool, never here, whenever a pool thread gets to it (the
                // joiner may have its error first). A panic there is the pool's to catch and
                // log; the joiner gets `e`.
                if let Some(f) = f {
                    super::blocking::detach(move || drop(f));
                }
                Err(Box::new(e.to_string()) as Box<dyn std::any::Any + Send>)
            }
            (None, None) => unreachable!("a coroutine body ran twice"),
        };
        self.complete(r);
        // With the handle dropped, this is the last reference and drops the result (or the
        // panic payload): user code, outside the closure's `catch_unwind`. A panic there must
        // not reach the worker (see `AbortOnUnwind`), so it is caught and leaked.
        leak_panic(panic::catch_unwind(AssertUnwindSafe(|| drop(self))));
    }
}

/// Keeps a panic caught while dropping user values from going further: its payload is leaked
/// (dropping it could panic again) and the event logged.
fn leak_panic(r: thread::Result<()>) {
    if let Err(payload) = r {
        std::mem::forget(payload);
        rt_log!(
            Error,
            "a value owned by a coroutine panicked while being dropped; panic ignored"
        );
    }
}

/// The joiner's side of a spawn, without the closure's type.
trait Join<T>: Send + Sync {
    /// Called once, by `JoinHandle::join` (which consumes the handle).
    fn wait(&self) -> thread::Result<T>;
    fn is_done(&self) -> bool;
}

impl<T, F> Join<T> for Packet<T, F>
where
    F: Send,
    T: Send,
{
    fn wait(&self) -> thread::Result<T> {
        if self.state.load(Ordering::Acquire) != DONE {
            // SAFETY: state is RUNNING (only we move it to WAITING), so the finisher does not
            // read `waiter` until our CAS below publishes it.
            unsafe { *self.waiter.get() = Some(token::current()) };
            match self
                .state
                .compare_exchange(RUNNING, WAITING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // Wake-ups may be spurious: the token is shared with every other wait.
                    while self.state.load(Ordering::Acquire) != DONE {
                        token::park(Wait::Join);
                    }
                }
                // Finished in between: the record was never published, take it back.
                // SAFETY: the finisher saw RUNNING, so it never touches `waiter`.
                Err(_) => drop(unsafe { (*self.waiter.get()).take() }),
            }
        }
        // SAFETY: DONE, read with Acquire, publishes `stage`, and we are the only joiner.
        match unsafe { std::mem::replace(&mut *self.stage.get(), Stage::Empty) } {
            Stage::Done(r) => r,
            _ => unreachable!("a finished coroutine left no result"),
        }
    }

    fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }
}

/// A handle to a spawned coroutine; `join` waits for its result.
///
/// Dropping the handle detaches the coroutine: it keeps running and its result is dropped.
///
/// ```
/// let (tx, rx) = coronet::chan::bounded(1);
/// drop(coronet::go(move || tx.send(7).unwrap())); // detached, but it still runs
/// assert_eq!(rx.recv().unwrap(), 7);
/// ```
pub struct JoinHandle<T> {
    task: Arc<Task>,
    packet: Arc<dyn Join<T>>,
}

impl<T> JoinHandle<T> {
    /// Waits for the coroutine to finish and returns its result.
    ///
    /// Inside a coroutine this parks only the caller; on a plain thread it blocks the thread.
    ///
    /// # Errors
    ///
    /// If the coroutine panicked, `Err` holds the panic payload, as `std::thread::JoinHandle`
    /// gives it. The runtime and other coroutines are unaffected.
    ///
    /// ```
    /// let h = coronet::go(|| 6 * 7);
    /// assert_eq!(h.join().unwrap(), 42);
    /// ```
    pub fn join(self) -> thread::Result<T> {
        self.packet.wait()
    }

    /// True once the coroutine has returned or panicked (`join` will not wait).
    ///
    /// ```
    /// let (tx, rx) = coronet::chan::bounded::<()>(0);
    /// let h = coronet::go(move || rx.recv().unwrap());
    /// assert!(!h.is_finished()); // it cannot finish before we send
    /// tx.send(()).unwrap();
    /// while !h.is_finished() {
    ///     coronet::yield_now();
    /// }
    /// h.join().unwrap(); // returns at once
    /// ```
    pub fn is_finished(&self) -> bool {
        self.packet.is_done()
    }

    /// The coroutine's handle: its id and name, and `unpark`.
    ///
    /// ```
    /// let h = coronet::Spawn::new().name("job").go(|| coronet::current().id());
    /// let c = h.coroutine();
    /// assert_eq!(c.name(), Some("job"));
    /// assert_eq!(h.join().unwrap(), c.id()); // the same coroutine, seen from inside
    /// ```
    pub fn coroutine(&self) -> Coroutine {
        Coroutine(self.task.clone())
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.task.id)
            .field("name", &self.task.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A handle to a coroutine (or, from [`current`](crate::current) on a plain thread, to that
/// thread): the analogue of `std::thread::Thread`.
///
/// ```
/// let h = coronet::Spawn::new().name("worker").go(coronet::current);
/// let me = h.join().unwrap(); // the handle outlives the coroutine
/// assert_eq!(me.name(), Some("worker"));
/// ```
#[derive(Clone)]
pub struct Coroutine(pub(crate) Arc<Task>);

impl Coroutine {
    /// The coroutine's unique id (threads that wait through coronet get ids too).
    ///
    /// ```
    /// let a = coronet::go(|| coronet::current().id());
    /// let b = coronet::go(|| coronet::current().id());
    /// assert_ne!(a.join().unwrap(), b.join().unwrap());
    /// // A plain thread keeps one id for its lifetime.
    /// assert_eq!(coronet::current().id(), coronet::current().id());
    /// ```
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The name given with [`Spawn::name`], if any.
    ///
    /// ```
    /// let anon = coronet::go(|| coronet::current().name().map(String::from));
    /// assert_eq!(anon.join().unwrap(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.0.name()
    }

    /// Wakes the coroutine if it is blocked in [`park`](crate::park), or makes its next
    /// `park` return at once. Idempotent, and callable from any thread.
    ///
    /// ```
    /// coronet::run(|| {
    ///     coronet::current().unpark();
    ///     coronet::park(); // returns at once: the token was already there
    /// });
    /// ```
    pub fn unpark(&self) {
        self.0.unpark();
    }
}

impl fmt::Debug for Coroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("id", &self.0.id)
            .field("name", &self.0.name())
            .finish()
    }
}

/// Options for a new coroutine: its name (shown by [`dump`](crate::dump), in the
/// stack-overflow report and in front of a panic's report) and its stack size.
///
/// ```
/// let h = coronet::Spawn::new()
///     .name("conn-42")
///     .stack_size(64 << 10)
///     .go(|| coronet::current().name().map(String::from));
/// assert_eq!(h.join().unwrap().as_deref(), Some("conn-42"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Spawn {
    name: Option<String>,
    stack_size: Option<usize>,
    place: Place,
}

/// Which worker a new coroutine goes to (`Spawn::same_worker`, `Spawn::spread`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The spawner's worker, or round-robin off a worker; idle workers may steal it.
    #[default]
    Any,
    /// The spawner's worker and no other.
    SameWorker,
    /// The worker holding the fewest coroutines.
    Spread,
}

impl Spawn {
    /// Default options: unnamed, the runtime's default stack size.
    ///
    /// ```
    /// let h = coronet::Spawn::new().go(|| coronet::current().name().is_none());
    /// assert!(h.join().unwrap());
    /// ```
    pub fn new() -> Spawn {
        Spawn::default()
    }

    /// Names the coroutine.
    ///
    /// ```
    /// let h = coronet::Spawn::new().name(format!("conn-{}", 7)).go(|| ());
    /// assert_eq!(h.coroutine().name(), Some("conn-7"));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Spawn {
        self.name = Some(name.into());
        self
    }

    /// Sets the usable stack size in bytes (rounded up to whole pages, and to at least 16 KiB
    /// as std does for threads; a guard page is added below it). A signal handler installed
    /// without `SA_ONSTACK` runs on this stack too, and needs a few KiB of it to spare
    /// (docs/porting.md, *Stack size*).
    ///
    /// ```
    /// // A 512 KiB buffer on the stack needs more than the 256 KiB default.
    /// let h = coronet::Spawn::new().stack_size(1 << 20).go(|| {
    ///     let mut buf = [1u8; 512 << 10];
    ///     std::hint::black_box(&mut buf); // keep it on the stack, uncopied
    ///     buf.iter().map(|&b| u32::from(b)).sum::<u32>()
    /// });
    /// assert_eq!(h.join().unwrap(), 512 << 10);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Spawn {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the coroutine on the worker that runs the caller, and on no other: idle
    /// workers do not steal it. Called off a worker (from a plain thread), this does
    /// nothing: the coroutine goes wherever a plain `go` would.
    ///
    /// A started coroutine never moves to another thread, so coroutines that pass many
    /// small messages to each other are best started on one worker: a hand-over between
    /// two coroutines of one worker is a queue push, while one to another worker's
    /// coroutine is a cross-thread wake-up (3–4× Go's round trip for a ping-pong split over
    /// two workers, against half Go's when spawned this way; docs/runtime.md, *The pinning
    /// rule*). The price is that the new coroutine waits for the caller's worker even when
    /// another is idle, and shares that worker's time with the caller for good: a caller
    /// that waits for it without parking (spinning on a flag) waits for ever.
    ///
    /// ```
    /// let here = coronet::go(|| {
    ///     let me = std::thread::current().id();
    ///     let child = coronet::Spawn::new()
    ///         .same_worker()
    ///         .go(|| std::thread::current().id());
    ///     child.join().unwrap() == me
    /// });
    /// assert!(here.join().unwrap());
    /// ```
    pub fn same_worker(mut self) -> Spawn {
        self.place = Place::SameWorker;
        self
    }

    /// Starts the coroutine on the worker that holds the fewest coroutines (started and
    /// unfinished, or queued), the caller's own worker on a tie (from a plain thread, the
    /// next one round-robin), and on no other: once placed, it is not stolen. Replaces
    /// [`same_worker`](Spawn::same_worker) if both are called; the last call wins.
    ///
    /// For long-lived coroutines, such as one per connection of a server whose clients stay
    /// connected. A started coroutine never moves to another thread, and a plain `go` queues
    /// the new coroutine on the caller's worker, where an idle worker may steal it only
    /// until that worker gets to it — at once, if it has nothing else to do. So connections
    /// accepted while the server is idle all start on the acceptor's worker and stay there
    /// when their load comes later: one core busy, the others idle (docs/runtime.md, *The
    /// pinning rule*). Spread, they take turns over the workers as they arrive, as a
    /// least-connections balancer would place them. The price: a coroutine placed on
    /// another worker starts after a cross-thread hand-over (and a wake-up if that worker
    /// sleeps), and talks to its spawner across threads. Short-lived helpers and chatty
    /// pairs are better off with a plain `go` or `same_worker`: spawning and joining an
    /// empty coroutine took 0.2–0.4 µs with `go` and 26 µs with `spread` on a two-worker
    /// runtime whose other worker slept between the spawns (0.20 against 0.19 µs on one
    /// worker). Placed on the caller's own worker, it waits for the caller to park, as with
    /// `same_worker`: a caller that waits for it without parking (spinning on a flag) waits
    /// for ever.
    ///
    /// ```no_run
    /// use std::io::{Read, Write};
    /// use coronet::net::TcpListener;
    ///
    /// coronet::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:7000").unwrap();
    ///     for conn in listener.incoming() {
    ///         let mut conn = conn.unwrap();
    ///         coronet::Spawn::new().spread().go(move || {
    ///             let mut buf = [0u8; 4096];
    ///             while let Ok(n @ 1..) = conn.read(&mut buf) {
    ///                 if conn.write_all(&buf[..n]).is_err() {
    ///                     break;
    ///                 }
    ///             }
    ///         });
    ///     }
    /// });
    /// ```
    pub fn spread(mut self) -> Spawn {
        self.place = Place::Spread;
        self
    }

    /// Spawns `f` as a coroutine.
    ///
    /// The stack is mapped when the coroutine starts; if that fails the coroutine does not
    /// run and `join` returns `Err` carrying the reason as a `String`.
    ///
    /// # Panics
    ///
    /// If the runtime cannot start (for example no fd is left for its epoll).
    ///
    /// ```
    /// let ok = coronet::Spawn::new().name("adder").go(|| 2 + 2);
    /// assert_eq!(ok.join().unwrap(), 4);
    ///
    /// // A stack that cannot exist: the coroutine never runs, `join` says why.
    /// let bad = coronet::Spawn::new().stack_size(usize::MAX).go(|| ());
    /// let why = bad.join().unwrap_err();
    /// assert!(why.downcast_ref::<String>().unwrap().contains("does not fit"));
    /// ```
    #[track_caller]
    pub fn go<F, T>(self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // A `match`, not `unwrap_or_else`: the panic names the caller's line only if it
        // is made here (a closure does not inherit `#[track_caller]`).
        match self.spawn(f, false) {
            Ok(h) => h,
            Err(e) => panic!("coronet: cannot spawn a coroutine: {e}"),
        }
    }

    /// Spawns `f` as a coroutine, mapping its stack now.
    ///
    /// The stack comes from the calling worker's pool, and goes back to the pool of the
    /// worker that ran the coroutine: with [`spread`](Spawn::spread), which places many on
    /// another worker, the caller's pool keeps mapping new stacks (a mapping per 31 such
    /// spawns or so, and a syscall per stack where the other pool overflows).
    /// [`go`](Spawn::go), which takes its stack where the coroutine starts, has no such
    /// cost.
    ///
    /// # Errors
    ///
    /// When the stack cannot be mapped (out of memory, or `vm.max_map_count` reached — the
    /// message says which and what to change), or the runtime cannot start.
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let err = coronet::Spawn::new().stack_size(usize::MAX).try_go(|| ()).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    ///
    /// let h = coronet::Spawn::new().stack_size(64 << 10).try_go(|| 5)?;
    /// assert_eq!(h.join().unwrap(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_go<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn(f, true)
    }

    fn spawn<F, T>(self, f: F, reserve: bool) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let rt = super::runtime()?;
        let stack_size = self.stack_size.unwrap_or(rt.stack_size);
        let stack = if reserve {
            Some(worker::take_stack(stack_size)?)
        } else {
            None
        };
        Ok(self.submit(rt, f, stack_size, stack, None))
    }

    /// Spawns `f` on a stack the caller mapped with `rt`'s default size, to start on worker
    /// 0 and no other (for `Builder::main`, which must learn of a stack that cannot be
    /// mapped before it gives its thread to the scheduler for good, and whose `main` runs on
    /// that thread, worker 0, as its docs say).
    pub(crate) fn go_on_worker_0<F, T>(
        self,
        rt: &'static Runtime,
        stack: Stack,
        f: F,
    ) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit(rt, f, rt.stack_size, Some(stack), Some(0))
    }

    fn submit<F, T>(
        self,
        rt: &'static Runtime,
        f: F,
        stack_size: usize,
        stack: Option<Stack>,
        pin_to: Option<usize>,
    ) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let task = Task::new_coroutine(self.name.map(String::into_boxed_str));
        let packet = Packet::new(f);
        let new = NewTask {
            task: task.clone(),
            body: packet.clone(),
            stack_size,
            stack,
        };
        match (pin_to, self.place) {
            (Some(index), _) => worker::submit_pinned(rt, index, new),
            (None, Place::SameWorker) => worker::submit_same_worker(rt, new),
            (None, Place::Spread) => worker::submit_spread(rt, new),
            (None, Place::Any) => worker::submit(rt, new),
        }
        JoinHandle { task, packet }
    }
}

/// Spawns `f` as a coroutine with default options. Works from a coroutine and from a plain
/// thread; the global runtime starts on first use.
///
/// # Panics
///
/// If the runtime cannot start.
///
/// ```
/// let handles: Vec<_> = (0..10).map(|i| coronet::go(move || i * 2)).collect();
/// let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 90);
/// ```
///
/// A started coroutine never moves between threads, but the closure must be `Send`
/// because a worker other than the spawner's may start it:
///
/// ```compile_fail
/// let rc = std::rc::Rc::new(1);
/// coronet::go(move || *rc);
/// ```
#[track_caller]
pub fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Spawn::new().go(f)
}

/// Like [`go`], but maps the stack now and returns an error instead of panicking.
///
/// # Errors
///
/// See [`Spawn::try_go`].
///
/// ```
/// // A server that sheds load instead of aborting when stacks run out.
/// match coronet::try_go(|| 6 * 7) {
///     Ok(h) => assert_eq!(h.join().unwrap(), 42),
///     Err(e) => eprintln!("busy, dropping the connection: {e}"),
/// }
/// ```
pub fn try_go<F, T>(f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Spawn::new().try_go(f)
}

/// Runs `f` beside the caller, for the runtime's own helpers (a dial's second address
/// family, a lookup under a context): on a new coroutine when the caller is one, else on a
/// new plain thread named `name`, so that a plain thread's call never starts the runtime
/// behind the program's back (its `Builder::main` would then fail). If neither can start,
/// `f` is dropped unrun (callers learn it from what `f` owned: a channel's sender).
pub(crate) fn go_beside(name: &str, f: impl FnOnce() + Send + 'static) {
    let started = if worker::in_coroutine() {
        try_go(f).map(drop)
    } else {
        thread::Builder::new()
            .name(name.to_owned())
            .spawn(f)
            .map(drop)
    };
    if let Err(e) = started {
        rt_log!(Debug, "{name}: could not start: {e}");
    }
}

/// Runs `f` as a coroutine and blocks the calling thread until it returns.
///
/// # Panics
///
/// A panic in `f` is resumed on the caller, with its payload unchanged. The panic hook runs
/// again there for a message payload, so the caller's output shows the message too: the
/// first report went to the worker thread's output, which under the test harness may be
/// another test's.
///
/// ```
/// let n = coronet::run(|| {
///     let h = coronet::go(|| 1);
///     h.join().unwrap() + 1
/// });
/// assert_eq!(n, 2);
/// ```
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match go(f).join() {
        Ok(v) => v,
        Err(p) => resume_here(p),
    }
}

/// Resumes on this thread a panic caught on another one: a coroutine's on its worker, a job's
/// on the blocking pool.
///
/// `resume_unwind` alone carries the payload but skips the panic hook, so only the thread
/// that caught the panic printed its message. That thread is a worker or a pool thread, made
/// by whoever first needed one; under the test harness it inherited *that* test's output
/// capture, so the message landed in another test's output, and the failing test's report
/// said only "coroutine … panicked:" (seen in CI). A message payload (`String` or `&str`,
/// what `panic!` makes) is therefore raised anew with `panic_any`, which runs the hook on this
/// thread, at the caller's location, with the same payload; any other payload is resumed
/// as it is.
#[track_caller]
pub(crate) fn resume_here(payload: Box<dyn std::any::Any + Send>) -> ! {
    let payload = match payload.downcast::<String>() {
        Ok(msg) => panic::panic_any(*msg),
        Err(other) => other,
    };
    match payload.downcast::<&'static str>() {
        Ok(msg) => panic::panic_any(*msg),
        Err(other) => panic::resume_unwind(other),
    }
}

/// Parks the current coroutine (or thread) until [`Coroutine::unpark`] is called on it.
/// May return spuriously: loop on your own condition, as with `std::thread::park`.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let ready = Arc::new(AtomicBool::new(false));
/// let flag = ready.clone();
/// let h = coronet::go(move || {
///     while !flag.load(Ordering::Acquire) {
///         coronet::park(); // wake-ups may be spurious: re-test the condition
///     }
/// });
/// ready.store(true, Ordering::Release);
/// h.coroutine().unpark();
/// h.join().unwrap();
/// ```
pub fn park() {
    token::park(Wait::Park)
}

/// The handle of the running coroutine, or of the calling thread outside one.
///
/// ```
/// let h = coronet::go(|| coronet::current().id());
/// let id = h.coroutine().id();
/// assert_eq!(h.join().unwrap(), id);
/// assert_ne!(coronet::current().id(), id); // this thread has its own
/// ```
pub fn current() -> Coroutine {
    Coroutine(token::current())
}

/// Ends the process with `code`, as `std::process::exit` does (stdout flushed, this
/// thread's thread-local destructors and the `atexit` handlers run, no other destructor),
/// and safely from a coroutine: there it hands the exit to its worker's scheduler, which
/// makes the call on the thread's own stack. `std::process::exit` called in a coroutine
/// runs the thread's thread-local destructors on the coroutine's stack instead, and if one
/// of them waits on a coronet primitive (a sleep, a socket, a lock), the worker's other
/// coroutines run meanwhile with the thread's thread-locals freed under them. With this,
/// such a wait blocks the thread, and no coroutine of it runs again.
///
/// Returning from [`Builder::main`](crate::Builder::main)'s `main` ends the process
/// through here.
///
/// ```no_run
/// coronet::go(|| {
///     eprintln!("fatal: no configuration");
///     coronet::exit(2);
/// })
/// .join()
/// .unwrap();
/// ```
pub fn exit(code: i32) -> ! {
    worker::exit_coroutine(code);
    std::process::exit(code)
}

/// Cooperatively gives the worker to other runnable coroutines. Call it in long CPU loops:
/// coroutines are not preempted. On a plain thread it is `std::thread::yield_now`.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// static DONE: AtomicBool = AtomicBool::new(false);
/// coronet::Builder::new().workers(1).build_global()?;
/// coronet::run(|| {
///     let h = coronet::go(|| DONE.store(true, Ordering::SeqCst));
///     // One worker and no preemption: without the yield this loop would spin forever.
///     while !DONE.load(Ordering::SeqCst) {
///         coronet::yield_now();
///     }
///     h.join().unwrap();
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn yield_now() {
    worker::yield_now()
}
