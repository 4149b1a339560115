//! `Context`: cancellation down the tree, deadlines, `done()` in `select!`, the no-leak
//! rule, and the fan-out dial of the Go context articles (ten dialers share one context;
//! the first to connect cancels the rest).

mod util;

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::context::{Canceller, Context, ContextError};
use coronet::net::{Dialer, TcpListener};
use util::blackhole;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Far more than any wait here should take; only a hang reaches it.
const GENEROUS: Duration = Duration::from_secs(10);

/// Runs `f` once on a coroutine and once on a plain thread.
fn on_both(f: impl Fn() + Send + Sync + 'static) {
    let f = Arc::new(f);
    let g = f.clone();
    coronet::go(move || g()).join().unwrap();
    std::thread::spawn(move || f()).join().unwrap();
}

#[test]
fn cancel_reaches_children_and_grandchildren_not_parents() {
    let (root, _root_cancel) = Context::background().with_cancel();
    let (mid, mid_cancel) = root.with_cancel();
    let (leaf, _leaf_cancel) = mid.with_timeout(Duration::from_secs(3600));
    let (sibling, _sibling_cancel) = root.with_cancel();
    mid_cancel.cancel();
    assert_eq!(mid.err(), Some(ContextError::Canceled));
    assert_eq!(leaf.err(), Some(ContextError::Canceled));
    assert!(
        leaf.done()
            .recv_timeout(GENEROUS)
            .unwrap_err()
            .is_disconnected(),
        "done() disconnected"
    );
    assert_eq!(root.err(), None, "a cancel never goes up");
    assert_eq!(sibling.err(), None, "nor sideways");
    assert!(!Context::background().is_done());
}

#[test]
fn a_child_of_a_done_context_is_born_done() {
    let (parent, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let (child, _c) = parent.with_timeout(Duration::from_secs(60));
    assert_eq!(child.err(), Some(ContextError::Canceled));
    assert!(child.done().try_recv().unwrap_err().is_disconnected());
}

#[test]
fn deadline_fires_with_deadline_exceeded_never_early() {
    on_both(|| {
        let start = Instant::now();
        let (ctx, _cancel) = Context::background().with_timeout(ms(30));
        assert_eq!(ctx.err(), None);
        assert!(ctx.deadline().unwrap() >= start + ms(30));
        assert!(ctx
            .done()
            .recv_timeout(GENEROUS)
            .unwrap_err()
            .is_disconnected());
        assert!(start.elapsed() >= ms(30), "cancelled early");
        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    });
}

#[test]
fn a_child_inherits_the_earlier_deadline() {
    let (parent, _p) = Context::background().with_timeout(ms(20));
    let (child, _c) = parent.with_timeout(Duration::from_secs(3600));
    assert_eq!(child.deadline(), parent.deadline());
    assert!(child
        .done()
        .recv_timeout(GENEROUS)
        .unwrap_err()
        .is_disconnected());
    assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
    // a deadline already past: done at birth
    let (late, _l) = Context::background().with_deadline(Instant::now() - ms(1));
    assert_eq!(late.err(), Some(ContextError::DeadlineExceeded));
}

#[test]
fn done_works_in_select() {
    on_both(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let (_s, work) = coronet::chan::unbounded::<u32>();
        let canceller = coronet::go(move || {
            coronet::time::sleep(ms(10));
            cancel.cancel();
        });
        let why = coronet::select! {
            recv(work) -> _ => panic!("no work was sent"),
            recv(ctx.done()) -> msg => {
                assert!(msg.is_err(), "nothing is ever sent on done()");
                ctx.err()
            }
            default(GENEROUS) => panic!("the cancel never arrived"),
        };
        assert_eq!(why, Some(ContextError::Canceled));
        canceller.join().unwrap();
    });
}

#[test]
fn dropping_the_canceller_cancels() {
    let (ctx, cancel) = Context::background().with_cancel();
    drop(cancel);
    assert!(ctx.is_done());
}

#[test]
fn many_children_made_and_dropped_do_not_pile_up_in_the_parent() {
    let (parent, _cancel) = Context::background().with_cancel();
    for i in 0..100_000u32 {
        let (child, cancel) = if i % 2 == 0 {
            parent.with_cancel()
        } else {
            parent.with_timeout(Duration::from_secs(3600))
        };
        assert!(!child.is_done());
        drop(cancel);
    }
    assert_eq!(parent.__child_count(), 0);
    // Children still alive are listed; they leave as they are dropped.
    let kept: Vec<_> = (0..10).map(|_| parent.with_cancel()).collect();
    assert_eq!(parent.__child_count(), 10);
    drop(kept);
    assert_eq!(parent.__child_count(), 0);
}

/// Far deeper than a stack holds one frame per level (a coroutine's 256 KiB overflows at a few
/// thousand): a chain this deep is cancelled and dropped only if neither recurses down it.
const DEEP: usize = 100_000;

/// `DEEP` contexts below `root`, each the child of the one before, root first, with their
/// cancellers. Every other level has a deadline of its own, earlier than its parent's (so
/// it arms a timer, unless `root` has an earlier one); the rest are plain `with_cancel`.
fn chain(root: &Context) -> (Vec<Context>, Vec<Canceller>) {
    let far = Instant::now() + Duration::from_secs(3600);
    let mut ctxs: Vec<Context> = Vec::with_capacity(DEEP);
    let mut cancels = Vec::with_capacity(DEEP);
    for i in 0..DEEP {
        let parent = ctxs.last().unwrap_or(root);
        let (ctx, cancel) = match i % 2 {
            0 => parent.with_cancel(),
            _ => parent.with_deadline(far - Duration::from_micros(i as u64)),
        };
        ctxs.push(ctx);
        cancels.push(cancel);
    }
    (ctxs, cancels)
}

#[test]
fn a_deep_chain_is_cancelled_from_its_root() {
    on_both(|| {
        let (root, cancel) = Context::background().with_cancel();
        let (ctxs, cancels) = chain(&root);
        assert!(ctxs.iter().all(|c| !c.is_done()));
        cancel.cancel();
        assert!(ctxs.iter().all(|c| c.err() == Some(ContextError::Canceled)));
        let leaf = ctxs.last().unwrap();
        assert!(leaf.done().try_recv().unwrap_err().is_disconnected());
        drop(cancels); // all done already: nothing to do
        drop(ctxs); // root first, so the leaf's drop frees the whole chain
    });
}

#[test]
fn a_deep_chain_is_cancelled_leaf_first_or_root_first_and_freed() {
    on_both(|| {
        // Cancellers leaf first: one level at a time, each leaving its parent's list; the
        // contexts live on in the leaf, whose drop then frees the whole chain.
        let (root, _cancel) = Context::background().with_cancel();
        let (mut ctxs, mut cancels) = chain(&root);
        let leaf = ctxs.pop().unwrap();
        let mid_done = ctxs[DEEP / 2].done().clone();
        drop(ctxs); // the cancellers hold them
        assert_eq!(root.__child_count(), 1);
        assert!(mid_done.try_recv().unwrap_err().is_empty(), "not cancelled");
        cancels.reverse();
        drop(cancels);
        assert_eq!(root.__child_count(), 0);
        assert!(mid_done.try_recv().unwrap_err().is_disconnected());
        assert_eq!(leaf.err(), Some(ContextError::Canceled));
        drop(leaf);

        // Root first: its cancel reaches the whole chain; the cancellers' drop frees it.
        let (root, root_cancel) = Context::background().with_cancel();
        let (ctxs, cancels) = chain(&root);
        let leaf_done = ctxs.last().unwrap().done().clone();
        drop((root, ctxs));
        drop(root_cancel);
        assert!(leaf_done.try_recv().unwrap_err().is_disconnected());
        drop(cancels);
    });
}

#[test]
fn a_deadline_at_the_root_of_a_deep_chain_cancels_it_all() {
    // The timer's callback cancels the chain wherever the timer runs (a worker's scheduler,
    // or the timer thread), so a recursion there kills the process. If building the chain
    // takes longer than the deadline, the late levels are born done: the same outcome.
    on_both(|| {
        let (root, _cancel) = Context::background().with_timeout(Duration::from_secs(1));
        let (ctxs, _cancels) = chain(&root);
        let leaf = ctxs.last().unwrap();
        assert!(leaf
            .done()
            .recv_timeout(GENEROUS)
            .unwrap_err()
            .is_disconnected());
        assert!(ctxs
            .iter()
            .all(|c| c.err() == Some(ContextError::DeadlineExceeded)));
    });
}

#[test]
fn errors_read_as_go_and_convert_to_io() {
    assert_eq!(ContextError::Canceled.to_string(), "context canceled");
    assert_eq!(
        ContextError::DeadlineExceeded.to_string(),
        "context deadline exceeded"
    );
    let io: std::io::Error = ContextError::DeadlineExceeded.into();
    assert_eq!(io.kind(), ErrorKind::TimedOut);
    let io: std::io::Error = ContextError::Canceled.into();
    // Not Interrupted: std's read_exact / write_all would retry it forever.
    assert_ne!(io.kind(), ErrorKind::Interrupted);
    assert_eq!(ContextError::of(&io), Some(ContextError::Canceled));
}

#[test]
fn fan_out_dial_first_success_cancels_the_rest() {
    let hole = blackhole();
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let live_addr = live.local_addr().unwrap();
    let (ctx, cancel) = Context::background().with_cancel();
    let (results_tx, results) = coronet::chan::unbounded();
    for i in 0..10 {
        let ctx = ctx.clone();
        let results_tx = results_tx.clone();
        let to = if i == 7 { live_addr } else { hole.addr };
        let dial = move || {
            let start = Instant::now();
            let r = Dialer::new().dial_context(&ctx, to);
            results_tx.send((to, r, start.elapsed())).unwrap();
        };
        // eight coroutines and two plain threads
        if i % 5 == 4 {
            std::thread::spawn(dial);
        } else {
            coronet::go(dial);
        }
    }
    drop(results_tx);
    let (to, first, _) = results.recv_timeout(GENEROUS).unwrap();
    assert_eq!(to, live_addr, "only the live listener answers");
    let conn = first.unwrap();
    coronet::time::sleep(ms(50)); // let the other nine park in their connects
    let cancelled_at = Instant::now();
    cancel.cancel();
    let mut rest = 0;
    while let Ok((to, r, _)) = results.recv_timeout(GENEROUS) {
        assert_eq!(to, hole.addr);
        let err = r.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("dial tcp {}: operation was canceled", hole.addr)
        );
        assert_eq!(ContextError::of(&err), Some(ContextError::Canceled));
        assert_eq!(err.kind(), ErrorKind::Other);
        rest += 1;
    }
    assert_eq!(rest, 9);
    // The SYN retry would take a second or more: the cancel, not the kernel, ended them.
    assert!(
        cancelled_at.elapsed() < ms(900),
        "{:?}",
        cancelled_at.elapsed()
    );
    drop(conn);
}

#[test]
fn dial_context_deadline_is_an_io_timeout() {
    let hole = blackhole();
    let addr = hole.addr;
    on_both(move || {
        let start = Instant::now();
        let (ctx, _cancel) = Context::background().with_timeout(ms(50));
        let err = Dialer::new().dial_context(&ctx, addr).unwrap_err();
        let took = start.elapsed();
        assert!(took >= ms(50), "gave up early: {took:?}");
        assert!(took < GENEROUS);
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_eq!(err.to_string(), format!("dial tcp {addr}: i/o timeout"));
    });
}

#[test]
fn dial_context_on_a_done_context_fails_at_once() {
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = live.local_addr().unwrap();
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let err = Dialer::new().dial_context(&ctx, addr).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("dial tcp {addr}: operation was canceled")
    );
    let err = Dialer::new()
        .dial_context(&ctx, format!("localhost:{}", addr.port()))
        .unwrap_err();
    assert_eq!(ContextError::of(&err), Some(ContextError::Canceled));
}

#[test]
fn dial_context_resolves_names() {
    on_both(|| {
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = live.local_addr().unwrap().port();
        let (ctx, _cancel) = Context::background().with_timeout(GENEROUS);
        let c = Dialer::new()
            .dial_context(&ctx, format!("localhost:{port}"))
            .unwrap();
        assert_eq!(c.peer_addr().unwrap().port(), port);
    });
}

#[test]
fn lookup_host_context_answers_or_says_why_not() {
    on_both(|| {
        let bg = Context::background();
        let addrs: Vec<_> = coronet::net::lookup_host_context(&bg, "localhost:443")
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs
            .iter()
            .all(|a| a.port() == 443 && a.ip().is_loopback()));

        let (late, _c) = bg.with_deadline(Instant::now() - ms(1));
        let err = coronet::net::lookup_host_context(&late, "localhost:443").unwrap_err();
        assert_eq!(err.to_string(), "lookup localhost: i/o timeout");
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}
