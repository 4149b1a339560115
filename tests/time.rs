//! Timer channels, tickers and `timeout`, from coroutines and from plain threads.
//!
//! Waits assert order and "never early" with generous upper bounds: the machine is shared.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::chan::{self, RecvTimeoutError};
use coronet::time::{after, sleep, tick, timeout, Elapsed, Ticker, Timer};

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
fn after_in_select_fires_never_early() {
    on_both(|| {
        let (_s, r) = chan::unbounded::<u32>();
        let start = Instant::now();
        let fired = coronet::select! {
            recv(r) -> _ => panic!("nothing was sent"),
            recv(after(ms(30))) -> at => at.unwrap(),
            default(GENEROUS) => panic!("after never fired"),
        };
        assert!(fired >= start + ms(30), "fired early: {:?}", fired - start);
        assert!(start.elapsed() >= ms(30));
    });
}

#[test]
fn a_ready_channel_beats_after() {
    on_both(|| {
        let (s, r) = chan::unbounded();
        s.send(7).unwrap();
        let got = coronet::select! {
            recv(r) -> v => v.unwrap(),
            recv(after(GENEROUS)) -> _ => 0,
        };
        assert_eq!(got, 7);
    });
}

#[test]
fn after_delivers_once_and_stays_open() {
    on_both(|| {
        let r = after(ms(5));
        assert!(r.recv_timeout(GENEROUS).is_ok());
        // Go's timer channel never closes: a second receive waits, it does not fail.
        assert_eq!(r.recv_timeout(ms(20)), Err(RecvTimeoutError::Timeout));
    });
}

#[test]
fn many_timers_all_fire_never_early() {
    // 2,000 coroutines, each with its own `after`; every one fires, none early.
    let early = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..2_000u64)
        .map(|i| {
            let early = early.clone();
            coronet::go(move || {
                let d = ms(1 + i % 50);
                let start = Instant::now();
                let at = after(d).recv_timeout(GENEROUS).expect("timer fired");
                if at < start + d {
                    early.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(early.load(Ordering::SeqCst), 0);
}

#[test]
fn timer_fires_or_stops() {
    on_both(|| {
        let start = Instant::now();
        let t = Timer::new(ms(10));
        let at = t.receiver().recv_timeout(GENEROUS).unwrap();
        assert!(at >= start + ms(10));
        assert!(!t.stop(), "a fired timer cannot be stopped");

        let t = Timer::new(ms(10));
        assert!(t.stop());
        assert_eq!(
            t.receiver().recv_timeout(ms(40)),
            Err(RecvTimeoutError::Timeout),
            "a stopped timer sends nothing"
        );
    });
}

#[test]
fn timer_stopped_from_another_thread_sends_nothing() {
    // The timer lives in a worker's heap; the stop comes from a plain thread, which cannot
    // reach that heap, so the entry fires later and must find itself stopped.
    let t = coronet::go(|| Timer::new(ms(30))).join().unwrap();
    assert!(t.stop());
    assert_eq!(
        t.receiver().recv_timeout(ms(80)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
fn tick_keeps_its_cadence() {
    on_both(|| {
        let start = Instant::now();
        let ticks = tick(ms(15));
        let mut last = start;
        for k in 1..=5u32 {
            let at = ticks.recv_timeout(GENEROUS).unwrap();
            assert!(at >= start + ms(15) * k, "tick {k} early: {:?}", at - start);
            assert!(at > last);
            last = at;
        }
        assert!(start.elapsed() >= ms(75));
    });
}

#[test]
fn tick_drops_ticks_for_a_slow_receiver() {
    on_both(|| {
        let ticker = Ticker::new(ms(5));
        // ~20 periods with nobody receiving
        sleep(ms(100));
        // `len`, not a drain: a tick may land while we drain, and that is not a backlog.
        let waiting = ticker.receiver().len();
        assert_eq!(
            waiting, 1,
            "the channel holds one tick; the rest are dropped"
        );
        assert!(ticker.receiver().try_recv().is_ok());
        // and it keeps ticking afterwards
        assert!(ticker.receiver().recv_timeout(GENEROUS).is_ok());
    });
}

#[test]
fn ticker_stop_ends_the_ticks() {
    on_both(|| {
        let ticker = Ticker::new(ms(2));
        ticker.receiver().recv_timeout(GENEROUS).unwrap();
        ticker.stop();
        sleep(ms(10)); // let a tick that raced the stop land
        let _ = ticker.receiver().try_iter().count();
        assert_eq!(
            ticker.receiver().recv_timeout(ms(30)),
            Err(RecvTimeoutError::Timeout)
        );
    });
}

#[test]
#[should_panic(expected = "period must be greater than zero")]
fn a_zero_period_is_refused() {
    let _ = tick(Duration::ZERO);
}

#[test]
fn timeout_returns_the_result_in_time() {
    on_both(|| {
        assert_eq!(timeout(GENEROUS, || "done"), Ok("done"));
        let r = timeout(GENEROUS, || {
            sleep(ms(10));
            5
        });
        assert_eq!(r, Ok(5));
    });
}

#[test]
fn timeout_elapses_never_early_and_f_runs_on() {
    on_both(|| {
        let finished = Arc::new(AtomicUsize::new(0));
        let f = finished.clone();
        let start = Instant::now();
        let r = timeout(ms(30), move || {
            sleep(ms(80));
            f.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(r, Err(Elapsed::default()));
        let waited = start.elapsed();
        assert!(waited >= ms(30), "gave up early: {waited:?}");
        assert!(waited < GENEROUS);
        // Not preempted: the function goes on, detached, to the end.
        let give_up = Instant::now() + GENEROUS;
        while finished.load(Ordering::SeqCst) == 0 && Instant::now() < give_up {
            sleep(ms(5));
        }
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn timeout_resumes_a_panic() {
    let r = std::panic::catch_unwind(|| timeout(GENEROUS, || panic!("boom")));
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
}

#[test]
fn elapsed_is_an_io_timeout() {
    let e: std::io::Error = Elapsed::default().into();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(e.to_string(), "deadline has elapsed");
}
