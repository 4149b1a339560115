//! `PollDesc`: the per-fd meeting point of a waiting coroutine and the netpoller.
//!
//! Each direction has one waiter slot (Go's `rg`/`wg`), a word with three kinds of value:
//!
//! ```text
//!  slot      meaning                                 transitions
//!  -------   -------------------------------------   -----------------------------------------
//!  EMPTY     nothing pending, nobody waiting         waiter: EMPTY → task   (about to park)
//!                                                    event:  EMPTY → READY
//!  READY     an event came and nobody consumed it    waiter: READY → EMPTY  (retry syscall,
//!                                                            or closed error if closing)
//!                                                    prepare: READY → EMPTY (before a syscall)
//!  task ptr  this task is parked (or parking)        event:  ptr → READY, unpark the task
//!            on this direction; the slot owns one    close/deadline change: ptr → EMPTY, unpark
//!            `Arc<Task>` reference                   waiter (timer/spurious): ptr → EMPTY
//! ```
//!
//! Whoever moves the slot *out of* a task pointer owns that reference and is the only one
//! who may unpark through it; a CAS (or the waiter's swap) decides who. The waiter, once
//! woken, empties the slot: if it finds READY, readiness came (it retries, unless the fd was
//! closed meanwhile: `open_still`); if it finds its own pointer,
//! nobody took it (timer or spurious wake) and it drops the reference; if it finds EMPTY, a
//! close or a deadline change kicked it, and it re-checks both.
//!
//! Only a call that has the direction to itself — it holds the direction lock, or its
//! handle by `&mut`, which needs none (`poll/fd.rs`, *Calls through `&mut`*) — moves the
//! slot *out of* READY (as the waiter, or in `prepare`); the event side only ever moves it
//! *into* READY. So READY → EMPTY is a load and a plain store, not a compare-and-swap, and
//! a slot seen EMPTY or READY is read with a plain load: the locked instructions are left
//! to the transitions that race (a pointer in, a pointer out, READY in).
//!
//! Lost wake-ups are impossible because the waiter publishes itself in the slot *before*
//! re-checking `closing` and the deadline, while `close` and `set_deadline` store their
//! flag *before* emptying the slot (all SeqCst): one side always sees the other.
//!
//! Only one reader and one writer wait at a time: the direction locks in `poll/fd.rs` (or
//! the `&mut` borrow) serialise them, so a second waiter on a slot is a bug and panics.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

// The slots, flags and deadline words are loom's atomics in the loom model (`loom_tests`
// below), so it runs the slot code the runtime runs; everywhere else std's.
#[cfg(all(test, loom))]
use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(all(test, loom)))]
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};

use crate::net::error::{closed_error, timeout_error};
use crate::runtime::park::{self, current, park_thread_fd};
use crate::runtime::task::{Home, Task, Wait};
use crate::runtime::worker;

/// A direction of I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

const EMPTY: usize = 0;
const READY: usize = 1;

/// Where an fd is registered: the worker whose epoll holds it and the token it carries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Registration {
    pub(crate) worker: usize,
    pub(crate) token: u64,
}

// One cache line: every call reads the slot, the close flag and the deadline, and with a
// thousand connections the line comes from memory; aligned, it is one miss instead of two
// (behind the `Arc`'s counts, the fields would straddle a line boundary).
#[repr(align(64))]
pub(crate) struct PollDesc {
    rg: AtomicUsize,
    wg: AtomicUsize,
    /// Set once by `fail_waits` (close): every wait fails from then on.
    closing: AtomicBool,
    /// The netpoller has seen the peer hang up or an error (`EPOLLRDHUP`, `EPOLLHUP`,
    /// `EPOLLERR`). Such a state is sticky and sends no further edges, so after it a short
    /// read is no proof that the next read would block: the EOF or the error may sit behind
    /// the data just read. `NetFd` then always tries the syscall.
    hung_up: AtomicBool,
    /// The netpoller has seen TCP urgent data (`EPOLLPRI`). A TCP `recv` stops at the
    /// urgent mark with the data behind it still queued and no new edge to announce it, so
    /// from then on a short read is no proof of an empty queue either, and `NetFd` always
    /// tries the syscall. Sticky: urgent data is rare, and one more `recv` per read on such
    /// a connection is cheaper than tracking when the mark has been passed.
    urgent: AtomicBool,
    /// Absolute deadlines in the `Deadline` encoding (0 = none).
    rdeadline: AtomicU64,
    wdeadline: AtomicU64,
    /// Set by the first coroutine that has to park on this fd: registration is lazy, so an
    /// fd used only by plain threads never touches epoll, and an fd is registered with the
    /// worker of the coroutine that first waits on it (usually its only user).
    reg: OnceLock<Registration>,
    /// Plain threads inside `poll(2)` on this fd (`wait_thread`). A poll holds the socket's
    /// open file until it returns, so `close`, which wakes them, waits for the count to
    /// drop before it returns with the socket released (`threads_out`).
    polling: AtomicU32,
}

/// How long `close` waits for the plain threads it woke to leave `poll(2)` before it
/// parks (`PollDesc::threads_out`): far above the time a woken thread takes to be
/// scheduled on a loaded machine, so only a long signal handler makes it park.
#[cfg(not(all(test, loom)))]
const CLOSE_PARKS_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

/// The closers parked until the plain threads in `poll(2)` on their socket have left
/// (`PollDesc::threads_out`), by the `PollDesc`'s address. Global, not a field: the
/// descriptor is one full cache line, and this is needed only when a thread is slow to
/// leave (a signal handler ran in between), a handful at a time.
#[cfg(not(all(test, loom)))]
fn closers() -> std::sync::MutexGuard<'static, Vec<(usize, Arc<Task>)>> {
    static CLOSERS: std::sync::Mutex<Vec<(usize, Arc<Task>)>> = std::sync::Mutex::new(Vec::new());
    CLOSERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `closers` in the loom model: loom's lock, made anew for each execution.
#[cfg(all(test, loom))]
fn closers() -> loom::sync::MutexGuard<'static, Vec<(usize, Arc<Task>)>> {
    loom::lazy_static! {
        static ref CLOSERS: loom::sync::Mutex<Vec<(usize, Arc<Task>)>> =
            loom::sync::Mutex::new(Vec::new());
    }
    CLOSERS.lock().unwrap()
}

/// Deadlines as u64: 0 is "none", otherwise 1 + the timers' process-wide nanoseconds
/// (`time::timers::nanos`), so they fit in an atomic and a deadline set from any thread is
/// read without a lock.
mod deadline {
    use super::*;
    use crate::time::timers::{instant, nanos};

    pub(crate) fn encode(d: Option<Instant>) -> u64 {
        d.map_or(0, |d| 1 + nanos(d).min(u64::MAX - 1))
    }

    pub(crate) fn decode(v: u64) -> Option<Instant> {
        v.checked_sub(1).map(instant)
    }
}

/// Marks the store → load pairs that make lost wake-ups impossible (module docs): the waiter
/// publishes in the slot and then loads `closing` and the deadline; `close` and
/// `set_deadline` store theirs and then load the slot. SeqCst accesses forbid both loads
/// missing the other side's store, but loom models SeqCst accesses as AcqRel, which allows
/// it, and would report a lost wake-up that cannot happen. Under loom a SeqCst fence here
/// gives back that guarantee; in every other build this is nothing. The netpoller's
/// `set_hung_up` / `set_urgent`, stored before its `ready` loads the slot, are the event
/// side of one more pair, whose other side is a drained read in `NetFd::io`: `take_ready`'s
/// store, a syscall, then the flags' loads (see `the_syscall_fence` in `loom_tests`).
#[inline(always)]
fn store_load_order() {
    #[cfg(all(test, loom))]
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// The timeout error if the earlier of two deadlines has passed (reads the clock).
#[inline(never)]
fn check_deadline(d: Option<Instant>, call: Option<Instant>) -> io::Result<()> {
    match earliest(d, call) {
        Some(d) if Instant::now() >= d => Err(timeout_error()),
        _ => Ok(()),
    }
}

/// What a plain thread's poll(2) waits for in `dir`.
fn poll_events(dir: Dir) -> i16 {
    match dir {
        Dir::Read => libc::POLLIN,
        Dir::Write => libc::POLLOUT,
    }
}

/// The earlier of two optional deadlines.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl PollDesc {
    pub(crate) fn new() -> Arc<PollDesc> {
        Arc::new(PollDesc {
            rg: AtomicUsize::new(EMPTY),
            wg: AtomicUsize::new(EMPTY),
            closing: AtomicBool::new(false),
            hung_up: AtomicBool::new(false),
            urgent: AtomicBool::new(false),
            rdeadline: AtomicU64::new(0),
            wdeadline: AtomicU64::new(0),
            reg: OnceLock::new(),
            polling: AtomicU32::new(0),
        })
    }

    fn slot(&self, dir: Dir) -> &AtomicUsize {
        match dir {
            Dir::Read => &self.rg,
            Dir::Write => &self.wg,
        }
    }

    fn deadline_word(&self, dir: Dir) -> &AtomicU64 {
        match dir {
            Dir::Read => &self.rdeadline,
            Dir::Write => &self.wdeadline,
        }
    }

    pub(crate) fn deadline(&self, dir: Dir) -> Option<Instant> {
        deadline::decode(self.deadline_word(dir).load(Ordering::SeqCst))
    }

    pub(crate) fn registration(&self) -> Option<Registration> {
        self.reg.get().copied()
    }

    /// Records a hang-up or error event (see `hung_up`).
    pub(crate) fn set_hung_up(&self) {
        self.hung_up.store(true, Ordering::SeqCst);
        store_load_order();
    }

    pub(crate) fn is_hung_up(&self) -> bool {
        self.hung_up.load(Ordering::SeqCst)
    }

    /// Records an urgent-data event (see `urgent`).
    pub(crate) fn set_urgent(&self) {
        self.urgent.store(true, Ordering::SeqCst);
        store_load_order();
    }

    pub(crate) fn saw_urgent(&self) -> bool {
        self.urgent.load(Ordering::SeqCst)
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// The error a call must fail with now, if any: closed first, then a passed deadline
    /// (Go's `netpollcheckerr`). `call` is the per-call deadline from std's timeouts.
    /// Inlined, with the usual case (open, no deadline at all) decided by two loads.
    #[inline]
    pub(crate) fn check(&self, dir: Dir, call: Option<Instant>) -> io::Result<()> {
        if self.is_closing() {
            return Err(closed_error());
        }
        let word = self.deadline_word(dir).load(Ordering::SeqCst);
        if word == 0 && call.is_none() {
            return Ok(());
        }
        check_deadline(deadline::decode(word), call)
    }

    /// Before a syscall: fail if closed or past the deadline, and forget a READY left by
    /// an event the previous call already consumed (Go's `pollReset`). Returns whether there
    /// was one: `NetFd` uses it to skip a read that cannot succeed (see `drained` there).
    #[inline]
    pub(crate) fn prepare(&self, dir: Dir, call: Option<Instant>) -> io::Result<bool> {
        self.check(dir, call)?;
        Ok(self.take_ready(dir))
    }

    /// Moves the slot READY → EMPTY if it is READY; says whether it was. Only a caller that
    /// has `dir` to itself in `poll/fd.rs` (its lock, or the `&mut` borrow) ever does this,
    /// and nobody else moves the slot out of READY (`ready` leaves it, `take_waiter` takes
    /// pointers only), so a load and a plain store do what a compare-and-swap would, without
    /// a locked instruction; and when the slot is not READY, as on most calls, it costs one
    /// load.
    #[inline]
    fn take_ready(&self, dir: Dir) -> bool {
        let slot = self.slot(dir);
        if slot.load(Ordering::SeqCst) != READY {
            return false;
        }
        slot.store(EMPTY, Ordering::Release);
        true
    }

    /// Sets the absolute deadline for `dir` and kicks a waiter parked on it, so it re-reads
    /// the deadline: a new deadline also applies to a call already blocked.
    pub(crate) fn set_deadline(&self, dir: Dir, d: Option<Instant>) {
        self.deadline_word(dir)
            .store(deadline::encode(d), Ordering::SeqCst);
        store_load_order();
        if let Some(t) = self.take_waiter(dir) {
            t.unpark();
        }
    }

    /// Close: fail every current and future wait, and wake whoever is parked (Go's
    /// `pollUnblock`). Idempotent. `NetFd::close` calls `unblock_after`; the models and
    /// unit tests, which have no socket to release, call this.
    #[cfg(test)]
    pub(crate) fn unblock(&self) {
        for t in self.fail_waits(|| {}).into_iter().flatten() {
            t.unpark();
        }
    }

    /// `unblock`, with `release` run between failing the waits and waking the waiters, and
    /// returning only once no plain thread is left in `poll(2)` (`threads_out`).
    /// `NetFd::close` releases the socket in `release`, so that a woken call finds it
    /// released. A thread inside `poll(2)` holds the socket's open file until it leaves, so
    /// waiting threads are woken first and waited for, and coroutines woken after that.
    pub(crate) fn unblock_after(&self, release: impl FnOnce()) {
        let waiters = self.fail_waits(release);
        let is_thread = |t: &Arc<Task>| matches!(t.home, Home::Thread(_));
        for t in waiters.iter().flatten().filter(|t| is_thread(t)) {
            t.unpark();
        }
        self.threads_out();
        for t in waiters.into_iter().flatten().filter(|t| !is_thread(t)) {
            t.unpark();
        }
    }

    /// Every wait from `closing`'s store on fails without parking; one that parked before
    /// it is in its slot, where `take_waiter` finds it, after `release` (the store and that
    /// load are a Dekker pair with the waiter's publish and re-check; `release` only widens
    /// the gap between them). Returns the waiters taken, to be woken.
    fn fail_waits(&self, release: impl FnOnce()) -> [Option<Arc<Task>>; 2] {
        self.closing.store(true, Ordering::SeqCst);
        store_load_order();
        release();
        [self.take_waiter(Dir::Read), self.take_waiter(Dir::Write)]
    }

    /// In `unblock_after`: waits until no plain thread is left inside `poll(2)` on this fd,
    /// so that none holds the socket's open file any more. Each such thread was woken just
    /// before (or, counted after `closing`, finds it and does not poll), and needs no lock
    /// and no coroutine to leave, so this wait cannot hang the way a wait for the calls in
    /// flight did (`poll/fd.rs`, *Why `close` does not wait*). A thread without an eventfd
    /// to wake it polls in 10 ms slices.
    ///
    /// Usually a few spins, or a few yields while a woken thread is scheduled. But a signal
    /// handler may run between a thread's count and its uncount, for as long as it likes
    /// (found by an audit of signals: a `close` beside a thread running a 300 ms handler
    /// spun on its worker for all of it, and every coroutine there waited). So once the
    /// wait has taken `CLOSE_PARKS_AFTER`, the closer parks, and the last thread out wakes
    /// it (`thread_left`): a coroutine's worker runs its other coroutines meanwhile, one of
    /// which the handler may be waiting for. Not sooner: `close` is documented not to park
    /// in the usual case, so that it is safe under a std `Mutex` or in a logger (parking
    /// after a few µs, as first written, parked whenever the woken thread was slow to be
    /// scheduled, and a coroutine of the same worker waiting on that `Mutex` hung it: found
    /// by a review).
    #[cfg(not(all(test, loom)))]
    fn threads_out(&self) {
        let mut started: Option<std::time::Instant> = None;
        let mut spins = 0u32;
        while self.polling.load(Ordering::SeqCst) != 0 {
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
                continue;
            }
            std::thread::yield_now();
            let since = *started.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= CLOSE_PARKS_AFTER {
                self.park_until_threads_out();
                return;
            }
        }
    }

    /// `threads_out` in the loom model parks at once if a thread is still in `poll(2)`:
    /// the spins and yields before the real one's park only put it off (the thread may
    /// leave meanwhile, which the park's own first look covers), and a span of 10 ms means
    /// nothing to loom. So the models check the park and `thread_left`'s wake-up.
    #[cfg(all(test, loom))]
    fn threads_out(&self) {
        if self.polling.load(Ordering::SeqCst) != 0 {
            self.park_until_threads_out();
        }
    }

    /// The closer's side of the wait: listed under `CLOSERS`' lock, it looks at the count
    /// there too, so either it sees the last thread gone or that thread, which uncounts
    /// before it takes the lock, finds it listed.
    #[cold]
    fn park_until_threads_out(&self) {
        // The model's thread record and park (`loom_tests`), as in `wait_thread`.
        #[cfg(all(test, loom))]
        use loom_tests::current;
        let me = current();
        let key = self as *const PollDesc as usize;
        loop {
            {
                let mut closers = closers();
                if self.polling.load(Ordering::SeqCst) == 0 {
                    closers.retain(|(k, _)| *k != key);
                    return;
                }
                if !closers.iter().any(|(k, _)| *k == key) {
                    closers.push((key, me.clone()));
                }
            }
            #[cfg(not(all(test, loom)))]
            park::park(Wait::Sync);
            #[cfg(all(test, loom))]
            park::park_sleeping(&me);
        }
    }

    /// A plain thread has left `poll(2)` as the last one, with `closing` set: wakes the
    /// closer if it parked waiting for that (`park_until_threads_out`).
    #[cold]
    fn thread_left(&self) {
        let key = self as *const PollDesc as usize;
        // Woken after the lock is let go: an unpark may log, and a logger that closes a
        // socket would take the lock again. Listed is enough: the closer re-checks the
        // count, so a wake it no longer needs is one more spurious return.
        let closer = closers()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, t)| t.clone());
        if let Some(t) = closer {
            t.unpark();
        }
    }

    #[cfg(test)]
    pub(crate) fn is_ready(&self, dir: Dir) -> bool {
        self.slot(dir).load(Ordering::SeqCst) == READY
    }

    /// Whether a waiter is published in `dir`'s slot (it is blocked, or about to block).
    #[cfg(test)]
    pub(crate) fn has_waiter(&self, dir: Dir) -> bool {
        !matches!(self.slot(dir).load(Ordering::SeqCst), EMPTY | READY)
    }

    /// Moves the slot from a parked task to EMPTY and hands back that task's reference.
    fn take_waiter(&self, dir: Dir) -> Option<Arc<Task>> {
        let slot = self.slot(dir);
        let cur = slot.load(Ordering::SeqCst);
        if cur == EMPTY || cur == READY {
            return None;
        }
        slot.compare_exchange(cur, EMPTY, Ordering::SeqCst, Ordering::Relaxed)
            .ok()
            // SAFETY: a slot value other than EMPTY/READY is a pointer from `Arc::into_raw`
            // that the slot owned; our successful CAS moved that ownership to us.
            .map(|p| unsafe { Arc::from_raw(p as *const Task) })
    }

    /// The netpoller saw `dir` become ready: record it, and hand back the parked task (if
    /// any) for the caller to unpark after it has released its locks.
    pub(crate) fn ready(&self, dir: Dir) -> Option<Arc<Task>> {
        let slot = self.slot(dir);
        loop {
            let cur = slot.load(Ordering::SeqCst);
            if cur == READY {
                return None;
            }
            if slot
                .compare_exchange(cur, READY, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: as in `take_waiter`: the CAS moved the slot's reference to us.
                return (cur != EMPTY).then(|| unsafe { Arc::from_raw(cur as *const Task) });
            }
        }
    }

    /// Waits until `dir` may be ready again, the fd is closed, or the deadline passes.
    /// Returns Ok when the caller should retry its syscall (possibly spuriously).
    ///
    /// Out of line: inlined into every `NetFd::io` (as it was once `pause` grew beside it),
    /// it made each of those bigger and its frame 16-32 bytes deeper, and a parked
    /// coroutine's stack holds that frame while it waits.
    #[inline(never)]
    pub(crate) fn wait(
        self: &Arc<Self>,
        fd: BorrowedFd<'_>,
        dir: Dir,
        call: Option<Instant>,
    ) -> io::Result<()> {
        self.wait_as(fd, dir, call, poll_events(dir))
    }

    /// A coroutine's wait on the netpoller, or a thread's poll(2) for `events`.
    #[inline(always)]
    fn wait_as(
        self: &Arc<Self>,
        fd: BorrowedFd<'_>,
        dir: Dir,
        call: Option<Instant>,
        events: i16,
    ) -> io::Result<()> {
        // one thread-local lookup answers both "coroutine?" and "who am I?", and lends the
        // coroutine's own record for the whole wait (park included) without a clone
        match worker::with_current(|me| self.wait_coroutine(me, fd, dir, call)) {
            Some(r) => r,
            None => self.wait_thread(fd, dir, call, events),
        }
    }

    /// As `wait`, for a call whose EAGAIN no event will end: waits until `until` whatever
    /// readiness says, and returns early only with the error of a close or a deadline.
    /// For a Unix datagram `send_to` to a full receiver, which the kernel reports writable
    /// all along (and each failed send raises a writable edge of its own), so an edge-driven
    /// wait would make a busy loop of it.
    #[cold]
    #[inline(never)]
    pub(crate) fn pause(
        self: &Arc<Self>,
        fd: BorrowedFd<'_>,
        dir: Dir,
        call: Option<Instant>,
        until: Instant,
    ) -> io::Result<()> {
        // The pause is a per-call deadline of its own; its timeout error means "retry".
        let short = earliest(call, Some(until));
        loop {
            // no events asked for: a thread's poll(2) then wakes only for a close, a
            // deadline change or an error on the socket
            let r = self.wait_as(fd, dir, short, 0);
            match r {
                // an edge, most likely our own failed send's: not a reason to retry yet
                Ok(()) if Instant::now() < until => {}
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return self.check(dir, call),
                Err(e) => return Err(e),
            }
        }
    }

    /// As `wait`, for `NetFd`'s drained read, by a coroutine of the worker whose epoll holds
    /// the fd; anyone else returns Ok at once, to make the syscall: a plain thread would pay
    /// poll(2) for what the syscall itself tells it, and a coroutine of another worker
    /// would wait for an event only that worker's poll harvests, which a busy worker delays
    /// even for bytes already queued (found by an audit of the read path: a read with 20
    /// bytes waiting timed out while the fd's worker computed for 2 s). An fd not yet
    /// registered has had no event to harvest either.
    pub(crate) fn wait_if_coroutine(
        self: &Arc<Self>,
        fd: BorrowedFd<'_>,
        dir: Dir,
        call: Option<Instant>,
    ) -> io::Result<()> {
        let Some(reg) = self.registration() else {
            return Ok(());
        };
        worker::with_current(|me| {
            if me.worker() != reg.worker {
                return Ok(());
            }
            self.wait_coroutine(me, fd, dir, call)
        })
        .unwrap_or(Ok(()))
    }

    fn wait_coroutine(
        self: &Arc<Self>,
        me: &Arc<Task>,
        fd: BorrowedFd<'_>,
        dir: Dir,
        call: Option<Instant>,
    ) -> io::Result<()> {
        self.register(fd)?;
        let why = match dir {
            Dir::Read => Wait::IoRead,
            Dir::Write => Wait::IoWrite,
        };
        // (the park's trace line names the fd: logged there, where a logger that parks
        // the coroutine cannot take the wake-up this park waits for)
        self.wait_slot(me, dir, call, |deadline| {
            worker::note_wait(Arc::as_ptr(self), dir);
            park::park_current_until(me, deadline, why, fd.as_raw_fd());
        })
    }

    /// The slot protocol of a coroutine's wait, with `park` its step 4 (`park_current_until`
    /// in the runtime, a park on the same token in the loom model). Always inlined, like
    /// the park under it: one frame for the whole wait (see `park_coroutine`).
    #[inline(always)]
    fn wait_slot(
        &self,
        me: &Arc<Task>,
        dir: Dir,
        call: Option<Instant>,
        mut park: impl FnMut(Option<Instant>),
    ) -> io::Result<()> {
        let slot = self.slot(dir);
        loop {
            // 1. a readiness that arrived since the syscall: retry at once
            if self.take_ready(dir) {
                return self.open_still();
            }
            // 2. publish ourselves in the slot
            let raw = Arc::into_raw(me.clone()) as usize;
            match slot.compare_exchange(EMPTY, raw, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {}
                Err(other) => {
                    // SAFETY: `raw` came from `Arc::into_raw` above and was never published.
                    drop(unsafe { Arc::from_raw(raw as *const Task) });
                    if other == READY {
                        continue;
                    }
                    panic!("PollDesc: two waiters parked on one direction ({dir:?})");
                }
            }
            store_load_order();
            // 3. re-check close and deadline now that a closer/setter can see us
            let deadline = earliest(self.deadline(dir), call);
            let err = self.check(dir, call).err();
            if err.is_none() {
                // 4. park; the timer (if any) unparks us at the deadline
                park(deadline);
            }
            // 5. take our slot back: READY means go (unless closed: see `open_still`), our
            // pointer means nobody came
            if self.take_back(dir, raw) {
                return self.open_still();
            }
            if let Some(e) = err {
                return Err(e);
            }
            self.check(dir, call)?;
        }
    }

    /// What a wait that found its direction ready returns: Ok (retry the syscall), unless
    /// the fd was closed meanwhile. Then the closed error, even though an event came, so
    /// that a call blocked when `close` came fails, as documented, instead of going back to
    /// the socket for bytes or a connection that arrived while `close` waited for it (Go's
    /// would take them). Found by probing, before `close` waited for its calls: a coroutine
    /// parked in `read` or `accept` returned `Ok` with bytes written, or a connection made,
    /// after `close` had returned (about half of 200 tries). A passed deadline does not win
    /// over readiness here, as in Go.
    fn open_still(&self) -> io::Result<()> {
        if self.is_closing() {
            return Err(closed_error());
        }
        Ok(())
    }

    /// Step 5 of a wait: empties the slot after the waiter `raw` woke up, and says whether
    /// readiness came. The slot holds READY (an event took our pointer), EMPTY (a close or
    /// deadline change took it) or still our pointer (timer or spurious wake-up). READY is
    /// ours alone to clear (see `take_ready`), so only our pointer, which `ready` or
    /// `take_waiter` may take at any moment, needs the swap.
    fn take_back(&self, dir: Dir, raw: usize) -> bool {
        if self.take_ready(dir) {
            return true;
        }
        let slot = self.slot(dir);
        if slot.load(Ordering::SeqCst) == EMPTY {
            return false;
        }
        match slot.swap(EMPTY, Ordering::SeqCst) {
            READY => true,
            EMPTY => false,
            p if p == raw => {
                // SAFETY: the slot still held our reference; the swap returned it to us.
                drop(unsafe { Arc::from_raw(p as *const Task) });
                false
            }
            p => panic!("PollDesc: slot held a foreign waiter {p:#x}"),
        }
    }

    fn wait_thread(
        &self,
        fd: BorrowedFd<'_>,
        dir: Dir,
        call: Option<Instant>,
        events: i16,
    ) -> io::Result<()> {
        // In the loom model the thread's record and its poll(2) are shims on loom's
        // primitives (`loom_tests`); these names shadow the runtime's only there.
        #[cfg(all(test, loom))]
        use loom_tests::{current, park_thread_fd};
        let slot = self.slot(dir);
        let me = current();
        let raw = Arc::into_raw(me) as usize;
        // publish so close and deadline changes can find and wake us (via our eventfd)
        if let Err(other) = slot.compare_exchange(EMPTY, raw, Ordering::SeqCst, Ordering::SeqCst) {
            // SAFETY: never published; we still own it.
            drop(unsafe { Arc::from_raw(raw as *const Task) });
            if other == READY {
                slot.store(EMPTY, Ordering::SeqCst);
                return self.open_still();
            }
            panic!("PollDesc: two waiters parked on one direction ({dir:?})");
        }
        store_load_order();
        let deadline = earliest(self.deadline(dir), call);
        // Counted before the check: `close` stores `closing` and then loads the count, so
        // either the check fails or `close` waits for this poll to end (`threads_out`).
        self.polling.fetch_add(1, Ordering::SeqCst);
        store_load_order();
        let err = self.check(dir, call).err();
        if err.is_none() {
            park_thread_fd(fd, events, deadline);
        }
        // The last one out, with a `close` under way: that close may be parked waiting.
        // Uncount, then look at `closing`; `close` stores `closing`, then looks at the count:
        // one of the two sees the other (see `threads_out`).
        let last = self.polling.fetch_sub(1, Ordering::SeqCst) == 1;
        store_load_order();
        if last && self.closing.load(Ordering::SeqCst) {
            self.thread_left();
        }
        match slot.swap(EMPTY, Ordering::SeqCst) {
            p if p == raw => {
                // SAFETY: the slot still held our reference; the swap returned it to us.
                drop(unsafe { Arc::from_raw(p as *const Task) });
            }
            EMPTY | READY => {}
            p => panic!("PollDesc: slot held a foreign waiter {p:#x}"),
        }
        match err {
            Some(e) => Err(e),
            None => self.check(dir, call),
        }
    }

    /// Registers the fd with this worker's epoll, once.
    #[inline(always)]
    fn register(self: &Arc<Self>, fd: BorrowedFd<'_>) -> io::Result<()> {
        if self.reg.get().is_some() {
            return Ok(());
        }
        self.register_slow(fd)
    }

    /// Out of line: it runs once per fd, and inlined its locals would widen the frame of
    /// every wait (see `wait_coroutine`).
    #[cold]
    #[inline(never)]
    fn register_slow(self: &Arc<Self>, fd: BorrowedFd<'_>) -> io::Result<()> {
        let r = worker::with_poller(|w, p| {
            p.register(fd, self.clone())
                .map(|token| Registration { worker: w, token })
        })
        .expect("register outside a worker")?;
        if self.reg.set(r).is_err() {
            // Another coroutine registered the fd first (on another worker). Undo ours.
            worker::with_poller(|_, p| p.deregister(Some(fd.as_raw_fd()), r.token));
            return Ok(());
        }
        rt_log!(
            Trace,
            "fd {} registered with worker {}",
            fd.as_raw_fd(),
            r.worker
        );
        // A `close` on another thread releases the socket under calls in flight (`poll/fd.rs`)
        // and removes the registration it finds, after storing `closing`. If it looked
        // before this one was set, this sees `closing` and removes it (both may: removal is
        // idempotent); otherwise the registration, perhaps of the placeholder now under the
        // number, would outlive the socket. (If the `dup2` came between the `epoll_ctl` and
        // this removal, epoll keeps the socket's entry until its last reference goes; its
        // events carry a token no longer known, and are dropped.)
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.is_closing() {
            worker::with_poller(|_, p| p.deregister(Some(fd.as_raw_fd()), r.token));
        }
        Ok(())
    }
}

impl Drop for PollDesc {
    fn drop(&mut self) {
        for slot in [&mut self.rg, &mut self.wg] {
            #[cfg(not(all(test, loom)))]
            let p = *slot.get_mut();
            #[cfg(all(test, loom))]
            let p = slot.with_mut(|p| *p);
            if p != EMPTY && p != READY {
                // SAFETY: a leftover pointer is a reference the slot owned; release it.
                drop(unsafe { Arc::from_raw(p as *const Task) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The fields every call reads share one cache line (see the struct's comment).
    #[test]
    fn a_poll_desc_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<PollDesc>(), 64);
    }

    #[test]
    fn deadline_encoding_round_trips() {
        assert_eq!(deadline::encode(None), 0);
        // (instants before the process-wide base all encode as "already passed")
        let now = Instant::now() + Duration::from_millis(5);
        let back = deadline::decode(deadline::encode(Some(now))).unwrap();
        assert_eq!(back, now);
        let later = now + Duration::from_secs(3600);
        assert_eq!(deadline::decode(deadline::encode(Some(later))), Some(later));
    }

    #[test]
    fn ready_without_waiter_is_remembered_and_consumed_by_prepare() {
        let d = PollDesc::new();
        assert!(d.ready(Dir::Read).is_none());
        assert_eq!(d.rg.load(Ordering::SeqCst), READY);
        assert!(d.ready(Dir::Read).is_none()); // idempotent
        d.prepare(Dir::Read, None).unwrap();
        assert_eq!(d.rg.load(Ordering::SeqCst), EMPTY);
        assert_eq!(d.wg.load(Ordering::SeqCst), EMPTY);
    }

    #[test]
    fn ready_hands_back_the_parked_waiter_once() {
        let d = PollDesc::new();
        let t = current();
        d.wg.store(Arc::into_raw(t.clone()) as usize, Ordering::SeqCst);
        let got = d.ready(Dir::Write).expect("waiter");
        assert!(Arc::ptr_eq(&got, &t));
        assert_eq!(d.wg.load(Ordering::SeqCst), READY);
        assert!(d.ready(Dir::Write).is_none());
    }

    #[test]
    fn unblock_fails_later_checks_and_takes_waiters() {
        let d = PollDesc::new();
        let t = current();
        d.rg.store(Arc::into_raw(t.clone()) as usize, Ordering::SeqCst);
        let before = Arc::strong_count(&t);
        d.unblock();
        assert_eq!(Arc::strong_count(&t), before - 1);
        assert_eq!(d.rg.load(Ordering::SeqCst), EMPTY);
        let e = d.check(Dir::Read, None).unwrap_err();
        assert!(crate::net::error::is_closed(&e));
        // the unpark left a token behind; consume it so later tests start clean
        park::park(Wait::Park);
    }

    #[test]
    fn passed_deadline_fails_check_with_timeout() {
        let d = PollDesc::new();
        d.set_deadline(Dir::Read, Some(Instant::now() - Duration::from_millis(1)));
        let e = d.check(Dir::Read, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(d.check(Dir::Write, None).is_ok());
        d.set_deadline(Dir::Read, None);
        assert!(d.check(Dir::Read, None).is_ok());
        let e = d
            .check(Dir::Write, Some(Instant::now() - Duration::from_millis(1)))
            .unwrap_err();
        assert!(crate::net::error::is_timeout(&e));
    }

    #[test]
    fn drop_releases_a_leftover_waiter_reference() {
        let t = current();
        let before = Arc::strong_count(&t);
        {
            let d = PollDesc::new();
            d.rg.store(Arc::into_raw(t.clone()) as usize, Ordering::SeqCst);
            assert_eq!(Arc::strong_count(&t), before + 1);
        }
        assert_eq!(Arc::strong_count(&t), before);
    }
}

/// The waiter slot protocol driven against a model (single-threaded, by proptest), then the
/// real `wait` raced against events, deadline changes and close (multi-threaded stress).
#[cfg(test)]
mod protocol_tests {
    use super::*;
    use crate::net::error::{is_closed, is_timeout};
    use proptest::prelude::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    // ---- the model ------------------------------------------------------------------------

    /// Waiters the model knows. Waiter 0 is this thread's own task, whose wake-ups the test
    /// can observe (`Op::ConsumeWake`); the others are unstarted coroutine records, for which
    /// an unpark only leaves a notification behind.
    const WAITERS: usize = 3;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum When {
        Past,
        Future,
    }

    impl When {
        fn instant(self) -> Instant {
            match self {
                When::Past => Instant::now(),
                When::Future => Instant::now() + Duration::from_secs(3600),
            }
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        /// The netpoller saw an event; it unparks whatever `ready` hands back.
        Ready(Dir),
        /// A call starts (Go's `pollReset`).
        Prepare(Dir),
        /// `check` with a per-call deadline.
        Check(Dir, Option<When>),
        SetDeadline(Dir, Option<When>),
        /// Close.
        Unblock,
        /// A waiter publishes itself: CAS EMPTY → its `Arc::into_raw`.
        Publish(Dir, usize),
        /// The waiter takes its slot back after waking (`wait_coroutine` step 5).
        TakeBack(Dir),
        /// The waiter consumes a readiness before publishing (`wait_coroutine` step 1).
        RetryReady(Dir),
        /// Waiter 0 parks with a readable fd: returns false iff a wake-up was pending.
        ConsumeWake,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Slot {
        Empty,
        Ready,
        Waiter(usize),
    }

    struct Model {
        slots: [Slot; 2],
        closing: bool,
        deadlines: [Option<When>; 2],
        /// Waiter 0 has an undelivered wake-up in its park token.
        notified: bool,
    }

    fn ix(dir: Dir) -> usize {
        match dir {
            Dir::Read => 0,
            Dir::Write => 1,
        }
    }

    impl Model {
        /// What `check(dir, call)` must answer: closed beats timeout.
        fn check(&self, dir: Dir, call: Option<When>) -> Result<(), &'static str> {
            if self.closing {
                return Err("closed");
            }
            if self.deadlines[ix(dir)] == Some(When::Past) || call == Some(When::Past) {
                return Err("timeout");
            }
            Ok(())
        }

        /// A kick (close, deadline change) takes the waiter out of the slot and unparks it.
        fn kick(&mut self, dir: Dir) {
            if let Slot::Waiter(id) = self.slots[ix(dir)] {
                self.slots[ix(dir)] = Slot::Empty;
                self.notified |= id == 0;
            }
        }

        fn refs(&self, id: usize) -> usize {
            self.slots
                .iter()
                .filter(|&&s| s == Slot::Waiter(id))
                .count()
        }
    }

    fn assert_err_matches(got: io::Result<()>, want: Result<(), &'static str>, op: Op) {
        match (got, want) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err("closed")) => assert!(is_closed(&e), "{op:?}: want closed, got {e}"),
            (Err(e), Err("timeout")) => {
                assert!(is_timeout(&e), "{op:?}: want timeout, got {e}");
                assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            }
            (got, want) => panic!("{op:?}: got {got:?}, model says {want:?}"),
        }
    }

    /// The raw slot value the model stands for.
    fn raw(slot: Slot, tasks: &[Arc<Task>]) -> usize {
        match slot {
            Slot::Empty => EMPTY,
            Slot::Ready => READY,
            Slot::Waiter(id) => Arc::as_ptr(&tasks[id]) as usize,
        }
    }

    fn apply(op: Op, d: &PollDesc, m: &mut Model, tasks: &[Arc<Task>], readable: &UnixStream) {
        match op {
            Op::Ready(dir) => {
                let got = d.ready(dir);
                match m.slots[ix(dir)] {
                    Slot::Waiter(id) => {
                        let t =
                            got.unwrap_or_else(|| panic!("{op:?}: waiter {id} not handed back"));
                        assert!(
                            Arc::ptr_eq(&t, &tasks[id]),
                            "{op:?}: handed back the wrong task"
                        );
                        t.unpark();
                        m.notified |= id == 0;
                    }
                    _ => assert!(
                        got.is_none(),
                        "{op:?}: handed back a task from a non-waiter slot"
                    ),
                }
                m.slots[ix(dir)] = Slot::Ready;
            }
            Op::Prepare(dir) => {
                let want = m.check(dir, None);
                let was_ready = want.is_ok() && m.slots[ix(dir)] == Slot::Ready;
                let got = d.prepare(dir, None);
                if let Ok(r) = got {
                    assert_eq!(r, was_ready, "{op:?}: prepare reports a consumed READY");
                }
                assert_err_matches(got.map(|_| ()), want, op);
                if was_ready {
                    m.slots[ix(dir)] = Slot::Empty;
                }
            }
            Op::Check(dir, call) => {
                let got = d.check(dir, call.map(When::instant));
                assert_err_matches(got, m.check(dir, call), op);
            }
            Op::SetDeadline(dir, w) => {
                d.set_deadline(dir, w.map(When::instant));
                m.deadlines[ix(dir)] = w;
                m.kick(dir);
            }
            Op::Unblock => {
                d.unblock();
                m.closing = true;
                m.kick(Dir::Read);
                m.kick(Dir::Write);
            }
            Op::Publish(dir, id) => {
                let p = Arc::into_raw(tasks[id].clone()) as usize;
                match d
                    .slot(dir)
                    .compare_exchange(EMPTY, p, Ordering::SeqCst, Ordering::SeqCst)
                {
                    Ok(_) => {
                        assert_eq!(
                            m.slots[ix(dir)],
                            Slot::Empty,
                            "{op:?}: CAS won on a full slot"
                        );
                        m.slots[ix(dir)] = Slot::Waiter(id);
                    }
                    Err(other) => {
                        // SAFETY: `p` came from `Arc::into_raw` above and was never published.
                        drop(unsafe { Arc::from_raw(p as *const Task) });
                        assert_ne!(m.slots[ix(dir)], Slot::Empty, "{op:?}: CAS lost on EMPTY");
                        assert_eq!(other, raw(m.slots[ix(dir)], tasks), "{op:?}");
                    }
                }
            }
            Op::TakeBack(dir) => {
                let prev = d.slot(dir).swap(EMPTY, Ordering::SeqCst);
                assert_eq!(prev, raw(m.slots[ix(dir)], tasks), "{op:?}");
                if let Slot::Waiter(_) = m.slots[ix(dir)] {
                    // SAFETY: the slot owned this reference; the swap moved it to us.
                    drop(unsafe { Arc::from_raw(prev as *const Task) });
                }
                m.slots[ix(dir)] = Slot::Empty;
            }
            Op::RetryReady(dir) => {
                let won = d
                    .slot(dir)
                    .compare_exchange(READY, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                assert_eq!(won, m.slots[ix(dir)] == Slot::Ready, "{op:?}");
                if won {
                    m.slots[ix(dir)] = Slot::Empty;
                }
            }
            Op::ConsumeWake => {
                // A pending wake makes the park return at once with false; without one, poll
                // finds the fd readable and says true. Either way it returns immediately.
                let ready = park_thread_fd(readable.as_fd(), libc::POLLIN, None);
                assert_eq!(ready, !m.notified, "{op:?}: notified = {}", m.notified);
                m.notified = false;
            }
        }
    }

    fn assert_matches(d: &PollDesc, m: &Model, tasks: &[Arc<Task>], base: &[usize], op: Op) {
        for dir in [Dir::Read, Dir::Write] {
            let got = d.slot(dir).load(Ordering::SeqCst);
            let want = m.slots[ix(dir)];
            assert_eq!(
                got,
                raw(want, tasks),
                "after {op:?}: {dir:?} slot, model {want:?}"
            );
            let deadline = d.deadline(dir);
            match m.deadlines[ix(dir)] {
                None => assert_eq!(deadline, None, "after {op:?}: {dir:?} deadline"),
                Some(When::Past) => assert!(deadline.unwrap() <= Instant::now(), "after {op:?}"),
                Some(When::Future) => assert!(deadline.unwrap() > Instant::now(), "after {op:?}"),
            }
        }
        assert_eq!(d.is_closing(), m.closing, "after {op:?}");
        for (id, t) in tasks.iter().enumerate() {
            let want = base[id] + m.refs(id);
            assert_eq!(
                Arc::strong_count(t),
                want,
                "after {op:?}: references to waiter {id}"
            );
        }
    }

    fn dir() -> impl Strategy<Value = Dir> {
        prop_oneof![Just(Dir::Read), Just(Dir::Write)]
    }

    fn when() -> impl Strategy<Value = Option<When>> {
        proptest::option::of(prop_oneof![Just(When::Past), Just(When::Future)])
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => dir().prop_map(Op::Ready),
            3 => dir().prop_map(Op::Prepare),
            2 => (dir(), when()).prop_map(|(d, w)| Op::Check(d, w)),
            3 => (dir(), when()).prop_map(|(d, w)| Op::SetDeadline(d, w)),
            1 => Just(Op::Unblock),
            6 => (dir(), 0..WAITERS).prop_map(|(d, id)| Op::Publish(d, id)),
            4 => dir().prop_map(Op::TakeBack),
            2 => dir().prop_map(Op::RetryReady),
            3 => Just(Op::ConsumeWake),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn waiter_slots_follow_the_model(ops in proptest::collection::vec(op(), 1..60)) {
            let (readable, mut writer) = UnixStream::pair().unwrap();
            writer.write_all(b"x").unwrap();
            // start with no wake-up pending for this thread (poll finds `readable` ready)
            park_thread_fd(readable.as_fd(), libc::POLLIN, None);
            let mut tasks = vec![current()];
            tasks.extend((1..WAITERS).map(|_| Task::new_coroutine(None)));
            let base: Vec<usize> = tasks.iter().map(Arc::strong_count).collect();

            let d = PollDesc::new();
            let mut m = Model {
                slots: [Slot::Empty; 2],
                closing: false,
                deadlines: [None; 2],
                notified: false,
            };
            for &op in &ops {
                apply(op, &d, &mut m, &tasks, &readable);
                assert_matches(&d, &m, &tasks, &base, op);
            }
            // dropping the desc releases the references its slots still own, and no others
            drop(d);
            for (id, t) in tasks.iter().enumerate() {
                prop_assert_eq!(Arc::strong_count(t), base[id], "waiter {} after drop", id);
            }
            park_thread_fd(readable.as_fd(), libc::POLLIN, None);
        }
    }

    // ---- concurrent stress ----------------------------------------------------------------

    /// xorshift64*: reproducible randomness without a dependency.
    struct Rng(u64);

    impl Rng {
        fn seeded() -> Rng {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            Rng(nanos | 1)
        }

        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Busy-waits up to `max_us` microseconds, so the racing step lands at random moments.
        fn pause(&mut self, max_us: u64) {
            let until = Instant::now() + Duration::from_micros(self.below(max_us + 1));
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
    }

    /// How a stress round ends, and so how the waiter must come back.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum End {
        /// A byte is written to the peer: the read succeeds.
        Data,
        /// `unblock`: the read fails with the closed error.
        Close,
        /// The read deadline is set in the past: the read fails with the timeout error.
        Timeout,
    }

    /// One blocking read through `prepare` → recv → `wait`, the way `NetFd::io` does it,
    /// repeated until the round's ending. A timeout that is not the ending comes from a noise
    /// thread, which lifts its deadline right away: the reader tries again.
    fn read_until_end(desc: &Arc<PollDesc>, sock: &UnixStream, end: End) -> End {
        let mut buf = [0u8; 1];
        loop {
            let r = desc.prepare(Dir::Read, None).and_then(|_| loop {
                match (&*sock).read(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        desc.wait(sock.as_fd(), Dir::Read, None)?
                    }
                    r => return r,
                }
            });
            match r {
                Ok(1) => return End::Data,
                Err(e) if is_closed(&e) => return End::Close,
                Err(e) if is_timeout(&e) && end == End::Timeout => return End::Timeout,
                Err(e) if is_timeout(&e) => thread::yield_now(),
                r => panic!("unexpected read result {r:?}"),
            }
        }
    }

    /// Fires events and deadline changes at `desc` until `stop`. In a round that must end by
    /// timeout it leaves the read deadline alone (lifting it would undo the ending).
    fn noise(desc: Arc<PollDesc>, stop: Arc<AtomicBool>, end: End, seed: u64) {
        let mut rng = Rng(seed | 1);
        while !stop.load(Ordering::Relaxed) {
            match rng.below(8) {
                0..=3 => {
                    // as the netpoller does: collect, then unpark
                    if let Some(t) = desc.ready(Dir::Read) {
                        t.unpark();
                    }
                }
                4 if end != End::Timeout => desc.set_deadline(Dir::Read, None),
                5 if end != End::Timeout => {
                    desc.set_deadline(Dir::Read, Some(Instant::now()));
                    rng.pause(20);
                    desc.set_deadline(Dir::Read, None);
                }
                6 => desc.set_deadline(Dir::Write, Some(Instant::now() + Duration::from_secs(60))),
                _ => desc.set_deadline(Dir::Write, None),
            }
            rng.pause(30);
        }
    }

    const ROUND_LIMIT: Duration = Duration::from_secs(10);

    #[test]
    fn stress_thread_waiter_always_returns_and_leaks_nothing() {
        let mut rng = Rng::seeded();
        let seed = rng.0;
        for round in 0..800 {
            let end = match rng.below(3) {
                0 => End::Data,
                1 => End::Close,
                _ => End::Timeout,
            };
            let desc = PollDesc::new();
            let (a, b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let noisy: Vec<_> = (0..2)
                .map(|_| {
                    let (desc, stop, s) = (desc.clone(), stop.clone(), rng.next());
                    thread::spawn(move || noise(desc, stop, end, s))
                })
                .collect();
            let (tx, rx) = mpsc::channel();
            let waiter = {
                let desc = desc.clone();
                thread::spawn(move || {
                    tx.send(Err(current())).unwrap();
                    let got = read_until_end(&desc, &a, end);
                    tx.send(Ok(got)).unwrap();
                })
            };
            let Ok(Err(task)) = rx.recv() else {
                panic!("waiter thread died")
            };
            rng.pause(300);
            match end {
                End::Data => (&b).write_all(b"x").unwrap(),
                End::Close => desc.unblock(),
                End::Timeout => desc.set_deadline(Dir::Read, Some(Instant::now())),
            }
            let got = match rx.recv_timeout(ROUND_LIMIT) {
                Ok(Ok(got)) => got,
                Ok(Err(_)) => unreachable!(),
                Err(e) => panic!("round {round} (seed {seed:#x}, ending {end:?}): waiter {e:?}"),
            };
            assert_eq!(got, end, "round {round} (seed {seed:#x})");
            stop.store(true, Ordering::Relaxed);
            for t in noisy {
                t.join().unwrap();
            }
            waiter.join().unwrap();
            let left = desc.rg.load(Ordering::SeqCst);
            assert!(
                left == EMPTY || left == READY,
                "round {round} (seed {seed:#x}): slot still holds {left:#x} after the wait"
            );
            drop(desc);
            // the waiter thread has exited: ours is the only reference left
            assert_eq!(
                Arc::strong_count(&task),
                1,
                "round {round} (seed {seed:#x})"
            );
        }
    }

    #[test]
    fn stress_coroutine_waiter_always_returns_and_leaks_nothing() {
        let mut rng = Rng::seeded();
        let seed = rng.0;
        for round in 0..2000 {
            let end = match rng.below(3) {
                0 => End::Data,
                1 => End::Close,
                _ => End::Timeout,
            };
            let desc = PollDesc::new();
            let (a, b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let a = Arc::new(a);
            let stop = Arc::new(AtomicBool::new(false));
            let noisy: Vec<_> = (0..2)
                .map(|_| {
                    let (desc, stop, s) = (desc.clone(), stop.clone(), rng.next());
                    thread::spawn(move || noise(desc, stop, end, s))
                })
                .collect();
            let h = {
                let (desc, a) = (desc.clone(), a.clone());
                crate::runtime::go(move || read_until_end(&desc, &a, end))
            };
            let task = h.coroutine().0;
            rng.pause(300);
            match end {
                End::Data => (&b).write_all(b"x").unwrap(),
                End::Close => desc.unblock(),
                End::Timeout => desc.set_deadline(Dir::Read, Some(Instant::now())),
            }
            let limit = Instant::now() + ROUND_LIMIT;
            while !h.is_finished() {
                assert!(
                    Instant::now() < limit,
                    "round {round} (seed {seed:#x}, ending {end:?}): coroutine waiter stuck"
                );
                thread::sleep(Duration::from_micros(50));
            }
            assert_eq!(h.join().unwrap(), end, "round {round} (seed {seed:#x})");
            stop.store(true, Ordering::Relaxed);
            for t in noisy {
                t.join().unwrap();
            }
            let left = desc.rg.load(Ordering::SeqCst);
            assert!(
                left == EMPTY || left == READY,
                "round {round} (seed {seed:#x}): slot still holds {left:#x} after the wait"
            );
            crate::poll::deregister(&desc, a.as_raw_fd(), false);
            drop(desc);
            // the worker lets go of a finished coroutine's record just after `join` returns
            while Arc::strong_count(&task) != 1 {
                assert!(
                    Instant::now() < limit,
                    "round {round} (seed {seed:#x}): {} references to a finished coroutine",
                    Arc::strong_count(&task)
                );
                thread::yield_now();
            }
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
