//! `From<OwnedFd>` for every socket type, and `From<T> for OwnedFd` (std has both since
//! Rust 1.63, so ported code may use either direction).
//!
//! Both are written in terms of the types' own `FromRawFd` and `IntoRawFd`, so they take the
//! same path: `OwnedFd` → socket adopts the fd exactly as `from_raw_fd` does (switched to
//! nonblocking mode, addresses read from the kernel, registered with the netpoller on first
//! use), and socket → `OwnedFd` gives it away exactly as `into_raw_fd` does (deregistered
//! from the netpoller, left open and still `O_NONBLOCK`; convert into the std type instead,
//! with `From`, to get a std socket back in the mode its user set: blocking unless
//! `set_nonblocking(true)`).
//!
//! As with std, any `OwnedFd` is accepted: an fd that is not a socket of the right kind
//! only makes the socket calls fail (`ENOTSOCK`, …); nothing unsound can follow.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use super::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};

macro_rules! owned_fd_conversions {
    ($($ty:ident),* $(,)?) => {$(
        impl From<OwnedFd> for $ty {
            #[doc = concat!(
                "Adopts `fd` as a ", stringify!($ty), ", switching it to nonblocking mode ",
                "(the same as `from_raw_fd(fd.into_raw_fd())`)."
            )]
            fn from(fd: OwnedFd) -> $ty {
                // SAFETY: an `OwnedFd` owns its fd exclusively and keeps it open, and
                // `into_raw_fd` hands that ownership on without closing it, so
                // `from_raw_fd` receives an open fd that nothing else will close.
                unsafe { $ty::from_raw_fd(fd.into_raw_fd()) }
            }
        }

        impl From<$ty> for OwnedFd {
            /// Gives the fd away open, as `into_raw_fd` does (still nonblocking).
            fn from(s: $ty) -> OwnedFd {
                // SAFETY: `into_raw_fd` returns the socket's open fd and gives up ownership
                // of it without closing it, so the new `OwnedFd` is its only owner.
                unsafe { OwnedFd::from_raw_fd(s.into_raw_fd()) }
            }
        }
    )*};
}

owned_fd_conversions!(
    TcpListener,
    TcpStream,
    UdpSocket,
    UnixListener,
    UnixStream,
    UnixDatagram,
);
