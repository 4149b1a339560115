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

use crate::chan;
use crate::context::{Context, ContextError};
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

/// Resolves `addr` unless `ctx` is done first: the lookup runs on a helper coroutine (which
/// parks on the blocking pool) and the caller waits for its answer or for `ctx.done()`,
/// whichever comes first. A lookup cut short runs on and its answer is dropped: a
/// `getaddrinfo` cannot be interrupted, only no longer waited for (Go's cgo resolver does
/// the same). Literal addresses answer at once, whatever the state of `ctx`.
pub(crate) fn resolve_context<A: ToSocketAddrs + Send + 'static>(
    ctx: &Context,
    addr: A,
) -> Result<io::Result<Vec<SocketAddr>>, ContextError> {
    if is_literal::<A>() {
        // nothing to wait for; the caller checks `ctx` next to each address it tries
        return Ok(addr.to_socket_addrs().map(Iterator::collect));
    }
    if let Some(e) = ctx.err() {
        return Err(e);
    }
    let (tx, rx) = chan::bounded(1);
    crate::go(move || {
        let _ = tx.try_send(resolve(addr)); // fails only if the caller gave up
    });
    crate::select! {
        recv(rx) -> r => Ok(r.unwrap_or_else(|_| Err(io::Error::other(
            "name resolution could not start: no coroutine stack could be mapped",
        )))),
        recv(ctx.done()) -> _ => Err(ctx.err().unwrap_or(ContextError::Canceled)),
    }
}

/// Like [`lookup_host`], but gives up as soon as `ctx` is cancelled or its deadline passes.
///
/// # Errors
///
/// As `lookup_host`; and when `ctx` ends first, Go's wording with the host name:
/// `lookup example.com: operation was canceled` (kind `Other`) or `lookup example.com: i/o
/// timeout` (kind `TimedOut`). [`ContextError::of`] tells which.
///
/// ```
/// use coronet::context::{Context, ContextError};
/// let (ctx, cancel) = Context::background().with_cancel();
/// let addrs: Vec<_> = coronet::net::lookup_host_context(&ctx, "localhost:80").unwrap().collect();
/// assert!(addrs.iter().all(|a| a.port() == 80));
/// cancel.cancel();
/// let err = coronet::net::lookup_host_context(&ctx, "localhost:80").unwrap_err();
/// assert_eq!(err.to_string(), "lookup localhost: operation was canceled");
/// assert_eq!(ContextError::of(&err), Some(ContextError::Canceled));
/// ```
pub fn lookup_host_context(
    ctx: &Context,
    host: &str,
) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    match resolve_context(ctx, host.to_owned()) {
        Ok(r) => r.map(Vec::into_iter),
        Err(e) => Err(lookup_error(host, e.to_net())),
    }
}

/// Go's `DNSError` shape: `lookup {name}: {cause}`, with the port left out of the name.
fn lookup_error(host: &str, cause: io::Error) -> io::Error {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    io::Error::new(
        cause.kind(),
        LookupError {
            name: name.to_owned(),
            cause,
        },
    )
}

#[derive(Debug)]
struct LookupError {
    name: String,
    cause: io::Error,
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lookup {}: {}", self.name, self.cause)
    }
}

impl std::error::Error for LookupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
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
