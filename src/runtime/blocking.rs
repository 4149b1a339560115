//! `spawn_blocking`: a bounded, growable pool of plain threads for calls that would block a
//! worker (foreign libraries, `getaddrinfo`, file I/O, heavy CPU work).
//!
//! Threads are created on demand up to [`MAX_THREADS`] (or what
//! `Builder::max_blocking_threads` set) and exit after [`IDLE_TIMEOUT`]
//! without work, so an idle program holds none. Jobs beyond the bound wait in a FIFO queue,
//! except the runtime's own name lookups (at most `net::MAX_LOOKUPS` at once), which go first
//! and may start threads past it: user jobs that wait for a coroutine which must first
//! resolve a name would otherwise never see it do so. (`io::copy`'s reads of a pipe take
//! their turn with user jobs.)

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::park::{self, current};
use super::task::{Task, Wait};
use super::worker;

/// The most threads the pool runs at once by default (Go's default limit on OS threads is
/// far higher, but its blocking calls are rarer; 512 keeps a runaway caller from exhausting
/// the box). `Builder::max_blocking_threads` changes it, as tokio's builder of that name.
pub const MAX_THREADS: usize = 512;

/// The cap in force: [`MAX_THREADS`] until a `Builder` that starts the runtime sets its own.
/// Read under the pool's lock by each submit that would start a thread; a thread started
/// before a lower cap was set runs on until it idles out.
static CAP: AtomicUsize = AtomicUsize::new(MAX_THREADS);

/// Sets the pool's cap (at least 1), from `Builder`'s start of the runtime.
pub(crate) fn set_max_threads(n: usize) {
    CAP.store(n.max(1), Ordering::Relaxed);
}

/// How long an idle pool thread waits for a job before it exits.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    cond: Condvar,
}

struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    /// Jobs taken from the queue so far: the monitor's sign of progress (`sysmon.rs`).
    taken: u64,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState {
        queue: VecDeque::new(),
        threads: 0,
        idle: 0,
        taken: 0,
    }),
    cond: Condvar::new(),
};

fn lock() -> MutexGuard<'static, PoolState> {
    POOL.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Queues `job` for a pool thread, starting one when no idle thread is free for it.
/// `beyond_cap`: the job may start a thread past the cap ([`MAX_THREADS`] by default) and
/// goes to the front of the queue — for the runtime's name lookups (`run_scoped`; bounded
/// by `MAX_LOOKUPS`), which must not wait behind user jobs that may in turn be waiting for
/// them.
/// `here_if_none`: with no pool thread at all and none to be had, the job runs on the
/// caller rather than never; a detached job instead stays queued for the next thread (see
/// `detach`).
fn submit(job: Job, beyond_cap: bool, here_if_none: bool) {
    let mut st = lock();
    // An idle thread is free only if fewer jobs wait than threads idle: `idle` drops when a
    // woken thread runs, not when it is notified, so one idle thread must not be counted for
    // every submit in between (jobs that need to run at once would queue behind each other).
    let free = st.queue.len() < st.idle;
    if beyond_cap {
        st.queue.push_front(job);
    } else {
        st.queue.push_back(job);
    }
    if free {
        drop(st);
        POOL.cond.notify_one();
        return;
    }
    if st.threads < CAP.load(Ordering::Relaxed) || beyond_cap {
        st.threads += 1;
        let spawned = std::thread::Builder::new()
            .name("coronet-blocking".into())
            .spawn(pool_thread);
        if spawned.is_err() {
            // No thread now; the job stays queued for an existing one. With none at all,
            // run it here rather than never.
            st.threads -= 1;
            if st.threads == 0 && here_if_none {
                let job = if beyond_cap {
                    st.queue.pop_front()
                } else {
                    st.queue.pop_back()
                };
                st.taken += 1;
                drop(st);
                job.expect("just queued")();
            }
        }
    }
}

fn pool_thread() {
    let mut st = lock();
    loop {
        if let Some(job) = st.queue.pop_front() {
            st.taken += 1;
            drop(st);
            job();
            st = lock();
            continue;
        }
        st.idle += 1;
        let (guard, timeout) = POOL
            .cond
            .wait_timeout(st, IDLE_TIMEOUT)
            .unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

struct Slot<T> {
    result: Option<std::thread::Result<T>>,
    waiter: Option<Arc<Task>>,
}

/// Runs `f` on the blocking thread pool and parks the calling coroutine until it returns.
///
/// On a plain thread `f` simply runs on the caller (it may block that thread already).
///
/// # Panics
///
/// A panic in `f` is resumed on the caller, as [`run`](crate::run) resumes one: the payload
/// unchanged, the panic hook run again there.
///
/// ```
/// let n = coronet::run(|| coronet::spawn_blocking(|| {
///     std::thread::sleep(std::time::Duration::from_millis(10)); // would stall a worker
///     7
/// }));
/// assert_eq!(n, 7);
/// ```
#[track_caller]
pub fn spawn_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if !worker::in_coroutine() {
        return f();
    }
    let slot = Arc::new(Mutex::new(Slot {
        result: None,
        waiter: Some(current()),
    }));
    let theirs = slot.clone();
    let job: Job = Box::new(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        let waiter = {
            let mut s = theirs.lock().unwrap_or_else(|e| e.into_inner());
            s.result = Some(r);
            s.waiter.take()
        };
        if let Some(w) = waiter {
            w.unpark();
        }
    });
    submit(job, false, true);
    loop {
        if let Some(r) = slot.lock().unwrap_or_else(|e| e.into_inner()).result.take() {
            match r {
                Ok(v) => return v,
                Err(p) => super::spawn::resume_here(p),
            }
        }
        park::park(Wait::Blocking);
    }
}

/// Runs `f` on the pool without waiting for it (a lingering socket's close, `poll/fd.rs`;
/// the drop of a coroutine's closure that could not start, `spawn.rs`). A panic in `f` is
/// caught and logged: nobody is there to receive it. Never on the caller: these jobs come
/// here because they may block, and the caller is often a worker's scheduler. With no
/// thread to be had, the job waits in the queue for the next one a later job starts.
pub(crate) fn detach(f: impl FnOnce() + Send + 'static) {
    submit(
        Box::new(move || {
            if panic::catch_unwind(AssertUnwindSafe(f)).is_err() {
                rt_log!(Warn, "blocking: a detached job panicked");
            }
        }),
        false,
        false,
    );
}

/// Like [`spawn_blocking`] for a closure that borrows from the caller's stack (name
/// resolution takes `impl ToSocketAddrs`, which may be a `&str`), run ahead of queued user
/// jobs and past the cap if need be: for the runtime's own name lookups, which are bounded
/// by `net::MAX_LOOKUPS` and which user jobs may be waiting for.
pub(crate) fn run_scoped<'a, F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    scoped(f, true)
}

/// [`run_scoped`] in turn with user jobs, within the cap: for work that may last as long
/// as its caller likes (`io::copy`'s reads of a pipe).
pub(crate) fn run_scoped_in_turn<'a, F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    scoped(f, false)
}

fn scoped<'a, F, T>(f: F, first: bool) -> T
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    if !worker::in_coroutine() {
        return f();
    }
    let slot: Arc<Mutex<Slot<T>>> = Arc::new(Mutex::new(Slot {
        result: None,
        waiter: Some(current()),
    }));
    let theirs = slot.clone();
    let job: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        let waiter = {
            let mut s = theirs.lock().unwrap_or_else(|e| e.into_inner());
            s.result = Some(r);
            s.waiter.take()
        };
        drop(theirs);
        if let Some(w) = waiter {
            w.unpark();
        }
    });
    // The wait below must not end before the job has, even by a panic (a `park` can panic,
    // for one when user code run on the way re-enters it): the guard holds the unwinding
    // frame until the job is done.
    let guard = Outlive(&slot);
    // SAFETY: the job borrows data that lives for 'a on this coroutine's stack. We do not
    // leave this frame — by return or by unwinding, which `guard` holds up — until the job
    // has stored its result, which it does after `f` has run and been consumed; afterwards
    // it touches only its `Arc` of the slot (whose `Option<T>` we have emptied or will drop
    // ourselves) and the waiter's `Arc<Task>`, both 'static. A parked coroutine is never
    // dropped (workers never drop suspended coroutines), so its frame cannot vanish either.
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 'a>, Job>(job) };
    submit(job, first, true);
    loop {
        if let Some(r) = slot.lock().unwrap_or_else(|e| e.into_inner()).result.take() {
            std::mem::forget(guard);
            match r {
                Ok(v) => return v,
                Err(p) => super::spawn::resume_here(p),
            }
        }
        park::park(Wait::Blocking);
    }
}

/// Dropped only when `run_scoped`'s wait unwinds: blocks the thread until the job that
/// borrows the unwinding frame has finished with it. A plain sleep loop, as the park that
/// just panicked cannot be trusted; the job is on the blocking pool and will finish.
struct Outlive<'s, T>(&'s Mutex<Slot<T>>);

impl<T> Drop for Outlive<'_, T> {
    fn drop(&mut self) {
        // stderr, not the logger: user code is what may have panicked on the way here.
        eprintln!("coronet: a coroutine unwinds while a blocking job borrows its stack; waiting");
        while self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .result
            .is_none()
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// For the monitor (`sysmon.rs`): threads in the pool, jobs waiting in its queue, and jobs
/// taken from it so far.
pub(crate) fn pool_progress() -> (usize, usize, u64) {
    let st = lock();
    (st.threads, st.queue.len(), st.taken)
}

/// Threads in the pool now, and how many of them are idle.
pub(crate) fn pool_threads() -> (usize, usize) {
    let st = lock();
    (st.threads, st.idle)
}
