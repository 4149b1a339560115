//! Channel tests Miri can run (`.ci/miri`): plain OS threads only, no coroutines (Miri
//! cannot switch stacks) and no sockets. They run natively under `cargo test` too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use coronet::chan;

/// A select that links its arms, then gives up (its default's timeout) while a peer walks
/// the same queue: the pointer to the select's signal linked there must stay valid through
/// the select's own abort. It did not (Miri, both aliasing models): the first arm's pointer
/// came from `OnceCell::get_or_init`'s `&mut` and the abort wrote through another.
#[test]
fn select_abort_while_a_peer_walks_the_queue() {
    let (s1, r1) = chan::bounded::<u32>(0);
    let (_s2, r2) = chan::bounded::<u32>(0);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let peer = thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            let _ = s1.try_send(1);
            thread::yield_now();
        }
    });
    for _ in 0..30 {
        coronet::select! {
            recv(r1) -> v => assert_eq!(v, Ok(1)),
            recv(r2) -> _ => unreachable!("nobody sends on r2"),
            default(Duration::from_micros(50)) => {},
        }
    }
    stop.store(true, Ordering::Relaxed);
    peer.join().unwrap();
}

#[test]
fn rendezvous_ping_pong() {
    let (s, r) = chan::bounded::<Box<u64>>(0);
    let (s2, r2) = chan::bounded::<Box<u64>>(0);
    let t = thread::spawn(move || {
        for _ in 0..20 {
            let v = r.recv().unwrap();
            s2.send(Box::new(*v + 1)).unwrap();
        }
    });
    for i in 0..20u64 {
        s.send(Box::new(i)).unwrap();
        assert_eq!(*r2.recv().unwrap(), i + 1);
    }
    t.join().unwrap();
}

#[test]
fn bounded_many_senders_one_receiver() {
    let (s, r) = chan::bounded::<Vec<u8>>(1);
    let mut hs = Vec::new();
    for k in 0..3u8 {
        let s = s.clone();
        hs.push(thread::spawn(move || {
            for i in 0..8u8 {
                s.send(vec![k, i]).unwrap();
            }
        }));
    }
    drop(s);
    let got: Vec<Vec<u8>> = r.iter().collect();
    assert_eq!(got.len(), 24);
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn disconnect_wakes_blocked_receiver_and_sender() {
    let (s, r) = chan::bounded::<String>(0);
    let t = thread::spawn(move || r.recv());
    thread::sleep(Duration::from_millis(5));
    drop(s);
    assert!(t.join().unwrap().is_err());

    let (s, r) = chan::bounded::<String>(0);
    let t = thread::spawn(move || s.send("x".to_string()));
    thread::sleep(Duration::from_millis(5));
    drop(r);
    assert_eq!(t.join().unwrap().unwrap_err().into_inner(), "x");
}

#[test]
fn timeouts_race_with_peers() {
    for _ in 0..6 {
        let (s, r) = chan::bounded::<Box<u32>>(0);
        let t = thread::spawn(move || {
            let mut got = 0;
            for _ in 0..4 {
                if r.recv_timeout(Duration::from_micros(50)).is_ok() {
                    got += 1;
                }
            }
            got
        });
        let mut sent = 0;
        for i in 0..4 {
            if s.send_timeout(Box::new(i), Duration::from_micros(50))
                .is_ok()
            {
                sent += 1;
            }
        }
        drop(s);
        assert_eq!(t.join().unwrap(), sent);
    }
}

#[test]
fn select_from_threads() {
    let (s1, r1) = chan::bounded::<Box<u32>>(0);
    let (s2, r2) = chan::bounded::<Box<u32>>(0);
    let (s3, r3) = chan::bounded::<Box<u32>>(0);
    let _keep = (s1.clone(), s2.clone());
    let a = thread::spawn(move || {
        for i in 0..6 {
            s1.send(Box::new(i)).unwrap();
        }
    });
    let b = thread::spawn(move || {
        for i in 0..6 {
            s2.send(Box::new(100 + i)).unwrap();
        }
    });
    let c = thread::spawn(move || {
        let mut n = 0;
        while r3.recv().is_ok() {
            n += 1;
        }
        n
    });
    let mut got = 0;
    let mut sent3 = 0;
    let mut v = 1000;
    while got < 12 {
        coronet::select! {
            recv(r1) -> x => { x.unwrap(); got += 1; },
            recv(r2) -> x => { x.unwrap(); got += 1; },
            send(s3, Box::new(v)) -> res => { res.unwrap(); sent3 += 1; v += 1; },
            default(Duration::from_millis(500)) => panic!("timeout"),
        }
    }
    drop(s3);
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(c.join().unwrap(), sent3);
}

#[test]
fn select_timeout_races_with_sender() {
    for _ in 0..6 {
        let (s1, r1) = chan::bounded::<Box<u32>>(0);
        let (s2, r2) = chan::bounded::<Box<u32>>(0);
        let t = thread::spawn(move || {
            let a = s1
                .send_timeout(Box::new(1), Duration::from_micros(30))
                .is_ok();
            let b = s2
                .send_timeout(Box::new(2), Duration::from_micros(30))
                .is_ok();
            a as u32 + b as u32
        });
        let mut got = 0;
        for _ in 0..2 {
            coronet::select! {
                recv(r1) -> x => { if x.is_ok() { got += 1 } },
                recv(r2) -> x => { if x.is_ok() { got += 1 } },
                default(Duration::from_micros(40)) => {},
            }
        }
        drop((r1, r2));
        assert_eq!(t.join().unwrap(), got);
    }
}

#[test]
fn select_send_and_recv_same_channel_two_threads() {
    let (s, r) = chan::bounded::<Box<u32>>(0);
    let (s_, r_) = (s.clone(), r.clone());
    let t = thread::spawn(move || {
        let mut n = 0;
        for i in 0..6 {
            coronet::select! {
                send(s_, Box::new(i)) -> res => { res.unwrap(); n += 1; },
                recv(r_) -> v => { v.unwrap(); n += 1; },
            }
        }
        n
    });
    let mut n = 0;
    for i in 0..6 {
        coronet::select! {
            send(s, Box::new(i)) -> res => { res.unwrap(); n += 1; },
            recv(r) -> v => { v.unwrap(); n += 1; },
        }
    }
    assert_eq!(t.join().unwrap() + n, 12);
}

#[test]
fn unbounded_and_drop_receiver_drops_queue() {
    let (s, r) = chan::unbounded::<Box<u32>>();
    let t = thread::spawn(move || {
        for i in 0..10 {
            if s.send(Box::new(i)).is_err() {
                break;
            }
        }
    });
    let _ = r.recv();
    drop(r);
    t.join().unwrap();
}

#[test]
fn many_selects_many_channels_with_timeouts() {
    let (s1, r1) = chan::bounded::<Box<u32>>(0);
    let (s2, r2) = chan::bounded::<Box<u32>>(1);
    let mut hs = Vec::new();
    for k in 0..2u32 {
        let (s1, r1, s2, r2) = (s1.clone(), r1.clone(), s2.clone(), r2.clone());
        hs.push(thread::spawn(move || {
            let mut n = 0;
            for i in 0..5 {
                coronet::select! {
                    send(s1, Box::new(k * 10 + i)) -> res => { if res.is_ok() { n += 1 } },
                    recv(r2) -> v => { if v.is_ok() { n += 1 } },
                    send(s2, Box::new(i)) -> res => { if res.is_ok() { n += 1 } },
                    recv(r1) -> v => { if v.is_ok() { n += 1 } },
                    default(Duration::from_micros(20)) => {},
                }
            }
            n
        }));
    }
    for _ in 0..5 {
        let _ = r1.recv_timeout(Duration::from_micros(15));
        let _ = s2.try_send(Box::new(99));
        let _ = r2.try_recv();
    }
    drop((s1, r1, s2, r2));
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn select_disconnect_while_queued() {
    for _ in 0..4 {
        let (s1, r1) = chan::bounded::<Box<u32>>(0);
        let (s2, r2) = chan::bounded::<Box<u32>>(0);
        let t = thread::spawn(move || {
            coronet::select! {
                recv(r1) -> v => v.is_err(),
                send(s2, Box::new(5)) -> res => res.is_err(),
            }
        });
        thread::yield_now();
        drop(s1);
        drop(r2);
        assert!(t.join().unwrap());
    }
}
