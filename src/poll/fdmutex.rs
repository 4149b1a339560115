//! `FdMutex`: an fd's lifetime word — Go's `fdMutex` (`internal/poll/fd_mutex.go`).
//!
//! One 64-bit word holds everything a call needs to start and end:
//!
//! ```text
//!   63          44 43          24 23           3    2       1       0
//!  [ write waiters ][ read waiters ][ references ][ WLOCK ][ RLOCK ][ CLOSED ]
//!      20 bits         20 bits         21 bits
//! ```
//!
//! | transition        | who            | word change (one CAS unless noted)                   |
//! |-------------------|----------------|------------------------------------------------------|
//! | `incref`          | any call       | refs + 1, only if !CLOSED                            |
//! | `decref`          | its end        | refs − 1 (`fetch_sub`)                               |
//! | `rwlock`, free    | read/write     | lock bit set and refs + 1, only if !CLOSED           |
//! | `rwlock`, held    | read/write     | waiters + 1, then sleep on the direction's `Sema`    |
//! |                   |                | (until the call's per-call timeout at most)          |
//! | lock wait timeout | read/write     | waiters − 1 if any are counted, under the `Sema`'s   |
//! |                   |                | lock                                                 |
//! | `rwunlock`        | its end        | lock bit clear, refs − 1, and waiters − 1 + one wake  |
//! |                   |                | if any wait                                          |
//! | `close`           | `NetFd::close` | CLOSED set, refs + 1, waiters cleared (all woken     |
//! |                   |                | once the socket is released: `LockWaiters`)          |
//!
//! So starting a call is one compare-and-swap and ending it one more; the uncontended path
//! touches nothing else. A woken lock waiter competes for the lock again from the top (it is
//! not handed the lock: not FIFO, as in Go), and sees CLOSED there if it was woken by close.
//!
//! **Last out exactly once.** The references count calls in flight, `close`'s own included.
//! CLOSED is never cleared, and no reference is taken once it is set, so the count reaches
//! zero with CLOSED set exactly once: the `decref`/`rwunlock` that makes that step returns
//! `true`. (Go destroys the fd there. coronet's `close` has already released the socket
//! by then, under the calls still out, which meet a dead placeholder: `poll/fd.rs`.)
//!
//! **No lost lock wake-up.** A waiter is counted in the word by the same CAS that found the
//! lock held, and whoever later takes it out of the count (an unlock, or close for all of
//! them) gives its semaphore one permit. The semaphore remembers a permit given before its
//! waiter got there, so the order of "count me" → "sleep" against "uncount" → "wake" does not
//! matter. A waiter whose time runs out takes one count back itself, under the semaphore's
//! lock, with no permit: counts plus stored permits still cover every waiter not yet granted
//! (`FdMutex::uncount`).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

// The word and the semaphores' locks are loom's in the loom models (`loom_tests` below), so
// they run the very methods the sockets call; everywhere else they are std's.
#[cfg(all(test, loom))]
use loom::sync::{atomic::AtomicU64, Mutex, MutexGuard};
#[cfg(not(all(test, loom)))]
use std::sync::{atomic::AtomicU64, Mutex, MutexGuard};

use super::desc::Dir;
use crate::runtime::park;
#[cfg(not(all(test, loom)))]
use crate::runtime::park::current;
use crate::runtime::task::Task;
#[cfg(not(all(test, loom)))]
use crate::runtime::task::Wait;

const CLOSED: u64 = 1 << 0;
const RLOCK: u64 = 1 << 1;
const WLOCK: u64 = 1 << 2;
const REF: u64 = 1 << 3;
const REF_MASK: u64 = ((1 << 21) - 1) * REF;
const RWAIT: u64 = 1 << 24;
const RWAIT_MASK: u64 = ((1 << 20) - 1) * RWAIT;
const WWAIT: u64 = 1 << 44;
const WWAIT_MASK: u64 = ((1 << 20) - 1) * WWAIT;

/// Why a call could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The fd is closed: "use of closed network connection".
    Closed,
    /// A count in the word is full (about a million calls in flight or waiting on one fd).
    TooMany,
    /// The call's own time (std's per-call timeout) ran out while it waited for the lock.
    TimedOut,
}

impl Refused {
    pub(crate) fn into_error(self) -> io::Error {
        match self {
            Refused::Closed => crate::net::error::closed_error(),
            Refused::TooMany => io::Error::other(
                "too many concurrent calls on one socket (over a million): share the work \
                 over more sockets",
            ),
            Refused::TimedOut => crate::net::error::timeout_error(),
        }
    }
}

/// Why no reference can be taken in state `old` (closed, or the count is full), if so.
fn no_reference(old: u64) -> Option<Refused> {
    if old & CLOSED != 0 {
        Some(Refused::Closed)
    } else if old & REF_MASK == REF_MASK {
        Some(Refused::TooMany)
    } else {
        None
    }
}

/// The lifetime word and the two lock semaphores. See the module comment.
///
/// The semaphores are made on first contention: every call reads `state`, which shares a
/// cache line with the rest of the socket's hot fields only if the ~100 bytes of two idle
/// semaphores are not in between (with a thousand connections each request's lines come
/// from memory, so every line counts).
pub(crate) struct FdMutex {
    state: AtomicU64,
    semas: OnceLock<Box<[Sema; 2]>>,
}

/// A direction's lock bit, one waiter in its count, and the count's mask.
struct Lane {
    bit: u64,
    wait: u64,
    mask: u64,
}

impl FdMutex {
    pub(crate) fn new() -> FdMutex {
        FdMutex {
            state: AtomicU64::new(0),
            semas: OnceLock::new(),
        }
    }

    #[inline]
    fn lane(&self, dir: Dir) -> Lane {
        match dir {
            Dir::Read => Lane {
                bit: RLOCK,
                wait: RWAIT,
                mask: RWAIT_MASK,
            },
            Dir::Write => Lane {
                bit: WLOCK,
                wait: WWAIT,
                mask: WWAIT_MASK,
            },
        }
    }

    /// `dir`'s semaphore, made on first use (waiter and waker both come here, so they meet
    /// at the same one).
    fn sema(&self, dir: Dir) -> &Sema {
        let semas = self
            .semas
            .get_or_init(|| Box::new([Sema::new(), Sema::new()]));
        match dir {
            Dir::Read => &semas[0],
            Dir::Write => &semas[1],
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Marks the word closed through `&mut` (no call can be in flight): for `Drop`.
    pub(crate) fn set_closed_mut(&mut self) {
        #[cfg(not(all(test, loom)))]
        {
            *self.state.get_mut() |= CLOSED;
        }
        #[cfg(all(test, loom))]
        self.state.with_mut(|v| *v |= CLOSED);
    }

    /// Takes a reference for a call that needs no direction lock.
    pub(crate) fn incref(&self) -> Result<(), Refused> {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if let Some(why) = no_reference(old) {
                return Err(why);
            }
            match self.state.compare_exchange_weak(
                old,
                old + REF,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => old = now,
            }
        }
    }

    /// Drops a reference; true if it was the last one after close. (`NetFd` has no use for
    /// the answer: its `close` releases the socket itself. The unit tests and the loom
    /// models check it.)
    pub(crate) fn decref(&self) -> bool {
        let old = self.state.fetch_sub(REF, Ordering::AcqRel);
        assert!(
            old & REF_MASK != 0,
            "FdMutex: reference dropped with none held ({old:#x})"
        );
        old & (CLOSED | REF_MASK) == CLOSED | REF
    }

    /// Takes `dir`'s lock and a reference; waits for the lock at most until `until` (std's
    /// per-call timeout counts that wait, as a blocked std call's would).
    #[inline]
    pub(crate) fn rwlock(&self, dir: Dir, until: Option<Instant>) -> Result<(), Refused> {
        // Fast path, kept small enough to inline: open, lock free, room for a reference.
        let bit = self.lane(dir).bit;
        let old = self.state.load(Ordering::Relaxed);
        if old & (CLOSED | bit) == 0
            && old & REF_MASK != REF_MASK
            && self
                .state
                .compare_exchange_weak(old, (old | bit) + REF, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return Ok(());
        }
        self.rwlock_slow(dir, until)
    }

    #[cold]
    #[inline(never)]
    fn rwlock_slow(&self, dir: Dir, until: Option<Instant>) -> Result<(), Refused> {
        let lane = self.lane(dir);
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if old & CLOSED != 0 {
                return Err(Refused::Closed);
            }
            let free = old & lane.bit == 0;
            let new = if free {
                if old & REF_MASK == REF_MASK {
                    return Err(Refused::TooMany);
                }
                (old | lane.bit) + REF
            } else {
                if old & lane.mask == lane.mask {
                    return Err(Refused::TooMany);
                }
                old + lane.wait
            };
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if free => return Ok(()),
                Ok(_) => {
                    // counted as a waiter: an unlock or close uncounts us and wakes us
                    if !self.sema(dir).acquire(until, || self.uncount(&lane)) {
                        return Err(Refused::TimedOut);
                    }
                    old = self.state.load(Ordering::Relaxed);
                }
                Err(now) => old = now,
            }
        }
    }

    /// A lock waiter that gave up (its time ran out) takes its count back out of the word,
    /// under its semaphore's lock. Counts are not per waiter, so this keeps a sum instead:
    /// waiters counted in the word, plus permits stored in the semaphore, plus unlocks
    /// between their two steps (count taken, permit not yet given) is at least the number
    /// of waiters not yet granted, queued or on their way (each counted itself before it
    /// queues; an unlock trades one count for one permit, to the head of the queue or
    /// stored); so a waiter that leaves may take one count off. With none counted, an unlock
    /// is between its two steps (no permit is stored while anyone is queued, as this waiter
    /// still is): its permit, stored when it comes, costs a later waiter one extra look at
    /// the word. That surplus is bounded by the unlocks in flight, not by the timeouts.
    /// (Found by the fifth audit: the count of a waiter that timed out stayed for good, and
    /// after a million of them behind one long reader every contended call failed as too
    /// many.)
    fn uncount(&self, lane: &Lane) {
        let mut old = self.state.load(Ordering::Relaxed);
        while old & lane.mask != 0 {
            match self.state.compare_exchange_weak(
                old,
                old - lane.wait,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => old = now,
            }
        }
    }

    /// Releases `dir`'s lock and its reference, waking one waiter if any; true if this was
    /// the last reference after close (as `decref`'s, an answer only the tests use).
    #[inline]
    pub(crate) fn rwunlock(&self, dir: Dir) -> bool {
        // Fast path: held, nobody waiting, not closed — one CAS, nothing to wake or retire.
        let lane = self.lane(dir);
        let old = self.state.load(Ordering::Relaxed);
        if old & (CLOSED | lane.mask) == 0
            && old & lane.bit != 0
            && old & REF_MASK != 0
            && self
                .state
                .compare_exchange_weak(
                    old,
                    (old & !lane.bit) - REF,
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return false;
        }
        self.rwunlock_slow(dir)
    }

    #[cold]
    #[inline(never)]
    fn rwunlock_slow(&self, dir: Dir) -> bool {
        let lane = self.lane(dir);
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            assert!(
                old & lane.bit != 0 && old & REF_MASK != 0,
                "FdMutex: {dir:?} unlock without the lock held ({old:#x})"
            );
            let mut new = (old & !lane.bit) - REF;
            let wake = old & lane.mask != 0;
            if wake {
                new -= lane.wait;
            }
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    if wake {
                        self.sema(dir).release(1);
                    }
                    return new & (CLOSED | REF_MASK) == CLOSED;
                }
                Err(now) => old = now,
            }
        }
    }

    /// Go's `increfAndClose`: sets CLOSED and takes a reference (drop it with `decref` when
    /// done), and takes every lock waiter out of the count, to be woken (and see CLOSED)
    /// when the returned [`LockWaiters`] is dropped. `Closed` if already closed.
    pub(crate) fn close(&self) -> Result<LockWaiters<'_>, Refused> {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if let Some(why) = no_reference(old) {
                return Err(why);
            }
            let new = ((old | CLOSED) + REF) & !(RWAIT_MASK | WWAIT_MASK);
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Ok(LockWaiters {
                        mu: self,
                        read: (old & RWAIT_MASK) / RWAIT,
                        write: (old & WWAIT_MASK) / WWAIT,
                    })
                }
                Err(now) => old = now,
            }
        }
    }
}

/// The lock waiters a `close` took out of the count, woken when this is dropped.
/// `NetFd::close` keeps it until the socket is released, so that a call woken by the close
/// never returns to find the socket still open (a `bind` of the address it held would
/// fail). Holding it back is safe: each counted waiter is owed one permit and gets it here,
/// as from a slow closer; no waiter is counted after CLOSED.
pub(crate) struct LockWaiters<'a> {
    mu: &'a FdMutex,
    read: u64,
    write: u64,
}

impl Drop for LockWaiters<'_> {
    fn drop(&mut self) {
        for (dir, waiters) in [(Dir::Read, self.read), (Dir::Write, self.write)] {
            if waiters > 0 {
                self.mu.sema(dir).release(waiters);
            }
        }
    }
}

impl std::fmt::Debug for LockWaiters<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockWaiters")
            .field("read", &self.read)
            .field("write", &self.write)
            .finish()
    }
}

impl PartialEq for LockWaiters<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.read, self.write) == (other.read, other.write)
    }
}

/// A counting semaphore whose waiters park (coroutines) or block (threads): Go's
/// `runtime_Semacquire`/`Semrelease`, for lock waiters only, so it is off the fast path.
///
/// A permit given while nobody waits is kept for the next `acquire`; a waiter is granted one
/// by being taken out of the queue, which it checks under the mutex after each wake-up
/// (wake-ups may be spurious).
struct Sema(Mutex<SemaState>);

struct SemaState {
    permits: u64,
    waiters: VecDeque<Arc<Task>>,
}

impl Sema {
    fn new() -> Sema {
        Sema(Mutex::new(SemaState {
            permits: 0,
            waiters: VecDeque::new(),
        }))
    }

    fn state(&self) -> MutexGuard<'_, SemaState> {
        // Plain counters and a queue; no code panics while holding the lock.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a permit, at most until `until`; false if it timed out, after leaving
    /// the queue and calling `gave_up` under the lock (see `FdMutex::uncount`).
    fn acquire(&self, until: Option<Instant>, gave_up: impl FnOnce()) -> bool {
        #[cfg(all(test, loom))]
        use loom_tests::current;
        let me = current();
        // Before the queue, not after: a logger that parks this coroutine there would take
        // the wake-up of a release that granted it the lock, and the park below would then
        // sleep holding the grant (found by a review).
        rt_log!(Trace, "task {} may wait for an fd lock", me.id);
        {
            let mut s = self.state();
            if s.permits > 0 {
                s.permits -= 1;
                return true;
            }
            s.waiters.push_back(me.clone());
        }
        loop {
            #[cfg(not(all(test, loom)))]
            park::park_current_until(&me, until, Wait::Sync, -1);
            // a park that only an unpark ends; a model's timer is a thread that unparks
            #[cfg(all(test, loom))]
            park::park_sleeping(&me);
            let mut s = self.state();
            // granted = a release took us out of the queue
            let Some(at) = s.waiters.iter().position(|t| Arc::ptr_eq(t, &me)) else {
                return true;
            };
            if until.is_some_and(|d| Instant::now() >= d) {
                s.waiters.remove(at);
                gave_up();
                return false;
            }
        }
    }

    /// Gives `n` permits: to queued waiters first (woken after the lock is dropped), the
    /// rest kept for waiters still on their way.
    fn release(&self, n: u64) {
        if n == 0 {
            return;
        }
        let mut woken = Vec::new();
        {
            let mut s = self.state();
            for _ in 0..n {
                match s.waiters.pop_front() {
                    Some(t) => woken.push(t),
                    None => s.permits += 1,
                }
            }
        }
        for t in woken {
            t.unpark_owned();
        }
    }
}

#[cfg(test)]
impl FdMutex {
    pub(crate) fn refs(&self) -> u64 {
        (self.state.load(Ordering::SeqCst) & REF_MASK) / REF
    }

    pub(crate) fn locked(&self, dir: Dir) -> bool {
        self.state.load(Ordering::SeqCst) & self.lane(dir).bit != 0
    }

    fn waiting(&self, dir: Dir) -> u64 {
        let lane = self.lane(dir);
        (self.state.load(Ordering::SeqCst) & lane.mask) / lane.wait
    }
}

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicUsize;
    use std::thread;
    use std::time::{Duration, Instant};

    #[test]
    fn the_fields_do_not_overlap_and_fill_the_word() {
        let fields = [CLOSED, RLOCK, WLOCK, REF_MASK, RWAIT_MASK, WWAIT_MASK];
        let mut all = 0u64;
        for f in fields {
            assert_eq!(all & f, 0, "field {f:#x} overlaps");
            all |= f;
        }
        assert_eq!(all, u64::MAX);
    }

    #[test]
    fn full_counts_refuse_with_an_error_instead_of_overflowing() {
        let mu = FdMutex::new();
        mu.state.store(REF_MASK, Ordering::SeqCst);
        assert_eq!(mu.incref(), Err(Refused::TooMany));
        assert_eq!(mu.rwlock(Dir::Read, None), Err(Refused::TooMany));
        assert_eq!(mu.close(), Err(Refused::TooMany));
        mu.state.store(WLOCK | REF | WWAIT_MASK, Ordering::SeqCst);
        assert_eq!(mu.rwlock(Dir::Write, None), Err(Refused::TooMany));
        let e = Refused::TooMany.into_error();
        assert!(e.to_string().contains("too many"), "{e}");
    }

    #[test]
    #[should_panic(expected = "FdMutex: Read unlock without the lock held")]
    fn unlock_without_the_lock_is_a_named_bug() {
        FdMutex::new().rwunlock(Dir::Read);
    }

    // ---- the word against a model, single-threaded ---------------------------------------

    /// Calls that never have to wait (a held lock would park the only thread).
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Incref,
        Decref,
        Lock(Dir),
        Unlock(Dir),
        Close,
    }

    #[derive(Default)]
    struct Model {
        closed: bool,
        /// Plain references (incref) and locks held, per direction.
        plain: u64,
        held: [bool; 2],
        retired: u32,
    }

    impl Model {
        fn refs(&self) -> u64 {
            self.plain + self.held.iter().filter(|&&h| h).count() as u64
        }
    }

    fn ix(dir: Dir) -> usize {
        match dir {
            Dir::Read => 0,
            Dir::Write => 1,
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        let dir = prop_oneof![Just(Dir::Read), Just(Dir::Write)];
        prop_oneof![
            3 => Just(Op::Incref),
            3 => Just(Op::Decref),
            4 => dir.clone().prop_map(Op::Lock),
            4 => dir.prop_map(Op::Unlock),
            1 => Just(Op::Close),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random start-call / end-call / close sequences: locks exclusive per direction,
        /// nothing starts after close, and the socket is retired exactly once, when the last
        /// reference leaves after close.
        #[test]
        fn the_word_follows_the_model(ops in proptest::collection::vec(op(), 1..80)) {
            let mu = FdMutex::new();
            let mut m = Model::default();
            for op in ops {
                match op {
                    Op::Incref => {
                        let got = mu.incref();
                        prop_assert_eq!(got.is_ok(), !m.closed, "{:?}", op);
                        if got.is_ok() {
                            m.plain += 1;
                        }
                    }
                    Op::Decref if m.plain > 0 => {
                        m.plain -= 1;
                        if mu.decref() {
                            m.retired += 1;
                        }
                    }
                    Op::Decref => {}
                    // the lock is held: taking it would park this thread for good
                    Op::Lock(dir) if m.held[ix(dir)] && !m.closed => {}
                    Op::Lock(dir) => {
                        let got = mu.rwlock(dir, None);
                        prop_assert_eq!(got.is_ok(), !m.closed, "{:?}", op);
                        if got.is_ok() {
                            m.held[ix(dir)] = true;
                        }
                    }
                    Op::Unlock(dir) if m.held[ix(dir)] => {
                        m.held[ix(dir)] = false;
                        if mu.rwunlock(dir) {
                            m.retired += 1;
                        }
                    }
                    Op::Unlock(_) => {}
                    Op::Close => {
                        let got = mu.close();
                        prop_assert_eq!(got.is_ok(), !m.closed, "{:?}", op);
                        if got.is_ok() {
                            m.closed = true;
                            prop_assert_eq!(mu.refs(), m.refs() + 1, "close holds a reference");
                            // dropped once close has unblocked everyone (`NetFd::close`)
                            if mu.decref() {
                                m.retired += 1;
                            }
                        }
                    }
                }
                prop_assert_eq!(mu.is_closed(), m.closed);
                prop_assert_eq!(mu.refs(), m.refs(), "after {:?}", op);
                prop_assert_eq!(mu.locked(Dir::Read), m.held[0]);
                prop_assert_eq!(mu.locked(Dir::Write), m.held[1]);
                let want_retired = u32::from(m.closed && m.refs() == 0);
                prop_assert_eq!(m.retired, want_retired, "after {:?}", op);
            }
        }
    }

    // ---- waiters, with real threads -------------------------------------------------------

    /// Waits (generously) until `f` holds.
    fn eventually(what: &str, f: impl Fn() -> bool) {
        let limit = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < limit, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// A waiter whose time runs out behind a holder takes its count back (fifth audit: the
    /// counts stayed, and after a million of them every contended call failed as too
    /// many); and the holder's unlock still wakes a waiter that came later.
    #[test]
    fn a_lock_waiter_that_times_out_leaves_no_count_behind() {
        let mu = Arc::new(FdMutex::new());
        mu.rwlock(Dir::Read, None).unwrap();
        for _ in 0..3 {
            let until = Instant::now() + Duration::from_millis(1);
            assert_eq!(mu.rwlock(Dir::Read, Some(until)), Err(Refused::TimedOut));
            assert_eq!(mu.waiting(Dir::Read), 0);
        }
        let m = mu.clone();
        let late = thread::spawn(move || {
            m.rwlock(Dir::Read, None).unwrap();
            assert!(!m.rwunlock(Dir::Read));
        });
        eventually("the late waiter to be counted", || {
            mu.waiting(Dir::Read) == 1
        });
        assert!(!mu.rwunlock(Dir::Read));
        late.join().unwrap();
        assert_eq!(
            mu.state.load(Ordering::SeqCst),
            0,
            "all counts back to zero"
        );
    }

    /// Waiters that give up race with unlocks and with waiters that do not: nobody is left
    /// waiting for a wake-up that never comes, and every count goes back to zero.
    #[test]
    fn timed_out_and_patient_lock_waiters_together_all_get_through() {
        let mu = Arc::new(FdMutex::new());
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let mu = mu.clone();
                thread::spawn(move || {
                    for n in 0..3000u64 {
                        // half the threads give up after 0-49 us; the others never do
                        let until = (i % 2 == 0)
                            .then(|| Instant::now() + Duration::from_micros(n * 7 % 50));
                        if mu.rwlock(Dir::Read, until).is_ok() {
                            thread::yield_now();
                            assert!(!mu.rwunlock(Dir::Read));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            mu.state.load(Ordering::SeqCst),
            0,
            "all counts back to zero"
        );
    }

    #[test]
    fn lock_waiters_serialise_and_all_get_through() {
        let mu = Arc::new(FdMutex::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (mu, inside, done) = (mu.clone(), inside.clone(), done.clone());
                thread::spawn(move || {
                    for _ in 0..500 {
                        mu.rwlock(Dir::Read, None).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two readers");
                        thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        assert!(!mu.rwunlock(Dir::Read));
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        // a writer is never held up by the readers
        for _ in 0..100 {
            mu.rwlock(Dir::Write, None).unwrap();
            assert!(!mu.rwunlock(Dir::Write));
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 4);
        assert_eq!(
            mu.state.load(Ordering::SeqCst),
            0,
            "all counts back to zero"
        );
    }

    #[test]
    fn close_wakes_every_lock_waiter_with_closed_and_the_holder_retires() {
        let mu = Arc::new(FdMutex::new());
        mu.rwlock(Dir::Write, None).unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let mu = mu.clone();
                thread::spawn(move || mu.rwlock(Dir::Write, None))
            })
            .collect();
        eventually("three write waiters", || mu.waiting(Dir::Write) == 3);
        mu.close().unwrap();
        assert_eq!(mu.close(), Err(Refused::Closed), "close twice");
        for w in waiters {
            assert_eq!(w.join().unwrap(), Err(Refused::Closed));
        }
        assert_eq!(mu.waiting(Dir::Write), 0);
        // close's own reference and the holder's: only the last one out retires
        assert!(!mu.decref(), "the holder is still inside");
        assert!(mu.rwunlock(Dir::Write), "last one out after close retires");
        assert_eq!(mu.refs(), 0);
        assert_eq!(mu.incref(), Err(Refused::Closed));
    }

    #[test]
    fn lock_waiter_coroutine_parks_and_is_woken_by_unlock() {
        crate::run(|| {
            let mu = Arc::new(FdMutex::new());
            mu.rwlock(Dir::Read, None).unwrap();
            let m2 = mu.clone();
            let h = crate::go(move || {
                m2.rwlock(Dir::Read, None).unwrap();
                m2.rwunlock(Dir::Read)
            });
            // the waiter is counted, and the worker is free to run us meanwhile
            while mu.waiting(Dir::Read) == 0 {
                crate::yield_now();
            }
            assert!(!mu.rwunlock(Dir::Read));
            assert!(!h.join().unwrap());
            assert_eq!(mu.state.load(Ordering::SeqCst), 0);
        });
    }
}
