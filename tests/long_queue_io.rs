//! A busy worker still looks at its netpoller. A fair round looks only while the run queue is
//! short (`IO_QUEUE_SHORT` in `runtime/worker.rs`), so that a saturated server leaves the
//! ready connections it has not reached in the kernel's list; with more coroutines than
//! that which only yield, the queue never gets short, and a socket's data must still reach
//! its reader within a bounded number of rounds. One worker, so that its rounds can be
//! counted and nothing else polls; hence a test binary of its own.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod util;
use util::one_worker;

/// One per turn of a yielder.
static ROUNDS: AtomicU64 = AtomicU64::new(0);

#[test]
fn a_read_is_woken_while_the_run_queue_stays_long() {
    one_worker();
    // Far more than the short queue; each yields, so each turn puts it back at the tail.
    const YIELDERS: usize = 400;
    let waited = coronet::run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        // If the reader were never woken, the yielders give up after this, the queue
        // empties, the worker polls, and the rounds counted say how long it took.
        let give_up = Instant::now() + Duration::from_secs(20);
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut ours = coronet::net::UnixStream::from(ours);
        let parked = Arc::new(AtomicBool::new(false));
        let reader = coronet::go({
            let parked = parked.clone();
            move || {
                parked.store(true, Ordering::SeqCst);
                let mut byte = [0u8; 1];
                // nothing to read yet: the read parks on the netpoller
                assert_eq!(ours.read(&mut byte).unwrap(), 1);
                assert_eq!(byte[0], 7);
                ROUNDS.load(Ordering::SeqCst)
            }
        });
        let yielders: Vec<_> = (0..YIELDERS)
            .map(|_| {
                let stop = stop.clone();
                coronet::go(move || {
                    while !stop.load(Ordering::SeqCst) && Instant::now() < give_up {
                        ROUNDS.fetch_add(1, Ordering::SeqCst);
                        coronet::yield_now();
                    }
                })
            })
            .collect();
        // The writer is a plain thread: it waits until the reader is parked and the
        // yielders have the queue, then sends one byte. The count is taken after the write,
        // so a writer descheduled around it can only make the wait look shorter.
        let writer = std::thread::spawn(move || {
            let mut theirs = theirs;
            // (bounded too: a reader or yielders that never start must fail, not hang)
            while (!parked.load(Ordering::SeqCst) || ROUNDS.load(Ordering::SeqCst) < 10_000)
                && Instant::now() < give_up
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(50));
            theirs.write_all(&[7]).unwrap();
            (theirs, ROUNDS.load(Ordering::SeqCst))
        });
        let woke_at = reader.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        for y in yielders {
            y.join().unwrap();
        }
        let (theirs, sent_at) = writer.join().unwrap();
        drop(theirs);
        woke_at.saturating_sub(sent_at)
    });
    // The worker looks at the netpoller at least every 64 fair ticks (3,904 rounds); the
    // reader then waits its turn behind the yielders. Without that bound, it waited until
    // the yielders gave up (millions of rounds).
    assert!(
        waited <= 3_904 + 2 * YIELDERS as u64 + 1_000,
        "the read waited {waited} rounds behind a long run queue"
    );
}
