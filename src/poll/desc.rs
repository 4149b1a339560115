//! `PollDesc`: the per-fd meeting point of a waiting coroutine and the netpoller.
//!
//! Each direction has one waiter slot (Go's `rg`/`wg`), a word with three kinds of value:
//!
//! ```text
//!  slot      meaning                                 transitions
//!  -------   -------------------------------------   -----------------------------------------
//!  EMPTY     nothing pending, nobody waiting         waiter: EMPTY → task   (about to park)
//!                                                    event:  EMPTY → READY
//!  READY     an event came and nobody consumed it    waiter: READY → EMPTY  (retry syscall)
//!                                                    prepare: READY → EMPTY (before a syscall)
//!  task ptr  this task is parked (or parking)        event:  ptr → READY, unpark the task
//!            on this direction; the slot owns one    close/deadline change: ptr → EMPTY, unpark
//!            `Arc<Task>` reference                   waiter (timer/spurious): ptr → EMPTY
//! ```
//!
//! Whoever moves the slot *out of* a task pointer owns that reference and is the only one
//! who may unpark through it; a CAS decides who. The waiter, once woken, swaps the slot to
//! EMPTY: if it finds READY, readiness came; if it finds its own pointer, nobody took it
//! (timer or spurious wake) and it drops the reference; if it finds EMPTY, a close or a
//! deadline change kicked it, and it re-checks both.
//!
//! Lost wake-ups are impossible because the waiter publishes itself in the slot *before*
//! re-checking `closing` and the deadline, while `close` and `set_deadline` store their
//! flag *before* emptying the slot (all SeqCst): one side always sees the other.
//!
//! Only one reader and one writer wait at a time: the direction locks in `poll/fd.rs`
//! serialise them, so a second waiter on a slot is a bug and panics.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::net::error::{closed_error, timeout_error};
use crate::runtime::park::{self, current, park_thread_fd};
use crate::runtime::task::{Task, Wait};
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

pub(crate) struct PollDesc {
    rg: AtomicUsize,
    wg: AtomicUsize,
    /// Set once by `unblock` (close): every wait fails from then on.
    closing: AtomicBool,
    /// Absolute deadlines in the `Deadline` encoding (0 = none).
    rdeadline: AtomicU64,
    wdeadline: AtomicU64,
    /// Set by the first coroutine that has to park on this fd: registration is lazy, so an
    /// fd used only by plain threads never touches epoll, and an fd is registered with the
    /// worker of the coroutine that first waits on it (usually its only user).
    reg: OnceLock<Registration>,
}

/// Deadlines as u64: 0 is "none", otherwise 1 + nanoseconds since a process-wide base,
/// so they fit in an atomic and a deadline set from any thread is read without a lock.
mod deadline {
    use super::*;

    fn base() -> Instant {
        static BASE: OnceLock<Instant> = OnceLock::new();
        *BASE.get_or_init(Instant::now)
    }

    pub(crate) fn encode(d: Option<Instant>) -> u64 {
        match d {
            None => 0,
            Some(d) => {
                let nanos = d.saturating_duration_since(base()).as_nanos();
                1 + nanos.min(u64::MAX as u128 - 1) as u64
            }
        }
    }

    pub(crate) fn decode(v: u64) -> Option<Instant> {
        match v {
            0 => None,
            v => Some(base() + Duration::from_nanos(v - 1)),
        }
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
            rdeadline: AtomicU64::new(0),
            wdeadline: AtomicU64::new(0),
            reg: OnceLock::new(),
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

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// The error a call must fail with now, if any: closed first, then a passed deadline
    /// (Go's `netpollcheckerr`). `call` is the per-call deadline from std's timeouts.
    pub(crate) fn check(&self, dir: Dir, call: Option<Instant>) -> io::Result<()> {
        if self.is_closing() {
            return Err(closed_error());
        }
        if let Some(d) = earliest(self.deadline(dir), call) {
            if Instant::now() >= d {
                return Err(timeout_error());
            }
        }
        Ok(())
    }

    /// Before a syscall: fail if closed or past the deadline, and forget a READY left by
    /// an event the previous call already consumed (Go's `pollReset`).
    pub(crate) fn prepare(&self, dir: Dir, call: Option<Instant>) -> io::Result<()> {
        self.check(dir, call)?;
        let _ = self
            .slot(dir)
            .compare_exchange(READY, EMPTY, Ordering::AcqRel, Ordering::Relaxed);
        Ok(())
    }

    /// Sets the absolute deadline for `dir` and kicks a waiter parked on it, so it re-reads
    /// the deadline: a new deadline also applies to a call already blocked.
    pub(crate) fn set_deadline(&self, dir: Dir, d: Option<Instant>) {
        self.deadline_word(dir)
            .store(deadline::encode(d), Ordering::SeqCst);
        if let Some(t) = self.take_waiter(dir) {
            t.unpark();
        }
    }

    /// Close: fail every current and future wait, and wake whoever is parked (Go's
    /// `pollUnblock`). Idempotent.
    pub(crate) fn unblock(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let r = self.take_waiter(Dir::Read);
        let w = self.take_waiter(Dir::Write);
        for t in [r, w].into_iter().flatten() {
            t.unpark();
        }
    }

    #[cfg(test)]
    pub(crate) fn is_ready(&self, dir: Dir) -> bool {
        self.slot(dir).load(Ordering::SeqCst) == READY
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
    pub(crate) fn wait(
        self: &Arc<Self>,
        fd: BorrowedFd<'_>,
        dir: Dir,
        call: Option<Instant>,
    ) -> io::Result<()> {
        if worker::in_coroutine() {
            self.wait_coroutine(fd, dir, call)
        } else {
            self.wait_thread(fd, dir, call)
        }
    }

    fn wait_coroutine(
        self: &Arc<Self>,
        fd: BorrowedFd<'_>,
        dir: Dir,
        call: Option<Instant>,
    ) -> io::Result<()> {
        self.register(fd)?;
        let slot = self.slot(dir);
        let me = current();
        let why = match dir {
            Dir::Read => Wait::IoRead,
            Dir::Write => Wait::IoWrite,
        };
        loop {
            // 1. a readiness that arrived since the syscall: retry at once
            if slot
                .compare_exchange(READY, EMPTY, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(());
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
            // 3. re-check close and deadline now that a closer/setter can see us
            let deadline = earliest(self.deadline(dir), call);
            let err = self.check(dir, call).err();
            if err.is_none() {
                // 4. park; the timer (if any) unparks us at the deadline
                log::trace!(
                    "park coroutine {} on fd {} {:?}",
                    me.id,
                    fd.as_raw_fd(),
                    dir
                );
                park::park_until(deadline, why);
            }
            // 5. take our slot back: READY means go, our pointer means nobody came
            match slot.swap(EMPTY, Ordering::SeqCst) {
                READY => return Ok(()),
                EMPTY => {}
                p if p == raw => {
                    // SAFETY: the slot still held our reference; the swap returned it to us.
                    drop(unsafe { Arc::from_raw(p as *const Task) });
                }
                p => panic!("PollDesc: slot held a foreign waiter {p:#x}"),
            }
            if let Some(e) = err {
                return Err(e);
            }
            self.check(dir, call)?;
        }
    }

    fn wait_thread(&self, fd: BorrowedFd<'_>, dir: Dir, call: Option<Instant>) -> io::Result<()> {
        let slot = self.slot(dir);
        let me = current();
        let raw = Arc::into_raw(me) as usize;
        // publish so close and deadline changes can find and wake us (via our eventfd)
        if let Err(other) = slot.compare_exchange(EMPTY, raw, Ordering::SeqCst, Ordering::SeqCst) {
            // SAFETY: never published; we still own it.
            drop(unsafe { Arc::from_raw(raw as *const Task) });
            if other == READY {
                slot.store(EMPTY, Ordering::SeqCst);
                return Ok(());
            }
            panic!("PollDesc: two waiters parked on one direction ({dir:?})");
        }
        let deadline = earliest(self.deadline(dir), call);
        let err = self.check(dir, call).err();
        if err.is_none() {
            let events = match dir {
                Dir::Read => libc::POLLIN,
                Dir::Write => libc::POLLOUT,
            };
            park_thread_fd(fd, events, deadline);
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
    fn register(self: &Arc<Self>, fd: BorrowedFd<'_>) -> io::Result<()> {
        if self.reg.get().is_some() {
            return Ok(());
        }
        let r = worker::with_poller(|w, p| {
            p.register(fd, self.clone())
                .map(|token| Registration { worker: w, token })
        })
        .expect("register outside a worker")?;
        if self.reg.set(r).is_err() {
            // Another coroutine registered the fd first (on another worker). Undo ours.
            worker::with_poller(|_, p| p.deregister(Some(fd.as_raw_fd()), r.token));
        } else {
            log::trace!("fd {} registered with worker {}", fd.as_raw_fd(), r.worker);
        }
        Ok(())
    }
}

impl Drop for PollDesc {
    fn drop(&mut self) {
        for slot in [&mut self.rg, &mut self.wg] {
            let p = *slot.get_mut();
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
