//! `NetFd`: an fd that blocking-style calls can share, close under each other, and wait on.
//!
//! Every socket call is the same five beats, written once here (`NetFd::io`, beat 1, and
//! `NetFd::io_locked`, beats 2–5):
//!
//! 1. take the direction lock and a reference (fails once closed);
//! 2. check closed / deadline, and forget stale readiness;
//! 3. the syscall (a closure given by `net/`);
//! 4. `EINTR`: retry; `EAGAIN`: park on the netpoller until ready (for `write_paced`'s
//!    sends, which no event ends, a timed pause), then
//! 5. retry the syscall.
//!
//! # The lifetime word (Go's `fdMutex`, `poll/fdmutex.rs`)
//!
//! One word holds the CLOSED bit, the count of calls in flight, the read and write locks
//! and their waiter counts, so a call starts with one compare-and-swap (take the direction
//! lock and a reference) and ends with one more.
//!
//! ```text
//!  call starts:  lock + refs += 1, only if !CLOSED     → else "use of closed network connection"
//!  call ends:    unlock + refs -= 1
//!  close():      refs += 1 and CLOSED in one CAS (the lock waiters taken out of the
//!                count); `closing` set; the socket released now (`retire`: a dead
//!                placeholder `dup2`'d over the number); plain threads in poll(2) woken
//!                and waited out; parked coroutines woken; then the lock waiters;
//!                refs -= 1. It waits for no coroutine.
//!  drop:         closes the fd number itself (no call can be in flight: `&mut self`)
//! ```
//!
//! So `close` wakes every blocked call at once and returns with the socket released (the
//! peer sees the end, the port is free), while the fd *number* is never released before
//! the value is dropped, so no call — and no `BorrowedFd` — ever sees it reused for another
//! file.
//! Readers are serialised among themselves by the read lock, writers by the write lock; a
//! reader and a writer run at the same time.
//!
//! # Why `close` does not wait for the calls in flight
//!
//! Go's `Close` releases the socket with the last call out and waits for that (`csema`).
//! coronet's cannot wait for a call: a started coroutine runs only on its own worker, so
//! the wait would hang on whatever holds that worker — a coroutine computing for seconds,
//! one blocked on a std `Mutex` the closer holds, or the closer itself when it runs on
//! that worker outside any coroutine, in a logger say (a probe of the API hung in all
//! three, when `close` waited). So `close` releases the socket itself, under the calls
//! still in flight. A parked coroutine holds no kernel reference to the socket, so the
//! release is immediate. A plain thread blocked in `poll(2)` on it does hold one until its
//! poll returns, and `close` wakes such threads first and waits for them to get out
//! (`PollDesc::threads_out`): that needs only their CPU, never a worker (spins and yields;
//! if one takes over 10 ms, running a signal handler, the closer parks and the last one
//! out wakes it).
//! Only then does it wake the coroutines and the lock waiters, so no woken call returns to
//! find the socket still open. A syscall inside the kernel with the socket on another thread at that
//! instant keeps it until it returns too, which a nonblocking socket's calls do at once.
//! A call in flight whose next syscall comes after the `dup2` meets the placeholder, a
//! socket whose connection is over: a read gets end of file, everything else fails at once
//! (a `poll(2)` on it says HUP), and nothing done to it changes it (`placeholder`). It must
//! not report what the placeholder says: `io_locked` turns a failure, and any answer of a
//! read, into the closed error once CLOSED is set, and `with_fd` refuses any answer got
//! after CLOSED. CLOSED is set before the `dup2`, and a syscall that found the placeholder
//! under the number read the fd table after it, so its caller's next look at the word sees
//! CLOSED. A read in the kernel with the socket itself as `close` releases it is refused
//! the same way, so no read returns what the peer sent after `close` returned. A write
//! there may still put its bytes on the wire after `close` returned, ahead of the end of
//! the stream (Go's `Close` would have waited for it).
//!
//! # Calls through `&mut`
//!
//! std's `Read` and `Write` for an owned stream (`impl Read for TcpStream`, not `for
//! &TcpStream`) take it by `&mut`, and each handle has a `NetFd` of its own (`try_clone`
//! makes a new fd). While such a call runs, Rust's borrow rules leave no other reference
//! to the handle anywhere: no other call, no `close`, no drop can start on this `NetFd`
//! until it returns. So the lock and the reference have nothing to guard: the call looks
//! at the CLOSED bit once (a `close` before it still fails it) and goes straight to beat
//! 2, saving the two atomic read-modify-writes per call that the shared path pays (`SOLE`
//! in `NetFd::io`; the `*_mut` entry points of `net/sock.rs` pass it, and only they). The
//! netpoller, a deadline timer and the waiter slot touch only the `PollDesc`, which keeps
//! its own atomics either way. Go cannot do this: a `net.Conn` is always shared.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::desc::{Dir, PollDesc};
use super::fdmutex::{FdMutex, Refused};

/// An open socket (or pipe) shared by blocking-style calls.
///
/// # Invariant
///
/// The fd *number* `fd` is open and owned by this `NetFd` for the whole life of the value:
/// it is closed only in `Drop` (or given away by `into_raw`, which leaves `GIVEN_AWAY` for
/// `Drop` to skip). `close(&self)` does not free the number; it swaps the socket for a dead
/// placeholder with `dup2` (`retire`), which releases the connection (FIN, port) while the
/// number stays reserved. So a `BorrowedFd` handed out through `AsFd` for as long as the
/// owner is borrowed really does stay open, and no call ever runs on a reused number.
pub(crate) struct NetFd {
    fd: RawFd,
    /// The lifetime word: closed bit, calls in flight, direction locks (`poll/fdmutex.rs`).
    mu: FdMutex,
    pub(crate) desc: Arc<PollDesc>,
    /// std's settings of this handle while it has no clone; see `settings`.
    own: Settings,
    /// The settings of a handle that has been cloned, shared with every clone, as std
    /// shares them through the socket and its open file: a later change on one handle
    /// reaches the others. Set once, by the first `try_clone` on either side.
    shared: OnceLock<Arc<Settings>>,
    /// The last stream read returned less than it was offered, so it emptied the socket's
    /// receive queue. With edge-triggered epoll any byte that arrives after that sets the
    /// read slot READY, so if `prepare` finds no READY the next read can park at once
    /// instead of paying for a `recv` that returns EAGAIN — one syscall less per request in
    /// a ping-pong server. Only touched under the read lock or by a read through `&mut`.
    ///
    /// "Short means empty" holds for TCP alone (`read_stream`'s callers decide), and there
    /// only until the peer hangs up (`PollDesc::is_hung_up`: an EOF or an error may wait
    /// behind the data just read, with no edge left to announce it) or sends urgent data,
    /// where a `recv` stops at the mark with more queued behind it (`PollDesc::saw_urgent`).
    ///
    /// The urgent check has no race, wherever the urgent data's EPOLLPRI event was
    /// harvested:
    /// - before the short read's `prepare`: the flag is set by now;
    /// - after it, before the next call's `prepare`: the netpoller also set the read slot
    ///   READY for it, after the flag, and that `prepare` returns it as `was_ready`;
    /// - not yet: it is still queued in epoll and will wake the reader parked; the kernel
    ///   re-polls the socket when it harvests the event, and the mark the short read
    ///   stopped at keeps EPOLLPRI up until a read passes it.
    ///
    /// The two flags' loads must not pass the Release store with which the last call's
    /// `take_ready` emptied the slot, or a netpoller that stored `hung_up` and then read the
    /// slot could miss both (loom finds that lost wake-up without a fence). The short
    /// read's `recv` between them orders them on every machine this runs on (the kernel's
    /// socket lock is a locked instruction on x86; on AArch64 an LDAR never passes an
    /// STLR), so no fence is paid; `the_syscall_fence` in `poll/desc/loom_tests.rs` is the
    /// model's statement of that assumption.
    drained: AtomicBool,
}

/// What std keeps in the socket or its open file, and so shares between clones.
#[derive(Default)]
struct Settings {
    /// std's per-call timeouts (`set_read_timeout`), in nanoseconds; 0 = none.
    rtimeout: AtomicU64,
    wtimeout: AtomicU64,
    /// std's `set_nonblocking(true)`: calls return `WouldBlock` instead of parking. The fd
    /// itself is always O_NONBLOCK.
    user_nonblocking: AtomicBool,
    /// The socket may have `SO_LINGER` on (set through one of the handles, or unknown:
    /// adopted from std or a raw fd, touched by a `control` hook, accepted from a listener
    /// that may linger), so releasing it may block; see `keep_if_lingering`. Kept here
    /// because the option lives in the socket too: a linger set through one clone is the
    /// other's as well.
    may_linger: AtomicBool,
    /// Someone other than this handle may reach the socket and change it behind our back:
    /// the number was handed out (`AsRawFd`/`AsFd`), a clone shares the open file (and may
    /// become a std socket, which turns blocking mode on), or it came from outside
    /// (adopted, or shown to a `control` hook). Until then coronet knows the open file is
    /// still O_NONBLOCK and a listener's options are still the ones it set, so `accept`
    /// asks neither (see `exposed`), and that this handle holds the only reference to the
    /// open file, so closing it takes it out of epoll (`poll::deregister`). Never cleared.
    exposed: AtomicBool,
    /// The user has held the number itself (`AsRawFd`/`AsFd`, adopted, or shown to a
    /// `control` hook), and may have made calls coronet never sees: above all a
    /// `recv(MSG_OOB)` that took urgent data before the netpoller saw its EPOLLPRI, after
    /// which EPOLLPRI is gone while every read still stops at the mark, with data behind
    /// it and no edge to come. So a short read proves nothing, and the drained read's
    /// shortcut is off (found by an audit of the read path: the next read sat until the
    /// peer's next packet). A `try_clone` alone does not set it: no coronet handle can read
    /// urgent data. Never cleared.
    raw: AtomicBool,
    /// The wait records of every handle sharing these settings (this handle and its
    /// clones; empty until the first `try_clone`), for a `shutdown` through one of them to
    /// wake a call blocked on another (`kick_all`). Not copied by `copy`.
    handles: Mutex<Vec<Weak<PollDesc>>>,
}

impl Settings {
    fn copy(&self) -> Settings {
        let s = Settings::default();
        s.rtimeout
            .store(self.rtimeout.load(Ordering::Relaxed), Ordering::Relaxed);
        s.wtimeout
            .store(self.wtimeout.load(Ordering::Relaxed), Ordering::Relaxed);
        let nonblocking = self.user_nonblocking.load(Ordering::Relaxed);
        s.user_nonblocking.store(nonblocking, Ordering::Relaxed);
        let linger = self.may_linger.load(Ordering::Relaxed);
        s.may_linger.store(linger, Ordering::Relaxed);
        let exposed = self.exposed.load(Ordering::Relaxed);
        s.exposed.store(exposed, Ordering::Relaxed);
        let raw = self.raw.load(Ordering::Relaxed);
        s.raw.store(raw, Ordering::Relaxed);
        s
    }
}

/// `write_paced`'s first pause and its cap (the timers' resolution is a millisecond).
const PAUSE_FIRST: Duration = Duration::from_millis(1);
const PAUSE_MAX: Duration = Duration::from_millis(8);

/// Held by every change of settings and by the clone that shares them: otherwise a change
/// made on a handle while its first clone copies its own settings into the shared ones
/// could land in the old place after the copy. Both are rare; the calls only read.
static SETTING: Mutex<()> = Mutex::new(());

fn setting() -> MutexGuard<'static, ()> {
    SETTING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A reference held for the duration of one call.
pub(crate) struct Ref<'a>(&'a NetFd);

impl Drop for Ref<'_> {
    fn drop(&mut self) {
        // (true for the last call out after `close`, which has released the socket already)
        self.0.mu.decref();
    }
}

impl Ref<'_> {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd is open while any `Ref` lives (see `NetFd` invariant).
        unsafe { BorrowedFd::borrow_raw(self.0.fd) }
    }
}

/// A direction lock and a reference, held for the duration of one call (or of several,
/// through [`NetFd::hold`]); both go in one atomic step when it drops.
pub(crate) struct Locked<'a> {
    fd: &'a NetFd,
    dir: Dir,
}

impl Locked<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd is open while any call holds a reference (see `NetFd` invariant).
        unsafe { BorrowedFd::borrow_raw(self.fd.fd) }
    }

    /// One call (beats 2 to 5) under the lock held since [`NetFd::hold`].
    pub(crate) fn io<R>(&self, op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>) -> io::Result<R> {
        let call = self.fd.call_deadline(self.dir);
        self.fd
            .io_locked::<R, false>(self.fd(), self.dir, call, op, |_| false)
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.fd.mu.rwunlock(self.dir);
    }
}

impl NetFd {
    /// Takes ownership of a nonblocking fd.
    pub(crate) fn new(fd: OwnedFd) -> NetFd {
        // while fds are to be had: `close` needs it later (after the first, one load)
        let _ = placeholder();
        NetFd {
            fd: fd.into_raw_fd(),
            mu: FdMutex::new(),
            desc: PollDesc::new(),
            own: Settings::default(),
            shared: OnceLock::new(),
            drained: AtomicBool::new(false),
        }
    }

    /// Makes a clone (`try_clone`, `self` new) share `from`'s std settings: the per-call
    /// timeouts and the user's nonblocking mode, which std keeps in the socket and its open
    /// file, so that a change on either handle — or on any other clone — reaches them all;
    /// and whether the socket may linger, which a `set_linger` on either handle changes for
    /// both.
    pub(crate) fn inherit(&self, from: &NetFd) {
        let _setting = setting();
        let shared = from.shared.get_or_init(|| Arc::new(from.own.copy()));
        // Either handle may now become a std socket and put the shared open file in
        // blocking mode.
        shared.exposed.store(true, Ordering::Relaxed);
        {
            let mut handles = shared
                .handles
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            handles.retain(|h| h.strong_count() > 0);
            let from_desc = Arc::downgrade(&from.desc);
            if !handles.iter().any(|h| h.ptr_eq(&from_desc)) {
                handles.push(from_desc);
            }
            handles.push(Arc::downgrade(&self.desc));
        }
        // `self` is new and not yet shared with anyone: the cell is empty.
        let _ = self.shared.set(shared.clone());
    }

    /// Records that the user has held the number itself (`Settings::raw`); it is exposed too.
    pub(crate) fn expose_raw(&self) {
        if !self.settings().raw.load(Ordering::Relaxed) {
            let _setting = setting();
            self.settings().raw.store(true, Ordering::Relaxed);
        }
        self.expose();
    }

    /// Records that someone else may reach the socket (`Settings::exposed`).
    pub(crate) fn expose(&self) {
        // The load keeps the common repeat (an `as_raw_fd` per call, say) off the lock.
        if !self.exposed() {
            let _setting = setting();
            self.settings().exposed.store(true, Ordering::Relaxed);
        }
    }

    /// Whether someone else may have changed the socket's open file or options since
    /// coronet made it: if not, it is still nonblocking (no `fcntl` needed before an
    /// `accept4`) and a listener still has the options coronet gave it.
    pub(crate) fn exposed(&self) -> bool {
        self.settings().exposed.load(Ordering::Relaxed)
    }

    /// Notes that `SO_LINGER` may be on: releasing the socket (through any clone) then
    /// checks it.
    pub(crate) fn set_may_linger(&self) {
        let _setting = setting();
        self.settings().may_linger.store(true, Ordering::Relaxed);
    }

    /// Whether `SO_LINGER` may be on: a listener's passes to the connections it accepts.
    pub(crate) fn may_linger(&self) -> bool {
        self.settings().may_linger.load(Ordering::Relaxed)
    }

    /// With `SO_LINGER` on and unsent data queued, the last close of a socket waits (up to
    /// the linger time) for the data to go, whatever O_NONBLOCK says, and so would the
    /// `dup2` of `retire`: on a worker that stalls every coroutine on it. So on a worker a
    /// lingering socket is kept open by a `dup`, returned here: the caller releases the
    /// number (no longer the socket's last reference, so at once) and only then gives the
    /// `dup` to [`close_elsewhere`], whose close is the last one. Elsewhere the close
    /// blocks the calling thread, as std's does. Sockets never marked `may_linger` skip the
    /// check (no syscall): marked are those whose linger was set through coronet, adopted
    /// from std or a raw fd, touched by a `control` hook, or accepted from a marked
    /// listener (Linux copies the listener's `SO_LINGER`).
    fn keep_if_lingering(&self) -> Option<OwnedFd> {
        if !self.may_linger() || crate::runtime::worker::worker_index().is_none() {
            return None;
        }
        // SAFETY: the number is open (invariant) for the duration of this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        if !matches!(crate::net::socket::linger(fd), Ok(Some(d)) if !d.is_zero()) {
            return None;
        }
        // On failure (no fd to spare) the close blocks, as it would without this.
        fd.try_clone_to_owned().ok()
    }

    /// This handle's std settings: its own until it is cloned, then those it shares.
    #[inline]
    fn settings(&self) -> &Settings {
        match self.shared.get() {
            Some(shared) => shared,
            None => &self.own,
        }
    }

    #[cfg(test)]
    pub(crate) fn raw(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.mu.is_closed()
    }

    /// Beat 1 without a lock: a reference for calls that need no direction (options,
    /// addresses, shutdown).
    pub(crate) fn incref(&self) -> io::Result<Ref<'_>> {
        self.mu.incref().map_err(|r| r.into_error())?;
        Ok(Ref(self))
    }

    /// Beat 1: the direction lock and a reference, in one step; waiting for the lock at most
    /// until `until`.
    fn lock(&self, dir: Dir, until: Option<Instant>) -> io::Result<Locked<'_>> {
        self.mu.rwlock(dir, until).map_err(|r| r.into_error())?;
        Ok(Locked { fd: self, dir })
    }

    /// Runs `f` with the fd borrowed, under a reference (no direction lock). Once CLOSED is
    /// set, `f`'s answer may be the placeholder's (a `dup` of it, its options), so it is
    /// refused: the call raced `close`, and counts as after it (module docs).
    pub(crate) fn with_fd<R>(
        &self,
        f: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        let r = self.incref()?;
        let answer = f(r.fd());
        if self.mu.is_closed() {
            return Err(Refused::Closed.into_error());
        }
        answer
    }

    pub(crate) fn read_with<R>(
        &self,
        op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        self.read_as::<R, false>(op)
    }

    /// `read_with` for a byte-stream read into `len` bytes of buffer at `buf`: a short read
    /// marks the socket drained (see the `drained` field). `len` must count only the buffer
    /// the syscall was given; `buf` is a hint for the scheduler, never read through. TCP
    /// only: never for datagrams, where a short read says nothing about the queue behind
    /// it, nor for Unix streams, where the kernel ends a read at a message carrying fds or
    /// other credentials with the next message still queued.
    /// `SOLE`: the caller holds its handle by `&mut` (module docs, *Calls through `&mut`*).
    #[inline]
    pub(crate) fn read_stream<const SOLE: bool>(
        &self,
        len: usize,
        buf: *const u8,
        op: impl FnMut(BorrowedFd<'_>) -> io::Result<usize>,
    ) -> io::Result<usize> {
        // a coroutine parked here has its buffer's page touched before its resume
        crate::runtime::worker::note_read_buf(buf);
        // 0 is EOF: nothing more will come, so no event either; never "drained".
        self.io::<usize, false, SOLE>(Dir::Read, op, |&n| n > 0 && n < len)
    }

    /// `read_with`, or with `SOLE` for a caller that holds its handle by `&mut`.
    #[inline]
    pub(crate) fn read_as<R, const SOLE: bool>(
        &self,
        op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        self.io::<R, false, SOLE>(Dir::Read, op, |_| false)
    }

    pub(crate) fn write_with<R>(
        &self,
        op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        self.write_as::<R, false>(op)
    }

    /// `write_with`, or with `SOLE` for a caller that holds its handle by `&mut`.
    #[inline]
    pub(crate) fn write_as<R, const SOLE: bool>(
        &self,
        op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        self.io::<R, false, SOLE>(Dir::Write, op, |_| false)
    }

    /// `write_with` for a send that EAGAIN may refuse with no event to come when it would
    /// succeed: a Unix datagram `send_to` to a receiver whose queue is full. The sender's
    /// socket stays writable (its own buffer is free), and each refused send frees its
    /// buffer and so raises a writable edge: waiting for edges retries in a busy loop.
    /// After the first wait, when a retry is refused again, this pauses instead for 1 ms,
    /// doubling to 8 ms (`PAUSE_FIRST`, `PAUSE_MAX`): a blocked sender costs a syscall
    /// every few milliseconds, and its datagram goes out at most one pause after room
    /// appears (std's blocking send sleeps in the kernel until then). Close, deadlines and
    /// std's timeout still end the pause at once.
    pub(crate) fn write_paced<R>(
        &self,
        op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        self.io::<R, true, false>(Dir::Write, op, |_| false)
    }

    /// Beat 1 alone, for a caller that makes several calls as one: `io::copy`'s `sendfile`
    /// holds the write lock from the first byte of a file to the last, as Go's `SendFile`
    /// does, so no other writer's message lands inside the file. Each [`Locked::io`] under it
    /// is one call of its own for deadlines, per-call timeouts and `close`.
    pub(crate) fn hold(&self, dir: Dir) -> io::Result<Locked<'_>> {
        self.lock(dir, self.call_deadline(dir))
    }

    /// The five beats. See the module comment. `drains` says whether a successful result
    /// emptied the receive queue. `PACED`: `write_paced`'s pauses, compiled out of every
    /// other call. `SOLE`: the caller holds its handle by `&mut`, so beat 1 is a look at the
    /// CLOSED bit instead of the lock (module docs, *Calls through `&mut`*).
    #[inline]
    fn io<R, const PACED: bool, const SOLE: bool>(
        &self,
        dir: Dir,
        op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
        drains: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        // 1. direction lock + reference (through `&mut`: only the CLOSED bit). std's
        // per-call timeout counts from here, the wait for the lock included: a std call
        // blocked behind another times out on its own.
        let call = self.call_deadline(dir);
        let r = if SOLE {
            if self.mu.is_closed() {
                Err(Refused::Closed.into_error())
            } else {
                // SAFETY: the number stays open for the whole life of this `NetFd`
                // (invariant: only `Drop` closes it), which outlives this borrow of it.
                let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
                self.io_locked::<R, PACED>(fd, dir, call, op, drains)
            }
        } else {
            match self.lock(dir, call) {
                Ok(locked) => {
                    let r = self.io_locked::<R, PACED>(locked.fd(), dir, call, op, drains);
                    drop(locked);
                    r
                }
                Err(e) => Err(e),
            }
        };
        // After the lock is released: the yield may let another caller of this fd run.
        // Failures count too: a loop that retries a call failing at once (`accept` out of
        // fds, any call after `close`, `WouldBlock` in nonblocking mode) would otherwise
        // hold the worker for good (found by a newcomer's audit: `Builder::main`'s own
        // example's `continue` on an accept error froze its worker once fds ran out).
        crate::runtime::worker::spend_io_budget();
        r
    }

    /// Beats 2 to 5 on `fd` (this handle's number), under the direction lock for `dir` or
    /// with the handle held by `&mut`.
    #[inline]
    fn io_locked<R, const PACED: bool>(
        &self,
        fd: BorrowedFd<'_>,
        dir: Dir,
        call: Option<Instant>,
        mut op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
        drains: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        debug_assert_eq!(fd.as_raw_fd(), self.fd);
        // 2. closed? deadline passed? forget stale readiness
        let was_ready = self.desc.prepare(dir, call)?;
        // std's per-call timeout ran out in a wait: the syscall's last try (`last_try`)
        let mut timed_out: Option<io::Error> = None;
        // Skip straight to 5 when the last read drained the socket and no event has come
        // since. Every read-direction call consumes the mark (a peek or an accept that
        // found data must not leave it behind), and only a registered fd gets events, from
        // its own worker's poll; a plain thread gains nothing (poll(2) would cost the same
        // syscall) and a user in nonblocking mode must get a real answer. Not once the peer
        // has hung up or sent urgent data; why those two checks cannot race the netpoller,
        // and why no fence orders them, is told at the `drained` field. Nor once the user
        // has held the number (`Settings::raw`). (`wait_if_coroutine` checks the worker,
        // with the lookup it makes anyway.)
        if dir == Dir::Read && self.drained.load(Ordering::Relaxed) {
            self.drained.store(false, Ordering::Relaxed);
            let settings = self.settings();
            if !was_ready
                && !self.desc.is_hung_up()
                && !self.desc.saw_urgent()
                && !settings.user_nonblocking.load(Ordering::Relaxed)
                && !settings.raw.load(Ordering::Relaxed)
            {
                hot_trace!(
                    "fd {}: drained by the last read, waiting for an event before recv",
                    self.fd
                );
                if let Err(e) = self.desc.wait_if_coroutine(fd, dir, call) {
                    timed_out = Some(self.last_try(e, dir, call)?);
                }
            }
        }
        // `write_paced`'s next pause; None until its first wait
        let mut pause: Option<Duration> = None;
        loop {
            // 3. the syscall
            match op(fd) {
                // 4. EINTR: a signal interrupted the call; go again
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.settings().user_nonblocking.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                    if let Some(timeout) = timed_out {
                        return Err(timeout);
                    }
                    // 4. EAGAIN: park until the netpoller says ready, then 5. retry
                    let waited = match pause {
                        Some(p) if PACED => {
                            let r = self.desc.pause(fd, dir, call, Instant::now() + p);
                            pause = Some((p * 2).min(PAUSE_MAX));
                            r
                        }
                        _ => {
                            pause = Some(PAUSE_FIRST);
                            self.desc.wait(fd, dir, call)
                        }
                    };
                    if let Err(e) = waited {
                        timed_out = Some(self.last_try(e, dir, call)?);
                    }
                }
                // A read that raced `close` (on another thread: through `&mut` none can) may
                // have got the placeholder's end of file, or bytes the peer sent after
                // `close` returned, from a syscall that was inside the kernel with the
                // socket as `close` released it (found by a probe of the API). Go's `Close`
                // would have waited for it; coronet's cannot (module docs), so the read
                // counts as after it. A write's `Ok` is the socket's: the placeholder
                // takes no byte.
                Ok(_) if dir == Dir::Read && self.mu.is_closed() => {
                    return Err(Refused::Closed.into_error())
                }
                Ok(r) => {
                    if drains(&r) {
                        self.drained.store(true, Ordering::Relaxed);
                    }
                    return Ok(r);
                }
                // What a syscall on the placeholder says (`EPIPE`, `EINVAL`, `EISCONN`) once
                // `close` has released the socket under this call: the call was closed.
                Err(_) if self.mu.is_closed() => return Err(Refused::Closed.into_error()),
                r => return r,
            }
        }
    }

    /// After a wait of `io_locked` failed with `e`: `Err(e)` to fail the call, or, when the
    /// wait ran out std's per-call timeout (`call`) and not Go's deadline, `Ok(e)`: the
    /// syscall gets one last try, and the timeout is the answer only if that would block.
    /// std's timeout is the kernel's, which lets bytes that came in time win; here the
    /// timer could beat the netpoller to the coroutine, the wait then saw no readiness, and
    /// a read whose answer had arrived within microseconds timed out because its worker was
    /// busy for longer than the timeout (found by an audit porting the `memcache` crate: the
    /// unread answer then misled the next call). A passed deadline fails the call as it is,
    /// as in Go, whose `prepareRead` checks it before the syscall.
    ///
    /// Out of line: the echo path's waits end in readiness, and its frame stays as it was.
    #[cold]
    #[inline(never)]
    fn last_try(&self, e: io::Error, dir: Dir, call: Option<Instant>) -> io::Result<io::Error> {
        if e.kind() == io::ErrorKind::TimedOut
            && call.is_some()
            && self.desc.deadline(dir).map_or(true, |d| Instant::now() < d)
        {
            Ok(e)
        } else {
            Err(e)
        }
    }

    /// Waits (under the direction lock) until `dir` may be ready — for `connect`, which
    /// learns completion from writability. Spurious returns are possible; the caller checks.
    pub(crate) fn wait_ready(&self, dir: Dir, call: Option<Instant>) -> io::Result<()> {
        let locked = self.lock(dir, call)?;
        self.desc.check(dir, call)?;
        self.desc.wait(locked.fd(), dir, call)
    }

    fn call_deadline(&self, dir: Dir) -> Option<Instant> {
        self.timeout(dir).map(|t| Instant::now() + t)
    }

    /// std's per-call timeout for `dir` (`set_read_timeout` / `set_write_timeout`).
    pub(crate) fn set_timeout(&self, dir: Dir, t: Option<Duration>) {
        let nanos = t.map_or(0, |t| t.as_nanos().clamp(1, u64::MAX as u128) as u64);
        let _setting = setting();
        self.timeout_word(dir).store(nanos, Ordering::Relaxed);
    }

    pub(crate) fn timeout(&self, dir: Dir) -> Option<Duration> {
        match self.timeout_word(dir).load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    fn timeout_word(&self, dir: Dir) -> &AtomicU64 {
        let settings = self.settings();
        match dir {
            Dir::Read => &settings.rtimeout,
            Dir::Write => &settings.wtimeout,
        }
    }

    /// Go's absolute deadline; also hits a call already blocked.
    pub(crate) fn set_deadline(&self, dir: Dir, d: Option<Instant>) -> io::Result<()> {
        let _r = self.incref()?;
        self.desc.set_deadline(dir, d);
        Ok(())
    }

    pub(crate) fn set_user_nonblocking(&self, on: bool) -> io::Result<()> {
        let _r = self.incref()?;
        let _setting = setting();
        self.settings()
            .user_nonblocking
            .store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Wakes a call blocked in `dir` as if the netpoller had seen it ready: it retries its
    /// syscall (and parks again if that still says EAGAIN). For a change the kernel does
    /// not report as an event, such as a Unix socket's own write side shut down.
    pub(crate) fn kick(&self, dir: Dir) {
        if let Some(t) = self.desc.ready(dir) {
            t.unpark();
        }
    }

    /// `kick` on this handle and on every clone of it (`try_clone`), which shares the
    /// socket but waits on a record of its own: a `shutdown` through one handle must wake
    /// a send blocked on another, as it wakes std's (found by an audit: a writer blocked on
    /// a clone stayed parked after the original's `shutdown(Write)`). A std `dup` or a raw
    /// fd's shutdown is beyond coronet's sight.
    pub(crate) fn kick_all(&self, dir: Dir) {
        self.kick(dir);
        let Some(shared) = self.shared.get() else {
            return;
        };
        let others: Vec<Arc<PollDesc>> = shared
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|d| !Arc::ptr_eq(d, &self.desc))
            .collect();
        for desc in others {
            if let Some(t) = desc.ready(dir) {
                t.unpark();
            }
        }
    }

    /// std's nonblocking mode, as last set on this handle or a clone of it.
    pub(crate) fn user_nonblocking(&self) -> bool {
        self.settings().user_nonblocking.load(Ordering::Relaxed)
    }

    /// Go's `Close`: later calls fail, blocked calls return at once with the closed error,
    /// and the socket is released before `close` returns, so the peer sees the end and the
    /// address can be bound again. Releasing it only with the last call out, as Go does,
    /// left it open after `close` under the calls it had woken until they ran: a `bind` of
    /// the same address failed with "address already in use", and a closed listener still
    /// completed handshakes (found by probing the API). Waiting for them, as Go's `Close`
    /// does, hung (module docs). Waits only for the plain threads it woke to leave
    /// `poll(2)`, which takes their CPU time and nothing else: spins and yields, or a park
    /// if one takes over 10 ms, running a signal handler (`PollDesc::threads_out`).
    ///
    /// The calls it wakes are woken after the release, so none returns to find the socket
    /// still open (woken first, a coroutine on another worker or a thread could, and 2–4 in
    /// 1,500 rebinds of the address right after a woken `accept` failed; Go's woken call
    /// drops the last reference itself, and 1 in 1,500 failed there). A thread still in
    /// `poll(2)` holds the socket until it is woken and leaves, and then drops it itself.
    ///
    /// # Errors
    ///
    /// "use of closed network connection" if already closed.
    pub(crate) fn close(&self) -> io::Result<()> {
        // sets CLOSED with a reference of our own; the lock waiters wake when it drops
        let lock_waiters = self.mu.close().map_err(|r| r.into_error())?;
        rt_log!(
            Trace,
            "close fd {}: releasing the socket, unblocking waiters",
            self.fd
        );
        // wakes the slots' waiters once released, and waits for threads to leave poll(2)
        self.desc.unblock_after(|| self.retire());
        drop(lock_waiters);
        self.mu.decref();
        Ok(())
    }

    /// `close`'s release, once (only the one `close` that set CLOSED gets here): forget the
    /// epoll registration and release the socket, keeping the number.
    fn retire(&self) {
        #[cfg(test)]
        tests::before_release(self.fd);
        let keep = self.keep_if_lingering();
        let p = placeholder();
        // The dup2 below drops our reference to the socket: the last one, unless kept or
        // exposed. Without a placeholder the socket stays open (shut down) until drop, so
        // its entry is deleted now, or its hang-up would still wake the worker.
        // (Calls in flight may hold the open file a moment longer, inside a syscall: the
        // entry goes with their last reference, and its events meanwhile are stale.)
        let last = keep.is_none() && !self.exposed() && p.is_some();
        // Against `PollDesc::register_slow` racing this: `closing` (stored by `unblock`) and
        // the registration, each stored before the other is loaded.
        std::sync::atomic::fence(Ordering::SeqCst);
        super::deregister(&self.desc, self.fd, last);
        match p {
            // SAFETY: `fd` is our open number (invariant) and `p` a valid open fd; dup2
            // atomically makes `fd` refer to the placeholder and drops our reference to the
            // socket, so the number is never free for another open to take.
            Some(p) => {
                if unsafe { libc::dup2(p, self.fd) } < 0 {
                    // EBUSY/EINTR: the socket stays open until drop, still in epoll (its
                    // events carry a sequence `poll` no longer knows, and are dropped)
                    self.shutdown_both();
                }
            }
            None => self.shutdown_both(),
        }
        close_elsewhere(keep);
    }

    /// Fallback when no placeholder fd can be had: at least end the connection now.
    fn shutdown_both(&self) {
        // SAFETY: `fd` is open (invariant). Errors (ENOTCONN for a listener) are ignored:
        // the socket is released at drop at the latest.
        let _ = unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
    }

    /// Gives the fd away without closing it (for `IntoRawFd`).
    pub(crate) fn into_raw(mut self) -> RawFd {
        // Clones left behind share the open file with whatever the number becomes (a raw
        // fd, a std socket): their settings learn that it is in the user's hands.
        self.expose_raw();
        super::deregister(&self.desc, self.fd, false);
        // No references can exist (we own `self`). GIVEN_AWAY tells Drop to leave the number
        // open; the rest of the value (the PollDesc, the lock semaphores) is freed as usual.
        std::mem::replace(&mut self.fd, GIVEN_AWAY)
    }
}

/// Closes a lingering socket's last reference (`NetFd::keep_if_lingering`) on the blocking
/// pool, where its wait for the unsent data stalls no coroutine.
fn close_elsewhere(keep: Option<OwnedFd>) {
    if let Some(keep) = keep {
        rt_log!(
            Debug,
            "fd {}: lingering close handed to the blocking pool",
            keep.as_raw_fd()
        );
        crate::runtime::blocking::detach(move || drop(keep));
    }
}

/// What `into_raw` leaves in `NetFd::fd`: the number now belongs to the caller.
const GIVEN_AWAY: RawFd = -1;

impl Drop for NetFd {
    fn drop(&mut self) {
        if self.fd == GIVEN_AWAY {
            return;
        }
        // `&mut self`: no call is in flight, so no one can be parked on us either.
        let mut keep = None;
        if !self.is_closed() {
            self.mu.set_closed_mut();
            // (a closed one was retired: its number now holds the placeholder)
            keep = self.keep_if_lingering();
            super::deregister(&self.desc, self.fd, keep.is_none() && !self.exposed());
        }
        // SAFETY: we own the number (invariant) and this is the one place it is closed.
        // The result is ignored: on Linux the fd is released even when close reports an
        // error, so there is nothing to retry (std ignores it in Drop too).
        let _ = unsafe { libc::close(self.fd) };
        close_elsewhere(keep);
    }
}

/// A socket whose connection is over and cannot be made again: what a closed `NetFd`'s
/// number points at until the value is dropped. One end of a Unix socket pair whose other
/// end is closed: a read says end of file, a write `EPIPE`, `accept` and `listen` `EINVAL`,
/// a `connect` `EISCONN`, `poll(2)` HUP — all at once, blocking mode or not. One is shared
/// by every closed number of the process, so nothing done through one of them may change
/// how it answers the others (an option set on it changes nothing of that): calls racing
/// `close` can reach it (`NetFd::io_locked`), and so can
/// a user given the number after `close` (`AsRawFd`, conversion to std). A socket that was
/// merely unconnected could be connected by a racing `UnixDatagram::connect`, and then
/// every closed socket sent to, and read from, a stranger (found by a probe of the API);
/// it was in blocking mode, too, so such a connect could block a worker for good.
///
/// Made with the first `NetFd`, while the process evidently has fds to spare, and made
/// again later if that failed: a failure is never kept (found by the fifth audit: one
/// close under EMFILE made every later close of the process fall back to `shutdown`,
/// which keeps the socket and its port until the drop).
fn placeholder() -> Option<RawFd> {
    static DEAD: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    if let Some(fd) = DEAD.get() {
        return Some(fd.as_raw_fd());
    }
    let mut pair = [-1; 2];
    let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: socketpair writes two fds into the live two-element array it is given.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, pair.as_mut_ptr()) } < 0 {
        return None;
    }
    // SAFETY: both just created and owned by nobody else. The peer goes at once, which
    // leaves its end hung up for good; a racing thread's pair may win the cell, and ours
    // is then closed here.
    let (dead, peer) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    drop(peer);
    Some(DEAD.get_or_init(|| dead).as_raw_fd())
}

impl AsRawFd for NetFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::{AsFd, FromRawFd};
    use std::os::unix::net::UnixStream;

    fn pair() -> (NetFd, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (NetFd::new(OwnedFd::from(a)), b)
    }

    fn read(fd: &NetFd, buf: &mut [u8]) -> io::Result<usize> {
        fd.read_with(|f| {
            // SAFETY: `buf` is valid for writes of its length; `f` is open.
            let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }

    fn fd_is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD on any number is harmless; EBADF means closed.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    /// `read_stream` into `buf`, counting the syscalls it makes; `SOLE` as through `&mut`.
    fn counted_read<const SOLE: bool>(
        fd: &NetFd,
        buf: &mut [u8],
        calls: &mut u32,
    ) -> io::Result<usize> {
        counted_read_then::<SOLE>(fd, buf, calls, |_| {})
    }

    /// `counted_read`, calling `then` with the count after each syscall.
    fn counted_read_then<const SOLE: bool>(
        fd: &NetFd,
        buf: &mut [u8],
        calls: &mut u32,
        mut then: impl FnMut(u32),
    ) -> io::Result<usize> {
        let len = buf.len();
        fd.read_stream::<SOLE>(len, buf.as_ptr(), |f| {
            *calls += 1;
            // SAFETY: `buf` is valid for writes of its length; `f` is open.
            let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            // errno first: `then` may make syscalls of its own
            let r = if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            };
            then(*calls);
            r
        })
    }

    fn write_later(
        mut peer: UnixStream,
        bytes: &'static [u8],
    ) -> std::thread::JoinHandle<UnixStream> {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            peer.write_all(bytes).unwrap();
            peer
        })
    }

    #[test]
    fn read_after_a_short_read_parks_without_a_syscall_and_still_gets_data() {
        short_read_then_park::<false>();
    }

    /// The same through `&mut` (std's `Read` for an owned stream), which takes no lock.
    #[test]
    fn read_through_mut_after_a_short_read_parks_without_a_syscall_too() {
        short_read_then_park::<true>();
    }

    fn short_read_then_park<const SOLE: bool>() {
        let counted_read = counted_read::<SOLE>;
        crate::run(move || {
            let (fd, peer) = pair();
            // A deadline turns a lost wake-up into a failure instead of a hang.
            fd.set_deadline(Dir::Read, Some(Instant::now() + Duration::from_secs(10)))
                .unwrap();
            let mut buf = [0u8; 16];
            // 1. nothing there: EAGAIN, park (registers the fd), data, a short read. The
            // data is sent once the first read has come back empty, however slow this
            // thread is (valgrind runs these tests).
            let mut calls = 0;
            let (first_done, wait_first) = std::sync::mpsc::channel::<()>();
            let writer = std::thread::spawn(move || {
                let mut peer = peer;
                wait_first.recv().unwrap();
                peer.write_all(b"abc").unwrap();
                peer
            });
            let first = |n| {
                if n == 1 {
                    first_done.send(()).unwrap();
                }
            };
            let n = counted_read_then::<SOLE>(&fd, &mut buf, &mut calls, first).unwrap();
            assert_eq!(n, 3);
            assert_eq!(calls, 2, "EAGAIN, then the read after the wake-up");
            let peer = write_later(writer.join().unwrap(), b"de");
            let mut calls = 0;
            assert_eq!(counted_read(&fd, &mut buf, &mut calls).unwrap(), 2);
            assert_eq!(&buf[..2], b"de");
            // 2. the socket was drained and registered: park first, one syscall only
            assert_eq!(calls, 1, "drained read should skip the EAGAIN recv");
            // 3. a full read is not a drain: the next read tries the syscall first
            let mut peer = peer.join().unwrap();
            peer.write_all(&[7; 20]).unwrap();
            let mut calls = 0;
            assert_eq!(counted_read(&fd, &mut buf, &mut calls).unwrap(), 16);
            assert_eq!(counted_read(&fd, &mut buf, &mut calls).unwrap(), 4);
            assert_eq!(calls, 2);
            // 4. a read-direction call that is not a stream read (a peek) clears the mark,
            //    so data it saw but left behind is still read without waiting for an event
            let peer = write_later(peer, b"xyz").join().unwrap();
            std::thread::sleep(Duration::from_millis(30)); // let the event land as READY
            let mut peeked = [0u8; 8];
            let n = fd
                .read_with(|f| {
                    // SAFETY: `peeked` is valid for writes of its length; `f` is open.
                    let n = unsafe {
                        libc::recv(f.as_raw_fd(), peeked.as_mut_ptr().cast(), 8, libc::MSG_PEEK)
                    };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(n as usize)
                    }
                })
                .unwrap();
            assert_eq!(&peeked[..n], b"xyz");
            let mut calls = 0;
            assert_eq!(counted_read(&fd, &mut buf, &mut calls).unwrap(), 3);
            assert_eq!(calls, 1);
            drop(peer);
            // 5. EOF is not a drain: reading again returns 0 at once
            assert_eq!(counted_read(&fd, &mut buf, &mut calls).unwrap(), 0);
            assert_eq!(counted_read(&fd, &mut buf, &mut calls).unwrap(), 0);
        });
    }

    /// Regression: data and the peer's FIN arriving in one wake-up. The short read that
    /// takes the data leaves the EOF behind it with no edge to come, so the next read must
    /// run the syscall instead of parking (it used to park until the deadline).
    #[test]
    fn eof_behind_a_short_read_is_not_waited_for() {
        crate::run(|| {
            let (fd, mut peer) = pair();
            fd.set_deadline(Dir::Read, Some(Instant::now() + Duration::from_secs(10)))
                .unwrap();
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                peer.write_all(b"abc").unwrap();
                peer.shutdown(std::net::Shutdown::Write).unwrap();
                peer
            });
            let mut buf = [0u8; 16];
            let mut calls = 0;
            // parks first (registering the fd); the wake-up may find the data alone or
            // the data and the FIN together — either way the EOF must come without waiting
            let mut got = counted_read::<false>(&fd, &mut buf, &mut calls).unwrap();
            let _peer = writer.join().unwrap();
            std::thread::sleep(Duration::from_millis(30)); // the FIN is queued by now
            while got > 0 {
                got = counted_read::<false>(&fd, &mut buf, &mut calls).unwrap();
            }
            assert!(fd.desc.is_hung_up(), "the netpoller saw the hang-up");
        });
    }

    #[test]
    fn thread_read_blocks_until_data() {
        let (fd, mut peer) = pair();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            peer.write_all(b"hello").unwrap();
            peer
        });
        let mut buf = [0u8; 16];
        assert_eq!(read(&fd, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        drop(t.join().unwrap());
        assert_eq!(read(&fd, &mut buf).unwrap(), 0, "EOF is Ok(0)");
    }

    /// The fd whose release `retire` holds up for `SLOW_RELEASE`, -1 for none: a close
    /// slow to release, to see that what it wakes waits for the release.
    static SLOW_RELEASE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
    const SLOW_RELEASE: Duration = Duration::from_millis(300);

    pub(super) fn before_release(fd: RawFd) {
        if SLOW_RELEASE_FD.load(Ordering::SeqCst) == fd {
            std::thread::sleep(SLOW_RELEASE);
        }
    }

    /// A call woken by `close` returns after the socket is released, so the address it
    /// held can be bound the moment it returns: here by an `accept` parked in the slot (a
    /// coroutine, on a worker of its own), one blocked in `poll(2)` (a plain thread), and
    /// one waiting behind another for the direction's lock, each woken by a `close` whose
    /// release is held up for 300 ms. Woken before the release, as they were, each bind
    /// failed with "address already in use" (2–4 in 1,500 without the hold-up).
    #[test]
    fn a_call_woken_by_close_finds_the_socket_released() {
        use crate::net::TcpListener;
        use std::os::fd::AsRawFd;
        // (coroutines, threads) blocked in accept
        for (coroutines, threads) in [(1, 0), (0, 1), (2, 0), (1, 1), (0, 2)] {
            let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = l.local_addr().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let one_at_a_time = Arc::new(std::sync::Mutex::new(()));
            let accept_then_bind = {
                let l = l.clone();
                move || {
                    let e = l.accept().unwrap_err();
                    assert!(crate::net::error::is_closed(&e), "{e}");
                    // bound and dropped at once, one caller at a time, so each can bind it
                    let _turn = one_at_a_time.lock().unwrap();
                    tx.send(TcpListener::bind(addr).map(drop)).unwrap();
                }
            };
            let mut handles = Vec::new();
            for _ in 0..coroutines {
                let f = accept_then_bind.clone();
                handles.push(crate::go(f));
            }
            let ts: Vec<_> = (0..threads)
                .map(|_| std::thread::spawn(accept_then_bind.clone()))
                .collect();
            drop(accept_then_bind);
            // Every caller parked or polling: no lock waiters and slot waiters to tell apart
            // from outside, so give them time (a late one fails as closed all the same).
            std::thread::sleep(Duration::from_millis(100));
            SLOW_RELEASE_FD.store(l.as_raw_fd(), Ordering::SeqCst);
            l.close().unwrap();
            SLOW_RELEASE_FD.store(-1, Ordering::SeqCst);
            for _ in 0..coroutines + threads {
                let bound = rx.recv_timeout(Duration::from_secs(30)).unwrap();
                assert!(
                    bound.is_ok(),
                    "{coroutines} coroutine(s), {threads} thread(s): {bound:?}"
                );
            }
            for h in handles {
                h.join().unwrap();
            }
            for t in ts {
                t.join().unwrap();
            }
        }
    }

    #[test]
    fn close_unblocks_a_blocked_thread_and_defers_the_real_close() {
        let (fd, _peer) = pair();
        let fd = Arc::new(fd);
        let raw = fd.raw();
        let f2 = fd.clone();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            read(&f2, &mut buf)
        });
        std::thread::sleep(Duration::from_millis(50));
        fd.close().unwrap();
        let err = t.join().unwrap().unwrap_err();
        assert!(crate::net::error::is_closed(&err), "{err}");
        assert!(fd.is_closed());
        assert!(crate::net::error::is_closed(&fd.close().unwrap_err()));
        let mut buf = [0u8; 4];
        assert!(crate::net::error::is_closed(
            &read(&fd, &mut buf).unwrap_err()
        ));
        // SAFETY: F_GETFD only reads the descriptor flags of a number; no memory is involved.
        let open = unsafe { libc::fcntl(raw, libc::F_GETFD) };
        assert!(open >= 0, "the number stays reserved while the NetFd lives");
    }

    /// A read through `&mut` leaves the lifetime word alone while it waits (no lock, no
    /// reference: nothing else can reach the handle), where a shared read holds both. The
    /// watcher here shares the `NetFd` only to look; in the crate, a `SOLE` call comes from
    /// `&mut` alone. A read on a closed handle still fails as closed.
    #[test]
    fn a_read_through_mut_takes_no_lock() {
        for sole in [false, true] {
            let (fd, mut peer) = pair();
            let fd = Arc::new(fd);
            let watched = fd.clone();
            let watcher = std::thread::spawn(move || {
                // Once the reader is in the slot it is past beat 1 and waits for data.
                let until = Instant::now() + Duration::from_secs(30);
                while !watched.desc.has_waiter(Dir::Read) {
                    assert!(Instant::now() < until, "the read never blocked");
                    std::thread::sleep(Duration::from_millis(1));
                }
                let seen = (watched.mu.locked(Dir::Read), watched.mu.refs());
                peer.write_all(b"hi").unwrap();
                (seen, peer)
            });
            let mut buf = [0u8; 8];
            let mut calls = 0;
            let n = if sole {
                counted_read::<true>(&fd, &mut buf, &mut calls)
            } else {
                counted_read::<false>(&fd, &mut buf, &mut calls)
            };
            assert_eq!(n.unwrap(), 2);
            let (seen, _peer) = watcher.join().unwrap();
            let want = if sole { (false, 0) } else { (true, 1) };
            assert_eq!(
                seen, want,
                "(read lock held, references) while blocked, sole {sole}"
            );
            assert_eq!((fd.mu.locked(Dir::Read), fd.mu.refs()), (false, 0));
            fd.close().unwrap();
            let err = counted_read::<true>(&fd, &mut buf, &mut calls).unwrap_err();
            assert!(crate::net::error::is_closed(&err), "{err}");
        }
    }

    /// Whether `raw` still refers to the socket pair's end (its peer sees no EOF).
    fn peer_sees_eof(peer: &mut UnixStream) -> bool {
        peer.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 1];
        matches!(peer.read(&mut b), Ok(0))
    }

    /// `close` releases the socket under a call in flight, and returns without waiting for
    /// it (waiting hung: module docs); the number stays reserved, on the placeholder.
    #[test]
    fn close_releases_the_socket_under_a_call_in_flight_and_the_number_lives_on() {
        let (fd, mut peer) = pair();
        let raw = fd.raw();
        let r = fd.incref().unwrap();
        fd.close().unwrap();
        assert!(
            peer_sees_eof(&mut peer),
            "close returned before the release"
        );
        assert!(fd.incref().is_err());
        assert!(fd_is_open(raw), "the number stays reserved until drop");
        // What the call in flight finds under the number now: the placeholder, whose
        // connection is over.
        let mut b = [0u8; 1];
        assert_eq!(crate::net::socket::recv(r.fd(), &mut b, 0).unwrap(), 0);
        drop(r);
        assert_eq!(fd.mu.refs(), 0);
    }

    /// Nothing done through one closed number changes the placeholder that every closed
    /// number shares: a probe connected it with a `connect` racing `close` (and then every
    /// closed socket talked to a stranger), and it was in blocking mode.
    #[test]
    fn the_placeholder_cannot_be_connected_listened_on_or_blocked_on() {
        let (fd, _peer) = pair();
        let raw = fd.raw();
        fd.close().unwrap();
        let dir = std::env::temp_dir().join(format!("coronet-placeholder-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let listener = std::os::unix::net::UnixListener::bind(&dir).unwrap();
        let addr = crate::net::socket::SockAddr::from_unix_path(&dir).unwrap();
        // SAFETY: the number stays open until `fd` drops (the `NetFd` invariant).
        let b = unsafe { BorrowedFd::borrow_raw(raw) };
        let e = crate::net::socket::connect(b, &addr).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EISCONN), "{e}");
        // SAFETY: listen(2) on an open number; no memory is involved.
        assert_eq!(unsafe { libc::listen(raw, 1) }, -1);
        listener.set_nonblocking(true).unwrap();
        assert!(
            listener.accept().is_err(),
            "the placeholder reached the listener"
        );
        // blocking mode does not make it wait: reads end, writes fail, at once
        crate::net::socket::set_nonblocking(b, false).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(crate::net::socket::recv(b, &mut buf, 0).unwrap(), 0);
        let e = crate::net::socket::send(b, b"x", libc::MSG_NOSIGNAL).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE), "{e}");
        // the placeholder is the process's: back as it was made, for the other tests
        crate::net::socket::set_nonblocking(b, true).unwrap();
        let _ = std::fs::remove_file(&dir);
    }

    /// A call that raced `close` and made its syscall on the placeholder reports the closed
    /// error, never the placeholder's answer: `close` runs here between the call's checks
    /// and its syscall (as a logger called from inside the call could).
    #[test]
    fn a_syscall_that_meets_the_placeholder_reports_closed() {
        // A read: the placeholder's end of file (a datagram receive read it as an empty
        // datagram nobody sent, found by a probe of the API).
        let (fd, _peer) = pair();
        let mut buf = [0u8; 4];
        let e = fd
            .read_with(|b| {
                fd.close().unwrap();
                crate::net::socket::recv(b, &mut buf, 0)
            })
            .unwrap_err();
        assert!(crate::net::error::is_closed(&e), "{e}");
        // A write: the placeholder's `EPIPE`.
        let (fd, _peer) = pair();
        let e = fd
            .write_with(|b| {
                fd.close().unwrap();
                crate::net::socket::send(b, b"x", libc::MSG_NOSIGNAL)
            })
            .unwrap_err();
        assert!(crate::net::error::is_closed(&e), "{e}");
        // A read whose syscall was inside the kernel with the socket itself while `close`
        // released it (here: through a dup made before), and got what the peer sent after
        // `close` returned: refused too.
        let (fd, mut peer) = pair();
        // SAFETY: the number is open (the `NetFd` invariant) for this borrow.
        let socket = unsafe { BorrowedFd::borrow_raw(fd.raw()) }
            .try_clone_to_owned()
            .unwrap();
        let e = fd
            .read_with(|_| {
                fd.close().unwrap();
                peer.write_all(b"late").unwrap();
                crate::net::socket::recv(socket.as_fd(), &mut buf, 0)
            })
            .unwrap_err();
        assert!(crate::net::error::is_closed(&e), "{e}");
        // An answer that is no failure, too: a dup of the number is the placeholder's.
        let (fd, _peer) = pair();
        let e = fd
            .with_fd(|b| {
                fd.close().unwrap();
                b.try_clone_to_owned()
            })
            .unwrap_err();
        assert!(crate::net::error::is_closed(&e), "{e}");
        assert_eq!((fd.mu.refs(), fd.mu.locked(Dir::Read)), (0, false));
    }

    #[test]
    fn deadline_set_from_another_thread_wakes_a_blocked_read() {
        let (fd, _peer) = pair();
        let fd = Arc::new(fd);
        let f2 = fd.clone();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            read(&f2, &mut buf)
        });
        std::thread::sleep(Duration::from_millis(50));
        fd.set_deadline(Dir::Read, Some(Instant::now())).unwrap();
        let err = t.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // a passed deadline fails at once, even with data available
        let mut buf = [0u8; 4];
        assert_eq!(
            read(&fd, &mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    }

    #[test]
    fn per_call_timeout_and_user_nonblocking() {
        let (fd, _peer) = pair();
        fd.set_timeout(Dir::Read, Some(Duration::from_millis(20)));
        let mut buf = [0u8; 4];
        let start = Instant::now();
        assert_eq!(
            read(&fd, &mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
        fd.set_timeout(Dir::Read, None);
        fd.set_user_nonblocking(true).unwrap();
        assert_eq!(
            read(&fd, &mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn into_raw_gives_the_fd_away_open() {
        let (fd, _peer) = pair();
        let raw = fd.into_raw();
        assert!(fd_is_open(raw));
        // SAFETY: `into_raw` handed us ownership of `raw`.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
        let _ = UnixStream::pair().unwrap().0.as_fd();
    }

    /// Issue 6 (found by valgrind): `into_raw` used `mem::forget`, leaking the PollDesc.
    #[test]
    fn issue_6_into_raw_frees_the_poll_desc() {
        let (fd, _peer) = pair();
        let desc = Arc::downgrade(&fd.desc);
        let raw = fd.into_raw();
        assert!(desc.upgrade().is_none(), "into_raw leaked the PollDesc");
        // SAFETY: `into_raw` handed us ownership of `raw`.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
    }

    #[test]
    fn readers_serialise_a_reader_and_writer_do_not() {
        let (fd, mut peer) = pair();
        let fd = Arc::new(fd);
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let f = fd.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1];
                    read(&f, &mut buf).unwrap()
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        // a write on the same fd is not blocked by the parked readers
        fd.write_with(|f| {
            // SAFETY: valid buffer, open fd.
            let n = unsafe { libc::write(f.as_raw_fd(), b"x".as_ptr().cast(), 1) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n)
            }
        })
        .unwrap();
        let mut one = [0u8; 1];
        peer.read_exact(&mut one).unwrap();
        peer.write_all(b"abcd").unwrap();
        let total: usize = readers.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 4);
    }
}
