//! `coronet::sync` from plain OS threads, for Miri (`.ci/miri`): no coroutines (Miri cannot
//! switch stacks). They run natively under `cargo test` too.

use coronet::sync::{Barrier, Condvar, Mutex, Once, RwLock, Semaphore, WaitGroup};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[test]
fn mutex_counts_and_protects_non_atomic_data() {
    let m = Arc::new(Mutex::new(Vec::<u64>::new()));
    let hs: Vec<_> = (0..3)
        .map(|k| {
            let m = m.clone();
            thread::spawn(move || {
                for i in 0..10 {
                    let mut g = m.lock();
                    g.push(k * 100 + i);
                    if i % 3 == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(m.lock().len(), 30);
}

#[test]
fn mutex_starvation_handoff_path() {
    // hold the lock past STARVATION (1ms) so that unlock hands off
    let m = Arc::new(Mutex::new(0u64));
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || {
                for _ in 0..4 {
                    let mut g = m.lock();
                    *g += 1;
                    thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*m.lock(), 12);
}

#[test]
fn mutex_try_lock() {
    let m = Arc::new(Mutex::new(String::new()));
    let m2 = m.clone();
    let t = thread::spawn(move || {
        for _ in 0..20 {
            if let Some(mut g) = m2.try_lock() {
                g.push('a');
            }
        }
    });
    for _ in 0..20 {
        m.lock().push('b');
    }
    t.join().unwrap();
}

#[test]
fn rwlock_readers_and_writers() {
    let l = Arc::new(RwLock::new(vec![0u32; 4]));
    let hs: Vec<_> = (0..4)
        .map(|k| {
            let l = l.clone();
            thread::spawn(move || {
                for i in 0..6 {
                    if (k + i) % 2 == 0 {
                        let mut w = l.write();
                        for x in w.iter_mut() {
                            *x += 1;
                        }
                    } else {
                        let r = l.read();
                        let first = r[0];
                        assert!(r.iter().all(|&x| x == first));
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let r = l.read();
    assert!(r.iter().all(|&x| x == r[0]));
}

#[test]
fn rwlock_try_variants() {
    let l = Arc::new(RwLock::new(Box::new(1u32)));
    let l2 = l.clone();
    let t = thread::spawn(move || {
        for _ in 0..20 {
            if let Some(mut w) = l2.try_write() {
                **w += 1;
            }
            if let Some(r) = l2.try_read() {
                assert!(**r >= 1);
            }
        }
    });
    for _ in 0..20 {
        let r = l.read();
        assert!(**r >= 1);
    }
    t.join().unwrap();
}

#[test]
fn condvar_wait_notify() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = pair.clone();
    let t = thread::spawn(move || {
        let (m, c) = &*p2;
        *m.lock() = true;
        c.notify_one();
    });
    let (m, c) = &*pair;
    let mut g = m.lock();
    while !*g {
        g = c.wait(g);
    }
    drop(g);
    t.join().unwrap();
    let (g, r) = c.wait_timeout(m.lock(), Duration::from_millis(1));
    assert!(r.timed_out());
    drop(g);
}

#[test]
fn once_from_threads() {
    static ONCE: Once = Once::new();
    static mut VAL: u64 = 0;
    let hs: Vec<_> = (0..3)
        .map(|_| {
            thread::spawn(|| {
                // SAFETY: only the one initialiser `call_once` runs writes VAL, and no
                // reader exists before any call_once returns.
                ONCE.call_once(|| unsafe { VAL = 42 });
                // SAFETY: call_once has returned, so the write happened before this read
                // (what Miri checks: a missing happens-before edge is a data race here).
                assert_eq!(unsafe { VAL }, 42);
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn semaphore_and_waitgroup_and_barrier() {
    let s = Arc::new(Semaphore::new(1));
    let wg = Arc::new(WaitGroup::new());
    let b = Arc::new(Barrier::new(3));
    let data = Arc::new(std::sync::Mutex::new(0));
    wg.add(3);
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let (s, wg, b, data) = (s.clone(), wg.clone(), b.clone(), data.clone());
            thread::spawn(move || {
                b.wait();
                for _ in 0..3 {
                    let _p = s.acquire();
                    *data.lock().unwrap() += 1;
                }
                let _ = s.acquire_timeout(Duration::from_micros(10));
                wg.done();
            })
        })
        .collect();
    wg.wait();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*data.lock().unwrap(), 9);
}
