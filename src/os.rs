//! std's `std::os` paths, for the import swap: `use std::os::unix::net::…` becomes
//! `use coronet::os::unix::net::…` with every name kept.

/// Unix-specific networking, as `std::os::unix`.
pub mod unix {
    /// `std::os::unix::net`'s names: coronet's Unix sockets, std's own `SocketAddr` (the Unix
    /// one, which [`net`](crate::net) calls `UnixSocketAddr`) and `Incoming`
    /// ([`UnixIncoming`](crate::net::UnixIncoming) there), so that code which imports the
    /// module (`use std::os::unix::net as unix_net;`) or `SocketAddr` from it ports unchanged.
    ///
    /// ```
    /// use coronet::os::unix::net::{Incoming, SocketAddr, UnixListener, UnixStream};
    ///
    /// let dir = std::env::temp_dir().join(format!("coronet-os-doc-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&dir);
    /// let l = UnixListener::bind(&dir).unwrap();
    /// let addr: SocketAddr = l.local_addr().unwrap();
    /// let _c = UnixStream::connect(addr.as_pathname().unwrap()).unwrap();
    /// let mut incoming: Incoming<'_> = l.incoming();
    /// assert!(incoming.next().unwrap().is_ok());
    /// std::fs::remove_file(&dir).unwrap();
    /// ```
    pub mod net {
        pub use crate::net::{UnixDatagram, UnixIncoming as Incoming, UnixListener, UnixStream};
        pub use std::os::unix::net::SocketAddr;
    }
}
