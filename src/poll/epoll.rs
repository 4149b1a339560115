//! The only file that speaks epoll and eventfd: tiny safe wrappers returning `io::Result`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Readiness flags every fd is registered with, once, for its whole life: both directions,
/// peer hang-up, TCP urgent data, edge-triggered. Edge-triggered means one event per change,
/// so an fd with no waiter costs nothing, and a waiter may park again only once it knows the
/// socket drained: the I/O loop in `poll/fd.rs` reads to EAGAIN, or to a short stream read,
/// which empties the queue too (the drained-read shortcut). `EPOLLPRI` is there for that
/// shortcut (`PollDesc::saw_urgent`); only TCP reports it among sockets.
pub(crate) const INTEREST: u32 =
    (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET) as u32;

/// Interest for an eventfd doorbell: readable only (an eventfd is always writable, and
/// EPOLLOUT would report that once at registration for nothing).
pub(crate) const DOORBELL: u32 = (libc::EPOLLIN | libc::EPOLLET) as u32;

/// Whether `events` say the peer hung up or the socket has an error.
pub(crate) fn hangup(events: u32) -> bool {
    events as i32 & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0
}

/// Whether `events` say TCP urgent data is pending (see `PollDesc::saw_urgent`).
pub(crate) fn urgent(events: u32) -> bool {
    events as i32 & libc::EPOLLPRI != 0
}

/// Which directions an event makes ready. Errors and hang-ups wake both, so the waiter's
/// next syscall reports them (Go does the same). Urgent data alone wakes the reader: at
/// worst its `recv` skips the urgent byte, finds nothing and parks again.
pub(crate) fn directions(events: u32) -> (bool, bool) {
    let e = events as i32;
    let err = e & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
    let read = err || e & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) != 0;
    let write = err || e & libc::EPOLLOUT != 0;
    (read, write)
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An epoll instance.
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd we own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub(crate) fn add(&self, fd: BorrowedFd<'_>, token: u64, interest: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: interest,
            u64: token,
        };
        // SAFETY: both fds are open (borrowed/owned), `ev` is a valid event for the call.
        cvt(unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        })?;
        Ok(())
    }

    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: the event pointer is valid (ignored for DEL); a stale fd gives EBADF/ENOENT,
        // never UB.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) })?;
        Ok(())
    }

    /// Waits for events into the spare capacity of `events` (cleared first).
    pub(crate) fn wait(
        &self,
        events: &mut Vec<libc::epoll_event>,
        timeout_ms: i32,
    ) -> io::Result<usize> {
        events.clear();
        let cap = events.capacity().clamp(1, i32::MAX as usize) as i32;
        // SAFETY: the kernel writes at most `cap` events into the vector's allocation,
        // which has room for `capacity()` of them.
        let n =
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), cap, timeout_ms) };
        match cvt(n) {
            Ok(n) => {
                // SAFETY: the kernel initialised the first `n` (<= cap) entries.
                unsafe { events.set_len(n as usize) };
                Ok(n as usize)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// A nonblocking, close-on-exec eventfd: the doorbell that breaks an `epoll_wait` or a
/// thread's `poll(2)` from another thread.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: no pointers; a non-negative result is a new fd we own.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: just created, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Rings the doorbell. Errors are ignored: EAGAIN means the counter is already non-zero,
/// so the sleeper will wake anyway.
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64 to an open fd.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Resets the doorbell so the next ring is a new edge. EAGAIN (already zero) is fine.
pub(crate) fn eventfd_drain(fd: BorrowedFd<'_>) {
    let mut buf: u64 = 0;
    // SAFETY: reads at most 8 bytes into a valid u64 from an open fd.
    let _ = unsafe { libc::read(fd.as_raw_fd(), (&mut buf as *mut u64).cast(), 8) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn directions_of_flags() {
        assert_eq!(directions(libc::EPOLLIN as u32), (true, false));
        assert_eq!(directions(libc::EPOLLOUT as u32), (false, true));
        assert_eq!(directions(libc::EPOLLRDHUP as u32), (true, false));
        assert_eq!(directions(libc::EPOLLPRI as u32), (true, false));
        assert_eq!(directions(libc::EPOLLERR as u32), (true, true));
        assert_eq!(directions(libc::EPOLLHUP as u32), (true, true));
        assert_eq!(directions(0), (false, false));
    }

    #[test]
    fn eventfd_wakes_epoll_once_per_edge() {
        let ep = Epoll::new().unwrap();
        let ev = eventfd().unwrap();
        ep.add(ev.as_fd(), 7, DOORBELL).unwrap();
        let mut events = Vec::with_capacity(8);
        assert_eq!(ep.wait(&mut events, 0).unwrap(), 0);
        eventfd_signal(ev.as_fd());
        assert_eq!(ep.wait(&mut events, 1000).unwrap(), 1);
        assert_eq!({ events[0].u64 }, 7);
        // edge-triggered: no new event until the next signal
        assert_eq!(ep.wait(&mut events, 0).unwrap(), 0);
        eventfd_drain(ev.as_fd());
        eventfd_signal(ev.as_fd());
        assert_eq!(ep.wait(&mut events, 1000).unwrap(), 1);
        ep.delete(ev.as_raw_fd()).unwrap();
    }

    #[test]
    fn urgent_and_hangup_flags() {
        assert!(urgent(libc::EPOLLPRI as u32));
        assert!(!urgent((libc::EPOLLIN | libc::EPOLLRDHUP) as u32));
        assert!(!hangup(libc::EPOLLPRI as u32));
        assert!(INTEREST & libc::EPOLLPRI as u32 != 0);
    }
}
