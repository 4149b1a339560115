//! The order in which the netpoller hands ready connections to the scheduler: the order in
//! which the kernel saw them become ready, behind whatever was already waiting — not the
//! last of a batch first (which is what `runnext` would do). Needs one worker, so that one
//! poll sees the whole batch; hence a test binary of its own.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use coronet::net::UnixStream;

#[test]
fn a_batch_of_ready_connections_runs_in_the_order_it_became_ready() {
    coronet::Builder::new()
        .workers(1)
        .build_global()
        .expect("the only runtime of this test binary");
    const N: usize = 5;
    let order = coronet::run(|| {
        let order = Arc::new(Mutex::new(Vec::new()));
        let parked = Arc::new(AtomicUsize::new(0));
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        for i in 0..N {
            let (a, mut b) = UnixStream::pair().unwrap();
            writers.push(a);
            let (order, parked) = (order.clone(), parked.clone());
            readers.push(coronet::go(move || {
                parked.fetch_add(1, Ordering::SeqCst);
                let mut byte = [0u8];
                // nothing to read yet: parks on the netpoller until the write below
                assert_eq!(b.read(&mut byte).unwrap(), 1);
                order.lock().unwrap().push(i);
            }));
        }
        // One worker: once every reader has counted itself, each has also run on into its
        // read and parked (a coroutine runs until it parks or yields).
        while parked.load(Ordering::SeqCst) < N {
            coronet::yield_now();
        }
        coronet::yield_now();
        // Ready in the order 0, 1, …; the worker does not poll while this coroutine runs,
        // so its next poll finds all of them in one batch.
        for w in &mut writers {
            w.write_all(b"x").unwrap();
        }
        for r in readers {
            r.join().unwrap();
        }
        let order = order.lock().unwrap().clone();
        order
    });
    assert_eq!(order, (0..N).collect::<Vec<_>>());
}
