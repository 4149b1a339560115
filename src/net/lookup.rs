//! Name resolution off the worker threads.
//!
//! `getaddrinfo` blocks, so a coroutine that resolves a name runs it on the blocking pool
//! and parks; at most [`MAX_LOOKUPS`] run at once (Go's cgo resolver limit), the rest wait
//! their turn parked. Socket address values (`SocketAddr`, `(IpAddr, u16)`, slices of them),
//! strings holding an IP literal (`"127.0.0.1:80"`), Go's empty host (`":80"`) and
//! malformed strings never leave the caller; any other string takes the trip, since it may
//! be a name.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::any::{erased_type_id, view};
use crate::chan;
use crate::context::{Context, ContextError};
use crate::runtime::blocking::run_scoped;
use crate::runtime::park;
use crate::runtime::task::{Task, Wait};

/// Lookups in flight at once, as Go limits its cgo resolver threads; further lookups wait,
/// parked, for a slot.
///
/// More lookups than this can be started at once; the extra ones only queue, they never fail:
///
/// ```
/// use coronet::net::{lookup_host, MAX_LOOKUPS};
///
/// let n = MAX_LOOKUPS + 20;
/// let all: Vec<_> = (0..n)
///     .map(|_| coronet::go(|| lookup_host("localhost:80").map(|a| a.count())))
///     .collect();
/// for h in all {
///     assert!(h.join().unwrap().unwrap() >= 1);
/// }
/// ```
pub const MAX_LOOKUPS: usize = 500;

static LOOKUPS: Limiter = Limiter::new(MAX_LOOKUPS);

/// A counting semaphore whose waiters park. A released slot is handed straight to the
/// oldest waiter (it is never free in between), so no wake-up can be lost or stolen:
///
/// | event                   | `in_flight` | queue                         |
/// |-------------------------|-------------|-------------------------------|
/// | acquire, room           | += 1        | —                             |
/// | acquire, full           | —           | push waiter, park until given |
/// | release, queue empty    | -= 1        | —                             |
/// | release, queue non-empty| unchanged   | pop front, mark given, unpark |
struct Limiter {
    max: usize,
    state: Mutex<LimiterState>,
}

struct LimiterState {
    in_flight: usize,
    queue: VecDeque<Arc<Turn>>,
}

/// A queued waiter; `given` is set (under the lock) when a slot is handed to it.
struct Turn {
    task: Arc<Task>,
    given: AtomicBool,
}

/// A slot of a `Limiter`; released on drop.
struct Permit<'a>(&'a Limiter);

impl Limiter {
    const fn new(max: usize) -> Limiter {
        Limiter {
            max,
            state: Mutex::new(LimiterState {
                in_flight: 0,
                queue: VecDeque::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot, parking (a thread: blocking) until one is handed over.
    fn acquire(&self) -> Permit<'_> {
        let turn = {
            let mut st = self.state();
            if st.in_flight < self.max {
                st.in_flight += 1;
                return Permit(self);
            }
            let turn = Arc::new(Turn {
                task: park::current(),
                given: AtomicBool::new(false),
            });
            st.queue.push_back(turn.clone());
            turn
        };
        // wake-ups may be spurious: the flag says whether the slot is ours
        while !turn.given.load(Ordering::Acquire) {
            park::park(Wait::Blocking);
        }
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let next = {
            let mut st = self.0.state();
            match st.queue.pop_front() {
                Some(t) => {
                    t.given.store(true, Ordering::Release);
                    Some(t)
                }
                None => {
                    st.in_flight -= 1;
                    None
                }
            }
        };
        // collected under the lock, woken after it
        if let Some(t) = next {
            t.task.unpark();
        }
    }
}

/// Whether `A::to_socket_addrs` only copies addresses it already holds — std's impls for
/// `SocketAddr`, `SocketAddrV4/V6`, `(IpAddr, u16)` and friends, slices of addresses, and
/// references to these — so it can run in place without a trip to the blocking pool.
///
/// Decided by the type's name. That is a hint, not an identity (names are not guaranteed
/// stable or unique), which is fine here: a wrong "no" only costs the trip, and a wrong
/// "yes" needs a type named like std's that lives in `std::net`/`core::net`. The dialer asks
/// too (through [`may_look_up`]), to know whether there is a lookup for its deadline to
/// bound; either wrong answer there only changes which timeout error it reports.
pub(crate) fn copies_only<A: ?Sized>() -> bool {
    const LITERAL: &[&str] = &[
        "SocketAddr",
        "SocketAddrV4",
        "SocketAddrV6",
        "(IpAddr, u16)",
        "(Ipv4Addr, u16)",
        "(Ipv6Addr, u16)",
        "[SocketAddr]",
    ];
    let name = std::any::type_name::<A>().trim_start_matches('&');
    // Shorten every path to its last segment, refusing paths outside std's net module:
    // "(core::net::ip_addr::IpAddr, u16)" becomes "(IpAddr, u16)". Into a stack buffer:
    // UDP's `send_to` asks on every datagram, so this must not allocate. A name too long
    // for the buffer is longer than every literal, so it is not one.
    let mut out = [0u8; 32];
    let mut len = 0;
    let mut push = |s: &str| -> bool {
        let Some(dst) = out.get_mut(len..len + s.len()) else {
            return false;
        };
        dst.copy_from_slice(s.as_bytes());
        len += s.len();
        true
    };
    let mut rest = name;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let (path, tail) = rest.split_at(end);
        let segment = match path.rfind("::") {
            Some(i) if path.starts_with("std::net::") || path.starts_with("core::net::") => {
                &path[i + 2..]
            }
            Some(_) => return false,
            None => path,
        };
        // then one separator (space, comma, bracket, paren) as is
        let sep = tail.chars().next().map_or(0, char::len_utf8);
        if !push(segment) || !push(&tail[..sep]) {
            return false;
        }
        rest = &tail[sep..];
    }
    LITERAL.iter().any(|l| l.as_bytes() == &out[..len])
}

/// A host and port in one of std's string forms, borrowed from the caller's value.
#[derive(Clone, Copy)]
enum HostRef<'a> {
    /// `"host:port"`
    Joined(&'a str),
    /// `("host", port)`
    Split(&'a str, u16),
}

impl<'a> HostRef<'a> {
    /// `addr` viewed as one, if it is `&str`, `String`, `&String`, `(&str, u16)`, `(String,
    /// u16)`, a reference to `&str` or to either pair (a generic wrapper's `&addr`), or a
    /// [`HostName`].
    fn of<A: ?Sized>(addr: &'a A) -> Option<HostRef<'a>> {
        let id = erased_type_id::<A>();
        // SAFETY (each arm): the ids say `A` *is* the named type up to lifetimes. `&'a A` is
        // well-formed, so each lifetime inside `A` outlives `'a`, and each view names `'a`
        // for it: a shortening, in covariant positions (shared references and tuples of
        // them). The value is only read.
        unsafe {
            if id == erased_type_id::<&str>() {
                Some(HostRef::Joined(view::<A, &'a str>(addr)))
            } else if id == erased_type_id::<String>() {
                Some(HostRef::Joined(view::<A, String>(addr)))
            } else if id == erased_type_id::<&String>() {
                Some(HostRef::Joined(view::<A, &'a String>(addr)))
            } else if id == erased_type_id::<(&str, u16)>() {
                let &(host, port) = view::<A, (&'a str, u16)>(addr);
                Some(HostRef::Split(host, port))
            } else if id == erased_type_id::<(String, u16)>() {
                let (host, port) = view::<A, (String, u16)>(addr);
                Some(HostRef::Split(host, *port))
            } else if id == erased_type_id::<&&str>() {
                Some(HostRef::Joined(view::<A, &'a &'a str>(addr)))
            } else if id == erased_type_id::<&(&str, u16)>() {
                let &&(host, port) = view::<A, &'a (&'a str, u16)>(addr);
                Some(HostRef::Split(host, port))
            } else if id == erased_type_id::<&(String, u16)>() {
                let (host, port) = *view::<A, &'a (String, u16)>(addr);
                Some(HostRef::Split(host, *port))
            } else if id == erased_type_id::<HostName>() {
                Some(match view::<A, HostName>(addr) {
                    HostName::Joined(s) => HostRef::Joined(s),
                    HostName::Split(h, p) => HostRef::Split(h, *p),
                })
            } else {
                None
            }
        }
    }

    /// Go's empty host, `":8080"` or `("", 8080)`: every local address to listen on, this
    /// host to dial. std looks `""` up and fails; coronet answers as Go does, with the
    /// unspecified addresses, IPv6 first: a listener on `[::]` takes IPv4 too (unless the
    /// system makes `IPV6_V6ONLY` the default: `net.ipv6.bindv6only`), and a `bind` or
    /// dial tries the next address when one fails, so `0.0.0.0` serves where IPv6 is off.
    /// Linux takes a connect to either as one to its loopback address, as Go's "local
    /// system" dial does.
    fn every_local(self) -> Option<[SocketAddr; 2]> {
        let port = match self {
            HostRef::Joined(s) => s.strip_prefix(':')?.parse::<u16>().ok()?,
            HostRef::Split("", port) => port,
            HostRef::Split(..) => return None,
        };
        Some([
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port),
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
        ])
    }

    /// The addresses, if they need no lookup: an IP literal, or Go's empty host.
    fn in_place(self) -> Option<Vec<SocketAddr>> {
        match self.literal() {
            Some(a) => Some(vec![a]),
            None => self.every_local().map(Vec::from),
        }
    }

    /// The address, if the host is an IP literal. std's `to_socket_addrs` tries exactly
    /// these parses before it looks anything up (`str::parse::<SocketAddr>` for the joined
    /// form, `Ipv4Addr` then `Ipv6Addr` for the split one), so the answer is std's own.
    fn literal(self) -> Option<SocketAddr> {
        match self {
            HostRef::Joined(s) => s.parse().ok(),
            HostRef::Split(host, port) => host
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, port)),
        }
    }
}

/// The address `addr` spells, if it is one of std's string forms holding an IP literal
/// (`"127.0.0.1:80"`, `"[::1]:80"`, `("10.0.0.1", 80)`). The tests' view of `in_place`.
#[cfg(test)]
pub(crate) fn literal<A: ?Sized>(addr: &A) -> Option<SocketAddr> {
    HostRef::of(addr).and_then(HostRef::literal)
}

/// The addresses `addr` spells, if it is one of std's string forms that needs no lookup:
/// an IP literal (`"127.0.0.1:80"`, `"[::1]:80"`, `("10.0.0.1", 80)`) or Go's empty host
/// (`":8080"`). So no trip to the blocking pool (with it, a loopback dial from a coroutine
/// took 3.5 times as long), and no lookup for a dialer's deadline to bound. Go answers
/// these at once too.
fn in_place<A: ?Sized>(addr: &A) -> Option<Vec<SocketAddr>> {
    HostRef::of(addr).and_then(HostRef::in_place)
}

/// Whether resolving `addr` may look a name up: false for socket address values
/// ([`copies_only`]) and for strings that need no lookup ([`in_place`]).
pub(crate) fn may_look_up<A: ?Sized>(addr: &A) -> bool {
    !copies_only::<A>() && in_place(addr).is_none()
}

/// A copy of a host name given in one of std's string forms: `dial` can hand it to a lookup
/// that outlives the call, and a failed lookup names its host with it, as Go's errors do.
pub(crate) enum HostName {
    /// `"host:port"`
    Joined(String),
    /// `("host", port)`
    Split(String, u16),
}

impl HostName {
    /// `addr` copied, if it is `&str`, `String`, `&String`, `(&str, u16)` or `(String, u16)`.
    pub(crate) fn of<A: ?Sized>(addr: &A) -> Option<HostName> {
        HostRef::of(addr).map(|r| match r {
            HostRef::Joined(s) => HostName::Joined(s.to_owned()),
            HostRef::Split(h, p) => HostName::Split(h.to_owned(), p),
        })
    }

    /// The host alone, as Go's `lookup HOST: …` names it.
    pub(crate) fn host(&self) -> &str {
        match self {
            HostName::Joined(s) => s.rsplit_once(':').map_or(s.as_str(), |(h, _)| h),
            HostName::Split(h, _) => h,
        }
    }
}

impl Clone for HostName {
    fn clone(&self) -> HostName {
        match self {
            HostName::Joined(s) => HostName::Joined(s.clone()),
            HostName::Split(h, p) => HostName::Split(h.clone(), *p),
        }
    }
}

impl ToSocketAddrs for HostName {
    type Iter = std::vec::IntoIter<SocketAddr>;

    /// std's parsing and lookup for the original form.
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        #[cfg(test)]
        super::dial::tests::slow_resolver(self);
        match self {
            HostName::Joined(s) => s.to_socket_addrs(),
            HostName::Split(host, port) => (host.as_str(), *port).to_socket_addrs(),
        }
    }
}

/// Resolves a `ToSocketAddrs` as std's signatures take it, without `Send`: addresses that
/// need no lookup (socket address values, IP literals in a string) are answered in place;
/// a host name in one of std's string forms is copied and looked up on the blocking pool
/// (as [`resolve_send`] does); a value of the caller's own type, which may borrow and need not be
/// `Send`, resolves on the caller, which in a coroutine blocks its worker for the lookup
/// (docs/porting.md; `Dialer::dial` takes such values to the pool). With the bound,
/// generic code written against std's (`fn open<A: ToSocketAddrs>(a: A)`, calling
/// `TcpStream::connect(a)`) did not compile after the import swap (found by an audit
/// porting the `memcache` crate).
pub(crate) fn resolve<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    if copies_only::<A>() {
        return addr.to_socket_addrs().map(Iterator::collect);
    }
    if let Some(r) = answer_in_place(&addr) {
        return r;
    }
    match HostName::of(&addr) {
        Some(name) => look_up_on_pool(name),
        None => addr.to_socket_addrs().map(Iterator::collect),
    }
}

/// Resolves any `ToSocketAddrs + Send` without blocking a worker thread: addresses that
/// need no lookup are answered in place; anything else (a host name, or a value that may
/// hold one) runs on the blocking pool, at most [`MAX_LOOKUPS`] at a time.
///
/// Errors for std's string forms are Go's: a malformed one says what is wrong and where
/// ([`malformed`]: `address 127.0.0.1: missing port in address`), found before any trip
/// to the pool; a failed lookup names the host, `lookup host.invalid: no such host` when
/// the resolver knows no such name, else with the resolver's own words.
pub(crate) fn resolve_send<A: ToSocketAddrs + Send>(addr: A) -> io::Result<Vec<SocketAddr>> {
    if copies_only::<A>() {
        return addr.to_socket_addrs().map(Iterator::collect);
    }
    if let Some(r) = answer_in_place(&addr) {
        return r;
    }
    look_up_on_pool(addr)
}

/// The blocking pool's part of [`resolve_send`], for an `addr` that needs a lookup.
fn look_up_on_pool<A: ToSocketAddrs + Send>(addr: A) -> io::Result<Vec<SocketAddr>> {
    let _permit = LOOKUPS.acquire();
    // `addr` comes back with the answer, to name its host should the lookup have failed
    let (r, addr) = run_scoped(move || (addr.to_socket_addrs().map(Iterator::collect), addr));
    r.map_err(|e| match HostName::of(&addr) {
        Some(name) if e.kind() != io::ErrorKind::InvalidInput => failed_lookup(name.host(), e),
        _ => e,
    })
}

/// The answer for one of std's string forms that needs no lookup: its addresses
/// ([`in_place`]), or the error for a malformed one ([`malformed`]).
fn answer_in_place<A: ?Sized>(addr: &A) -> Option<io::Result<Vec<SocketAddr>>> {
    let r = HostRef::of(addr)?;
    match r.in_place() {
        Some(v) => Some(Ok(v)),
        None => malformed(r).map(Err),
    }
}

/// Go's `AddrError` for a string that std's `to_socket_addrs` refuses, kind
/// `InvalidInput`, e.g. `address 127.0.0.1: missing port in address` or `address 99999:
/// invalid port`. std's own words (`invalid socket address`, `invalid port value`) said
/// neither what was wrong nor where.
///
/// It refuses nothing std takes: std splits `"host:port"` at the last colon and needs a
/// `u16` after it, then looks the host up; each arm below is one of the first two steps
/// failing, or the third bound to: a host with a colon that is no IPv6 literal (`"1:2:3"`,
/// Go's `too many colons in address`), which no resolver answers, since no name has a
/// colon in it. std would hand it to the system's resolver all the same, and a DNS server
/// would be asked about it.
fn malformed(r: HostRef<'_>) -> Option<io::Error> {
    let (addr, why) = match r {
        HostRef::Joined("") => (String::new(), "missing address"),
        HostRef::Joined(s) => match s.rsplit_once(':') {
            None => (s.to_owned(), "missing port in address"),
            Some((_, port)) if port.parse::<u16>().is_err() => {
                // "[::1]" splits inside the brackets, "host:" has nothing after the colon
                if port.is_empty() || (s.starts_with('[') && s.ends_with(']')) {
                    (s.to_owned(), "missing port in address")
                } else {
                    (port.to_owned(), "invalid port")
                }
            }
            // (a literal with a zone, "fe80::1%eth0", is the resolver's to parse)
            Some((host, _))
                if host.contains(':')
                    && !host.starts_with('[')
                    && !host.contains('%')
                    && host.parse::<Ipv6Addr>().is_err() =>
            {
                (s.to_owned(), "too many colons in address")
            }
            // ":8080" is Go's empty host (`every_local`); a bare "::1" is left to std,
            // which takes it as host "::", port 1 (Go says "too many colons" there).
            Some(_) => return None,
        },
        HostRef::Split(..) => return None,
    };
    Some(io::Error::new(
        io::ErrorKind::InvalidInput,
        AddrError { addr, why },
    ))
}

/// Go's `AddrError`: `address ADDR: WHY`, or `WHY` alone when there is no address.
#[derive(Debug)]
struct AddrError {
    addr: String,
    why: &'static str,
}

impl std::fmt::Display for AddrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.addr.is_empty() {
            f.write_str(self.why)
        } else {
            write!(f, "address {}: {}", self.addr, self.why)
        }
    }
}

impl std::error::Error for AddrError {}

/// A failed lookup of `host` as Go words it: `lookup HOST: no such host` (kind `NotFound`)
/// when the resolver answered that the name does not exist or has no address, else
/// `lookup HOST: <the resolver's words>` with std's kind. std's error stays the `source()`.
fn failed_lookup(host: &str, e: io::Error) -> io::Error {
    if !no_such_host(&e) {
        return lookup_error_named(host, e);
    }
    io::Error::new(
        io::ErrorKind::NotFound,
        LookupError {
            name: host.to_owned(),
            words: Some("no such host"),
            cause: e,
        },
    )
}

/// Whether std's lookup error is the resolver's `EAI_NONAME` or `EAI_NODATA` (Go's cgo
/// resolver maps both to "no such host"). std keeps only the text, `failed to lookup
/// address information: <gai_strerror(code)>`, so the text is compared with the system's
/// own for each code, in whatever words and language the C library uses.
fn no_such_host(e: &io::Error) -> bool {
    let text = e.to_string();
    [libc::EAI_NONAME, libc::EAI_NODATA]
        .into_iter()
        .any(|code| {
            // SAFETY: `gai_strerror` takes any code and returns a pointer to a static,
            // NUL-terminated string (glibc: "Unknown error" for codes it does not know); the
            // null check covers a C library that would return none.
            let words = unsafe { libc::gai_strerror(code) };
            !words.is_null()
            // SAFETY: non-null, static and NUL-terminated, as above.
            && unsafe { std::ffi::CStr::from_ptr(words) }
                .to_str()
                .is_ok_and(|w| !w.is_empty() && text.ends_with(w))
        })
}

/// Resolves `"host:port"` to its socket addresses, parking the coroutine (not the worker)
/// while `getaddrinfo` runs.
///
/// # Errors
///
/// Go's words, where std had its own:
/// - `lookup HOST: no such host` (kind `NotFound`) when the resolver knows no such name;
///   any other failure of the resolver as `lookup HOST: <its words>`, with std's kind;
/// - malformed input, kind `InvalidInput`, found without a lookup: `address localhost:
///   missing port in address`, `address 99999: invalid port`, `address 1:2:3: too many
///   colons in address` (a host with a colon that is no IPv6 literal), `missing address`
///   (an empty string).
///
/// An empty host, `":8080"`, is Go's "every local address": `[::]:8080` and
/// `0.0.0.0:8080`, without a lookup (std refuses it).
///
/// std's error is the `source()` of a failed lookup.
///
/// ```
/// let e = coronet::net::lookup_host("localhost").unwrap_err();
/// assert_eq!(e.to_string(), "address localhost: missing port in address");
/// let addrs: Vec<_> = coronet::run(|| coronet::net::lookup_host("localhost:80").unwrap().collect());
/// assert!(addrs.iter().all(|a| a.port() == 80 && a.ip().is_loopback()));
/// ```
pub fn lookup_host(host: &str) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    resolve(host).map(Vec::into_iter)
}

/// Resolves `addr` unless `ctx` is done first: the lookup runs on a helper coroutine (which
/// parks on the blocking pool; for a plain thread's call, a helper thread, which leaves the
/// runtime unstarted) and the caller waits for its answer or for `ctx.done()`, whichever
/// comes first. A lookup cut short runs on and its answer is dropped: a
/// `getaddrinfo` cannot be interrupted, only no longer waited for (Go's cgo resolver does
/// the same). Strings that need no lookup (an IP literal, Go's empty host, a malformed
/// one) answer at once, whatever the state of `ctx`. A panic of the lookup (a
/// `ToSocketAddrs` of the caller's own) is resumed on the caller, as a lookup made in
/// place would raise it (found by an audit: it came back as "name resolution could not
/// start").
pub(crate) fn resolve_context<A: ToSocketAddrs + Send + 'static>(
    ctx: &Context,
    addr: A,
) -> Result<io::Result<Vec<SocketAddr>>, ContextError> {
    if copies_only::<A>() {
        // nothing to wait for; the caller checks `ctx` next to each address it tries
        return Ok(addr.to_socket_addrs().map(Iterator::collect));
    }
    if let Some(r) = answer_in_place(&addr) {
        return Ok(r);
    }
    if let Some(e) = ctx.err() {
        return Err(e);
    }
    let (tx, rx) = chan::bounded(1);
    crate::runtime::go_beside("coronet-lookup", move || {
        let r = panic::catch_unwind(AssertUnwindSafe(|| resolve_send(addr)));
        let _ = tx.try_send(r); // fails only if the caller gave up
    });
    crate::select! {
        recv(rx) -> r => match r {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(payload)) => crate::runtime::resume_here(payload),
            Err(_) => Ok(Err(io::Error::other(
                "name resolution could not start: no coroutine stack or thread to run it",
            ))),
        },
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
    lookup_error_named(name, cause)
}

/// Go's `lookup NAME: cause`, keeping the cause's kind and giving it as `source()`.
fn lookup_error_named(name: &str, cause: io::Error) -> io::Error {
    io::Error::new(
        cause.kind(),
        LookupError {
            name: name.to_owned(),
            words: None,
            cause,
        },
    )
}

/// Go's `DNSError`: `lookup NAME: WORDS`, WORDS being Go's own (`no such host`) where it
/// has them, else the cause's.
#[derive(Debug)]
struct LookupError {
    name: String,
    words: Option<&'static str>,
    cause: io::Error,
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.words {
            Some(words) => write!(f, "lookup {}: {words}", self.name),
            None => write!(f, "lookup {}: {}", self.name, self.cause),
        }
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
    use std::time::Duration;

    #[test]
    fn std_string_forms_and_references_to_them_are_host_names() {
        let joined = |n: Option<HostName>| match n {
            Some(HostName::Joined(s)) => s,
            _ => panic!("not a joined host name"),
        };
        let split = |n: Option<HostName>| match n {
            Some(HostName::Split(h, p)) => (h, p),
            _ => panic!("not a split host name"),
        };
        let s = String::from("h:1");
        assert_eq!(joined(HostName::of(&"h:1")), "h:1");
        assert_eq!(joined(HostName::of(&&"h:1")), "h:1");
        assert_eq!(joined(HostName::of(&s)), "h:1");
        assert_eq!(joined(HostName::of(&&s)), "h:1");
        let pair = ("h", 1u16);
        let owned = (String::from("h"), 1u16);
        assert_eq!(split(HostName::of(&pair)), ("h".to_owned(), 1));
        assert_eq!(split(HostName::of(&&pair)), ("h".to_owned(), 1));
        assert_eq!(split(HostName::of(&owned)), ("h".to_owned(), 1));
        assert_eq!(split(HostName::of(&&owned)), ("h".to_owned(), 1));
        assert!(HostName::of(&("h", 1u32)).is_none());
    }

    #[test]
    fn socket_address_types_are_copied_in_place() {
        assert!(copies_only::<SocketAddr>());
        assert!(copies_only::<&SocketAddr>());
        assert!(copies_only::<&&SocketAddr>());
        assert!(copies_only::<SocketAddrV4>());
        assert!(copies_only::<SocketAddrV6>());
        assert!(copies_only::<(IpAddr, u16)>());
        assert!(copies_only::<(Ipv4Addr, u16)>());
        assert!(copies_only::<&(Ipv6Addr, u16)>());
        assert!(copies_only::<&[SocketAddr]>());
    }

    #[test]
    fn names_and_strings_go_to_the_pool() {
        assert!(!copies_only::<&str>());
        assert!(!copies_only::<String>());
        assert!(!copies_only::<(&str, u16)>());
        assert!(!copies_only::<(String, u16)>());
        assert!(!copies_only::<Vec<SocketAddr>>());
        // a look-alike outside std::net is not trusted
        #[allow(dead_code)]
        struct SocketAddr;
        assert!(!copies_only::<SocketAddr>());
    }

    #[test]
    fn ip_literals_in_std_string_forms_are_parsed_in_place() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:443".parse().unwrap();
        assert_eq!(literal(&"127.0.0.1:80"), Some(v4));
        assert_eq!(literal(&"127.0.0.1:80".to_string()), Some(v4));
        assert_eq!(literal(&&"127.0.0.1:80".to_string()), Some(v4));
        assert_eq!(literal(&("127.0.0.1", 80u16)), Some(v4));
        assert_eq!(literal(&("127.0.0.1".to_string(), 80u16)), Some(v4));
        assert_eq!(literal(&"[::1]:443"), Some(v6));
        assert_eq!(literal(&("::1", 443u16)), Some(v6));
        assert_eq!(literal(&HostName::Joined("[::1]:443".into())), Some(v6));
        // each agrees with std's own answer
        for s in ["127.0.0.1:80", "[::1]:443", "[fe80::1%2]:22", "0.0.0.0:0"] {
            let std: Vec<_> = s.to_socket_addrs().unwrap().collect();
            assert_eq!(literal(&s).map(|a| vec![a]), Some(std), "{s}");
        }
        // names, malformed strings and non-string types are left to std's path
        assert_eq!(literal(&"localhost:80"), None);
        assert_eq!(literal(&("localhost", 80u16)), None);
        assert_eq!(literal(&"127.0.0.1"), None); // no port: std's InvalidInput, from the pool
        assert_eq!(literal(&"127.0.0.1:70000"), None);
        assert_eq!(literal(&"300.0.0.1:80"), None);
        assert_eq!(literal(&("[::1]", 80u16)), None); // std does not take brackets here either
        assert_eq!(literal(&v4), None);
        assert_eq!(literal(&("127.0.0.1", 80u32)), None);
        assert!(!may_look_up(&"127.0.0.1:80"));
        assert!(!may_look_up(&v4));
        assert!(may_look_up(&"localhost:80"));
    }

    #[test]
    fn malformed_strings_say_what_is_wrong_as_go_does() {
        // Go 1.19's words for the same strings (`net.Dial("tcp", s)`), where it has them
        let cases: &[(&str, &str)] = &[
            ("", "missing address"),
            ("127.0.0.1", "address 127.0.0.1: missing port in address"),
            ("localhost", "address localhost: missing port in address"),
            ("[::1]", "address [::1]: missing port in address"),
            ("localhost:", "address localhost:: missing port in address"),
            ("127.0.0.1:99999", "address 99999: invalid port"),
            ("127.0.0.1:-1", "address -1: invalid port"),
            ("127.0.0.1:http", "address http: invalid port"),
            (":http", "address http: invalid port"),
            ("1:2:3", "address 1:2:3: too many colons in address"),
            ("a:b:80", "address a:b:80: too many colons in address"),
            ("::1::2:80", "address ::1::2:80: too many colons in address"),
        ];
        for &(s, want) in cases {
            let e = crate::run(move || resolve(s)).unwrap_err();
            assert_eq!(
                (e.kind(), e.to_string()),
                (io::ErrorKind::InvalidInput, want.to_owned()),
                "{s:?}"
            );
            // and from a plain thread, without the runtime
            let e = resolve(s).unwrap_err();
            assert_eq!(e.to_string(), want, "{s:?}");
        }
    }

    // Go's words must never refuse a string std would take: whatever `malformed` refuses,
    // std's parse refuses as well, before any lookup, or std splits off a host with a colon
    // that is no IP literal, which no lookup can answer (so this property needs no
    // resolver).
    proptest::proptest! {
        #[test]
        fn malformed_refuses_only_what_std_refuses(s in "[0-9a-z:.\\[\\]%+-]{0,14}") {
            if let Some(e) = malformed(HostRef::Joined(&s)) {
                proptest::prop_assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
                if e.to_string().ends_with("too many colons in address") {
                    let (host, port) = s.rsplit_once(':').unwrap();
                    proptest::prop_assert!(port.parse::<u16>().is_ok());
                    proptest::prop_assert!(host.contains(':') && !host.contains('%'));
                    proptest::prop_assert!(host.parse::<IpAddr>().is_err());
                } else {
                    let std = s.as_str().to_socket_addrs().unwrap_err();
                    proptest::prop_assert_eq!(
                        std.kind(), io::ErrorKind::InvalidInput, "{}: {}", s, std
                    );
                }
            }
        }
    }

    #[test]
    fn go_s_empty_host_is_every_local_address_without_a_lookup() {
        let both: Vec<SocketAddr> = vec![
            "[::]:8080".parse().unwrap(),
            "0.0.0.0:8080".parse().unwrap(),
        ];
        assert_eq!(crate::run(|| resolve(":8080").unwrap()), both);
        assert_eq!(resolve(":8080").unwrap(), both);
        assert_eq!(resolve(("", 8080u16)).unwrap(), both);
        assert_eq!(resolve(String::from(":8080")).unwrap(), both);
        assert!(!may_look_up(&":8080"));
        // std has no such form: it looks "" up and fails
        assert!(":8080".to_socket_addrs().is_err());
        // not an empty host: a port that is not one, a name, a bare colon
        assert!(resolve(":80x").is_err());
        assert_eq!(HostRef::Joined("x:80").every_local(), None);
        assert_eq!(HostRef::Joined(":").every_local(), None);
        assert_eq!(HostRef::Joined("::80").every_local(), None);
        assert_eq!(HostRef::Split("x", 80).every_local(), None);
    }

    #[test]
    fn an_unknown_name_is_go_s_no_such_host() {
        // RFC 6761: ".invalid" never resolves. Whether the resolver says "no such name"
        // (EAI_NONAME) or cannot ask (EAI_AGAIN, no DNS server) depends on the machine, so
        // std's own answer decides what to expect.
        let host = "no-such-host.invalid";
        let std = (host, 80).to_socket_addrs().unwrap_err();
        let e = crate::run(move || resolve((host, 80u16))).unwrap_err();
        if no_such_host(&std) {
            assert_eq!(e.to_string(), format!("lookup {host}: no such host"));
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
        } else {
            assert_eq!(e.to_string(), format!("lookup {host}: {std}"));
            assert_eq!(e.kind(), std.kind());
        }
        // std's error stays reachable as the cause
        let source = std::error::Error::source(e.get_ref().unwrap()).unwrap();
        assert_eq!(source.to_string(), std.to_string());
    }

    #[test]
    fn no_such_host_knows_the_resolver_s_words() {
        // std words a failed lookup as "failed to lookup address information: " and
        // `gai_strerror`'s text; built here the same way, for each code
        let words = |code| {
            // SAFETY: `gai_strerror` returns a static NUL-terminated string for any code.
            unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(code)) }
                .to_string_lossy()
                .into_owned()
        };
        let like_std = |code| {
            io::Error::other(format!(
                "failed to lookup address information: {}",
                words(code)
            ))
        };
        assert!(no_such_host(&like_std(libc::EAI_NONAME)));
        assert!(no_such_host(&like_std(libc::EAI_NODATA)));
        assert!(!no_such_host(&like_std(libc::EAI_AGAIN)));
        assert!(!no_such_host(&like_std(libc::EAI_FAIL)));
        assert!(!no_such_host(&io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
    }

    #[test]
    fn copied_addresses_come_back_unchanged_in_a_coroutine() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let got = crate::run(move || resolve(addr).unwrap());
        assert_eq!(got, [addr]);
        let pair = (Ipv4Addr::LOCALHOST, 80);
        assert_eq!(crate::run(move || resolve(pair).unwrap()), [addr]);
    }

    /// Regression: the old limiter woke only the queue's front on release, so two quick
    /// releases could both wake the same waiter and leave another parked with slots free.
    #[test]
    fn limiter_hands_every_released_slot_to_a_waiter() {
        static L: Limiter = Limiter::new(2);
        let a = L.acquire();
        let b = L.acquire();
        let waiters: Vec<_> = (0..2)
            .map(|_| std::thread::spawn(|| drop(L.acquire())))
            .collect();
        // let both queue up behind the two held slots
        let queued = || L.state().queue.len();
        let start = std::time::Instant::now();
        while queued() < 2 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waiters never queued"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // two releases back to back: each must reach a different waiter
        drop(a);
        drop(b);
        for w in waiters {
            w.join().unwrap();
        }
        let st = L.state();
        assert_eq!((st.in_flight, st.queue.len()), (0, 0));
    }
}
