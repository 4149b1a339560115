//! I/O helpers that know coronet's types: [`copy`], `std::io::copy` with Go's kernel paths.
//!
//! A one-connection proxy, socket → socket, which takes `splice`:
//!
//! ```
//! use coronet::net::{TcpListener, TcpStream};
//! use std::io::{Read, Write};
//!
//! let l = TcpListener::bind("127.0.0.1:0")?;
//! let mut src = TcpStream::connect(l.local_addr()?)?; // we write here,
//! let (mut from, _) = l.accept()?; //                    the proxy reads here,
//! let mut dst = TcpStream::connect(l.local_addr()?)?; // we read here,
//! let (mut to, _) = l.accept()?; //                      the proxy writes here.
//! let proxy = coronet::go(move || coronet::io::copy(&mut from, &mut to));
//!
//! src.write_all(b"through the kernel")?;
//! drop(src); // EOF ends the copy; the proxy then drops `to`
//! assert_eq!(proxy.join().unwrap()?, 18);
//! let mut got = String::new();
//! dst.read_to_string(&mut got)?;
//! assert_eq!(got, "through the kernel");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Which path a copy takes
//!
//! | reader                       | writer                       | how the bytes move          |
//! |------------------------------|------------------------------|-----------------------------|
//! | `File`, `&File`              | `TcpStream`, `&TcpStream`    | `sendfile(2)`: file → socket in the kernel, parking on the socket's write readiness |
//! | `TcpStream`, `&TcpStream`    | `TcpStream`, `&TcpStream`    | `splice(2)` through a pipe, parking on the source's read and the destination's write readiness |
//! | anything else                | anything else                | `std::io::copy`: a buffered loop, in which coronet sockets park inside `read`/`write` |
//!
//! A `File` that `sendfile` refuses (a pipe, a FIFO, a terminal: anything but a regular
//! file or a block device) takes the buffered loop, whose reads of it may block: in a
//! coroutine that loop runs on the blocking pool, so the worker goes on. Its reads of the
//! file are not interrupted by the socket's deadline or `close`, which end the copy at its
//! next write.
//!
//! A `sendfile` copy holds the socket's write lock from the file's first byte to its last,
//! as Go's `SendFile` does, so a `write` from another coroutine or thread goes before or
//! after the file, never into it. A `splice` copy, like Go's `Splice`, takes the locks a
//! pipe-full at a time: each pipe-full goes out in one piece.
//!
//! (`File` is `std::fs::File`; `TcpStream` is [`coronet::net::TcpStream`](crate::net::TcpStream).
//! std's own fast paths between std types — `copy_file_range` for file → file — still apply
//! in the last row, because that row *is* `std::io::copy`.)
//!
//! # How it picks without specialization
//!
//! std chooses its fast paths with specialization and Go with interface assertions
//! (`io.ReaderFrom`); stable Rust has neither. So [`copy`] keeps `std::io::copy`'s exact
//! signature and compares the reader's and writer's types with the few it knows, by
//! `TypeId` with lifetimes erased (`&'a File` and `&'static File` compare equal): the test
//! is resolved at compile time, and a match is a plain pointer cast. Two simpler designs
//! were rejected: a sealed `Source`/`Sink` bound would refuse every other reader (or need a
//! second function that users must remember to call), and `Any` needs `'static`, which
//! refuses a borrowed reader such as `&mut &data[..]`.
//!
//! The cost: only those exact types take a fast path. A wrapper — `BufReader<File>`,
//! `Take<&File>`, `&mut dyn Read` — takes the buffered loop, as a wrapped connection loses
//! `ReadFrom` in Go.
//!
//! # Errors and bytes in flight
//!
//! As with std, `Ok(n)` means the reader reached end of file after `n` bytes; any failure is
//! an `Err`, and how much was copied before it is not reported. The error names the side
//! that failed, in Go's form: `read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by
//! peer` for the source, `write tcp …` for the destination. Deadlines, `set_*_timeout` (per
//! wait, as for each write of a buffered copy) and `close` hit a copy in progress exactly as
//! they hit a blocked `read` or `write`.
//!
//! When the destination fails, the bytes already taken from the source but not delivered —
//! one pipe's worth for `splice`, one buffer for the buffered loop — are dropped with the
//! pipe, and the error says so: a failed copy cannot be resumed, with std and Go alike. The
//! same holds for a socket in nonblocking mode, where a copy fails with `WouldBlock` as
//! soon as either side would wait.
//!
//! # TCP urgent data
//!
//! `splice` stops at a TCP urgent mark (`MSG_OOB`) and never passes it: there it returns
//! `EAGAIN`, or `0` once the peer has closed, with the bytes behind the mark still queued.
//! A `recv` skips the urgent byte (returns it in line under `SO_OOBINLINE`) and goes on.
//! So when a splice from a socket finds nothing, `copy` asks the kernel whether the source
//! is at a mark (`SIOCATMARK`, as `sockatmark(3)` does), and if so takes the buffered loop
//! from there, whose receives deliver what `std::io::copy`'s would. This costs one more
//! syscall at the end of the source, and before a wait only when a wait could not be
//! trusted to end: outside a coroutine, on a socket not yet registered with the netpoller,
//! or once the netpoller has seen urgent data on it.
//!
//! A socket whose open file is in blocking mode — shared with a `try_clone` that was
//! converted to a std socket — takes the buffered loop too, from wherever the fast path
//! stopped: `sendfile` and `splice` obey that mode and would block the worker thread.
//!
//! # Signals and fairness
//!
//! `sendfile` and `splice` take no `MSG_NOSIGNAL`, so writing into a reset connection
//! raises `SIGPIPE`. Rust programs ignore it from start-up; `copy` checks that it is still
//! ignored and otherwise takes the buffered loop, whose `send` cannot raise it.
//!
//! A copy to a reader that keeps up may never wait, and coroutines are not preempted, so a
//! copy yields to its worker's other coroutines every 16 MiB.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::any::{erased_type_id, view};
use crate::net::sock::Sock;
use crate::net::socket::{self, SPLICE_FLAGS};
use crate::net::TcpStream;
use crate::poll::desc::Dir;

/// The most `sendfile` is asked to move in one call (Go's `maxSendfileSize`); a call
/// returns early anyway once the socket buffer is full.
const SENDFILE_CHUNK: usize = 4 << 20;

/// The most `splice` is asked to move into the pipe at once; the pipe's capacity (64 KiB by
/// default) is the real bound.
const SPLICE_CHUNK: usize = 1 << 20;

/// Bytes moved between voluntary yields (see "Signals and fairness").
const YIELD_EVERY: u64 = 16 << 20;

/// Copies the whole of `reader` into `writer`, as `std::io::copy` does, through `sendfile` or
/// `splice` when the types allow (see the [module docs](self) for which do).
///
/// A blocked copy parks the coroutine — or blocks the thread, outside a coroutine — and
/// honours the sockets' deadlines and `close`. The buffered loop is `std::io::copy`'s, which
/// keeps an 8 KiB buffer on the stack: mind it when shrinking `Spawn::stack_size`.
///
/// # Errors
///
/// The first error of either side, in Go's form (`read tcp …` or `write tcp …`); the bytes
/// copied until then are not reported. `Interrupted` is retried, never returned.
///
/// # Examples
///
/// Serving a file over a connection, which takes `sendfile`:
///
/// ```
/// use coronet::net::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
///
/// coronet::run(|| {
///     let path = std::env::temp_dir().join(format!("coronet-copy-doc-{}", std::process::id()));
///     std::fs::write(&path, b"hello from a file").unwrap();
///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
///     let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
///     let (mut conn, _) = l.accept().unwrap();
///
///     let mut file = std::fs::File::open(&path).unwrap();
///     assert_eq!(coronet::io::copy(&mut file, &mut conn).unwrap(), 17);
///     drop(conn);
///
///     let mut got = String::new();
///     client.read_to_string(&mut got).unwrap();
///     assert_eq!(got, "hello from a file");
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
///
/// Any other reader and writer take the buffered loop:
///
/// ```
/// let mut out = Vec::new();
/// assert_eq!(coronet::io::copy(&mut &b"abc"[..], &mut out).unwrap(), 3);
/// assert_eq!(out, b"abc");
/// ```
pub fn copy<R, W>(reader: &mut R, writer: &mut W) -> io::Result<u64>
where
    R: Read + ?Sized,
    W: Write + ?Sized,
{
    copy_reported(reader, writer).map(|r| r.total)
}

/// Which path a copy tried first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Sendfile,
    Splice,
    Buffered,
}

/// What a copy did: tests read it to prove a fast path really ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Report {
    route: Route,
    /// Bytes moved by `sendfile` or `splice`.
    kernel: u64,
    /// All bytes: `kernel` plus those of the buffered loop (after a fallback).
    total: u64,
}

/// How a fast path ended without an error.
enum Fast {
    /// The source reached end of file.
    Finished,
    /// The kernel refused the path (`EINVAL`, `ENOSYS`…) with nothing left in flight; the
    /// buffered loop carries on from where it stopped.
    Unsupported,
    /// `splice` stopped at a TCP urgent mark, which it cannot pass, with nothing left in
    /// flight; the buffered loop carries on from the mark (module docs, "TCP urgent data").
    UrgentMark,
}

fn copy_reported<R, W>(reader: &mut R, writer: &mut W) -> io::Result<Report>
where
    R: Read + ?Sized,
    W: Write + ?Sized,
{
    let mut kernel = 0;
    let (route, fast) = match (as_source(&*reader), as_sink(&*writer)) {
        (Some(src), Some(dst)) if socket::sigpipe_ignored() => match src {
            Source::File(f) => (Route::Sendfile, sendfile(f, dst, &mut kernel)),
            Source::Sock(s) => (Route::Splice, splice(s, dst, &mut kernel)),
        },
        _ => (Route::Buffered, Ok(Fast::Unsupported)),
    };
    match fast {
        Ok(Fast::Finished) => {
            rt_log!(Trace, "copy: {route:?} moved {kernel} bytes");
            return Ok(Report {
                route,
                kernel,
                total: kernel,
            });
        }
        Ok(Fast::Unsupported) if route != Route::Buffered => {
            rt_log!(
                Debug,
                "copy: {route:?} unsupported after {kernel} bytes, buffering the rest"
            );
        }
        Ok(Fast::Unsupported) => {}
        Ok(Fast::UrgentMark) => rt_log!(
            Debug,
            "copy: {route:?} stopped at an urgent mark after {kernel} bytes, buffering the rest"
        ),
        Err(e) => {
            rt_log!(Debug, "copy: {route:?} failed after {kernel} bytes: {e}");
            return Err(e);
        }
    }
    // A `File` sendfile refused may be a pipe, a FIFO or a terminal, whose reads block: in
    // a coroutine they would stop the worker (found by an audit: a sleeper beside such a
    // copy woke 2 s late), so the rest goes through the blocking pool. A regular file, and
    // any copy on a plain thread, takes std's loop as before.
    if route == Route::Sendfile && crate::runtime::worker::with_current(|_| ()).is_some() {
        if let (Some(Source::File(f)), Some(dst)) = (as_source(&*reader), as_sink(&*writer)) {
            if !f.metadata().is_ok_and(|m| m.is_file()) {
                let buffered =
                    crate::runtime::blocking::run_scoped_in_turn(|| copy_off_worker(f, dst))?;
                return Ok(Report {
                    route,
                    kernel,
                    total: kernel + buffered,
                });
            }
        }
    }
    let buffered = io::copy(reader, writer)?;
    Ok(Report {
        route,
        kernel,
        total: kernel + buffered,
    })
}

/// `std::io::copy` from a file whose reads may block into a coronet socket, run on the
/// blocking pool: the reads block a pool thread, and the writes, on a plain thread, block it
/// too (meeting the socket's deadlines and `close` as a thread's writes do).
fn copy_off_worker(src: &File, dst: Sink<'_>) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    loop {
        let n = match (&*src).read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            // `Sock::write` sends it all, or returns what went before a deadline or a
            // failure, which the next call then reports
            match dst.0.write(rest)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                k => rest = &rest[k..],
            }
        }
        total += n as u64;
    }
}

/// A reader a fast path can read from.
enum Source<'a> {
    File(&'a File),
    Sock(&'a Sock),
}

/// A writer a fast path can write to.
struct Sink<'a>(&'a Sock);

/// `reader` as a fast-path source, if its type is one of those in the module docs.
fn as_source<'a, R: ?Sized>(reader: &'a R) -> Option<Source<'a>> {
    let id = erased_type_id::<R>();
    // SAFETY (each arm): the ids say `R` *is* the named type up to lifetimes (`same_as`).
    // For the `&T` types, `R` is `&'x T` with `'x: 'a` (`&'a R` is well-formed), and viewing
    // it as `&'a T` only shortens a covariant lifetime.
    unsafe {
        if id == erased_type_id::<File>() {
            Some(Source::File(view::<R, File>(reader)))
        } else if id == erased_type_id::<&File>() {
            Some(Source::File(view::<R, &'a File>(reader)))
        } else if id == erased_type_id::<TcpStream>() {
            Some(Source::Sock(view::<R, TcpStream>(reader).sock()))
        } else if id == erased_type_id::<&TcpStream>() {
            Some(Source::Sock(view::<R, &'a TcpStream>(reader).sock()))
        } else {
            None
        }
    }
}

/// `writer` as a fast-path sink, if its type is one of those in the module docs.
fn as_sink<'a, W: ?Sized>(writer: &'a W) -> Option<Sink<'a>> {
    let id = erased_type_id::<W>();
    // SAFETY: as in `as_source`.
    unsafe {
        if id == erased_type_id::<TcpStream>() {
            Some(Sink(view::<W, TcpStream>(writer).sock()))
        } else if id == erased_type_id::<&TcpStream>() {
            Some(Sink(view::<W, &'a TcpStream>(writer).sock()))
        } else {
            None
        }
    }
}

/// Whether an error from `sendfile`/`splice` means "this pair cannot take the fast path".
fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

/// Refuses the fast path when `sock`'s open file is in blocking mode (a clone converted to
/// std shares it): `sendfile` and `splice` take no per-call "don't block" flag, and a
/// blocked call would hold the worker thread, deaf to deadlines and `close`. The buffered
/// loop's receives and sends pass `MSG_DONTWAIT` and carry on. Only an `exposed` socket
/// (`NetFd::exposed`: cloned, its fd handed out, adopted) can have been switched; one that
/// nobody else can reach is still the O_NONBLOCK file coronet made, and is not asked (an
/// `fcntl` per `splice` or `sendfile` call). Asked per call, not per copy: a clone may be
/// made and converted while the copy runs.
fn nonblocking_file(sock: BorrowedFd<'_>, exposed: bool) -> io::Result<()> {
    if exposed && socket::file_blocks(sock) {
        rt_log!(Debug, "copy: fd {} is in blocking mode", sock.as_raw_fd());
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    Ok(())
}

/// Counts bytes and yields every `YIELD_EVERY` (see "Signals and fairness").
struct Pace(u64);

impl Pace {
    fn moved(&mut self, n: usize) {
        self.0 += n as u64;
        if self.0 >= YIELD_EVERY {
            self.0 = 0;
            crate::yield_now();
        }
    }
}

/// File → socket with `sendfile`, from the file's position (which it advances, as reading
/// would). The socket's write lock is held from the first call to the last, as Go's
/// `SendFile` holds it, so another writer's message goes before or after the file, never
/// inside it; each call is one call of its own for the deadline, the per-call timeout and
/// `close`, and `EAGAIN` parks on write readiness. The file side never blocks: sendfile
/// takes regular files (and block devices) only, and refuses the rest with `EINVAL`.
fn sendfile(file: &File, dst: Sink<'_>, moved: &mut u64) -> io::Result<Fast> {
    let dst = dst.0;
    let locked = dst.fd.hold(Dir::Write).map_err(|e| dst.err("write", e))?;
    let mut pace = Pace(0);
    loop {
        let r = locked.io(|fd| {
            nonblocking_file(fd, dst.fd.exposed())?;
            socket::sendfile(fd, file.as_fd(), None, SENDFILE_CHUNK)
        });
        match r {
            Ok(0) => return Ok(Fast::Finished),
            Ok(n) => {
                *moved += n as u64;
                pace.moved(n);
            }
            // Not a regular file (a pipe, a tty...): nothing was taken from it.
            Err(e) if unsupported(&e) => return Ok(Fast::Unsupported),
            // The file is not open for reading (the socket is held open by `locked`):
            // let the buffered loop's `read` report it as std would.
            Err(e) if e.raw_os_error() == Some(libc::EBADF) && *moved == 0 => {
                return Ok(Fast::Unsupported)
            }
            Err(e) => return Err(dst.err("write", e)),
        }
    }
}

/// Socket → socket with `splice` through a private pipe, one pipe-full per round:
///
/// 1. source → pipe, parking on the source's read readiness (the pipe is empty, so
///    `EAGAIN` can only mean the source has nothing yet — or is stuck at an urgent mark,
///    see `stuck_at_mark`); `0` is end of file, unless it too is the mark;
/// 2. pipe → destination until the pipe is empty again, parking on the destination's
///    write readiness.
///
/// A round starts only with the pipe empty, so every way out of step 1 (end of file, the
/// mark, an error) leaves nothing in flight. The pipe is dropped at the end, with anything
/// a failed destination left in it.
fn splice(src: &Sock, dst: Sink<'_>, moved: &mut u64) -> io::Result<Fast> {
    let dst = dst.0;
    let (pipe_r, pipe_w) = match socket::pipe2_nonblocking() {
        Ok(p) => p,
        Err(e) => {
            // Out of fds: the buffered loop needs none.
            rt_log!(Debug, "copy: no pipe for splice ({e}), buffering");
            return Ok(Fast::Unsupported);
        }
    };
    let mut pace = Pace(0);
    loop {
        // 1. source → pipe; `None` is the urgent mark
        let r = src.fd.read_with(|fd| {
            nonblocking_file(fd, src.fd.exposed())?;
            match socket::splice(fd, pipe_w.as_fd(), SPLICE_CHUNK, SPLICE_FLAGS) {
                Ok(0) if stuck_at_mark(fd) => Ok(None),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        && wait_may_not_end(src)
                        && stuck_at_mark(fd) =>
                {
                    Ok(None)
                }
                r => r.map(Some),
            }
        });
        let n = match r {
            Ok(None) => {
                debug_assert_eq!(pipe_len(pipe_r.as_fd()), 0, "bytes left in the pipe");
                return Ok(Fast::UrgentMark);
            }
            Ok(Some(0)) => return Ok(Fast::Finished),
            Ok(Some(n)) => n,
            Err(e) if unsupported(&e) => return Ok(Fast::Unsupported),
            Err(e) => return Err(src.err("read", e)),
        };
        // 2. pipe → destination
        let mut left = n;
        let r = dst.fd.write_with(|fd| {
            nonblocking_file(fd, dst.fd.exposed())?;
            while left > 0 {
                match socket::splice(pipe_r.as_fd(), fd, left, SPLICE_FLAGS)? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    k => left -= k,
                }
            }
            Ok(())
        });
        *moved += (n - left) as u64;
        match r {
            Ok(()) => pace.moved(n),
            Err(e) if unsupported(&e) => {
                // The destination refuses splice: deliver what the pipe holds by hand.
                *moved += drain(pipe_r.as_fd(), dst, left)?;
                return Ok(Fast::Unsupported);
            }
            Err(e) => {
                rt_log!(
                    Debug,
                    "copy: destination failed, dropping {left} bytes read from the source"
                );
                return Err(dst.err("write", e));
            }
        }
    }
}

/// After a `splice` from the socket `src` found nothing (`0` or `EAGAIN`): whether that is
/// because the next byte is a TCP urgent mark (`SIOCATMARK`), which `splice` never
/// passes but a `recv` does. `tcp_read_sock` stops only there, so "nothing and not at the
/// mark" is a true end of file or an empty queue; anything arriving after the check comes
/// with an event of its own. In doubt (the call fails, as on a socket type without urgent
/// data) the answer is yes: the buffered loop is right in every case, only slower.
fn stuck_at_mark(src: BorrowedFd<'_>) -> bool {
    /// `SIOCATMARK` (`include/uapi/asm-generic/sockios.h`), which the libc crate lacks on
    /// Linux: what sockatmark(3) asks. Called directly with an initialised answer, because
    /// glibc's sockatmark passes an uninitialised one, which valgrind reports.
    const SIOCATMARK: libc::c_ulong = 0x8905;
    let mut at: libc::c_int = 0;
    // SAFETY: `src` is open while borrowed; SIOCATMARK writes one `c_int` through the
    // pointer, which is a live, initialised local.
    let rc = unsafe { libc::ioctl(src.as_raw_fd(), SIOCATMARK, &mut at) };
    // 1 at the mark, 0 elsewhere; an error (not a TCP socket) counts as "in doubt".
    let stuck = rc != 0 || at != 0;
    if stuck {
        rt_log!(
            Trace,
            "copy: fd {} at an urgent mark ({rc}, {at})",
            src.as_raw_fd()
        );
    }
    stuck
}

/// Whether a `splice` from `src` that returned `EAGAIN` must ask `stuck_at_mark` before
/// waiting, so that the common case — a coroutine on a registered socket that never saw
/// urgent data — waits without that extra syscall.
///
/// Stuck at a mark, the source has no readiness left to report: a coroutine would wait
/// for an edge that never comes, and a thread's poll(2) would report the bytes behind the
/// mark at once, again and again. A coroutine waits on the netpoller, and once `src` is
/// registered there the netpoller records urgent data (`PollDesc::saw_urgent`, from
/// `EPOLLPRI`) before it marks the source readable; so if the record is missing here, a
/// wait that starts now wakes up to find it and asks then. The urgent byte keeps
/// `EPOLLPRI` up until a `recv` passes it, which no `splice` does, so the event is not
/// lost wherever it is harvested (the argument of `NetFd::io`'s drained read). Before the
/// first wait registers `src` (once per socket), and on a plain thread, it always asks.
fn wait_may_not_end(src: &Sock) -> bool {
    let desc = &src.fd.desc;
    desc.saw_urgent() || desc.registration().is_none() || !crate::runtime::worker::in_coroutine()
}

/// Bytes waiting in a pipe (`FIONREAD`); for a debug check only.
fn pipe_len(pipe: BorrowedFd<'_>) -> libc::c_int {
    let mut n: libc::c_int = -1;
    // SAFETY: `pipe` is open while borrowed; FIONREAD writes one `c_int` through the pointer,
    // a live local.
    unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
    n
}

/// Writes the `left` bytes waiting in the pipe to `dst` with plain sends.
fn drain(pipe: std::os::fd::BorrowedFd<'_>, dst: &Sock, left: usize) -> io::Result<u64> {
    let mut buf = vec![0; left];
    let mut got = 0;
    while got < left {
        match socket::read(pipe, &mut buf[got..])? {
            0 => break,
            k => got += k,
        }
    }
    let mut sent = 0;
    while sent < got {
        // `Sock::write` sends it all or returns the short count, then the error next time.
        sent += dst.write(&buf[sent..got])?;
    }
    Ok(got as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::TcpListener;
    use std::io::Seek;

    #[test]
    fn probes_recognise_exactly_the_listed_types() {
        let f = File::open("/dev/null").unwrap();
        assert!(matches!(as_source(&f), Some(Source::File(_))));
        assert!(matches!(as_source(&&f), Some(Source::File(_))));
        let slice: &[u8] = b"x";
        assert!(as_source(&slice).is_none());
        assert!(as_source(&io::BufReader::new(&f)).is_none());
        assert!(as_sink(&Vec::<u8>::new()).is_none());
        let (a, _b) = tcp_pair();
        assert!(matches!(as_source(&a), Some(Source::Sock(_))));
        assert!(matches!(as_source(&&a), Some(Source::Sock(_))));
        assert!(as_sink(&a).is_some() && as_sink(&&a).is_some());
        let dynr: &dyn Read = &&a;
        assert!(
            as_source(dynr).is_none(),
            "a trait object takes the buffered loop"
        );
    }

    fn tcp_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    fn temp_file(data: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!(
            "coronet-io-unit-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, data).unwrap();
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    /// Reads everything from `s` on another thread.
    fn drain_thread(mut s: TcpStream) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            s.read_to_end(&mut v).unwrap();
            v
        })
    }

    #[test]
    fn file_to_socket_takes_sendfile_for_every_byte() {
        let data = pattern(3 << 20);
        let mut file = temp_file(&data);
        file.seek(io::SeekFrom::Start(10)).unwrap();
        let (mut a, b) = tcp_pair();
        let reader = drain_thread(b);
        let report = copy_reported(&mut file, &mut a).unwrap();
        drop(a);
        assert_eq!(report.route, Route::Sendfile);
        assert_eq!(report.kernel, data.len() as u64 - 10);
        assert_eq!(report.total, report.kernel);
        assert_eq!(reader.join().unwrap(), &data[10..]);
        assert_eq!(file.stream_position().unwrap(), data.len() as u64);
    }

    #[test]
    fn socket_to_socket_takes_splice_for_every_byte() {
        let data = pattern(2 << 20);
        let (mut src_w, src) = tcp_pair();
        let (dst, dst_r) = tcp_pair();
        let reader = drain_thread(dst_r);
        let d2 = data.clone();
        let writer = std::thread::spawn(move || src_w.write_all(&d2).unwrap());
        let report = copy_reported(&mut &src, &mut &dst).unwrap();
        writer.join().unwrap();
        drop(dst);
        assert_eq!(report.route, Route::Splice);
        assert_eq!(report.kernel, data.len() as u64);
        assert_eq!(report.total, report.kernel);
        assert_eq!(reader.join().unwrap(), data);
    }

    #[test]
    fn a_splice_stuck_at_an_urgent_mark_hands_the_rest_to_the_buffered_loop() {
        let (mut src_w, src) = tcp_pair();
        let (dst, dst_r) = tcp_pair();
        src_w.write_all(b"abc").unwrap();
        // SAFETY: the fd is open while `src_w` lives; the buffer is one live byte.
        let n = unsafe { libc::send(src_w.as_raw_fd(), b"X".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(n, 1);
        src_w.write_all(b"defg").unwrap();
        src_w.shutdown(std::net::Shutdown::Write).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let reader = drain_thread(dst_r);
        let report = copy_reported(&mut &src, &mut &dst).unwrap();
        drop(dst);
        // `splice` took the bytes before the mark, `recv` the rest, skipping the urgent byte.
        assert_eq!(report.route, Route::Splice);
        assert_eq!((report.kernel, report.total), (3, 7));
        assert_eq!(reader.join().unwrap(), b"abcdefg");
    }

    #[test]
    fn other_pairs_take_the_buffered_loop() {
        let data = pattern(100_000);
        let mut out = Vec::new();
        let report = copy_reported(&mut &data[..], &mut out).unwrap();
        assert_eq!(report.route, Route::Buffered);
        assert_eq!((report.kernel, report.total), (0, data.len() as u64));
        assert_eq!(out, data);
    }

    #[test]
    fn a_file_sendfile_refuses_falls_back_without_losing_bytes() {
        // A pipe wrapped as a File: sendfile says EINVAL before taking anything.
        let (r, w) = socket::pipe2_nonblocking().unwrap();
        socket::set_nonblocking(r.as_fd(), false).unwrap();
        let mut w = File::from(w);
        w.write_all(b"through a pipe").unwrap();
        drop(w);
        let mut r = File::from(r);
        let (mut a, b) = tcp_pair();
        let reader = drain_thread(b);
        let report = copy_reported(&mut r, &mut a).unwrap();
        drop(a);
        assert_eq!(report.route, Route::Sendfile);
        assert_eq!((report.kernel, report.total), (0, 14));
        assert_eq!(reader.join().unwrap(), b"through a pipe");
    }
}
