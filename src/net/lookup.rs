//! Name resolution off the worker threads.
//!
//! `getaddrinfo` blocks, so a coroutine that resolves a name runs it on the blocking pool
//! and parks; at most [`MAX_LOOKUPS`] run at once (Go's cgo resolver limit), the rest wait
//! their turn parked. Literal addresses never leave the caller.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::Mutex;

use crate::runtime::blocking::run_scoped;
use crate::runtime::park;
use crate::runtime::task::{Task, Wait};

/// Lookups in flight at once, as Go limits its cgo resolver threads.
pub const MAX_LOOKUPS: usize = 500;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static QUEUE: Mutex<VecDeque<Arc<Task>>> = Mutex::new(VecDeque::new());

/// A slot among the `MAX_LOOKUPS`; freed on drop.
struct Permit;

impl Permit {
    fn acquire() -> Permit {
        loop {
            let n = IN_FLIGHT.load(Ordering::SeqCst);
            if n < MAX_LOOKUPS {
                if IN_FLIGHT
                    .compare_exchange(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return Permit;
                }
                continue;
            }
            // register, check again, then park
            let me = park::current();
            QUEUE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(me.clone());
            if IN_FLIGHT.load(Ordering::SeqCst) >= MAX_LOOKUPS {
                park::park(Wait::Blocking);
            }
            QUEUE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|t| !Arc::ptr_eq(t, &me));
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        let next = QUEUE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .front()
            .cloned();
        if let Some(t) = next {
            t.unpark();
        }
    }
}

/// Resolves any `ToSocketAddrs` without blocking a worker thread.
///
/// A trip to the blocking pool costs more than a `send_to` or a loopback connect, so the
/// forms that cannot block resolve right here: std's impls whose iterator is
/// `option::IntoIter<SocketAddr>` (`SocketAddr`, `SocketAddrV4/V6`, `(IpAddr, u16)`, …, and
/// references to them) or a slice's (`&[SocketAddr]`). The check compares type names
/// because `A` need not be `'static`, which `TypeId` would require; a foreign type that
/// matched by accident would only resolve on the caller. Everything else (strings, which
/// may be host names) goes to the pool.
pub(crate) fn resolve<A: ToSocketAddrs + Send>(addr: A) -> io::Result<Vec<SocketAddr>> {
    if is_literal::<A>() {
        return addr.to_socket_addrs().map(Iterator::collect);
    }
    let _permit = Permit::acquire();
    run_scoped(move || addr.to_socket_addrs().map(Iterator::collect))
}

/// Whether `A`'s `to_socket_addrs` is one of std's that never blocks (see `resolve`).
pub(crate) fn is_literal<A: ToSocketAddrs>() -> bool {
    use std::any::type_name;
    let iter = type_name::<A::Iter>();
    iter == type_name::<std::option::IntoIter<SocketAddr>>()
        || iter == type_name::<std::iter::Cloned<std::slice::Iter<'_, SocketAddr>>>()
}

/// Resolves `"host:port"` to its socket addresses, parking the coroutine (not the worker)
/// while `getaddrinfo` runs.
///
/// # Errors
///
/// The resolver's error, with kind `InvalidInput` for a string without a port.
///
/// ```
/// let addrs: Vec<_> = coronet::run(|| coronet::net::lookup_host("localhost:80").unwrap().collect());
/// assert!(addrs.iter().all(|a| a.port() == 80 && a.ip().is_loopback()));
/// ```
pub fn lookup_host(host: &str) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    resolve(host).map(Vec::into_iter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    #[test]
    fn literal_addresses_skip_the_resolver() {
        assert!(is_literal::<SocketAddr>());
        assert!(is_literal::<&SocketAddr>());
        assert!(is_literal::<SocketAddrV4>());
        assert!(is_literal::<SocketAddrV6>());
        assert!(is_literal::<(IpAddr, u16)>());
        assert!(is_literal::<(Ipv4Addr, u16)>());
        assert!(is_literal::<(Ipv6Addr, u16)>());
        assert!(is_literal::<&[SocketAddr]>());
        // These may name a host, and resolving a host blocks.
        assert!(!is_literal::<&str>());
        assert!(!is_literal::<String>());
        assert!(!is_literal::<(&str, u16)>());
        assert!(!is_literal::<(String, u16)>());
    }
}
