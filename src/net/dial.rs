//! `Dialer` and `ListenConfig`: Go's knobs for making connections and listeners.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{op_error, timeout_error, Addr};
use super::lookup::{may_look_up, resolve_context, HostName};
use super::sock::{listener_tcp_defaults, Sock};
use super::socket::{self, SockAddr};
use super::tcp::{addrs, addrs_send, dial_error, TcpListener, TcpStream};
use crate::context::{Context, ContextError};
use crate::poll::desc::{Dir, PollDesc};

type Control = Arc<dyn Fn(RawFd) -> io::Result<()> + Send + Sync>;

/// Options for connecting, like Go's `net.Dialer`.
///
/// ```
/// use std::time::Duration;
/// coronet::run(|| {
///     let l = coronet::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let c = coronet::net::Dialer::new()
///         .timeout(Duration::from_secs(5))
///         .keep_alive(Duration::from_secs(30))
///         .control(|fd| { assert!(fd >= 0); Ok(()) })
///         .dial(l.local_addr().unwrap())
///         .unwrap();
///     assert!(c.nodelay().unwrap());
/// });
/// ```
#[derive(Clone, Default)]
pub struct Dialer {
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    local: Option<SocketAddr>,
    keep_alive: Option<Duration>,
    control: Option<Control>,
    /// The delay before the other family's addresses join the dial (`fallback_delay`);
    /// `None`: Go's default, [`FALLBACK_DELAY`].
    fallback_delay: Option<Duration>,
    /// `fallback_delay(None)`: every address in order, one at a time, as std's `connect`.
    no_race: bool,
}

/// Go's default `Dialer.FallbackDelay`: how long a dial waits on the first address
/// family before it starts on the other as well (RFC 6555's Happy Eyeballs).
pub const FALLBACK_DELAY: Duration = Duration::from_millis(300);

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer")
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .field("local", &self.local)
            .field("keep_alive", &self.keep_alive)
            .field("control", &self.control.is_some())
            .field("fallback_delay", &self.race_delay())
            .finish()
    }
}

impl Dialer {
    /// A dialer with Go's defaults: no timeout, any local address, keep-alive at 15 s.
    ///
    /// ```
    /// use coronet::net::{Dialer, TcpListener};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// // The same as `TcpStream::connect`: Go's defaults, no timeout.
    /// let stream = Dialer::new().dial(listener.local_addr()?)?;
    /// assert_eq!(stream.keepalive_period()?, Duration::from_secs(15));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Dialer {
        Dialer::default()
    }

    /// Bounds the whole dial, as Go's `Dialer.Timeout`: the name lookup, then all addresses
    /// together. When the address resolves to several, each gets an equal share of the time
    /// left (at least 2 s), so one that never answers cannot starve the others. With a
    /// [`deadline`](Dialer::deadline) as well, the earlier of the two bounds the dial.
    ///
    /// `Duration::ZERO` means no timeout, as Go's zero `Timeout` does — not one that has
    /// passed already. (`TcpStream::connect_timeout` still refuses a zero timeout, as std's.)
    ///
    /// # Name lookups
    ///
    /// A lookup still running at the deadline is no longer waited for: the dial fails with
    /// `dial tcp: i/o timeout` (kind `TimedOut`, no address yet), and the lookup runs on,
    /// detached, its answer dropped. That takes an address the lookup can own: any for
    /// [`dial_context`](Dialer::dial_context) (`'static`), and for [`dial`](Dialer::dial) a
    /// host name in one of std's string forms — `&str`, `String`, `&String`, `(&str, u16)`,
    /// `(String, u16)` — which it copies. Another `ToSocketAddrs` of your own that does its
    /// own slow lookup may borrow from the caller, so `dial` waits for it, then fails with
    /// that same error if the deadline passed meanwhile; give such a one to `dial_context`,
    /// with [`Context::background`] when there is no other context:
    ///
    /// ```
    /// use coronet::context::Context;
    /// use coronet::net::{Dialer, TcpListener};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let name = format!("localhost:{}", listener.local_addr()?.port());
    /// let dialer = Dialer::new().timeout(Duration::from_secs(3));
    /// // The three seconds include the lookup of "localhost", however the resolver behaves.
    /// let stream = dialer.dial_context(&Context::background(), name)?;
    /// assert!(stream.peer_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// A dialer is reusable, and a zero timeout is no timeout:
    ///
    /// ```
    /// use coronet::net::{Dialer, TcpListener};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let dialer = Dialer::new().timeout(Duration::from_secs(3));
    /// // A dialer is reusable: keep one configured and dial with it everywhere.
    /// let a = dialer.dial(listener.local_addr()?)?;
    /// let b = dialer.dial(listener.local_addr()?)?;
    /// assert_ne!(a.local_addr()?, b.local_addr()?);
    /// // Go's zero value: no timeout at all, not an immediate one.
    /// let c = Dialer::new().timeout(Duration::ZERO).dial(listener.local_addr()?)?;
    /// assert_eq!(c.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timeout(mut self, t: Duration) -> Dialer {
        self.timeout = Some(t);
        self
    }

    /// An absolute deadline for the dial, as Go's `Dialer.Deadline`; with a
    /// [`timeout`](Dialer::timeout) as well, the earlier of the two bounds the dial. It bounds
    /// name lookups as the timeout does (see there).
    ///
    /// ```
    /// use coronet::net::{Dialer, TcpListener};
    /// use std::io::ErrorKind;
    /// use std::time::Instant;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// // A deadline that has already passed fails before trying.
    /// let err = Dialer::new().deadline(Instant::now()).dial(addr).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// assert_eq!(err.to_string(), format!("dial tcp {addr}: i/o timeout"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn deadline(mut self, d: Instant) -> Dialer {
        self.deadline = Some(d);
        self
    }

    /// Binds the socket to this local address before connecting. As in Go, the dial then
    /// tries only the resolved addresses of the same family (all of them if either is a
    /// wildcard, `0.0.0.0` or `::`), and fails with `InvalidInput`, `dial tcp: address
    /// 127.0.0.2:0: no suitable address found`, if none is left.
    ///
    /// ```
    /// use coronet::net::{Dialer, TcpListener};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// // Send from a chosen source address (any of 127.0.0.0/8 works on Linux's loopback).
    /// let stream = Dialer::new()
    ///     .local_addr("127.0.0.2:0".parse().unwrap())
    ///     .dial(listener.local_addr()?)?;
    /// let (_, peer) = listener.accept()?;
    /// assert_eq!(peer.ip().to_string(), "127.0.0.2");
    /// assert_eq!(stream.local_addr()?, peer);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(mut self, a: SocketAddr) -> Dialer {
        self.local = Some(a);
        self
    }

    /// The keep-alive period of the new connection; `Duration::ZERO` turns keep-alive off.
    /// Rounded up to whole seconds as [`TcpStream::set_keepalive_period`] rounds it, and
    /// cut to Linux's longest, 32,767 s (about 9 hours): where `set_keepalive_period`
    /// fails with the kernel's `EINVAL`, a dial does not (nor does Go's, which ignores that
    /// error and leaves the system's period).
    ///
    /// ```
    /// use coronet::net::{Dialer, TcpListener};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let probed = Dialer::new().keep_alive(Duration::from_secs(30)).dial(addr)?;
    /// assert_eq!(probed.keepalive_period()?, Duration::from_secs(30));
    /// let quiet = Dialer::new().keep_alive(Duration::ZERO).dial(addr)?;
    /// assert!(!quiet.keepalive()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn keep_alive(mut self, period: Duration) -> Dialer {
        // Found by probing the API: `Duration::MAX` failed the dial with a bare `invalid
        // argument`.
        self.keep_alive = Some(period.min(Duration::from_secs(32_767)));
        self
    }

    /// Called with the raw fd after it is created and before it connects (Go's
    /// `Dialer.Control`): set socket options there. An error aborts the dial.
    ///
    /// ```
    /// use coronet::net::{Dialer, TcpListener};
    /// use std::io;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// // A policy hook: the error aborts the dial and comes back in Go's form.
    /// let err = Dialer::new()
    ///     .control(|_fd| Err(io::Error::new(io::ErrorKind::PermissionDenied, "blocked by policy")))
    ///     .dial(addr)
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    /// assert_eq!(err.to_string(), format!("dial tcp {addr}: blocked by policy"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn control(
        mut self,
        f: impl Fn(RawFd) -> io::Result<()> + Send + Sync + 'static,
    ) -> Dialer {
        self.control = Some(Arc::new(f));
        self
    }

    /// When a name resolves to addresses of both families (IPv6 and IPv4), the dial tries
    /// the first address's family first and, if nothing has connected after `delay`, the
    /// other family's addresses too, at the same time; the first connection wins and the
    /// other attempt is abandoned — Go's `Dialer.FallbackDelay`, RFC 6555's "Happy
    /// Eyeballs". So an address family that hangs (a network that drops IPv6 without a
    /// word) costs `delay`, not the whole connect timeout. Once the first family has
    /// failed, the other starts at once. `Some(Duration::ZERO)` starts both together;
    /// `None` tries every address in order, one at a time, as std's `connect` does. The
    /// default is [`FALLBACK_DELAY`], 300 ms, as Go's. A list of one family is always
    /// dialed in order.
    ///
    /// ```
    /// use coronet::net::{Dialer, TcpListener, FALLBACK_DELAY};
    ///
    /// let v4 = TcpListener::bind("127.0.0.1:0")?;
    /// let v6 = TcpListener::bind("[::1]:0")?;
    /// let both = [v6.local_addr()?, v4.local_addr()?];
    /// // the first family answers within the delay: the other is never tried
    /// let c = Dialer::new().fallback_delay(Some(FALLBACK_DELAY)).dial(&both[..])?;
    /// assert_eq!(c.peer_addr()?, v6.local_addr()?);
    /// // in order, as std, however long the first takes
    /// let c = Dialer::new().fallback_delay(None).dial(&both[..])?;
    /// assert_eq!(c.peer_addr()?, v6.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fallback_delay(mut self, delay: Option<Duration>) -> Dialer {
        self.no_race = delay.is_none();
        self.fallback_delay = delay;
        self
    }

    /// The fallback delay, or `None` when the dial never races the two families.
    fn race_delay(&self) -> Option<Duration> {
        (!self.no_race).then(|| self.fallback_delay.unwrap_or(FALLBACK_DELAY))
    }

    /// The earlier of the deadline and now + the timeout: taken once, when a dial starts.
    fn effective_deadline(&self) -> Option<Instant> {
        // A zero timeout is none (Go's zero value); one past the clock's range is none too,
        // not an overflow panic.
        let by_timeout = self
            .timeout
            .filter(|t| !t.is_zero())
            .and_then(|t| Instant::now().checked_add(t));
        crate::poll::desc::earliest(by_timeout, self.deadline)
    }

    /// Connects to `addr`, trying each resolved address in order until one succeeds; with
    /// addresses of both families, the other family joins after the
    /// [`fallback_delay`](Dialer::fallback_delay) (Go's "Happy Eyeballs").
    ///
    /// # Errors
    ///
    /// The first failure in Go's form, e.g. `dial tcp 127.0.0.1:1: connection refused`,
    /// or `dial tcp 10.0.0.1:80: i/o timeout` (kind `TimedOut`) past the deadline (with
    /// both families raced, the first family's first failure: Go's rule, where std's
    /// `connect` reports the last address's);
    /// `dial tcp: lookup HOST: no such host` (or the resolver's words, if it failed
    /// otherwise) when a host name given as a string does not resolve; `dial tcp: address
    /// 127.0.0.1: missing port in address` and the like for a malformed one, as
    /// [`lookup_host`](super::lookup_host) words them; `dial tcp: i/o timeout` when the
    /// deadline passed before or during the lookup (Go adds `lookup HOST:` there too).
    /// Which lookups the deadline cuts short: see [`timeout`](Dialer::timeout).
    ///
    /// ```
    /// use coronet::net::{Dialer, TcpListener};
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    ///
    /// coronet::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     coronet::go(move || {
    ///         let (mut conn, _) = listener.accept().unwrap();
    ///         conn.write_all(b"220 ready\r\n").unwrap();
    ///     });
    ///     let mut conn = Dialer::new().timeout(Duration::from_secs(5)).dial(addr).unwrap();
    ///     let mut greeting = String::new();
    ///     conn.read_to_string(&mut greeting).unwrap();
    ///     assert_eq!(greeting, "220 ready\r\n");
    /// });
    /// ```
    pub fn dial<A: ToSocketAddrs + Send>(&self, addr: A) -> io::Result<TcpStream> {
        self.dial_with(addr, addrs_send)
    }

    /// `dial` for std's signature (`TcpStream::connect`), whose `A` need not be `Send`: a
    /// value of the caller's own type resolves on the caller (`lookup::resolve`).
    pub(crate) fn dial_std<A: ToSocketAddrs>(&self, addr: A) -> io::Result<TcpStream> {
        self.dial_with(addr, addrs)
    }

    /// `dial`, with `own` resolving an address that is not one of std's string forms.
    fn dial_with<A: ToSocketAddrs>(
        &self,
        addr: A,
        own: impl FnOnce(A) -> io::Result<Vec<SocketAddr>>,
    ) -> io::Result<TcpStream> {
        let deadline = self.effective_deadline();
        let lookup = may_look_up(&addr);
        let lookup_timeout = || dial_error(self.local, None, timeout_error());
        if lookup && passed(deadline) {
            return Err(lookup_timeout());
        }
        let list = match HostName::of(&addr) {
            // A host name in one of std's string forms, copied: the lookup can be left to
            // run on past the deadline, detached, as `dial_context`'s is.
            Some(name) if deadline.is_some() => {
                match resolve_until(&Context::background(), deadline, name) {
                    Err(_) => return Err(lookup_timeout()),
                    Ok(Ok(list)) if !list.is_empty() => list,
                    Ok(Ok(_)) => return Err(dial_error(self.local, None, no_addresses())),
                    Ok(Err(e)) => return Err(dial_error(self.local, None, e)),
                }
            }
            Some(name) => addrs(name).map_err(|e| dial_error(self.local, None, e))?,
            // Any other `ToSocketAddrs` may borrow what its lookup reads, so the lookup is
            // waited for; past the deadline, the dial fails without trying an address.
            None => own(addr).map_err(|e| dial_error(self.local, None, e))?,
        };
        if lookup && passed(deadline) {
            return Err(lookup_timeout());
        }
        self.dial_list(&Context::background(), list, deadline)
    }
}

/// Whether `list` has addresses of both families, so that a dial may race them.
fn both_families(list: &[SocketAddr]) -> bool {
    list.iter().any(|a| a.is_ipv4() != list[0].is_ipv4())
}

/// Whether `deadline` has come.
fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// The shortest time an address is given when the dial's time is split (Go's `saneMinimum`).
const MIN_ADDR_TIME: Duration = Duration::from_secs(2);

/// Go's `partialDeadline`: the deadline for the next of `remaining` addresses — an equal
/// share of the time left, but at least [`MIN_ADDR_TIME`] (or all of it, if less is left).
/// `None` when `deadline` already passed; `Some(None)` when there is no deadline.
fn partial_deadline(
    now: Instant,
    deadline: Option<Instant>,
    remaining: usize,
) -> Option<Option<Instant>> {
    let Some(deadline) = deadline else {
        return Some(None);
    };
    let left = deadline
        .checked_duration_since(now)
        .filter(|d| !d.is_zero())?;
    let share = left / remaining.max(1) as u32;
    let share = if share >= MIN_ADDR_TIME {
        share
    } else {
        left.min(MIN_ADDR_TIME)
    };
    Some(Some(now + share))
}

impl Dialer {
    /// Like [`dial`](Dialer::dial), but gives up as soon as `ctx` is cancelled or its
    /// deadline passes — also in the middle of a name lookup or a connect (Go's
    /// `DialContext`). The earliest of the dialer's timeout (counted from this call) and
    /// deadline and the context's deadline bounds the whole dial, name lookup included.
    ///
    /// A cancel reaches a connect in progress by moving the socket's write deadline to now,
    /// which wakes the parked connect at once (Go's `SetWriteDeadline(aLongTimeAgo)`). A
    /// connect that completes as the cancel lands is closed and reported cancelled, so the
    /// result never contradicts the context. `addr` is `'static` because a host-name lookup
    /// cut short by the context keeps running, detached, and owns it.
    ///
    /// # Errors
    ///
    /// As `dial`; and when `ctx` ends first, Go's wording: `dial tcp 10.0.0.1:80: operation
    /// was canceled` (kind `Other`, see [`context`](crate::context) for why not
    /// `Interrupted`) or `dial tcp 10.0.0.1:80: i/o timeout` (kind `TimedOut`) — without the
    /// address (`dial tcp: i/o timeout`) when it ends during the name lookup.
    /// [`ContextError::of`] tells which.
    ///
    /// ```
    /// use coronet::context::Context;
    /// use coronet::net::{Dialer, TcpListener};
    /// use std::time::Duration;
    ///
    /// coronet::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(5));
    ///     let c = Dialer::new().dial_context(&ctx, l.local_addr().unwrap()).unwrap();
    ///     assert!(c.nodelay().unwrap());
    ///     cancel.cancel();
    ///     let err = Dialer::new().dial_context(&ctx, l.local_addr().unwrap()).unwrap_err();
    ///     assert!(err.to_string().ends_with("operation was canceled"));
    /// });
    /// ```
    pub fn dial_context<A: ToSocketAddrs + Send + 'static>(
        &self,
        ctx: &Context,
        addr: A,
    ) -> io::Result<TcpStream> {
        let ended =
            |to: Option<SocketAddr>, e: ContextError| dial_error(self.local, to, e.to_net());
        // Taken before the lookup: the timeout counts from the start of the dial (Go's).
        let own = self.effective_deadline();
        let deadline = crate::poll::desc::earliest(own, ctx.deadline());
        let list = match resolve_until(ctx, own, addr) {
            Err(e) => return Err(ended(None, e)),
            Ok(Ok(list)) if !list.is_empty() => list,
            Ok(Ok(_)) => return Err(dial_error(self.local, None, no_addresses())),
            Ok(Err(e)) => return Err(dial_error(self.local, None, e)),
        };
        self.dial_list(ctx, list, deadline)
    }

    /// Dials the resolved `list` (not empty): the addresses the local address can reach,
    /// the two families raced when both are there, else in order.
    fn dial_list(
        &self,
        ctx: &Context,
        list: Vec<SocketAddr>,
        deadline: Option<Instant>,
    ) -> io::Result<TcpStream> {
        let list = self.suitable(list)?;
        if let Some(delay) = self.race_delay().filter(|_| both_families(&list)) {
            return self.dial_parallel(ctx, list, deadline, delay);
        }
        self.dial_serial(ctx, &list, deadline)
    }

    /// Every address of `list` in order under `ctx` (`dial`'s is the background, which
    /// registers nothing), each with its share of the time left, so one that never answers
    /// cannot use up the whole timeout before the next is tried (Go's `dialSerial`), until
    /// one connects; the first failure if none does, as Go's (std's `connect` reports the
    /// last: a later address's failure, often a timeout, would hide why the one preferred
    /// failed, and with two families raced "last" depends on timing). `list` is not empty.
    fn dial_serial(
        &self,
        ctx: &Context,
        list: &[SocketAddr],
        deadline: Option<Instant>,
    ) -> io::Result<TcpStream> {
        let ended =
            |to: Option<SocketAddr>, e: ContextError| dial_error(self.local, to, e.to_net());
        let mut first = None;
        for (i, &to) in list.iter().enumerate() {
            if let Some(e) = ctx.err() {
                return Err(ended(Some(to), e));
            }
            let Some(part) = partial_deadline(Instant::now(), deadline, list.len() - i) else {
                // out of time before `to` (Go names it too, if nothing failed before)
                first.get_or_insert_with(|| dial_error(self.local, Some(to), timeout_error()));
                break;
            };
            match self.dial_one_context(ctx, to, part) {
                Ok(s) => return Ok(s),
                Err(e) => {
                    rt_log!(Debug, "dial {to} failed: {e}");
                    first.get_or_insert_with(|| dial_error(self.local, Some(to), e));
                }
            }
        }
        Err(first.expect("at least one address"))
    }

    /// Go's `dialParallel` (RFC 6555): the addresses of the first one's family (the
    /// primaries) are dialed in order on the caller; the others (the fallbacks) on a
    /// coroutine (or, for a plain thread's dial, a thread) of their own, once `delay` has
    /// passed or the primaries have all failed, whichever comes first. The first to connect
    /// cancels the other (a parked connect is kicked at once, through its context); a
    /// stream that connects as it loses is dropped, which closes it. With both failing, the
    /// primaries' error, as Go's. A panic on the fallback's side (the `control` hook's)
    /// cancels the primaries and is resumed on the caller, as it would be had the hook
    /// panicked on a primary, unless a primary has connected by then (found by an audit:
    /// the panic was lost, and the dial returned the primaries' error, after their whole
    /// timeout if they hung).
    fn dial_parallel(
        &self,
        ctx: &Context,
        list: Vec<SocketAddr>,
        deadline: Option<Instant>,
        delay: Duration,
    ) -> io::Result<TcpStream> {
        let first_v4 = list[0].is_ipv4();
        let (primaries, fallbacks): (Vec<_>, Vec<_>) =
            list.into_iter().partition(|a| a.is_ipv4() == first_v4);
        let (primary_ctx, primary_cancel) = ctx.with_cancel();
        // shared with the fallback, which stops the primaries when it wins; the caller's
        // handle lives until the primaries are done, so the fallback's drop cancels nothing
        let primary_cancel = Arc::new(primary_cancel);
        let (fallback_ctx, fallback_cancel) = ctx.with_cancel();
        // closed (dropped) when the primaries are done: the fallback starts then at the latest
        let (start_tx, start_rx) = crate::chan::bounded::<()>(1);
        let (result_tx, result_rx) = crate::chan::bounded(1);
        let dialer = self.clone();
        let stop_primary = Arc::clone(&primary_cancel);
        let fallback = move || {
            crate::select! {
                recv(start_rx) -> _ => {},
                recv(crate::time::after(delay)) -> _ => {},
                recv(fallback_ctx.done()) -> _ => {},
            }
            // A cancelled context (the primaries won, or the caller's was cancelled) ends
            // `dial_serial` before its first connect.
            rt_log!(
                Debug,
                "dial: starting the fallback family ({} address(es))",
                fallbacks.len()
            );
            let r = panic::catch_unwind(AssertUnwindSafe(|| {
                dialer.dial_serial(&fallback_ctx, &fallbacks, deadline)
            }));
            if !matches!(r, Ok(Err(_))) {
                stop_primary.cancel(); // a winner, or a panic the caller is to resume
            }
            // Fails only if the caller has returned: the stream is dropped, and so closed.
            let _ = result_tx.try_send(r);
        };
        // If it cannot start, `fallback` is dropped unrun, and with it the sender: the
        // primaries' answer stands.
        crate::runtime::go_beside("coronet-dial-fallback", fallback);
        let primary_err = match self.dial_serial(&primary_ctx, &primaries, deadline) {
            Ok(s) => {
                // The fallback stops where it is, or never starts; its stream, if it
                // connected meanwhile, is dropped with the channel.
                fallback_cancel.cancel();
                return Ok(s);
            }
            Err(e) => e,
        };
        drop(start_tx); // the fallback starts now, if it has not yet
        drop(primary_cancel);
        match result_rx.recv() {
            Ok(Ok(Ok(s))) => Ok(s),
            Ok(Err(payload)) => crate::runtime::resume_here(payload),
            // both failed; or the fallback could not start (no stack, no thread)
            Ok(Ok(Err(_))) | Err(_) => Err(primary_err),
        }
    }

    /// The addresses a socket bound to the local address can reach, as Go's dial filters
    /// them: those of the local address's family, unless either side is a wildcard
    /// (`0.0.0.0`, `::`). None left is an error that says so (Go's, word for word), where
    /// the connect would have failed with a bare `invalid argument` or `address family not
    /// supported by protocol` (found by probing the API).
    fn suitable(&self, list: Vec<SocketAddr>) -> io::Result<Vec<SocketAddr>> {
        let Some(local) = self.local else {
            return Ok(list);
        };
        if local.ip().is_unspecified() {
            return Ok(list);
        }
        let list: Vec<_> = list
            .into_iter()
            .filter(|to| to.ip().is_unspecified() || to.is_ipv4() == local.is_ipv4())
            .collect();
        if list.is_empty() {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("address {local}: no suitable address found"),
            );
            return Err(dial_error(None, None, e));
        }
        Ok(list)
    }

    /// One address under `ctx`: while the connect is parked, a cancel kicks it (see
    /// `dial_context`); afterwards the kick is unregistered before the socket can go away.
    fn dial_one_context(
        &self,
        ctx: &Context,
        to: SocketAddr,
        deadline: Option<Instant>,
    ) -> io::Result<TcpStream> {
        fn kick(desc: &PollDesc) {
            desc.set_deadline(Dir::Write, Some(Instant::now()));
        }
        let mut watch = None;
        let r = TcpStream::dial_one_watched(
            to,
            self.local,
            deadline,
            self.control.as_deref(),
            self.keep_alive,
            &mut |sock| {
                // The callback holds the PollDesc (an Arc), never the fd: it may run on
                // another thread after the socket is gone, and then touches only memory.
                let desc = sock.fd.desc.clone();
                let theirs = desc.clone();
                let reg = ctx.on_cancel(move || kick(&theirs));
                if reg.is_err() {
                    kick(&desc); // cancelled already: fail the connect at once
                }
                watch = Some(reg);
            },
        );
        let cancelled = match watch {
            // stop() is false when the cancel took the kick: it ran or is running
            Some(Ok(Some(kick))) => !kick.stop(),
            Some(Err(_)) => true,
            Some(Ok(None)) | None => false,
        };
        if cancelled {
            // drops (closes) a stream that connected as the cancel landed
            return Err(ctx.err().unwrap_or(ContextError::Canceled).to_net());
        }
        r
    }
}

/// [`resolve_context`] that also gives up at `own`, the dialer's deadline, when that is the
/// earlier: under a child of `ctx` with that deadline, as Go's `DialContext` derives one. A
/// passed deadline reads as the child's `DeadlineExceeded`; a cancel of `ctx` still reaches
/// the lookup through the child.
fn resolve_until<A: ToSocketAddrs + Send + 'static>(
    ctx: &Context,
    own: Option<Instant>,
    addr: A,
) -> Result<io::Result<Vec<SocketAddr>>, ContextError> {
    match own {
        // literal addresses have no lookup to bound: no child, no timer
        Some(d) if may_look_up(&addr) && ctx.deadline().map_or(true, |c| d < c) => {
            let (bounded, _cancel) = ctx.with_deadline(d); // the drop stops its timer
            resolve_context(&bounded, addr)
        }
        _ => resolve_context(ctx, addr),
    }
}

fn no_addresses() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "could not resolve to any addresses",
    )
}

/// Options for listening, like Go's `net.ListenConfig`.
///
/// ```
/// coronet::run(|| {
///     let cfg = coronet::net::ListenConfig::new().reuse_port(true).backlog(128);
///     let a = cfg.listen("127.0.0.1:0").unwrap();
///     // a second listener on the same port, as SO_REUSEPORT allows
///     let b = cfg.listen(a.local_addr().unwrap()).unwrap();
///     assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
/// });
/// ```
#[derive(Clone, Default)]
pub struct ListenConfig {
    backlog: Option<i32>,
    reuse_port: bool,
    only_v6: Option<bool>,
    control: Option<Control>,
}

impl fmt::Debug for ListenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenConfig")
            .field("backlog", &self.backlog)
            .field("reuse_port", &self.reuse_port)
            .field("only_v6", &self.only_v6)
            .field("control", &self.control.is_some())
            .finish()
    }
}

impl ListenConfig {
    /// A config with Go's defaults: backlog from `/proc/sys/net/core/somaxconn`,
    /// `SO_REUSEADDR` on, nothing else.
    ///
    /// ```
    /// use coronet::net::ListenConfig;
    ///
    /// // The same as `TcpListener::bind`.
    /// let listener = ListenConfig::new().listen("127.0.0.1:0")?;
    /// assert!(listener.local_addr()?.port() != 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> ListenConfig {
        ListenConfig::default()
    }

    /// The listen backlog (default: the system's `somaxconn`).
    ///
    /// ```
    /// use coronet::net::{ListenConfig, TcpStream};
    ///
    /// // A short queue of not-yet-accepted connections.
    /// let listener = ListenConfig::new().backlog(16).listen("127.0.0.1:0")?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// listener.accept()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn backlog(mut self, n: i32) -> ListenConfig {
        self.backlog = Some(n);
        self
    }

    /// `SO_REUSEPORT`: several listeners on one port, the kernel spreading connections.
    ///
    /// ```
    /// use coronet::net::{ListenConfig, TcpStream};
    ///
    /// let cfg = ListenConfig::new().reuse_port(true);
    /// let first = cfg.listen("127.0.0.1:0")?;
    /// let second = cfg.listen(first.local_addr()?)?; // same port: the kernel balances them
    /// assert_eq!(first.local_addr()?, second.local_addr()?);
    /// let _client = TcpStream::connect(first.local_addr()?)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuse_port(mut self, on: bool) -> ListenConfig {
        self.reuse_port = on;
        self
    }

    /// `IPV6_V6ONLY` for an IPv6 listener.
    ///
    /// ```
    /// use coronet::net::{ListenConfig, TcpStream};
    ///
    /// // A dual-stack listener: one IPv6 socket also takes IPv4 clients.
    /// let listener = ListenConfig::new().only_v6(false).listen("[::]:0")?;
    /// let port = listener.local_addr()?.port();
    /// let _v4_client = TcpStream::connect(("127.0.0.1", port))?;
    /// let (_, peer) = listener.accept()?;
    /// assert!(peer.is_ipv6()); // an IPv4-mapped address, ::ffff:127.0.0.1
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn only_v6(mut self, on: bool) -> ListenConfig {
        self.only_v6 = Some(on);
        self
    }

    /// Called with the raw fd before `bind` (Go's `ListenConfig.Control`).
    ///
    /// ```
    /// use coronet::net::ListenConfig;
    /// use std::os::fd::AsRawFd;
    /// use std::sync::atomic::{AtomicI32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let seen = Arc::new(AtomicI32::new(-1));
    /// let s = seen.clone();
    /// let listener = ListenConfig::new()
    ///     .control(move |fd| {
    ///         s.store(fd, Ordering::Relaxed); // set socket options on `fd` here
    ///         Ok(())
    ///     })
    ///     .listen("127.0.0.1:0")?;
    /// assert_eq!(seen.load(Ordering::Relaxed), listener.as_raw_fd());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn control(
        mut self,
        f: impl Fn(RawFd) -> io::Result<()> + Send + Sync + 'static,
    ) -> ListenConfig {
        self.control = Some(Arc::new(f));
        self
    }

    /// Binds to the first resolved address that works and listens.
    ///
    /// # Errors
    ///
    /// The last failure in Go's form: `listen tcp 127.0.0.1:80: permission denied`.
    ///
    /// ```
    /// use coronet::net::ListenConfig;
    /// use std::io::ErrorKind;
    ///
    /// let cfg = ListenConfig::new();
    /// let listener = cfg.listen("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// // Without `reuse_port` a second listener on the port is refused.
    /// let err = cfg.listen(addr).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::AddrInUse);
    /// assert_eq!(err.to_string(), format!("listen tcp {addr}: address already in use"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen<A: ToSocketAddrs + Send>(&self, addr: A) -> io::Result<TcpListener> {
        self.listen_on(addrs_send(addr))
    }

    /// `listen` for std's signature (`TcpListener::bind`), whose `A` need not be `Send`.
    pub(crate) fn listen_std<A: ToSocketAddrs>(&self, addr: A) -> io::Result<TcpListener> {
        self.listen_on(addrs(addr))
    }

    fn listen_on(&self, resolved: io::Result<Vec<SocketAddr>>) -> io::Result<TcpListener> {
        let list = resolved.map_err(|e| op_error("listen", "tcp", None, None, e))?;
        let mut last = None;
        for a in list {
            match self.listen_one(a) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(op_error("listen", "tcp", None, Some(Addr::Inet(a)), e)),
            }
        }
        Err(last.expect("at least one address"))
    }

    fn listen_one(&self, a: SocketAddr) -> io::Result<TcpListener> {
        let domain = if a.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = socket::socket(domain, libc::SOCK_STREAM)?;
        let on: libc::c_int = 1;
        socket::setsockopt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, on)?;
        if self.reuse_port {
            socket::setsockopt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, on)?;
        }
        if let (Some(v6), true) = (self.only_v6, a.is_ipv6()) {
            socket::setsockopt(
                fd.as_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                v6 as libc::c_int,
            )?;
        }
        // Go's stream defaults, before `listen`: every connection it accepts is a copy.
        let defaults = self.control.is_none() && listener_tcp_defaults(fd.as_fd()).is_ok();
        if let Some(c) = &self.control {
            c(fd.as_raw_fd())?;
            // The hook may have turned blocking mode on. (Accept checks anyway, the hook
            // having seen the fd, but a blocking file costs it a poll(2) per accept.)
            socket::set_nonblocking(fd.as_fd(), true)?;
        }
        socket::bind(fd.as_fd(), &SockAddr::from_inet(&a))?;
        socket::listen(fd.as_fd(), self.backlog.unwrap_or_else(socket::somaxconn))?;
        let sock = Sock::bound(fd, "tcp");
        if self.control.is_some() {
            // the hook may have turned SO_LINGER on, which accepted connections inherit
            sock.fd.set_may_linger();
            // and may have kept the fd: `accept` checks the open file's mode and sets
            // Go's defaults on each connection itself (the hook's own choices stay the
            // listener's)
            sock.fd.expose();
        } else if !defaults {
            // set per connection instead, as for a listener of unknown options
            sock.fd.expose();
        }
        Ok(TcpListener::from_sock(sock))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A host whose lookup, through `HostName`, takes three seconds before it resolves
    /// "localhost": a resolver that does not answer in time, for `dial`'s string forms.
    const SLOW_HOST: &str = "slow-resolver.coronet.test";

    pub(in crate::net) fn slow_resolver(name: &HostName) {
        if name.host() == SLOW_HOST {
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    type Dial = Box<dyn Fn(&Dialer) -> io::Result<TcpStream>>;

    /// Dials the slow host's name for `port`, in each of std's string forms `dial` copies.
    fn slow_names(port: u16) -> [Dial; 5] {
        let joined = format!("{SLOW_HOST}:{port}");
        let (j2, j3) = (joined.clone(), joined.clone());
        [
            Box::new(move |d: &Dialer| d.dial(joined.as_str())),
            Box::new(move |d: &Dialer| d.dial(j2.clone())),
            Box::new(move |d: &Dialer| d.dial(&j3)),
            Box::new(move |d: &Dialer| d.dial((SLOW_HOST, port))),
            Box::new(move |d: &Dialer| d.dial((SLOW_HOST.to_string(), port))),
        ]
    }

    #[test]
    fn dial_gives_up_on_a_slow_lookup_of_a_host_name_at_the_deadline() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let dialer = Dialer::new().timeout(Duration::from_millis(300));
        let check = move || {
            let dialer = Dialer::new().timeout(Duration::from_millis(300));
            for dial in slow_names(port) {
                let t = Instant::now();
                let e = dial(&dialer).expect_err("the lookup cannot have answered");
                let took = t.elapsed();
                // generous: what this catches is waiting out the 3 s resolver
                assert!(took < Duration::from_secs(2), "waited {took:?}: {e}");
                assert!(took >= Duration::from_millis(250), "early {took:?}: {e}");
                assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
                assert_eq!(e.to_string(), "dial tcp: i/o timeout");
            }
        };
        check(); // a plain thread
        crate::go(check).join().unwrap();
        // a name that resolves in time connects, through the copy
        let s = dialer.dial(("localhost", port)).unwrap();
        assert_eq!(s.peer_addr().unwrap().port(), port);
    }

    #[test]
    fn host_names_are_copied_only_from_std_string_forms() {
        let joined = |a: Option<HostName>| match a {
            Some(HostName::Joined(s)) => Some(s),
            _ => None,
        };
        let s = String::from("example.com:80");
        assert_eq!(
            joined(HostName::of(&"example.com:80")).as_deref(),
            Some("example.com:80")
        );
        assert_eq!(joined(HostName::of(&s)).as_deref(), Some("example.com:80"));
        assert_eq!(joined(HostName::of(&&s)).as_deref(), Some("example.com:80"));
        match HostName::of(&("example.com", 80u16)) {
            Some(HostName::Split(h, 80)) => assert_eq!(h, "example.com"),
            _ => panic!("(&str, u16) not copied"),
        }
        assert!(HostName::of(&SocketAddr::from(([127, 0, 0, 1], 80))).is_none());
        assert!(HostName::of(&("example.com", 80u32)).is_none());
        assert!(HostName::of(&[SocketAddr::from(([127, 0, 0, 1], 80))][..]).is_none());
    }

    #[test]
    fn partial_deadline_splits_like_go() {
        let now = Instant::now();
        let s = Duration::from_secs;
        // no deadline: none for each address either
        assert_eq!(partial_deadline(now, None, 3), Some(None));
        // passed: fail at once
        assert_eq!(partial_deadline(now, Some(now), 1), None);
        // an equal share when it is long enough
        assert_eq!(
            partial_deadline(now, Some(now + s(30)), 3),
            Some(Some(now + s(10)))
        );
        // at least the sane minimum...
        assert_eq!(
            partial_deadline(now, Some(now + s(5)), 5),
            Some(Some(now + s(2)))
        );
        // ...unless less than that is left: then all of it
        let d = now + Duration::from_millis(1500);
        assert_eq!(partial_deadline(now, Some(d), 4), Some(Some(d)));
        // the last address gets everything left
        assert_eq!(
            partial_deadline(now, Some(now + s(7)), 1),
            Some(Some(now + s(7)))
        );
    }
}
