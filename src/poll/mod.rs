//! The netpoller: how a coroutine that got EAGAIN sleeps until its fd is ready.
//!
//! # What it offers the runtime
//!
//! - `Poller::register` — add an fd to a worker's epoll, once, edge-triggered for both
//!   directions; the token carries a slab index and a sequence number.
//! - `Poller::poll` — wait with a timeout (the worker's nearest timer), then turn every
//!   event into `PollDesc::ready` and unpark the waiters it hands back.
//! - `Poller::wake` — break a sleeping `epoll_wait` from another thread (an eventfd).
//!
//! # What it needs
//!
//! A way to wake a waiter: `Task::unpark_owned_at`, the runtime's one park/unpark protocol
//! (`runtime/park.rs`), given the reference the waiter slot held.
//!
//! # The path of one read
//!
//! `net/tcp.rs` `read` → `net/sock.rs` `Sock::read_mut` → `poll/fd.rs` `NetFd::read_stream`
//! (lock unless through `&mut`, syscall, EAGAIN) →
//! `poll/desc.rs` `PollDesc::wait` (publish in the slot, park) → `runtime/park.rs` →
//! `runtime/worker.rs` (suspend; the worker runs others, then sleeps in) → `Poller::poll`
//! here → `poll/epoll.rs` `epoll_wait` → event → `PollDesc::ready` → `Task::unpark_owned_at` →
//! the back of the run queue → resume → the syscall again, which now returns data.
//!
//! # Stale events
//!
//! An fd number is reused as soon as it is closed, and epoll may still hold an event for
//! the old file. The token is `index << 32 | seq`; the slab entry at `index` remembers its
//! `seq`, which is new for every registration, so an event whose sequence no longer
//! matches is dropped instead of waking the new fd's waiter (Go's `fdseq`).

pub(crate) mod desc;
pub(crate) mod epoll;
pub(crate) mod fd;
mod fdmutex;

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use slab::Slab;

use self::desc::{Dir, PollDesc};
use self::epoll::Epoll;
use crate::runtime::task::Task;
use crate::runtime::worker::{prefetch_line, Turn};

thread_local! {
    /// The waiters one `poll` collects under the lock and wakes after it, kept between polls
    /// so a busy worker does not allocate for every batch. Empty between polls (a panic in
    /// between only loses the allocation).
    static WOKEN: Cell<Vec<Arc<Task>>> = const { Cell::new(Vec::new()) };
}

/// Token of the worker's own eventfd; never a slab index.
const WAKE_TOKEN: u64 = u64::MAX;

/// Packs a slab index and a registration sequence into an epoll token.
fn token(index: usize, seq: u32) -> u64 {
    ((index as u64) << 32) | seq as u64
}

fn untoken(t: u64) -> (usize, u32) {
    ((t >> 32) as usize, t as u32)
}

/// One worker's epoll instance, its doorbell, and the descs registered with it.
pub(crate) struct Poller {
    epoll: Epoll,
    waker: OwnedFd,
    descs: Mutex<Slab<(u32, Arc<PollDesc>)>>,
    registered: AtomicUsize,
    seq: AtomicU32,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        let epoll = Epoll::new()?;
        let waker = epoll::eventfd()?;
        epoll.add(waker.as_fd(), WAKE_TOKEN, epoll::DOORBELL)?;
        Ok(Poller {
            epoll,
            waker,
            descs: Mutex::new(Slab::new()),
            registered: AtomicUsize::new(0),
            seq: AtomicU32::new(0),
        })
    }

    fn descs(&self) -> std::sync::MutexGuard<'_, Slab<(u32, Arc<PollDesc>)>> {
        self.descs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn has_registrations(&self) -> bool {
        self.registered.load(Ordering::Relaxed) > 0
    }

    /// Adds `fd` to this epoll for good; returns the token its events will carry.
    pub(crate) fn register(&self, fd: BorrowedFd<'_>, desc: Arc<PollDesc>) -> io::Result<u64> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let index = self.descs().insert((seq, desc));
        let t = token(index, seq);
        if let Err(e) = self.epoll.add(fd, t, epoll::INTEREST) {
            self.descs().remove(index);
            return Err(e);
        }
        self.registered.fetch_add(1, Ordering::Relaxed);
        Ok(t)
    }

    /// Removes a registration. `fd` is given while it is still open, so epoll forgets it
    /// now even if a `dup` of it lives on; `None` when the caller is about to release the
    /// open file, which removes it from epoll (see `deregister`). Events already queued
    /// carry the old sequence and are dropped by `poll`.
    pub(crate) fn deregister(&self, fd: Option<RawFd>, t: u64) {
        if let Some(fd) = fd {
            // Ignored: ENOENT/EBADF only mean epoll already forgot the fd.
            let _ = self.epoll.delete(fd);
        }
        let (index, seq) = untoken(t);
        let mut descs = self.descs();
        if descs.get(index).is_some_and(|(s, _)| *s == seq) {
            descs.remove(index);
            self.registered.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Breaks a concurrent or the next `epoll_wait` on this poller.
    pub(crate) fn wake(&self) {
        epoll::eventfd_signal(self.waker.as_fd());
    }

    /// Waits up to `timeout_ms` (-1: forever) and unparks the waiters of ready fds.
    /// Returns the number of events, including the doorbell.
    pub(crate) fn poll(
        &self,
        events: &mut Vec<libc::epoll_event>,
        timeout_ms: i32,
    ) -> io::Result<usize> {
        let n = self.epoll.wait(events, timeout_ms)?;
        if n == 0 {
            return Ok(0);
        }
        hot_trace!("epoll wake: {n} event(s)");
        // Collect under the lock, wake (and log) after it: a logger is user code, and one
        // that closes a socket takes this lock again (`deregister`).
        let mut woken = WOKEN.take();
        let mut stale = 0usize;
        {
            let descs = self.descs();
            // With many connections each ready fd's `PollDesc` has left the cache since its
            // last event, and `ready`'s compare-and-swap is a barrier: one miss after
            // another, the next not even asked for until the last is in. So every line is
            // asked for first, the misses overlapping (a hint: a wrong guess costs a line).
            for ev in events.iter() {
                if let Some((_, desc)) = descs.get(untoken(ev.u64).0) {
                    prefetch_line(Arc::as_ptr(desc) as usize);
                }
            }
            for ev in events.iter() {
                let t = ev.u64;
                if t == WAKE_TOKEN {
                    epoll::eventfd_drain(self.waker.as_fd());
                    continue;
                }
                let (index, seq) = untoken(t);
                let Some((s, desc)) = descs.get(index) else {
                    continue;
                };
                if *s != seq {
                    stale += 1;
                    continue;
                }
                // Both before `ready`: a reader woken by this event must see them.
                if epoll::hangup(ev.events) {
                    desc.set_hung_up();
                }
                if epoll::urgent(ev.events) {
                    desc.set_urgent();
                }
                let (read, write) = epoll::directions(ev.events);
                // The same for each woken task's record, which `unpark_owned_at` uses below.
                if read {
                    if let Some(t) = desc.ready(Dir::Read) {
                        t.prefetch();
                        woken.push(t);
                    }
                }
                if write {
                    if let Some(t) = desc.ready(Dir::Write) {
                        t.prefetch();
                        woken.push(t);
                    }
                }
            }
        }
        // `ready` handed us the slot's reference: it moves on into the run queue. At the
        // back, in the order the kernel saw the fds become ready, as Go's netpoller injects
        // its list: in `runnext` each batch's last connection would jump ahead of every
        // connection already waiting. Measured against `runnext` with the echo benchmark
        // side by side (bench/run.sh part ab, 6 pairs per count): CPU per request 1 % lower
        // at 1,000 connections (6 of 6 pairs), level at 100 and 9,000; p99 level.
        for t in woken.drain(..) {
            t.unpark_owned_at(Turn::Queue);
        }
        WOKEN.set(woken);
        if stale > 0 {
            rt_log!(
                Trace,
                "{stale} stale epoll event(s) dropped: their fds were closed"
            );
        }
        Ok(n)
    }
}

/// Forgets `desc`'s registration, wherever it is. Called with the fd still open, just
/// before it is closed or given away.
///
/// `last` says the close that follows releases the open file itself: nothing else holds
/// it (no clone, no dup a user could have made: `NetFd::exposed`). Releasing an open file
/// takes it out of every epoll set, so then only the worker's record is dropped, without
/// the `epoll_ctl(EPOLL_CTL_DEL)` — one syscall per connection that ever parked (Go makes
/// it on every close). Otherwise the entry is deleted now: epoll keys it by open file and
/// number, so one a dup kept alive would go on waking the worker, and would make a
/// registration of that file at the same number fail with EEXIST. (A child forked by
/// another thread holds every fd until it execs; a socket closed in that window keeps its
/// entry until then, and its events carry a sequence `poll` no longer knows: dropped.)
pub(crate) fn deregister(desc: &PollDesc, fd: RawFd, last: bool) {
    if let Some(r) = desc.registration() {
        if let Some(rt) = crate::runtime::runtime_started() {
            let fd = (!last).then_some(fd);
            rt.workers[r.worker].poller.deregister(fd, r.token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for (i, s) in [(0usize, 0u32), (1, 7), (123_456, u32::MAX - 1)] {
            assert_eq!(untoken(token(i, s)), (i, s));
            assert_ne!(token(i, s), WAKE_TOKEN);
        }
    }

    #[test]
    fn stale_event_after_reregistration_is_dropped() {
        let p = Poller::new().unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let d1 = PollDesc::new();
        let t1 = p.register(a.as_fd(), d1.clone()).unwrap();
        // make `a` readable, but deregister (without epoll_ctl DEL, as if closed) before
        // polling, then register a new desc in the same slot
        use std::io::Write;
        (&b).write_all(b"x").unwrap();
        {
            let (index, _) = untoken(t1);
            let mut descs = p.descs();
            descs.remove(index);
        }
        let d2 = PollDesc::new();
        let (c, _d) = std::os::unix::net::UnixStream::pair().unwrap();
        let t2 = p.register(c.as_fd(), d2.clone()).unwrap();
        assert_eq!(untoken(t1).0, untoken(t2).0, "slot reused");
        let mut events = Vec::with_capacity(16);
        p.poll(&mut events, 1000).unwrap();
        // the event for `a` carried t1's sequence: d2 must not be marked ready for reading
        // (c has nothing to read; only its write side is ready)
        assert!(!d2.is_ready(Dir::Read));
        assert!(d2.is_ready(Dir::Write));
        assert!(!d1.is_ready(Dir::Read));
        drop((a, b));
    }
}
