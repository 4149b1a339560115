//! The socket system calls, one tiny safe function each.
//!
//! This is the only file in coronet that speaks the socket interface. Every function is a single
//! system call (or a pure conversion) returning `io::Result`, with `-1` turned into
//! `io::Error::last_os_error()`. Nothing here waits and nothing retries: `EINTR` and `EAGAIN`
//! go back to the caller, whose I/O loop retries or parks, and `connect`'s `EINPROGRESS` is
//! returned as an error the caller reads as "connection under way".
//!
//! Existing sockets are borrowed (`BorrowedFd<'_>`): whoever owns the descriptor keeps it open
//! for the duration of the call, which is what every `// SAFETY:` below about "`fd` is open"
//! rests on. New descriptors come back as `OwnedFd`, always nonblocking and close-on-exec.

use std::ffi::{c_int, c_long, c_uint, OsStr};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::{self, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use std::{fmt, fs, ptr};

use libc::{
    sa_family_t, sockaddr, sockaddr_in, sockaddr_in6, sockaddr_storage, sockaddr_un, socklen_t,
};

use super::error::Addr;

/// Flags for every `send`/`sendto`: a write to a connection the peer has closed returns `EPIPE`
/// instead of killing the process with `SIGPIPE`.
pub(crate) const SEND_FLAGS: c_int = libc::MSG_NOSIGNAL;

/// Flags for moving data through a pipe with [`splice`] without ever blocking the thread.
pub(crate) const SPLICE_FLAGS: c_uint = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;

/// The most buffers one `readv`/`writev` passes to the kernel (Linux's `UIO_MAXIOV`); the rest
/// wait for the caller's next call, as after any partial write.
pub(crate) const MAX_IOV: usize = libc::UIO_MAXIOV as usize;

/// The listen backlog used when `/proc/sys/net/core/somaxconn` cannot be read.
const DEFAULT_SOMAXCONN: i32 = 4096;

/// Plain C data that may be filled in by the kernel and read back as Rust values.
///
/// # Safety
///
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid value (no references, no
/// niches such as `bool` or enums), and the type must have no padding bytes.
pub(crate) unsafe trait Pod: Copy {}

// SAFETY: integers and these C structs of integers accept every bit pattern and have no padding.
unsafe impl Pod for c_int {}
// SAFETY: as above.
unsafe impl Pod for c_uint {}
// SAFETY: as above.
unsafe impl Pod for u8 {}
// SAFETY: as above (two `c_int`s).
unsafe impl Pod for libc::linger {}
// SAFETY: as above (two `i64`s on x86_64).
unsafe impl Pod for libc::timeval {}
// SAFETY: as above (two `in_addr`s).
unsafe impl Pod for libc::ip_mreq {}
// SAFETY: as above (an `in6_addr` and a `c_uint`).
unsafe impl Pod for libc::ipv6_mreq {}
// SAFETY: as above (16 bytes: family, port, address, zero padding field).
unsafe impl Pod for sockaddr_in {}
// SAFETY: as above (28 bytes of integers and a byte array).
unsafe impl Pod for sockaddr_in6 {}
// SAFETY: as above (a family and a byte array).
unsafe impl Pod for sockaddr_un {}

/// Where `sun_path` starts inside `sockaddr_un`, and how long it may be.
const SUN_PATH_OFFSET: usize = mem::offset_of!(sockaddr_un, sun_path);
const SUN_PATH_LEN: usize = 108;

/// An owned socket address in the kernel's form: a `sockaddr_storage` and the length in use.
#[derive(Clone)]
pub(crate) struct SockAddr {
    /// Large and aligned enough for every address family — that is what `sockaddr_storage` is
    /// for — so its start can be viewed as a `sockaddr_in`, `sockaddr_in6` or `sockaddr_un`.
    storage: sockaddr_storage,
    /// How many bytes of `storage` hold the address; never more than `storage`'s size.
    len: socklen_t,
}

impl SockAddr {
    /// An all-zero address (family `AF_UNSPEC`) of length `len`.
    fn zeroed(len: usize) -> Self {
        // SAFETY: `sockaddr_storage` is plain C data; all zeroes is a valid (empty) value.
        let storage = unsafe { mem::zeroed() };
        let len = len.min(size_of::<sockaddr_storage>()) as socklen_t;
        SockAddr { storage, len }
    }

    /// An address holding one concrete `sockaddr_*` value, of which `len` bytes count.
    fn from_struct<T: Pod>(value: T, len: usize) -> Self {
        assert!(size_of::<T>() <= size_of::<sockaddr_storage>() && len <= size_of::<T>());
        assert!(mem::align_of::<T>() <= mem::align_of::<sockaddr_storage>());
        let mut addr = Self::zeroed(len);
        // SAFETY: the asserts show a `T` fits at the start of `storage` and is aligned there.
        unsafe { ptr::addr_of_mut!(addr.storage).cast::<T>().write(value) };
        addr
    }

    /// The start of `storage` read as a `T`.
    fn view<T: Pod>(&self) -> T {
        assert!(size_of::<T>() <= size_of::<sockaddr_storage>());
        // SAFETY: a `T` fits in `storage`, whose bytes are all initialised (zeroed first, then
        // written with padding-free `Pod` values or by the kernel), and any bytes are a valid
        // `T` (`Pod`). `read_unaligned` needs no alignment.
        unsafe { ptr::addr_of!(self.storage).cast::<T>().read_unaligned() }
    }

    /// The kernel's encoding of an IP address and port. IPv6 flowinfo and scope id are kept;
    /// flowinfo is passed through as std does (the raw `sin6_flowinfo` value).
    pub(crate) fn from_inet(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => {
                let sin = sockaddr_in {
                    sin_family: libc::AF_INET as sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                Self::from_struct(sin, size_of::<sockaddr_in>())
            }
            SocketAddr::V6(a) => {
                let sin6 = sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                Self::from_struct(sin6, size_of::<sockaddr_in6>())
            }
        }
    }

    /// A Unix socket path. The empty path is the unnamed address (as in std).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the path holds a NUL byte or is 108 bytes or longer.
    pub(crate) fn from_unix_path(path: &Path) -> io::Result<Self> {
        let bytes = path.as_os_str().as_bytes();
        if bytes.contains(&0) {
            return Err(invalid_input(
                "unix socket path must not contain a NUL byte",
            ));
        }
        if bytes.len() >= SUN_PATH_LEN {
            return Err(invalid_input(
                "unix socket path must be shorter than 108 bytes",
            ));
        }
        if bytes.is_empty() {
            return Ok(Self::unnamed_unix());
        }
        // The path plus its terminating NUL, which the zeroed `sun_path` already holds.
        Ok(Self::unix_raw(bytes, SUN_PATH_OFFSET + bytes.len() + 1))
    }

    /// A Linux abstract Unix socket name (the leading NUL byte is added here).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the name is 108 bytes or longer.
    pub(crate) fn unix_abstract(name: &[u8]) -> io::Result<Self> {
        if name.len() >= SUN_PATH_LEN {
            return Err(invalid_input(
                "abstract unix socket name must be shorter than 108 bytes",
            ));
        }
        let mut path = [0u8; SUN_PATH_LEN];
        path[1..=name.len()].copy_from_slice(name);
        Ok(Self::unix_raw(
            &path[..=name.len()],
            SUN_PATH_OFFSET + 1 + name.len(),
        ))
    }

    /// The unnamed Unix address: binding to it picks an abstract name (autobind).
    pub(crate) fn unnamed_unix() -> Self {
        Self::unix_raw(&[], SUN_PATH_OFFSET)
    }

    /// A `sockaddr_un` with `path` at the start of `sun_path` (`path.len() < 108`).
    fn unix_raw(path: &[u8], len: usize) -> Self {
        let mut sun = sockaddr_un {
            sun_family: libc::AF_UNIX as sa_family_t,
            sun_path: [0; SUN_PATH_LEN],
        };
        for (dst, &src) in sun.sun_path.iter_mut().zip(path) {
            *dst = src as libc::c_char;
        }
        Self::from_struct(sun, len)
    }

    /// The kernel form of any [`Addr`].
    pub(crate) fn from_addr(addr: &Addr) -> io::Result<Self> {
        match addr {
            Addr::Inet(a) => Ok(Self::from_inet(a)),
            Addr::Unix(path) => Self::from_unix_path(path),
            Addr::UnixAbstract(name) => Self::unix_abstract(name),
            Addr::UnixUnnamed => Ok(Self::unnamed_unix()),
        }
    }

    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`, or 0 when the kernel left it empty).
    pub(crate) fn family(&self) -> c_int {
        c_int::from(self.storage.ss_family)
    }

    /// The IP address and port, if this is a complete IPv4 or IPv6 address.
    pub(crate) fn as_inet(&self) -> Option<SocketAddr> {
        let len = self.len as usize;
        match self.family() {
            libc::AF_INET if len >= size_of::<sockaddr_in>() => {
                let sin: sockaddr_in = self.view();
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
            }
            libc::AF_INET6 if len >= size_of::<sockaddr_in6>() => {
                let sin6: sockaddr_in6 = self.view();
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                let port = u16::from_be(sin6.sin6_port);
                Some(SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id).into())
            }
            _ => None,
        }
    }

    /// The address as errors and Unix sockets report it. A zero-length address — what the
    /// kernel reports for a datagram from an unnamed Unix socket — is `UnixUnnamed`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an address family coronet does not speak.
    pub(crate) fn to_addr(&self) -> io::Result<Addr> {
        if let Some(inet) = self.as_inet() {
            return Ok(Addr::Inet(inet));
        }
        if self.len == 0 {
            return Ok(Addr::UnixUnnamed);
        }
        if self.family() != libc::AF_UNIX {
            let (family, len) = (self.family(), self.len);
            let msg =
                format!("unsupported or truncated socket address (family {family}, {len} bytes)");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
        let sun: sockaddr_un = self.view();
        let used = (self.len as usize)
            .saturating_sub(SUN_PATH_OFFSET)
            .min(SUN_PATH_LEN);
        let path: Vec<u8> = sun.sun_path[..used].iter().map(|&c| c as u8).collect();
        Ok(match path.split_first() {
            None => Addr::UnixUnnamed,
            Some((0, name)) => Addr::UnixAbstract(name.to_vec()),
            Some(_) => {
                // A path ends at its NUL; the kernel may or may not count it in the length.
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                Addr::Unix(Path::new(OsStr::from_bytes(&path[..end])).to_path_buf())
            }
        })
    }

    /// Runs `call` with room for the kernel to write an address, and returns what it wrote.
    fn fill<R>(
        call: impl FnOnce(*mut sockaddr, *mut socklen_t) -> io::Result<R>,
    ) -> io::Result<(R, Self)> {
        let mut addr = Self::zeroed(size_of::<sockaddr_storage>());
        let result = call(ptr::addr_of_mut!(addr.storage).cast(), &mut addr.len)?;
        // The kernel reports the full length even when it had to truncate.
        addr.len = addr.len.min(size_of::<sockaddr_storage>() as socklen_t);
        Ok((result, addr))
    }

    fn as_ptr(&self) -> *const sockaddr {
        ptr::addr_of!(self.storage).cast()
    }
}

impl fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_addr() {
            Ok(addr) => write!(f, "SockAddr({addr})"),
            Err(_) => write!(f, "SockAddr(family {}, {} bytes)", self.family(), self.len),
        }
    }
}

fn invalid_input(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Turns a C `-1` return into the thread's `errno`.
fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Turns a C `ssize_t` return into a byte count, or `-1` into the thread's `errno`.
#[inline]
fn cvt_len(ret: isize) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

/// Takes ownership of a descriptor the kernel just created.
///
/// # Safety
///
/// `fd` must be open and owned by nothing else, as it is right after a successful `socket`,
/// `accept4`, `pipe2` or `socketpair`.
unsafe fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller promises `fd` is open and unowned.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Creates a nonblocking, close-on-exec socket (`socket(2)`).
pub(crate) fn socket(domain: c_int, ty: c_int) -> io::Result<OwnedFd> {
    let ty = ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes no pointers.
    let fd = cvt(unsafe { libc::socket(domain, ty, 0) })?;
    // SAFETY: socket(2) succeeded, so `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { adopt(fd) })
}

/// Creates a connected pair of nonblocking, close-on-exec sockets (`socketpair(2)`).
pub(crate) fn socketpair(domain: c_int, ty: c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let ty = ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair(2) writes.
    cvt(unsafe { libc::socketpair(domain, ty, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair(2) succeeded, so both descriptors are new and owned by nothing else.
    Ok(unsafe { (adopt(fds[0]), adopt(fds[1])) })
}

/// Creates a nonblocking, close-on-exec pipe, returning (read end, write end) (`pipe2(2)`).
pub(crate) fn pipe2_nonblocking() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2(2) writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // SAFETY: pipe2(2) succeeded, so both descriptors are new and owned by nothing else.
    Ok(unsafe { (adopt(fds[0]), adopt(fds[1])) })
}

/// Binds the socket to a local address (`bind(2)`).
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &SockAddr) -> io::Result<()> {
    // SAFETY: `fd` is open while borrowed; `addr` points to `addr.len` initialised bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), addr.as_ptr(), addr.len) }).map(drop)
}

/// Marks the socket as accepting connections (`listen(2)`).
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: `fd` is open while borrowed; listen(2) takes no pointers.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// Starts connecting (`connect(2)`); on a nonblocking socket `EINPROGRESS` comes back as
/// an error, meaning "under way": wait for writability, then read the outcome with [`take_error`].
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &SockAddr) -> io::Result<()> {
    // SAFETY: `fd` is open while borrowed; `addr` points to `addr.len` initialised bytes.
    cvt(unsafe { libc::connect(fd.as_raw_fd(), addr.as_ptr(), addr.len) }).map(drop)
}

/// Accepts one connection as a nonblocking, close-on-exec socket, with the peer's address.
/// `WouldBlock` when none is queued, even if the open file is in blocking mode (see
/// [`file_blocks`]): then a `poll(2)` with a zero timeout asks first. (Another acceptor on
/// that blocking file may still take the connection between the two; this accept then
/// blocks until the next one.) `may_block: false` says the caller knows the file is still
/// nonblocking, and skips the `fcntl` that asks.
pub(crate) fn accept(fd: BorrowedFd<'_>, may_block: bool) -> io::Result<(OwnedFd, SockAddr)> {
    if may_block && file_blocks(fd) && !poll_fd(fd, libc::POLLIN, None, 0)?.0 {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let (new, peer) = SockAddr::fill(|addr, len| {
        // SAFETY: `fd` is open while borrowed; `addr`/`len` describe writable storage.
        cvt(unsafe { libc::accept4(fd.as_raw_fd(), addr, len, flags) })
    })?;
    // SAFETY: accept4(2) succeeded, so `new` is a new descriptor that nothing else owns.
    Ok((unsafe { adopt(new) }, peer))
}

/// The socket's own address (`getsockname(2)`).
pub(crate) fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SockAddr> {
    let ((), addr) = SockAddr::fill(|addr, len| {
        // SAFETY: `fd` is open while borrowed; `addr`/`len` describe writable storage.
        cvt(unsafe { libc::getsockname(fd.as_raw_fd(), addr, len) }).map(drop)
    })?;
    Ok(addr)
}

/// The connected peer's address (`getpeername(2)`).
pub(crate) fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<SockAddr> {
    let ((), addr) = SockAddr::fill(|addr, len| {
        // SAFETY: `fd` is open while borrowed; `addr`/`len` describe writable storage.
        cvt(unsafe { libc::getpeername(fd.as_raw_fd(), addr, len) }).map(drop)
    })?;
    Ok(addr)
}

/// Shuts down one or both directions of a connection (`shutdown(2)`).
pub(crate) fn shutdown(fd: BorrowedFd<'_>, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: `fd` is open while borrowed; shutdown(2) takes no pointers.
    cvt(unsafe { libc::shutdown(fd.as_raw_fd(), how) }).map(drop)
}

// `recv` and `send` are every stream read's and write's syscall, so they enter the kernel
// through `syscall(2)` instead of glibc's `recv`/`send`: those are pthread cancellation
// points and bracket the call with enable/disable-cancellation bookkeeping (about 60
// instructions per call under callgrind), which Rust programs never use — std does not
// expose `pthread_cancel`. Go's runtime makes raw syscalls for the same reason. recvfrom and
// sendto with a null address are what recv and send are, and exist on every Linux
// architecture (recv and send do not on all). Integer arguments are widened to `c_long`
// first: a variadic `int` leaves the register's upper half unspecified.

/// Flags added to every receive and send: the call never blocks the thread, whatever the
/// open file's `O_NONBLOCK` says. Our sockets are always nonblocking, but the flag lives in
/// the open file, which a `try_clone` shares: converting that clone to a std socket (which
/// turns blocking mode on, unless the user set it nonblocking) or a user's `fcntl` on a borrowed fd would otherwise make every
/// read and write here block the worker, deaf to deadlines and `close`.
const NEVER_BLOCK: c_int = libc::MSG_DONTWAIT;

/// Receives into `buf` (`recv(2)`); `Ok(0)` is end of stream.
#[inline]
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: c_int) -> io::Result<usize> {
    let flags = flags | NEVER_BLOCK;
    let (data, size) = (buf.as_mut_ptr(), buf.len());
    let none = ptr::null_mut::<libc::sockaddr>();
    // SAFETY: `fd` is open while borrowed; `buf` is writable for `size` bytes; a null address
    // and length pointer ask for no sender address, as recv(2) does.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            c_long::from(fd.as_raw_fd()),
            data,
            size,
            c_long::from(flags),
            none,
            ptr::null_mut::<libc::socklen_t>(),
        )
    };
    cvt_len(ret as isize)
}

/// Sends from `buf` (`send(2)`); pass [`SEND_FLAGS`] so a closed peer is `EPIPE`, not `SIGPIPE`.
#[inline]
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: c_int) -> io::Result<usize> {
    let flags = flags | NEVER_BLOCK;
    let (data, size) = (buf.as_ptr(), buf.len());
    // SAFETY: `fd` is open while borrowed; `buf` is readable for `size` bytes; a null address
    // of length 0 sends on the connection, as send(2) does.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            c_long::from(fd.as_raw_fd()),
            data,
            size,
            c_long::from(flags),
            ptr::null::<libc::sockaddr>(),
            0 as c_long,
        )
    };
    cvt_len(ret as isize)
}

/// Receives one datagram into `buf` with its sender's address (`recvfrom(2)`).
pub(crate) fn recv_from(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: c_int,
) -> io::Result<(usize, SockAddr)> {
    SockAddr::fill(|addr, len| {
        let (data, size) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: `fd` is open while borrowed; `buf` is writable for `size` bytes and
        // `addr`/`len` describe writable storage.
        cvt_len(unsafe {
            libc::recvfrom(fd.as_raw_fd(), data, size, flags | NEVER_BLOCK, addr, len)
        })
    })
}

/// Sends one datagram from `buf` to `addr` (`sendto(2)`).
pub(crate) fn send_to(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    addr: &SockAddr,
    flags: c_int,
) -> io::Result<usize> {
    let (data, size) = (buf.as_ptr().cast(), buf.len());
    let flags = flags | NEVER_BLOCK;
    // SAFETY: `fd` is open while borrowed; `buf` is readable for `size` bytes and `addr`
    // points to `addr.len` initialised bytes.
    cvt_len(unsafe { libc::sendto(fd.as_raw_fd(), data, size, flags, addr.as_ptr(), addr.len) })
}

/// Reads into several buffers at once, at most 1024 of them per call. Sockets only: it is
/// `recvmsg(2)`, which unlike `readv` takes [`NEVER_BLOCK`].
pub(crate) fn readv(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(MAX_IOV);
    if bufs[..count].iter().all(|b| b.is_empty()) {
        // What readv(2) answers at once for zero bytes, where recvmsg would wait for data
        // (and take a datagram).
        return Ok(0);
    }
    // SAFETY: `msghdr` is plain C data; all zeroes (null pointers, zero lengths) is valid.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_mut_ptr().cast();
    msg.msg_iovlen = count;
    // SAFETY: `fd` is open while borrowed; `IoSliceMut` is ABI-compatible with `iovec` on Unix
    // and the first `msg_iovlen` entries describe writable buffers; no name or control data.
    cvt_len(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, NEVER_BLOCK) })
}

/// Writes several buffers at once, at most 1024 of them per call. Sockets only: it is
/// `sendmsg(2)` with `MSG_NOSIGNAL`, so a closed peer is `EPIPE`, not `SIGPIPE`.
pub(crate) fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: `msghdr` is plain C data; all zeroes (null pointers, zero lengths) is valid.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    // sendmsg(2) only reads through `msg_iov`; the `*mut` is the C declaration's.
    msg.msg_iov = bufs.as_ptr().cast_mut().cast();
    msg.msg_iovlen = bufs.len().min(MAX_IOV);
    // SAFETY: `fd` is open while borrowed; `IoSlice` is ABI-compatible with `iovec` on Unix and
    // the first `msg_iovlen` entries describe readable buffers; no name or control data.
    cvt_len(unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, SEND_FLAGS | NEVER_BLOCK) })
}

/// Reads from a descriptor that need not be a socket (`read(2)`).
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `fd` is open while borrowed; `buf` is writable for `buf.len()` bytes.
    cvt_len(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// Writes to a descriptor that need not be a socket (`write(2)`). On a socket or pipe whose
/// reader is gone this raises `SIGPIPE`; use [`send`] with [`SEND_FLAGS`] for sockets.
#[cfg(test)]
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `fd` is open while borrowed; `buf` is readable for `buf.len()` bytes.
    cvt_len(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
}

/// Copies up to `count` bytes from a file into a socket in the kernel (`sendfile(2)`). With
/// `offset`, reads from there and advances it, leaving the file position alone; without,
/// reads from and advances the file position.
pub(crate) fn sendfile(
    out: BorrowedFd<'_>,
    input: BorrowedFd<'_>,
    offset: Option<&mut i64>,
    count: usize,
) -> io::Result<usize> {
    let offset = offset.map_or(ptr::null_mut(), |off| off as *mut i64);
    // SAFETY: both descriptors are open while borrowed; `offset` is null or a live `off_t`.
    cvt_len(unsafe { libc::sendfile(out.as_raw_fd(), input.as_raw_fd(), offset, count) })
}

/// Moves up to `len` bytes between two descriptors, one of which is a pipe (`splice(2)`);
/// pass [`SPLICE_FLAGS`]. `Ok(0)` is end of input.
pub(crate) fn splice(
    fd_in: BorrowedFd<'_>,
    fd_out: BorrowedFd<'_>,
    len: usize,
    flags: c_uint,
) -> io::Result<usize> {
    let (input, output, none) = (fd_in.as_raw_fd(), fd_out.as_raw_fd(), ptr::null_mut());
    // SAFETY: both descriptors are open while borrowed; null offsets mean "current position".
    cvt_len(unsafe { libc::splice(input, none, output, none, len, flags) })
}

/// Whether `SIGPIPE` is ignored process-wide (`sigaction(2)`, reading only). `sendfile` and
/// `splice` take no `MSG_NOSIGNAL`: into a reset connection they raise `SIGPIPE`, which is
/// harmless only while it is ignored (Rust's runtime ignores it at start-up).
pub(crate) fn sigpipe_ignored() -> bool {
    // SAFETY: all-zero is a valid `sigaction` (SIG_DFL, empty mask, no flags).
    let mut old: libc::sigaction = unsafe { mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `old`, a live local.
    let rc = unsafe { libc::sigaction(libc::SIGPIPE, ptr::null(), &mut old) };
    rc == 0 && old.sa_sigaction == libc::SIG_IGN
}

/// Sets a socket option to `value` (`setsockopt(2)`).
pub(crate) fn setsockopt<T: Pod>(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: T,
) -> io::Result<()> {
    let (ptr, len) = (ptr::addr_of!(value).cast(), size_of::<T>() as socklen_t);
    // SAFETY: `fd` is open while borrowed; `ptr` points to `len` initialised bytes (`Pod`
    // types have no padding).
    cvt(unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, ptr, len) }).map(drop)
}

/// Reads a socket option (`getsockopt(2)`); fails with `InvalidData` if the kernel's answer
/// is shorter than `T` (a longer one is cut to fit by the kernel, so pick `T` with care).
pub(crate) fn getsockopt<T: Pod>(fd: BorrowedFd<'_>, level: c_int, name: c_int) -> io::Result<T> {
    let mut value = mem::MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as socklen_t;
    // SAFETY: `fd` is open while borrowed; `value` is writable for `len` bytes.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    if len as usize != size_of::<T>() {
        let msg = format!(
            "getsockopt({level}, {name}) returned {len} bytes, expected {}",
            size_of::<T>()
        );
        return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
    }
    // SAFETY: the bytes are zeroes or the kernel's, and every bit pattern is a valid `T` (`Pod`).
    Ok(unsafe { value.assume_init() })
}

/// Takes the socket's pending error, clearing it (`SO_ERROR`): how a nonblocking `connect`
/// reports its outcome.
pub(crate) fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let errno: c_int = getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((errno != 0).then(|| io::Error::from_raw_os_error(errno)))
}

/// Whether the open file behind `fd` is in blocking mode. Ours never are when made, but the
/// mode lives in the open file, which a `try_clone` shares: converting that clone to a std
/// socket turns it off (unless the user set it nonblocking), and so may a user's `fcntl` on
/// a borrowed fd. Receives and sends
/// pass `MSG_DONTWAIT` and never care; `accept4`, `sendfile` and `splice` have no such flag,
/// so they ask this first (one `fcntl`) and take a path that cannot block when it says yes
/// (`accept4` only once the fd is exposed to such changes: `NetFd::exposed`).
/// Left: a mode change in the instant between the check and the call, and for `accept`, a
/// competing acceptor (see there).
pub(crate) fn file_blocks(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: `fd` is open while borrowed; F_GETFL takes no pointers.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    fl != -1 && fl & libc::O_NONBLOCK == 0
}

/// Turns the descriptor's nonblocking mode on or off (`ioctl(FIONBIO)`).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    let mut on = c_int::from(nonblocking);
    // SAFETY: `fd` is open while borrowed; FIONBIO reads one `c_int` through the pointer.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONBIO, &mut on) }).map(drop)
}

/// Sets `SO_LINGER`: with `Some`, close waits up to that long (whole seconds) to send unsent
/// data; `Some(Duration::ZERO)` makes close reset the connection; `None` is the default.
pub(crate) fn set_linger(fd: BorrowedFd<'_>, linger: Option<Duration>) -> io::Result<()> {
    let secs = linger.map_or(0, |d| c_int::try_from(d.as_secs()).unwrap_or(c_int::MAX));
    let value = libc::linger {
        l_onoff: c_int::from(linger.is_some()),
        l_linger: secs,
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, value)
}

/// Reads `SO_LINGER` back as [`set_linger`] takes it.
pub(crate) fn linger(fd: BorrowedFd<'_>) -> io::Result<Option<Duration>> {
    let value: libc::linger = getsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER)?;
    let secs = u64::try_from(value.l_linger).unwrap_or(0);
    Ok((value.l_onoff != 0).then_some(Duration::from_secs(secs)))
}

/// Sets the keep-alive idle time and probe interval (`TCP_KEEPIDLE`, `TCP_KEEPINTVL`) both to
/// `period`, as Go does; the probe count stays the system's. `SO_KEEPALIVE` is separate.
pub(crate) fn set_keepalive_period(fd: BorrowedFd<'_>, period: Duration) -> io::Result<()> {
    let secs = keepalive_secs(period);
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)?;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs)
}

/// The keep-alive idle time (`TCP_KEEPIDLE`).
pub(crate) fn keepalive_period(fd: BorrowedFd<'_>) -> io::Result<Duration> {
    let secs: c_int = getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)?;
    Ok(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// A keep-alive period in the kernel's unit: whole seconds, rounded up as Go rounds, and at
/// least one second.
fn keepalive_secs(period: Duration) -> c_int {
    let secs = period
        .as_secs()
        .saturating_add(u64::from(period.subsec_nanos() > 0));
    c_int::try_from(secs.max(1)).unwrap_or(c_int::MAX)
}

/// Waits up to `timeout_ms` (-1: forever) for `events` on `fd` or input on `wake`
/// (`poll(2)`), returning (fd ready, wake ready). This blocks the calling OS thread: it is for
/// threads outside the coroutine runtime. A signal returns `Ok((false, false))`; loop.
pub(crate) fn poll_fd(
    fd: BorrowedFd<'_>,
    events: i16,
    wake: Option<BorrowedFd<'_>>,
    timeout_ms: i32,
) -> io::Result<(bool, bool)> {
    let entry = |fd: RawFd, events| libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let mut fds = [
        entry(fd.as_raw_fd(), events),
        entry(wake.map_or(-1, |w| w.as_raw_fd()), libc::POLLIN),
    ];
    let count = if wake.is_some() { 2 } else { 1 };
    // SAFETY: the descriptors are open while borrowed; `fds` holds `count` pollfd entries.
    match cvt(unsafe { libc::poll(fds.as_mut_ptr(), count, timeout_ms) }) {
        Ok(_) => Ok((fds[0].revents != 0, fds[1].revents != 0)),
        Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok((false, false)),
        Err(err) => Err(err),
    }
}

/// The system's listen backlog limit, read once from `/proc/sys/net/core/somaxconn` (as Go
/// does), or 4096 if it cannot be read.
pub(crate) fn somaxconn() -> i32 {
    static SOMAXCONN: OnceLock<i32> = OnceLock::new();
    *SOMAXCONN.get_or_init(|| {
        let text = fs::read_to_string("/proc/sys/net/core/somaxconn");
        parse_somaxconn(text.ok().as_deref())
    })
}

/// The backlog in the file's text, or the default when it is missing or not a positive number.
fn parse_somaxconn(text: Option<&str>) -> i32 {
    let parsed = text.and_then(|t| t.trim().parse::<i32>().ok());
    parsed.filter(|&n| n > 0).unwrap_or(DEFAULT_SOMAXCONN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// Blocks until `fd` reports `events`, failing the test after about ten seconds.
    fn wait(fd: BorrowedFd<'_>, events: i16) {
        // Not ready means a timeout or a signal; both just use up one slice of the wait.
        for _ in 0..100 {
            if poll_fd(fd, events, None, 100).unwrap().0 {
                return;
            }
        }
        panic!(
            "fd {} not ready for {events:#x} after ten seconds",
            fd.as_raw_fd()
        );
    }

    /// A listening TCP socket on 127.0.0.1 with a port of the kernel's choosing.
    fn listener() -> (OwnedFd, SocketAddr) {
        let fd = socket(libc::AF_INET, libc::SOCK_STREAM).unwrap();
        let loopback = SockAddr::from_inet(&"127.0.0.1:0".parse().unwrap());
        bind(fd.as_fd(), &loopback).unwrap();
        listen(fd.as_fd(), somaxconn()).unwrap();
        let addr = local_addr(fd.as_fd()).unwrap().as_inet().unwrap();
        (fd, addr)
    }

    /// Starts a nonblocking connect; `EINPROGRESS` is the expected "under way".
    fn start_connect(fd: BorrowedFd<'_>, addr: SocketAddr) -> io::Result<()> {
        match connect(fd, &SockAddr::from_inet(&addr)) {
            Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
            other => other,
        }
    }

    /// A connected (client, server) TCP pair made only with this file's functions.
    fn tcp_pair() -> (OwnedFd, OwnedFd) {
        let (lst, addr) = listener();
        let client = socket(libc::AF_INET, libc::SOCK_STREAM).unwrap();
        start_connect(client.as_fd(), addr).unwrap();
        wait(lst.as_fd(), libc::POLLIN);
        let (server, peer) = accept(lst.as_fd(), true).unwrap();
        wait(client.as_fd(), libc::POLLOUT);
        assert!(take_error(client.as_fd()).unwrap().is_none());
        let client_local = local_addr(client.as_fd()).unwrap().as_inet();
        assert_eq!(peer.as_inet(), client_local);
        assert_eq!(peer_addr(client.as_fd()).unwrap().as_inet(), Some(addr));
        (client, server)
    }

    /// Receives exactly `len` bytes, waiting for readability as needed.
    fn recv_exact(fd: BorrowedFd<'_>, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        let mut got = 0;
        while got < len {
            match recv(fd, &mut out[got..], 0) {
                Ok(0) => panic!("end of stream after {got} of {len} bytes"),
                Ok(n) => got += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => wait(fd, libc::POLLIN),
                Err(err) => panic!("recv: {err}"),
            }
        }
        out
    }

    fn assert_nonblocking_cloexec(fd: BorrowedFd<'_>) {
        // SAFETY: `fd` is open while borrowed; F_GETFL and F_GETFD take no pointers.
        let (fl, fd_flags) = unsafe {
            (
                libc::fcntl(fd.as_raw_fd(), libc::F_GETFL),
                libc::fcntl(fd.as_raw_fd(), libc::F_GETFD),
            )
        };
        assert!(
            fl != -1 && fl & libc::O_NONBLOCK != 0,
            "fd {} is blocking",
            fd.as_raw_fd()
        );
        assert!(
            fd_flags != -1 && fd_flags & libc::FD_CLOEXEC != 0,
            "fd {} lacks CLOEXEC",
            fd.as_raw_fd()
        );
    }

    #[test]
    fn tcp_pair_exchanges_data() {
        let (client, server) = tcp_pair();
        assert_eq!(send(client.as_fd(), b"hello", SEND_FLAGS).unwrap(), 5);
        assert_eq!(recv_exact(server.as_fd(), 5), b"hello");
        assert_eq!(send(server.as_fd(), b"back", SEND_FLAGS).unwrap(), 4);
        assert_eq!(recv_exact(client.as_fd(), 4), b"back");
        let mut buf = [0; 8];
        let err = recv(client.as_fd(), &mut buf, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        shutdown(server.as_fd(), Shutdown::Write).unwrap();
        wait(client.as_fd(), libc::POLLIN);
        assert_eq!(recv(client.as_fd(), &mut buf, 0).unwrap(), 0);
    }

    #[test]
    fn new_descriptors_are_nonblocking_and_cloexec() {
        let (client, server) = tcp_pair();
        let (a, b) = socketpair(libc::AF_UNIX, libc::SOCK_STREAM).unwrap();
        let (r, w) = pipe2_nonblocking().unwrap();
        for fd in [&client, &server, &a, &b, &r, &w] {
            assert_nonblocking_cloexec(fd.as_fd());
        }
        set_nonblocking(a.as_fd(), false).unwrap();
        // SAFETY: `a` is open; F_GETFL takes no pointers.
        let fl = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(fl & libc::O_NONBLOCK, 0);
        set_nonblocking(a.as_fd(), true).unwrap();
        assert_nonblocking_cloexec(a.as_fd());
    }

    /// The `Addr` a conversion produced, which must have succeeded.
    fn addr_of(raw: io::Result<SockAddr>) -> Addr {
        raw.unwrap().to_addr().unwrap()
    }

    #[test]
    fn inet_addresses_round_trip() {
        let v6 = SocketAddrV6::new("fe80::1".parse().unwrap(), 8080, 0x12345, 7);
        let addrs = [
            "127.0.0.1:80".parse().unwrap(),
            "[::1]:443".parse().unwrap(),
            v6.into(),
        ];
        for addr in addrs {
            let raw = SockAddr::from_inet(&addr);
            assert_eq!(raw.as_inet(), Some(addr));
            assert_eq!(
                raw.family(),
                if addr.is_ipv4() {
                    libc::AF_INET
                } else {
                    libc::AF_INET6
                }
            );
            assert_eq!(
                addr_of(SockAddr::from_addr(&Addr::Inet(addr))),
                Addr::Inet(addr)
            );
        }
        let raw = SockAddr::from_inet(&"[::1]:9".parse().unwrap());
        assert_eq!(format!("{raw:?}"), "SockAddr([::1]:9)");
    }

    #[test]
    fn unix_addresses_round_trip() {
        let path = Path::new("/tmp/coronet.sock");
        assert_eq!(
            addr_of(SockAddr::from_unix_path(path)),
            Addr::Unix(path.into())
        );
        let name = b"coronet\0odd name";
        assert_eq!(
            addr_of(SockAddr::unix_abstract(name)),
            Addr::UnixAbstract(name.to_vec())
        );
        assert_eq!(addr_of(Ok(SockAddr::unnamed_unix())), Addr::UnixUnnamed);
        assert_eq!(
            addr_of(SockAddr::from_unix_path(Path::new(""))),
            Addr::UnixUnnamed
        );
        assert_eq!(SockAddr::unnamed_unix().as_inet(), None);
        // What recvfrom(2) reports for a datagram from an unnamed Unix socket.
        assert_eq!(addr_of(Ok(SockAddr::zeroed(0))), Addr::UnixUnnamed);
        assert!(SockAddr::zeroed(16).to_addr().is_err());
    }

    #[test]
    fn unix_addresses_from_the_kernel() {
        let dir = std::env::temp_dir().join(format!("coronet-socket-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bound.sock");
        // A leftover from an earlier run with the same pid would make bind fail.
        let _ = fs::remove_file(&path);
        let named = socket(libc::AF_UNIX, libc::SOCK_STREAM).unwrap();
        bind(named.as_fd(), &SockAddr::from_unix_path(&path).unwrap()).unwrap();
        assert_eq!(addr_of(local_addr(named.as_fd())), Addr::Unix(path.clone()));
        fs::remove_dir_all(&dir).unwrap();

        let name = format!("coronet-test-{}", std::process::id()).into_bytes();
        let abstract_ = socket(libc::AF_UNIX, libc::SOCK_STREAM).unwrap();
        bind(abstract_.as_fd(), &SockAddr::unix_abstract(&name).unwrap()).unwrap();
        assert_eq!(
            addr_of(local_addr(abstract_.as_fd())),
            Addr::UnixAbstract(name)
        );

        let unbound = socket(libc::AF_UNIX, libc::SOCK_DGRAM).unwrap();
        assert_eq!(addr_of(local_addr(unbound.as_fd())), Addr::UnixUnnamed);
    }

    #[test]
    fn rejects_bad_unix_paths() {
        let longest = "a".repeat(SUN_PATH_LEN - 1);
        assert!(SockAddr::from_unix_path(Path::new(&longest)).is_ok());
        let too_long = SockAddr::from_unix_path(Path::new(&"a".repeat(SUN_PATH_LEN))).unwrap_err();
        assert_eq!(too_long.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            too_long.to_string(),
            "unix socket path must be shorter than 108 bytes"
        );
        let nul = SockAddr::from_unix_path(Path::new("a\0b")).unwrap_err();
        assert_eq!(nul.kind(), io::ErrorKind::InvalidInput);
        assert!(SockAddr::unix_abstract(&[b'x'; SUN_PATH_LEN - 1]).is_ok());
        assert!(SockAddr::unix_abstract(&[b'x'; SUN_PATH_LEN]).is_err());
    }

    #[test]
    fn socketpair_connects_both_ways() {
        let (a, b) = socketpair(libc::AF_UNIX, libc::SOCK_STREAM).unwrap();
        assert_eq!(send(a.as_fd(), b"ping", SEND_FLAGS).unwrap(), 4);
        assert_eq!(recv_exact(b.as_fd(), 4), b"ping");
        assert_eq!(write(b.as_fd(), b"pong").unwrap(), 4);
        wait(a.as_fd(), libc::POLLIN);
        let mut buf = [0; 4];
        assert_eq!(read(a.as_fd(), &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"pong");
    }

    #[test]
    fn datagrams_carry_addresses() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let a = socket(libc::AF_INET, libc::SOCK_DGRAM).unwrap();
        let b = socket(libc::AF_INET, libc::SOCK_DGRAM).unwrap();
        bind(a.as_fd(), &SockAddr::from_inet(&any)).unwrap();
        bind(b.as_fd(), &SockAddr::from_inet(&any)).unwrap();
        let b_addr = local_addr(b.as_fd()).unwrap();
        let sent = send_to(a.as_fd(), b"dgram", &b_addr, SEND_FLAGS).unwrap();
        assert_eq!(sent, 5);
        wait(b.as_fd(), libc::POLLIN);
        let mut buf = [0; 16];
        let (n, from) = recv_from(b.as_fd(), &mut buf, 0).unwrap();
        assert_eq!(&buf[..n], b"dgram");
        assert_eq!(from.as_inet(), local_addr(a.as_fd()).unwrap().as_inet());
    }

    #[test]
    fn socket_options_round_trip() {
        let (client, _server) = tcp_pair();
        let fd = client.as_fd();
        for on in [1, 0] {
            setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on as c_int).unwrap();
            let got: c_int = getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY).unwrap();
            assert_eq!(got != 0, on != 0);
        }
        set_linger(fd, Some(Duration::from_secs(3))).unwrap();
        assert_eq!(linger(fd).unwrap(), Some(Duration::from_secs(3)));
        set_linger(fd, None).unwrap();
        assert_eq!(linger(fd).unwrap(), None);
        set_keepalive_period(fd, Duration::from_millis(1500)).unwrap();
        assert_eq!(keepalive_period(fd).unwrap(), Duration::from_secs(2));
        let intvl: c_int = getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL).unwrap();
        assert_eq!(intvl, 2);
        // The kernel answers SO_RCVBUF with 4 bytes, not the 8 a `linger` needs.
        let short: io::Result<libc::linger> = getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF);
        assert_eq!(short.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn keepalive_rounds_up_to_whole_seconds() {
        assert_eq!(keepalive_secs(Duration::ZERO), 1);
        assert_eq!(keepalive_secs(Duration::from_millis(1)), 1);
        assert_eq!(keepalive_secs(Duration::from_secs(15)), 15);
        assert_eq!(keepalive_secs(Duration::from_millis(15_001)), 16);
        assert_eq!(keepalive_secs(Duration::MAX), c_int::MAX);
    }

    #[test]
    fn refused_connect_reports_through_take_error() {
        let (lst, addr) = listener();
        drop(lst); // nothing listens on `addr` any more
        let client = socket(libc::AF_INET, libc::SOCK_STREAM).unwrap();
        match start_connect(client.as_fd(), addr) {
            Ok(()) => {
                wait(client.as_fd(), libc::POLLOUT);
                let err = take_error(client.as_fd())
                    .unwrap()
                    .expect("a pending error");
                assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
                assert!(
                    take_error(client.as_fd()).unwrap().is_none(),
                    "SO_ERROR is cleared"
                );
            }
            Err(err) => assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED)),
        }
    }

    #[test]
    fn writev_and_readv_move_many_slices() {
        let (client, server) = tcp_pair();
        let data: Vec<[u8; 3]> = (0..3000u32)
            .map(|i| [i as u8, (i >> 8) as u8, 0xAA])
            .collect();
        let slices: Vec<IoSlice<'_>> = data.iter().map(|d| IoSlice::new(d)).collect();
        let n = writev(client.as_fd(), &slices).unwrap();
        assert_eq!(n, MAX_IOV * 3, "one call passes at most {MAX_IOV} slices");
        let want: Vec<u8> = data[..MAX_IOV].concat();
        assert_eq!(recv_exact(server.as_fd(), n), want);

        send(client.as_fd(), b"abcdefghij", SEND_FLAGS).unwrap();
        wait(server.as_fd(), libc::POLLIN);
        let (mut x, mut y, mut z) = ([0; 3], [0; 3], [0; 8]);
        let mut bufs = [
            IoSliceMut::new(&mut x),
            IoSliceMut::new(&mut y),
            IoSliceMut::new(&mut z),
        ];
        let mut got = readv(server.as_fd(), &mut bufs).unwrap();
        while got < 10 {
            wait(server.as_fd(), libc::POLLIN);
            got += recv(server.as_fd(), &mut z[got - 6..], 0).unwrap();
        }
        assert_eq!((&x, &y, &z[..4]), (b"abc", b"def", &b"ghij"[..]));
    }

    #[test]
    fn sendfile_copies_a_file_into_a_socket() {
        let path = std::env::temp_dir().join(format!("coronet-sendfile-{}", std::process::id()));
        let contents: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&path, &contents).unwrap();
        let file = fs::File::open(&path).unwrap();
        fs::remove_file(&path).unwrap();
        let (client, server) = tcp_pair();
        let mut offset = 100i64;
        let mut sent = 0;
        while sent < 5000 {
            match sendfile(client.as_fd(), file.as_fd(), Some(&mut offset), 5000 - sent) {
                Ok(n) => sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    wait(client.as_fd(), libc::POLLOUT)
                }
                Err(err) => panic!("sendfile: {err}"),
            }
        }
        assert_eq!(offset, 5100);
        assert_eq!(recv_exact(server.as_fd(), 5000), &contents[100..5100]);
    }

    #[test]
    fn splice_moves_socket_to_socket_through_a_pipe() {
        let (src_client, src_server) = tcp_pair();
        let (dst_client, dst_server) = tcp_pair();
        let (pipe_r, pipe_w) = pipe2_nonblocking().unwrap();
        send(src_client.as_fd(), b"spliced bytes", SEND_FLAGS).unwrap();
        wait(src_server.as_fd(), libc::POLLIN);
        let n = splice(src_server.as_fd(), pipe_w.as_fd(), 1 << 16, SPLICE_FLAGS).unwrap();
        assert_eq!(n, 13);
        assert_eq!(
            splice(pipe_r.as_fd(), dst_client.as_fd(), n, SPLICE_FLAGS).unwrap(),
            n
        );
        assert_eq!(recv_exact(dst_server.as_fd(), n), b"spliced bytes");
        let err = splice(pipe_r.as_fd(), dst_client.as_fd(), 1, SPLICE_FLAGS).unwrap_err();
        assert_eq!(
            err.kind(),
            io::ErrorKind::WouldBlock,
            "an empty pipe never blocks the thread"
        );
    }

    #[test]
    fn somaxconn_is_positive() {
        assert!(somaxconn() > 0);
        assert_eq!(somaxconn(), somaxconn());
        assert_eq!(parse_somaxconn(Some("4096\n")), 4096);
        assert_eq!(parse_somaxconn(Some("65535")), 65535);
        assert_eq!(parse_somaxconn(Some("nonsense")), DEFAULT_SOMAXCONN);
        assert_eq!(parse_somaxconn(Some("0")), DEFAULT_SOMAXCONN);
        assert_eq!(parse_somaxconn(None), DEFAULT_SOMAXCONN);
    }

    #[test]
    fn poll_fd_reports_the_wake_fd() {
        let (a, b) = socketpair(libc::AF_UNIX, libc::SOCK_STREAM).unwrap();
        let (wake_r, wake_w) = pipe2_nonblocking().unwrap();
        assert_eq!(
            poll_fd(a.as_fd(), libc::POLLIN, Some(wake_r.as_fd()), 0).unwrap(),
            (false, false)
        );
        write(wake_w.as_fd(), b"!").unwrap();
        assert_eq!(
            poll_fd(a.as_fd(), libc::POLLIN, Some(wake_r.as_fd()), 10_000).unwrap(),
            (false, true)
        );
        send(b.as_fd(), b"x", SEND_FLAGS).unwrap();
        assert_eq!(
            poll_fd(a.as_fd(), libc::POLLIN, None, 10_000).unwrap(),
            (true, false)
        );
    }

    /// Whether a `SIGPIPE` is pending for this thread, consuming it if so.
    fn take_pending_sigpipe() -> bool {
        // SAFETY: `set` is a local sigset_t initialised by sigemptyset/sigpending before use;
        // a zero timeout makes sigtimedwait return at once.
        unsafe {
            let mut set: libc::sigset_t = mem::zeroed();
            libc::sigpending(&mut set);
            if libc::sigismember(&set, libc::SIGPIPE) != 1 {
                return false;
            }
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&set, ptr::null_mut(), &zero) == libc::SIGPIPE
        }
    }

    #[test]
    fn send_to_a_closed_peer_is_an_error_not_sigpipe() {
        // Block SIGPIPE in this thread only: a SIGPIPE the kernel raises stays pending (Linux
        // keeps blocked signals even when ignored, as Rust's runtime ignores SIGPIPE), so the
        // test can see it without risking the rest of the test binary.
        // SAFETY: `block`/`old` are local sigsets initialised before use.
        let old = unsafe {
            let (mut block, mut old): (libc::sigset_t, libc::sigset_t) =
                (mem::zeroed(), mem::zeroed());
            libc::sigemptyset(&mut block);
            libc::sigaddset(&mut block, libc::SIGPIPE);
            assert_eq!(libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old), 0);
            old
        };
        let (client, server) = tcp_pair();
        drop(server);
        // The first sends may be accepted before the peer's reset arrives.
        let mut first_err = None;
        for _ in 0..500 {
            match send(client.as_fd(), b"data", SEND_FLAGS) {
                Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                Err(err) => {
                    first_err = Some(err);
                    break;
                }
            }
        }
        let first = first_err
            .expect("send to a closed peer kept succeeding")
            .raw_os_error();
        assert!(
            matches!(first, Some(libc::EPIPE | libc::ECONNRESET)),
            "got {first:?}"
        );
        let again = send(client.as_fd(), b"data", SEND_FLAGS).unwrap_err();
        assert_eq!(again.raw_os_error(), Some(libc::EPIPE));
        let vectored =
            writev(client.as_fd(), &[IoSlice::new(b"da"), IoSlice::new(b"ta")]).unwrap_err();
        assert_eq!(vectored.raw_os_error(), Some(libc::EPIPE));
        let no_sigpipe = !take_pending_sigpipe();
        // Control: plain write(2) does raise SIGPIPE, so the check above can see one.
        let plain = write(client.as_fd(), b"data").unwrap_err();
        let control = take_pending_sigpipe();
        // SAFETY: restores this thread's signal mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()) };
        assert!(no_sigpipe, "send/writev raised SIGPIPE");
        assert_eq!(plain.raw_os_error(), Some(libc::EPIPE));
        assert!(control, "write(2) should have raised SIGPIPE");
    }
}
