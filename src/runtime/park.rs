//! The park/unpark protocol: one token per task, shared by everything that waits.
//!
//! ```text
//!  state           meaning                                  who moves it out
//!  -------------   --------------------------------------   -------------------------------
//!  EMPTY           running, no wake-up pending              park → PARKED_*; unpark → NOTIFIED
//!  NOTIFIED        a wake-up is pending (or being handled)  park consumes it → EMPTY
//!  PARKED          coroutine suspended (or suspending)      unpark → NOTIFIED + schedule it
//!  PARKED_THREAD   thread in std::thread::park              unpark → NOTIFIED + Thread::unpark
//!  PARKED_POLL     thread in poll(2) on an fd + its eventfd unpark → NOTIFIED + eventfd write
//! ```
//!
//! Rules that make it race-free:
//! - Only the task itself moves EMPTY → PARKED_* (just before it sleeps) and back to EMPTY
//!   when it wakes (from NOTIFIED, or from its own PARKED_* after a timeout). Anyone, from
//!   any thread, may unpark: unpark *swaps* in NOTIFIED, so exactly one unparker sees a
//!   PARKED_* state and delivers the wake; the rest see NOTIFIED and do nothing. That makes
//!   unpark idempotent and is why a coroutine is in a run queue at most once.
//! - An unpark that lands before the park leaves NOTIFIED behind, and the park returns at
//!   once: a wake-up that races ahead is never lost.
//! - Wake-ups may be spurious (two reasons collapse into one token; a timer and an event can
//!   both fire). Every caller loops and re-tests its own condition.
//!
//! A coroutine that stores PARKED and is woken from another thread before it has finished
//! suspending is safe: the wake goes to its owner worker's queue, and that worker is the
//! thread still running it, so it cannot be resumed until it has suspended.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::task::{Home, State, Task, Wait};
use super::worker::{self, Turn};

const EMPTY: u8 = 0;
const NOTIFIED: u8 = 1;
const PARKED: u8 = 2;
const PARKED_THREAD: u8 = 3;
const PARKED_POLL: u8 = 4;

// The token's word is loom's atomic in the loom models (`loom_tests` below), so they run
// the very methods the runtime calls; everywhere else it is std's. loom is a dev-dependency,
// hence `test` as well.
#[cfg(all(test, loom))]
use loom::sync::atomic::AtomicU8;
#[cfg(not(all(test, loom)))]
use std::sync::atomic::AtomicU8;

/// Every move of the word is one of the methods below, which the loom models call as they
/// are: the callers only decide what to do with the state a move returns.
pub(crate) struct Token(AtomicU8);

impl Token {
    #[cfg(not(all(test, loom)))]
    pub(crate) const fn new() -> Token {
        Token(AtomicU8::new(EMPTY))
    }

    /// loom's atomics are not `const`-constructible.
    #[cfg(all(test, loom))]
    pub(crate) fn new() -> Token {
        Token(AtomicU8::new(EMPTY))
    }

    /// Moves EMPTY → `parked`; false if a notification is pending (then it is consumed).
    fn begin_park(&self, parked: u8) -> bool {
        match self
            .0
            .compare_exchange(EMPTY, parked, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(NOTIFIED) => {
                // A swap, not a store: another unpark may have swapped NOTIFIED in again since
                // the CAS read it, and its Release (publishing the waker's condition) must be
                // acquired before the caller re-checks that condition, or the wake-up is lost.
                self.0.swap(EMPTY, Ordering::Acquire);
                false
            }
            Err(s) => panic!("park token in unexpected state {s} at park"),
        }
    }

    /// After waking: leave the token EMPTY whatever happened meanwhile.
    fn end_park(&self) {
        self.0.swap(EMPTY, Ordering::Acquire);
    }

    /// `park_thread`'s test after `std::thread::park` returns: still `parked`, so the return
    /// was spurious (no unpark has swapped NOTIFIED in)?
    #[inline(always)]
    fn still_parked(&self, parked: u8) -> bool {
        self.0.load(Ordering::Acquire) == parked
    }

    /// `unpark`'s move: swaps NOTIFIED in and returns the state it replaced. Only the one
    /// caller that gets a `PARKED_*` back delivers the wake.
    #[inline(always)]
    fn notify(&self) -> u8 {
        self.0.swap(NOTIFIED, Ordering::AcqRel)
    }

    /// `unpark_owned`'s move: PARKED → NOTIFIED; true if this caller won the PARKED and so
    /// must schedule the coroutine. On false nothing moved: the caller falls back to
    /// [`notify`](Token::notify), which re-reads the state.
    #[inline(always)]
    fn notify_parked(&self) -> bool {
        self.0
            .compare_exchange(PARKED, NOTIFIED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl Task {
    /// Wakes this task if it is parked, or makes its next park return at once.
    /// Safe from any thread, any number of times.
    pub(crate) fn unpark(self: &Arc<Self>) {
        match self.token.notify() {
            EMPTY => hot_trace!(
                "unpark task {}: not parked, its next park returns at once",
                self.id
            ),
            NOTIFIED => {}
            PARKED => {
                self.set_state(State::Runnable);
                worker::schedule(self.clone());
                // Only now: the logger is user code, and may park or panic.
                hot_trace!("unpark coroutine {}", self.id);
            }
            PARKED_THREAD => match &self.home {
                Home::Thread(t) => t.thread.unpark(),
                Home::Coroutine { .. } => unreachable!("coroutine token PARKED_THREAD"),
            },
            PARKED_POLL => match &self.home {
                Home::Thread(t) => {
                    // the loom models' stand-in for the eventfd (nothing in other builds)
                    #[cfg(all(test, loom))]
                    loom_bed::wake(self.id);
                    if let Some(fd) = t.wakefd.get() {
                        crate::poll::epoll::eventfd_signal(fd.as_fd());
                    }
                }
                Home::Coroutine { .. } => unreachable!("coroutine token PARKED_POLL"),
            },
            s => panic!("park token in unknown state {s}"),
        }
    }
}

impl Task {
    /// As [`unpark`](Task::unpark), consuming a reference the caller owns anyway: a parked
    /// coroutine gets this very `Arc` in its run queue instead of a fresh clone (a channel
    /// hand-off saves a reference-count round trip).
    pub(crate) fn unpark_owned(self: Arc<Self>) {
        self.unpark_owned_at(Turn::Next)
    }

    /// As [`unpark_owned`](Task::unpark_owned); a parked coroutine waits where `turn` says.
    pub(crate) fn unpark_owned_at(self: Arc<Self>, turn: Turn) {
        // PARKED → NOTIFIED by CAS, which like unpark's swap lets exactly one unparker see
        // PARKED; any other state is unpark's business (it re-reads it).
        if self.token.notify_parked() {
            let id = self.id;
            self.set_state(State::Runnable);
            worker::schedule_at(self, turn);
            // Only now: the logger is user code, and may park or panic.
            hot_trace!("unpark coroutine {}", id);
        } else {
            self.unpark()
        }
    }
}

/// The task the caller is: the running coroutine, or this thread's own record.
pub(crate) fn current() -> Arc<Task> {
    worker::current_task().unwrap_or_else(thread_task)
}

thread_local! {
    static THREAD_TASK: Arc<Task> = Task::new_thread();
    /// The record of a thread whose `THREAD_TASK` is already destroyed: a thread-local
    /// destructor that joins, receives or locks waits too, as with std's primitives. A raw
    /// pointer in a const cell, so it has no destructor and is there to the thread's end;
    /// the reference it holds is given back by `release_late_task`, a pthread key's
    /// destructor, which glibc runs after every `thread_local!` destructor.
    static LATE_THREAD_TASK: std::cell::Cell<*const Task> =
        const { std::cell::Cell::new(std::ptr::null()) };
}

/// Runs `f` with this plain thread's own record.
fn with_thread_task<R>(f: impl FnOnce(&Arc<Task>) -> R) -> R {
    let mut f = Some(f);
    if let Ok(r) = THREAD_TASK.try_with(|t| (f.take().expect("not run yet"))(t)) {
        return r;
    }
    let raw = LATE_THREAD_TASK.with(|late| {
        if late.get().is_null() {
            let raw = Arc::into_raw(Task::new_thread());
            late.set(raw);
            hand_late_task_to_key(raw);
        }
        late.get()
    });
    // SAFETY: `raw` came from `Arc::into_raw`, and that reference is given back only by
    // `release_late_task`, which runs after this thread's last `thread_local!` destructor
    // and clears the cell first, so no call on this thread can still be using it;
    // `ManuallyDrop` keeps this view of it from releasing the reference it does not own.
    let task = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(raw) });
    (f.take().expect("not run yet"))(&task)
}

/// The pthread key whose destructor gives back a thread's late record (and with it the
/// eventfd a socket wait gave it). Without it each thread whose thread-local destructors
/// waited on a socket kept an fd open for good (found by a leak hunt: one fd and 160 bytes
/// per such thread, so a process churning threads ran into EMFILE). `None` if the process
/// is out of keys: the record is then leaked, as it was.
fn late_task_key() -> Option<libc::pthread_key_t> {
    static KEY: std::sync::OnceLock<Option<libc::pthread_key_t>> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is valid to write; `release_late_task` has the signature pthread
        // destructors need and may run on any thread that set a value.
        let rc = unsafe { libc::pthread_key_create(&mut key, Some(release_late_task)) };
        (rc == 0).then_some(key)
    })
}

fn hand_late_task_to_key(raw: *const Task) {
    if let Some(key) = late_task_key() {
        // SAFETY: the key was created above; the value is only read back by the destructor.
        // Set again after a release (a pthread destructor of someone else's that waits),
        // glibc runs the destructor once more, up to PTHREAD_DESTRUCTOR_ITERATIONS rounds.
        unsafe { libc::pthread_setspecific(key, raw.cast()) };
    }
}

/// glibc runs pthread key destructors when the thread ends, after `__call_tls_dtors` has
/// run every `thread_local!` destructor (and never for the main thread, whose end ends the
/// process). Wakers hold `Arc`s of their own, so the record outlives this release until
/// they are done with it.
extern "C" fn release_late_task(value: *mut libc::c_void) {
    // Cleared first: a wait in a later destructor makes a new record rather than use this.
    let _ = LATE_THREAD_TASK.try_with(|late| {
        if late.get() == value.cast_const().cast() {
            late.set(std::ptr::null());
        }
    });
    // SAFETY: `value` is the pointer `with_thread_task` got from `Arc::into_raw` and handed
    // to the key; glibc passes it here once (it clears the value before the call), and
    // nothing else gives that reference back.
    drop(unsafe { Arc::from_raw(value.cast_const().cast::<Task>()) });
}

fn thread_task() -> Arc<Task> {
    with_thread_task(Arc::clone)
}

/// Parks the caller until it is unparked (or spuriously). `why` is shown by `dump()`.
pub(crate) fn park(why: Wait) {
    park_until(None, why)
}

/// Parks the caller until it is unparked, `deadline` passes, or spuriously.
pub(crate) fn park_until(deadline: Option<Instant>, why: Wait) {
    if worker::with_current(|task| park_coroutine(task, deadline, why, -1)).is_none() {
        with_thread_task(|t| park_thread(t, deadline, why, -1));
    }
}

/// As [`park_until`], for a caller that already holds its own record (from [`current`]):
/// saves looking it up again on every park of a hot wait loop. `fd` is the socket an I/O
/// wait is for (shown by `dump()`), -1 for any other wait.
#[inline(always)]
pub(crate) fn park_current_until(task: &Arc<Task>, deadline: Option<Instant>, why: Wait, fd: i32) {
    debug_assert!(
        Arc::ptr_eq(task, &current()),
        "park_current_until: not the caller's own task"
    );
    match task.home {
        Home::Coroutine { .. } => park_coroutine(task, deadline, why, fd),
        Home::Thread(_) => park_thread(task, deadline, why, fd),
    }
}

/// Always inlined, as are `worker::suspend_parked` and `worker::suspend` under it: a parked
/// coroutine's stack then holds one frame for the whole wait (`PollDesc::wait_coroutine`
/// with everything below folded in) instead of four. Each frame costs at least 56 bytes of
/// saved registers and return address, and a resume walks back up through all of them, one
/// cache miss per line once the stack has gone cold (measured: 416 → 192 bytes from the
/// wait down to the switch).
#[inline(always)]
fn park_coroutine(task: &Arc<Task>, deadline: Option<Instant>, why: Wait, fd: i32) {
    if crate::trace_on() && !trace_park(task, why, fd) {
        return; // the logger parked us: a spurious return, so the caller looks again
    }
    if !task.token.begin_park(PARKED) {
        return;
    }
    if let Some(d) = deadline {
        worker::arm_park_timer(task, d);
    }
    task.set_wait(why, fd);
    worker::suspend_parked(task, why);
    task.set_wait(Wait::None, -1);
    task.token.end_park();
    if deadline.is_some() {
        worker::park_timer_done(task);
    }
}

/// The park's trace line (with the fd, for a wait on one), logged before the token moves,
/// and the only line between the waiter becoming findable (in a slot, a queue) and its
/// park: the logger is user code, and one that parks (on a contended coronet lock, or a
/// channel to a writer, say) must find the token EMPTY, not PARKED with a timer armed. Its
/// own park would log again and recurse without end, so parks that happen while this
/// thread is inside this call are not logged (the mark is per thread: another coroutine
/// run meanwhile loses its park line too, which is all it loses).
///
/// False when the logger parked this very coroutine. The wake-up this park waits for may
/// have come meanwhile and been taken by that inner park, whose own wait then went on (an
/// audit of the channels: a `recv` handed its value while its park line was in a logger's
/// channel send slept for ever). The caller then returns at once, a spurious wake-up its
/// loop re-checks its condition after; the retry's park is not logged again, or a logger
/// that parks on every line would turn the wait into a stream of park lines. (Should the
/// retry find its condition met, the coroutine's next park goes unlogged instead.)
#[cold]
#[inline(never)]
fn trace_park(task: &Task, why: Wait, fd: i32) -> bool {
    use std::cell::Cell;
    thread_local! {
        /// The coroutine whose park line this thread is logging.
        static LOGGING: Cell<Option<u64>> = const { Cell::new(None) };
        /// That coroutine parked inside the logger.
        static PARKED_INSIDE: Cell<bool> = const { Cell::new(false) };
        /// The coroutine whose next park goes unlogged: the retry after a spurious return.
        static RETRY: Cell<Option<u64>> = const { Cell::new(None) };
    }
    /// Clears the mark however the logger returns: one that panicked left it set, and no
    /// park of this thread was logged again (found by the same audit).
    struct Logging;
    impl Drop for Logging {
        fn drop(&mut self) {
            LOGGING.set(None);
        }
    }
    if let Some(logging) = LOGGING.get() {
        if logging == task.id {
            PARKED_INSIDE.set(true);
        }
        return true;
    }
    if RETRY.get() == Some(task.id) {
        RETRY.set(None);
        return true;
    }
    LOGGING.set(Some(task.id));
    PARKED_INSIDE.set(false);
    let logging = Logging;
    if fd >= 0 {
        rt_log!(Trace, "park coroutine {} on fd {fd} ({why:?})", task.id);
    } else {
        rt_log!(Trace, "park coroutine {} ({why:?})", task.id);
    }
    drop(logging);
    if PARKED_INSIDE.replace(false) {
        RETRY.set(Some(task.id));
        return false;
    }
    true
}

fn park_thread(task: &Task, deadline: Option<Instant>, why: Wait, fd: i32) {
    if !task.token.begin_park(PARKED_THREAD) {
        return;
    }
    note_scheduler_wait(why);
    task.set_wait(why, fd);
    loop {
        match deadline {
            None => std::thread::park(),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break;
                }
                std::thread::park_timeout(d - now);
            }
        }
        if !task.token.still_parked(PARKED_THREAD) {
            break;
        }
    }
    task.set_wait(Wait::None, -1);
    task.token.end_park();
}

/// A thread wait on a worker thread is one outside any coroutine: user code the scheduler
/// itself calls — the logger, on the runtime's own trace lines — waiting on a coronet
/// primitive. It parks the whole worker, and if what would end the wait is one of this
/// worker's coroutines (a log writer behind a full channel), it never ends: nothing the
/// runtime can undo from here (found by the fifth audit). Said once per process on stderr,
/// not through `log`, whose logger may be what waits.
#[inline]
fn note_scheduler_wait(why: Wait) {
    if let Some(index) = worker::worker_index() {
        said_scheduler_wait(index, why);
    }
}

#[cold]
fn said_scheduler_wait(index: usize, why: Wait) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SAID.swap(true, Ordering::Relaxed) {
        return;
    }
    if super::EXITING.load(Ordering::Relaxed) {
        let _ = writeln!(
            std::io::stderr(),
            "coronet: worker {index} waits ({why:?}) as the process exits, in a thread-local \
             destructor or an atexit handler; its coroutines no longer run, so the wait \
             never ends if one of them must end it."
        );
    } else {
        // not `eprintln!`, which panics if stderr is gone, here on the scheduler
        let _ = writeln!(
            std::io::stderr(),
            "coronet: worker {index} waits ({why:?}) outside any coroutine, in code the \
             scheduler called (a logger on its trace lines?); the worker's coroutines stop \
             until the wait ends, and never run again if one of them must end it. Code the \
             runtime calls must not wait on coronet primitives: use try_send or std's."
        );
    }
}

/// Blocks a plain thread until `fd` is ready for `events` (poll(2) flags), it is unparked,
/// or `deadline` passes. Returns true if poll reported the fd ready.
///
/// Coroutines never call this: they wait through the netpoller (`poll::desc`).
pub(crate) fn park_thread_fd(fd: BorrowedFd<'_>, events: i16, deadline: Option<Instant>) -> bool {
    with_thread_task(|task| {
        let Home::Thread(t) = &task.home else {
            unreachable!("thread task with a coroutine home")
        };
        let wakefd = &t.wakefd;
        let wake = match wakefd.get() {
            Some(w) => w,
            None => match crate::poll::epoll::eventfd() {
                Ok(w) => wakefd.get_or_init(|| w),
                // No fd for a waker (EMFILE): fall back to polling in short slices so a
                // close or deadline change is still seen within 10 ms.
                Err(_) => return poll_sliced(fd, events, deadline),
            },
        };
        if !task.token.begin_park(PARKED_POLL) {
            return false;
        }
        note_scheduler_wait(if events & libc::POLLIN != 0 {
            Wait::IoRead
        } else {
            Wait::IoWrite
        });
        task.set_wait(
            // no events at all: a write's pause (`PollDesc::pause`)
            if events & libc::POLLIN != 0 {
                Wait::IoRead
            } else {
                Wait::IoWrite
            },
            fd.as_raw_fd(),
        );
        let timeout = crate::time::timers::epoll_timeout(deadline, Instant::now());
        let (ready, woke) = crate::net::socket::poll_fd(fd, events, Some(wake.as_fd()), timeout)
            .unwrap_or((false, false));
        if woke {
            crate::poll::epoll::eventfd_drain(wake.as_fd());
        }
        task.set_wait(Wait::None, -1);
        task.token.end_park();
        ready
    })
}

fn poll_sliced(fd: BorrowedFd<'_>, events: i16, deadline: Option<Instant>) -> bool {
    let now = Instant::now();
    let slice = crate::time::timers::epoll_timeout(deadline, now).clamp(0, 10);
    let timeout = if slice < 0 { 10 } else { slice };
    matches!(
        crate::net::socket::poll_fd(fd, events, None, timeout),
        Ok((true, _))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[test]
    fn unpark_before_park_is_not_lost() {
        let me = current();
        me.unpark();
        me.unpark(); // idempotent: still one pending wake
        park(Wait::Park); // returns at once
        assert_eq!(me.token.0.load(Ordering::Relaxed), EMPTY);
    }

    #[test]
    fn park_until_times_out_without_unpark() {
        let start = Instant::now();
        park_until(Some(start + Duration::from_millis(30)), Wait::Park);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn unpark_from_another_thread_wakes_a_parked_thread() {
        for _ in 0..200 {
            let me = current();
            let flag = Arc::new(AtomicBool::new(false));
            let f2 = flag.clone();
            let t = std::thread::spawn(move || {
                f2.store(true, Ordering::SeqCst);
                me.unpark();
            });
            while !flag.load(Ordering::SeqCst) {
                park(Wait::Park);
            }
            t.join().unwrap();
        }
    }

    #[test]
    fn unpark_breaks_a_thread_polling_an_fd() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let me = current();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            me.unpark();
        });
        let start = Instant::now();
        // nothing to read on `a`: only the unpark can end this wait early
        let ready = park_thread_fd(
            a.as_fd(),
            libc::POLLIN,
            Some(start + Duration::from_secs(30)),
        );
        assert!(!ready);
        assert!(start.elapsed() < Duration::from_secs(20));
        t.join().unwrap();
    }
}

/// For the loom models of other modules (`poll::desc`): a park on the real token, as
/// `park_thread` with a `std::thread::park` that is loom's. `PARKED_POLL` because a thread
/// record's unpark in that state is the token's swap and the eventfd's write, which under
/// loom is [`loom_bed::wake`]: nothing outside loom is touched. It sleeps instead of
/// spinning: loom explores two spinning threads that yield to each other forever, starving
/// the thread that would wake them, so a model with a reader and a writer parked at once
/// never ends. A lost wake-up leaves it asleep for good, which loom reports as a deadlock.
#[cfg(all(test, loom))]
pub(crate) fn park_sleeping(task: &Task) {
    loom_bed::lie_down(task.id);
    if task.token.begin_park(PARKED_POLL) {
        while task.token.still_parked(PARKED_POLL) {
            loom::thread::park();
        }
        task.token.end_park();
    }
    loom_bed::get_up(task.id);
}

/// `park_thread_fd` for the loom models, with poll(2) as a spin: the same token moves
/// (`begin_park(PARKED_POLL)`, `end_park`), and the sleep ends when an unpark moves the
/// token (the eventfd's wake) or `ready` says so (the fd became ready, or the timeout
/// passed). Returns what poll would: whether the fd was ready. A spin, so at most one
/// thread of a model may wait here (see [`park_sleeping`]); a lost wake-up leaves it
/// spinning, which loom reports as "exceeded maximum number of branches".
#[cfg(all(test, loom))]
pub(crate) fn park_polling(task: &Task, mut ready: impl FnMut() -> bool) -> bool {
    if !task.token.begin_park(PARKED_POLL) {
        return false;
    }
    let ready = loop {
        if !task.token.still_parked(PARKED_POLL) {
            break false;
        }
        if ready() {
            break true;
        }
        loom::thread::yield_now();
    };
    task.token.end_park();
    ready
}

/// The loom threads asleep in [`park_sleeping`], by task id, for `Task::unpark` to wake as
/// the eventfd would. A plain (std) lock: loom runs a model's threads one at a time, and
/// the table is bookkeeping, not part of what is checked; the models running side by side
/// in the test binary use distinct task ids.
#[cfg(all(test, loom))]
mod loom_bed {
    use std::sync::Mutex;

    static BEDS: Mutex<Vec<(u64, loom::thread::Thread)>> = Mutex::new(Vec::new());

    pub(super) fn lie_down(id: u64) {
        BEDS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, loom::thread::current()));
    }

    pub(super) fn get_up(id: u64) {
        BEDS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(t, _)| *t != id);
    }

    /// Wakes the loom thread asleep for task `id`, if any (else a no-op: the token alone
    /// carries the wake, as with an eventfd nobody polls yet).
    pub(super) fn wake(id: u64) {
        let bed = BEDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(t, _)| *t == id)
            .cloned();
        if let Some((_, thread)) = bed {
            thread.unpark();
        }
    }
}

/// loom's explorer for the models here and in `poll::desc`: at most `PREEMPTIONS`
/// preemptions per execution unless `LOOM_MAX_PREEMPTIONS` says otherwise. Unbounded, one
/// parker against two wakers takes minutes (110 s and 230 s measured); bounded at 4, about
/// 2 s, and every deliberately broken variant tried (the models' headers) still fails.
#[cfg(all(test, loom))]
pub(crate) fn loom_builder() -> loom::model::Builder {
    const PREEMPTIONS: usize = 4;
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(PREEMPTIONS);
    }
    b
}

/// Explores `model` with [`loom_builder`]'s bound, or `bound` if lower, and prints how many
/// executions it took (for the models of `poll::fdmutex` and `runtime::idle`).
#[cfg(all(test, loom))]
pub(crate) fn loom_explore(
    name: &str,
    bound: Option<usize>,
    model: impl Fn() + Send + Sync + 'static,
) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    let mut builder = loom_builder();
    if let Some(b) = bound {
        builder.preemption_bound = Some(builder.preemption_bound.map_or(b, |p| p.min(b)));
    }
    builder.check(move || {
        counter.fetch_add(1, Relaxed);
        model();
    });
    eprintln!("{name}: {} executions", executions.load(Relaxed));
}

#[cfg(all(test, loom))]
mod loom_tests;
