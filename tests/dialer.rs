//! `Dialer`'s timeout and deadline, as Go's `net.Dialer` has them: they bound the whole dial,
//! name resolution included, and a zero timeout means no timeout. And its race of the two
//! address families (Go's `dialParallel`, RFC 6555's Happy Eyeballs), against a local
//! blackhole: a listener whose full accept queue drops SYNs (`util::blackhole`).
//!
//! A resolver that does not answer is stood in for by a `ToSocketAddrs` that sleeps before
//! answering (the lookup runs on the blocking pool either way). Each behaviour runs twice
//! through `util::both`: inside a coroutine and on a plain OS thread.
//!
//! The machine these run on may be slow and noisy: the bounds are generous (a 300 ms timeout
//! against a 3 s resolver must give up in under 2 s), only the order of magnitude matters.

mod util;

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use coronet::context::{Context, ContextError};
use coronet::net::{Dialer, TcpListener};
use util::{assert_timeout, both, op};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A name whose resolution takes `delay`: a DNS server that is slow (or, with a delay far
/// past the test's timeout, one that does not answer). Answers `addr` in the end.
#[derive(Clone, Copy, Debug)]
struct SlowName {
    addr: SocketAddr,
    delay: Duration,
}

impl ToSocketAddrs for SlowName {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        std::thread::sleep(self.delay);
        Ok(vec![self.addr].into_iter())
    }
}

/// The timeout the dialer is given, the resolver that never answers in time, and the most a
/// dial may take before it counts as having waited for the resolver.
const TIMEOUT: Duration = Duration::from_millis(300);
const NO_ANSWER: Duration = Duration::from_secs(3);
const BOUND: Duration = Duration::from_secs(2);

/// A listener, and a name for it that the resolver never answers in time.
fn unanswered() -> (TcpListener, SlowName) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let name = SlowName {
        addr: l.local_addr().unwrap(),
        delay: NO_ANSWER,
    };
    (l, name)
}

/// A dial cut short during the lookup: Go's "dial tcp: lookup NAME: i/o timeout" in this
/// crate's style — no address to name yet, kind `TimedOut`, the timeout marker inside.
fn assert_lookup_timeout(r: io::Result<coronet::net::TcpStream>, took: Duration) {
    let e = r.expect_err("the lookup cannot have answered");
    assert!(took < BOUND, "waited for the resolver: {took:?} ({e})");
    assert!(took >= ms(250), "gave up early: {took:?} ({e})");
    assert_timeout(&e);
    assert_eq!(e.to_string(), "dial tcp: i/o timeout");
    assert_eq!(op(&e).addr(), None);
    // the dialer's own deadline, like a socket's: a plain timeout, not a context's error
    assert_eq!(ContextError::of(&e), None);
}

// ---- bug 1: the timeout includes name resolution --------------------------------------

#[test]
#[ignore = "a ToSocketAddrs of the caller's own may borrow, so dial waits for its lookup (std's string forms do not wait: unit tests in src/net/dial.rs); see dial_context"]
fn dialer_timeout_bounds_name_resolution() {
    both(|| {
        let (_l, name) = unanswered();
        let t = Instant::now();
        let r = Dialer::new().timeout(TIMEOUT).dial(name);
        assert_lookup_timeout(r, t.elapsed());
    });
}

#[test]
#[ignore = "a ToSocketAddrs of the caller's own may borrow, so dial waits for its lookup (std's string forms do not wait: unit tests in src/net/dial.rs); see dial_context"]
fn dialer_deadline_bounds_name_resolution() {
    both(|| {
        let (_l, name) = unanswered();
        let t = Instant::now();
        let r = Dialer::new().deadline(t + TIMEOUT).dial(name);
        assert_lookup_timeout(r, t.elapsed());
    });
}

#[test]
fn dialer_timeout_bounds_name_resolution_in_dial_context() {
    both(|| {
        let (_l, name) = unanswered();
        let bg = Context::background();
        let t = Instant::now();
        let r = Dialer::new().timeout(TIMEOUT).dial_context(&bg, name);
        assert_lookup_timeout(r, t.elapsed());
    });
}

#[test]
fn dialer_deadline_bounds_name_resolution_in_dial_context() {
    both(|| {
        let (_l, name) = unanswered();
        // a context with a later deadline of its own: the dialer's, earlier, wins
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(60));
        let t = Instant::now();
        let r = Dialer::new().deadline(t + TIMEOUT).dial_context(&ctx, name);
        assert_lookup_timeout(r, t.elapsed());
        assert_eq!(ctx.err(), None, "the caller's context is left alone");
        // the child the dial bounded its lookup with is gone again (the no-leak rule)
        assert_eq!(ctx.__child_count(), 0);
    });
}

#[test]
fn the_earlier_of_timeout_and_deadline_bounds_resolution() {
    both(|| {
        let (_l, name) = unanswered();
        let bg = Context::background();
        let far = Duration::from_secs(60);
        // the timeout is the earlier
        let t = Instant::now();
        let r = Dialer::new()
            .timeout(TIMEOUT)
            .deadline(t + far)
            .dial_context(&bg, name);
        assert_lookup_timeout(r, t.elapsed());
        // the deadline is the earlier
        let t = Instant::now();
        let r = Dialer::new()
            .deadline(t + TIMEOUT)
            .timeout(far)
            .dial_context(&bg, name);
        assert_lookup_timeout(r, t.elapsed());
    });
}

#[test]
fn a_passed_deadline_fails_before_looking_up() {
    both(|| {
        let (_l, name) = unanswered();
        let t = Instant::now();
        let r = Dialer::new().deadline(t).dial(name);
        let e = r.unwrap_err();
        assert!(t.elapsed() < BOUND, "looked the name up: {:?}", t.elapsed());
        assert_timeout(&e);
        assert_eq!(e.to_string(), "dial tcp: i/o timeout");
    });
}

#[test]
fn a_long_enough_timeout_dials_through_a_slow_resolver() {
    both(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let name = SlowName {
            addr,
            delay: ms(100),
        };
        let dialer = Dialer::new().timeout(Duration::from_secs(2));
        let c = dialer.dial(name).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        let c = dialer.dial_context(&Context::background(), name).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        // a context that is not done by then does not get in the way either
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(60));
        let c = dialer.dial_context(&ctx, name).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
    });
}

#[test]
fn without_a_timeout_resolution_is_waited_for() {
    both(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let name = SlowName {
            addr,
            delay: ms(400),
        };
        let t = Instant::now();
        let c = Dialer::new().dial(name).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        let c = Dialer::new()
            .dial_context(&Context::background(), name)
            .unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        assert!(t.elapsed() >= ms(800), "{:?}", t.elapsed());
    });
}

#[test]
fn the_context_still_cancels_a_lookup_under_a_dialer_timeout() {
    both(|| {
        let (_l, name) = unanswered();
        let (ctx, cancel) = Context::background().with_cancel();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(ms(100));
            cancel.cancel();
        });
        let t = Instant::now();
        let e = Dialer::new()
            .timeout(Duration::from_secs(60))
            .dial_context(&ctx, name)
            .unwrap_err();
        assert!(t.elapsed() < BOUND, "{:?}", t.elapsed());
        assert_eq!(e.to_string(), "dial tcp: operation was canceled");
        assert_eq!(ContextError::of(&e), Some(ContextError::Canceled));
        canceller.join().unwrap();
    });
}

// ---- bug 2: a zero timeout is no timeout ----------------------------------------------

#[test]
fn a_zero_timeout_means_no_timeout() {
    both(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let dialer = Dialer::new().timeout(Duration::ZERO);
        let c = dialer.dial(addr).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        let c = dialer.dial_context(&Context::background(), addr).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        // through a lookup too
        let name = SlowName {
            addr,
            delay: ms(50),
        };
        let c = dialer.dial(name).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
    });
}

#[test]
fn a_zero_timeout_leaves_the_deadline_in_force() {
    both(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let e = Dialer::new()
            .timeout(Duration::ZERO)
            .deadline(Instant::now())
            .dial(addr)
            .unwrap_err();
        assert_timeout(&e);
        assert_eq!(e.to_string(), format!("dial tcp {addr}: i/o timeout"));
        assert_eq!(e.kind(), ErrorKind::TimedOut);
    });
}

// ---- Happy Eyeballs (Go's `dialParallel`, RFC 6555) -------------------------------------

/// A list of addresses that `dial_context` can take (it wants `'static`).
#[derive(Clone, Debug)]
struct List(Vec<SocketAddr>);

impl ToSocketAddrs for List {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(self.0.clone().into_iter())
    }
}

/// The dial's time when the first family hangs: long enough that waiting it out (or any
/// share of it) cannot pass for the fallback delay.
const HANG: Duration = Duration::from_secs(60);

#[test]
fn a_hanging_family_costs_the_fallback_delay_not_the_timeout() {
    both(|| {
        let hole = util::blackhole(); // IPv4, first: the primary family
        let live = TcpListener::bind("[::1]:0").unwrap();
        let to = [hole.addr, live.local_addr().unwrap()];
        let start = Instant::now();
        let c = Dialer::new().timeout(HANG).dial(&to[..]).unwrap();
        let took = start.elapsed();
        assert_eq!(c.peer_addr().unwrap(), live.local_addr().unwrap());
        // 300 ms by design; without the race, half of HANG (the first address's share)
        assert!(took < HANG / 4, "took {took:?}");
        assert!(took >= ms(250), "the fallback started early: {took:?}");
        drop(live.accept().unwrap());
        // the same through dial_context
        let start = Instant::now();
        let c = Dialer::new()
            .timeout(HANG)
            .dial_context(&Context::background(), List(to.to_vec()))
            .unwrap();
        assert_eq!(c.peer_addr().unwrap(), live.local_addr().unwrap());
        assert!(start.elapsed() < HANG / 4, "took {:?}", start.elapsed());
    });
}

#[test]
fn without_the_race_every_address_is_tried_in_order() {
    both(|| {
        let hole = util::blackhole();
        let live = TcpListener::bind("[::1]:0").unwrap();
        let to = [hole.addr, live.local_addr().unwrap()];
        let start = Instant::now();
        // 4 s split in two: the hole has 2 s of it before the live address is tried
        let c = Dialer::new()
            .timeout(Duration::from_secs(4))
            .fallback_delay(None)
            .dial(&to[..])
            .unwrap();
        assert_eq!(c.peer_addr().unwrap(), live.local_addr().unwrap());
        assert!(
            start.elapsed() >= Duration::from_millis(1500),
            "{:?}",
            start.elapsed()
        );
        drop(live.accept().unwrap());
        // dial_context splits the time the same way (Go's dialSerial): the hole does not
        // take all 4 s
        let c = Dialer::new()
            .timeout(Duration::from_secs(4))
            .fallback_delay(None)
            .dial_context(&Context::background(), List(to.to_vec()))
            .unwrap();
        assert_eq!(c.peer_addr().unwrap(), live.local_addr().unwrap());
    });
}

#[test]
fn a_first_family_that_answers_in_time_leaves_the_other_untried() {
    both(|| {
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let v6 = TcpListener::bind("[::1]:0").unwrap();
        v6.set_nonblocking(true).unwrap();
        // A delay a loopback connect never takes, even on a loaded machine (with Go's
        // 300 ms a starved worker could legitimately start the fallback).
        let delay = Duration::from_secs(2);
        let c = Dialer::new()
            .fallback_delay(Some(delay))
            .dial(&[v4.local_addr().unwrap(), v6.local_addr().unwrap()][..])
            .unwrap();
        assert_eq!(c.peer_addr().unwrap(), v4.local_addr().unwrap());
        // past the delay: the fallback neither started when the first family won nor
        // when its timer ran out
        std::thread::sleep(delay + ms(500));
        assert_eq!(v6.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    });
}

#[test]
fn a_failed_first_family_starts_the_other_at_once() {
    both(|| {
        let dead = util::unused_port(false); // refused at once
        let live = TcpListener::bind("[::1]:0").unwrap();
        let to = [
            SocketAddr::from(([127, 0, 0, 1], dead)),
            live.local_addr().unwrap(),
        ];
        // a fallback delay far past the test: only the primary's failure can start it
        let start = Instant::now();
        let c = Dialer::new()
            .fallback_delay(Some(HANG))
            .dial(&to[..])
            .unwrap();
        assert_eq!(c.peer_addr().unwrap(), live.local_addr().unwrap());
        assert!(start.elapsed() < HANG / 4, "{:?}", start.elapsed());
        // both refused: the first family's error, as Go's dial reports it
        let dead6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, util::unused_port(false)));
        let e = Dialer::new().dial(&[to[0], dead6][..]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        assert_eq!(
            e.to_string(),
            format!("dial tcp {}: connection refused", to[0])
        );
    });
}

/// Every address failing, the dial reports the first failure, as Go's: in order, the first
/// address's; raced, the first family's, whichever side failed last. Found by an audit:
/// the last failure was reported (std's rule), so with both families raced the answer
/// depended on timing (both refused at once: either address, 3–12 in 300 dials the
/// second), and a first family refused at once was hidden behind the other's timeout.
#[test]
fn every_address_failing_reports_the_first_failure() {
    both(|| {
        let dead4 = SocketAddr::from(([127, 0, 0, 1], util::unused_port(false)));
        let dead6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, util::unused_port(false)));
        let refused = |e: &io::Error, to: SocketAddr| {
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
            assert_eq!(e.to_string(), format!("dial tcp {to}: connection refused"));
        };
        // in order
        for list in [[dead4, dead6], [dead6, dead4]] {
            let d = Dialer::new().fallback_delay(None);
            refused(&d.dial(&list[..]).unwrap_err(), list[0]);
            let e = d
                .dial_context(&Context::background(), List(list.to_vec()))
                .unwrap_err();
            refused(&e, list[0]);
        }
        // raced from the start: whichever side fails last, the first family's error
        for _ in 0..20 {
            let d = Dialer::new().fallback_delay(Some(Duration::ZERO));
            refused(&d.dial(&[dead4, dead6][..]).unwrap_err(), dead4);
        }
        // the first family refused at once, the other hanging until the timeout: the
        // refusal, not the other's timeout
        let hole6 = util::blackhole_at("[::1]:0");
        let start = Instant::now();
        let e = Dialer::new()
            .timeout(ms(500))
            .dial(&[dead4, hole6.addr][..])
            .unwrap_err();
        refused(&e, dead4);
        // and it waited for the other family, which might have connected
        assert!(start.elapsed() >= ms(400), "{:?}", start.elapsed());
    });
}

/// A `control` hook that panics on the fallback family's socket: the panic reaches the
/// dial's caller, as one on the first family's does, at once (the first family, hanging,
/// is cancelled). Found by an audit: it was lost, and the dial returned the first family's
/// timeout after the whole of it.
#[test]
fn a_panic_in_the_fallbacks_control_hook_reaches_the_caller() {
    both(|| {
        let hole = util::blackhole(); // IPv4, first: it hangs
        let live = TcpListener::bind("[::1]:0").unwrap();
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = calls.clone();
        let d = Dialer::new()
            .timeout(HANG)
            .fallback_delay(Some(ms(100)))
            .control(move |_fd| {
                // the first call is the first family's socket, the second the fallback's
                if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                    panic!("the fallback's hook");
                }
                Ok(())
            });
        let start = Instant::now();
        let to = [hole.addr, live.local_addr().unwrap()];
        let dial = std::panic::AssertUnwindSafe(|| d.dial(&to[..]));
        let payload = std::panic::catch_unwind(dial).unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the fallback's hook"));
        assert!(start.elapsed() < HANG / 4, "{:?}", start.elapsed());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    });
}

/// A lookup of the caller's own `ToSocketAddrs` that panics: `dial_context`, which runs
/// it beside the caller to be able to give up on it, resumes the panic on the caller, as
/// `dial` does. Found by an audit: "name resolution could not start".
#[test]
fn a_panicking_lookup_reaches_dial_context() {
    #[derive(Clone, Copy, Debug)]
    struct Panics;
    impl ToSocketAddrs for Panics {
        type Iter = std::vec::IntoIter<SocketAddr>;
        fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
            panic!("the caller's lookup");
        }
    }
    both(|| {
        let payload =
            std::panic::catch_unwind(|| Dialer::new().dial_context(&Context::background(), Panics))
                .unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the caller's lookup"));
        let payload = std::panic::catch_unwind(|| Dialer::new().dial(Panics)).unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the caller's lookup"));
    });
}

#[test]
fn a_cancel_ends_both_families_at_once() {
    both(|| {
        let hole = util::blackhole();
        let hole6 = util::blackhole_at("[::1]:0");
        let (ctx, cancel) = Context::background().with_cancel();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(ms(800)); // past the fallback delay: both are dialing
            cancel.cancel();
        });
        let start = Instant::now();
        let e = Dialer::new()
            .dial_context(&ctx, List(vec![hole.addr, hole6.addr]))
            .unwrap_err();
        assert_eq!(ContextError::of(&e), Some(ContextError::Canceled), "{e}");
        assert!(start.elapsed() < HANG / 4, "{:?}", start.elapsed());
        canceller.join().unwrap();
    });
}
