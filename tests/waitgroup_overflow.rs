//! An `add` that would pass `isize::MAX` is refused (it panics) without touching the counter,
//! also as others see it: a legal `done`/`add` racing with it must never find the counter
//! wrapped negative. A binary of its own, because it silences the refused adds' panic
//! messages (hundreds of thousands of them) with a panic hook, which is process-wide.

use coronet::sync::WaitGroup;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn a_refused_overflowing_add_is_never_seen_by_others() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
        if msg != "sync: WaitGroup counter overflow" {
            default(info);
        }
    }));
    let wg = Arc::new(WaitGroup::new());
    wg.add(isize::MAX - 1);
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let refuser = {
        let (wg, stop, refused) = (wg.clone(), stop.clone(), refused.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let r = panic::catch_unwind(AssertUnwindSafe(|| wg.add(isize::MAX)));
                assert!(r.is_err(), "an add past isize::MAX was accepted");
                refused.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Between isize::MAX - 2 and isize::MAX - 1: always legal. Until 20,000 adds were
    // refused meanwhile (before the fix one failed within a few thousand), or 10 s.
    let start = Instant::now();
    let mut rounds = 0u64;
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        while refused.load(Ordering::Relaxed) < 20_000 && start.elapsed() < Duration::from_secs(10)
        {
            wg.done();
            wg.add(1);
            rounds += 1;
        }
    }));
    stop.store(true, Ordering::Relaxed);
    refuser.join().unwrap();
    assert!(r.is_ok(), "a legal done/add panicked after {rounds} rounds");
    assert_eq!(
        format!("{wg:?}"),
        format!("WaitGroup {{ count: {}, .. }}", isize::MAX - 1)
    );
}
