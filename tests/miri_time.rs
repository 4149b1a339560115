//! Timers, tickers and contexts from plain OS threads, for Miri (`.ci/miri`): the shared timer
//! thread, no workers. They run natively under `cargo test` too.

use coronet::chan;
use coronet::context::Context;
use coronet::time::{after, sleep, Ticker, Timer};
use std::thread;
use std::time::Duration;

#[test]
fn after_and_sleep_from_threads() {
    let r = after(Duration::from_millis(2));
    sleep(Duration::from_millis(1));
    r.recv().unwrap();
    // dropped unread: on_no_receivers hook cancels the timer from another thread
    let r2 = after(Duration::from_millis(50));
    let t = thread::spawn(move || drop(r2));
    t.join().unwrap();
}

#[test]
fn timer_stop_reset_race_from_threads() {
    for i in 0..4u64 {
        let t = std::sync::Arc::new(Timer::new(Duration::from_micros(200 * i)));
        let t2 = t.clone();
        let h = thread::spawn(move || {
            t2.reset(Duration::from_micros(100));
            t2.stop()
        });
        let _ = t.receiver().recv_timeout(Duration::from_millis(1));
        h.join().unwrap();
        t.reset(Duration::from_micros(50));
        let _ = t.receiver().recv_timeout(Duration::from_millis(5));
    }
}

#[test]
fn ticker_from_threads() {
    let tk = Ticker::new(Duration::from_micros(300));
    for _ in 0..3 {
        tk.receiver().recv().unwrap();
    }
    tk.reset(Duration::from_micros(100));
    tk.receiver().recv().unwrap();
    tk.stop();
}

#[test]
fn context_deadline_and_cancel_across_threads() {
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(2));
    let (child, ccancel) = ctx.with_cancel();
    let c2 = child.clone();
    let t = thread::spawn(move || {
        c2.done().recv().unwrap_err();
        c2.err()
    });
    assert!(t.join().unwrap().is_some());
    drop(ccancel);
    drop(cancel);
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(60));
    let t = thread::spawn(move || cancel.cancel());
    let _ = ctx.done().recv();
    t.join().unwrap();
    let (s, r) = chan::bounded::<u8>(0);
    let (ctx, cancel) = Context::background().with_cancel();
    let t = thread::spawn(move || {
        coronet::select! {
            recv(r) -> _ => 0,
            recv(ctx.done()) -> _ => 1,
        }
    });
    thread::sleep(Duration::from_millis(1));
    cancel.cancel();
    assert_eq!(t.join().unwrap(), 1);
    drop(s);
}
