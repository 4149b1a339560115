//! Channels: a model of the non-blocking operations, a concurrent model of delivery, and
//! behaviours ported from Go's `runtime/chan_test.go` (Copyright The Go Authors, BSD
//! licence). The ports are our own code: they check the same behaviours, not the same lines.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::chan::{
    self, Receiver, RecvError, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError,
    TrySendError,
};
use proptest::prelude::*;

/// Runs `f` on a coroutine or on a plain thread; the handle joins either.
enum Runner<T> {
    Co(coronet::JoinHandle<T>),
    Thread(std::thread::JoinHandle<T>),
}

fn spawn<T: Send + 'static>(on_thread: bool, f: impl FnOnce() -> T + Send + 'static) -> Runner<T> {
    if on_thread {
        Runner::Thread(std::thread::spawn(f))
    } else {
        Runner::Co(coronet::go(f))
    }
}

impl<T> Runner<T> {
    fn join(self) -> T {
        match self {
            Runner::Co(h) => h.join().unwrap(),
            Runner::Thread(h) => h.join().unwrap(),
        }
    }
}

/// Lets others run while spinning on a try-op (`yield_now` yields a coroutine, or the thread).
fn relax() {
    coronet::yield_now();
}

/// Long enough that a wrongly-completing operation shows up; short enough to keep the file fast.
const SETTLE: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------
// Model of the non-blocking operations, driven from one thread.

#[derive(Debug, Clone)]
enum Op {
    TrySend,
    SendTimeoutZero,
    TryRecv,
    RecvTimeoutZero,
    CloneSender,
    DropSender(usize),
    CloneReceiver,
    DropReceiver(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::TrySend),
        1 => Just(Op::SendTimeoutZero),
        4 => Just(Op::TryRecv),
        1 => Just(Op::RecvTimeoutZero),
        1 => Just(Op::CloneSender),
        1 => (0..4usize).prop_map(Op::DropSender),
        1 => Just(Op::CloneReceiver),
        1 => (0..4usize).prop_map(Op::DropReceiver),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// try-ops, clones and drops give exactly the results a queue with counters predicts.
    #[test]
    fn non_blocking_ops_follow_the_model(
        cap in prop_oneof![Just(None), (0..4usize).prop_map(Some)],
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let (s, r) = match cap {
            Some(c) => chan::bounded::<u32>(c),
            None => chan::unbounded(),
        };
        let mut senders = vec![s];
        let mut receivers = vec![r];
        let mut model: VecDeque<u32> = VecDeque::new();
        let mut next = 0u32;
        for op in ops {
            match op {
                Op::TrySend | Op::SendTimeoutZero => {
                    let Some(s) = senders.first() else { continue };
                    next += 1;
                    let full = cap.is_some_and(|c| model.len() >= c);
                    if matches!(op, Op::TrySend) {
                        let got = s.try_send(next);
                        let want = if receivers.is_empty() {
                            Err(TrySendError::Disconnected(next))
                        } else if full {
                            Err(TrySendError::Full(next))
                        } else {
                            Ok(())
                        };
                        prop_assert_eq!(got, want);
                    } else {
                        let got = s.send_timeout(next, Duration::ZERO);
                        let want = if receivers.is_empty() {
                            Err(SendTimeoutError::Disconnected(next))
                        } else if full {
                            Err(SendTimeoutError::Timeout(next))
                        } else {
                            Ok(())
                        };
                        prop_assert_eq!(got, want);
                    }
                    if !receivers.is_empty() && !full {
                        model.push_back(next);
                    }
                }
                Op::TryRecv | Op::RecvTimeoutZero => {
                    let Some(r) = receivers.first() else { continue };
                    let want_dis = senders.is_empty();
                    match op {
                        Op::TryRecv => {
                            let want = model.pop_front().ok_or(if want_dis {
                                TryRecvError::Disconnected
                            } else {
                                TryRecvError::Empty
                            });
                            prop_assert_eq!(r.try_recv(), want);
                        }
                        _ => {
                            let want = model.pop_front().ok_or(if want_dis {
                                RecvTimeoutError::Disconnected
                            } else {
                                RecvTimeoutError::Timeout
                            });
                            prop_assert_eq!(r.recv_timeout(Duration::ZERO), want);
                        }
                    }
                }
                Op::CloneSender => {
                    if let Some(s) = senders.first() {
                        senders.push(s.clone());
                    }
                }
                Op::DropSender(i) => {
                    if !senders.is_empty() {
                        senders.remove(i % senders.len());
                    }
                }
                Op::CloneReceiver => {
                    if let Some(r) = receivers.first() {
                        receivers.push(r.clone());
                    }
                }
                Op::DropReceiver(i) => {
                    if !receivers.is_empty() {
                        receivers.remove(i % receivers.len());
                        if receivers.is_empty() {
                            model.clear(); // nobody can receive them: they are dropped
                        }
                    }
                }
            }
            for s in &senders {
                prop_assert_eq!(s.len(), model.len());
                prop_assert_eq!(s.capacity(), cap);
            }
            for r in &receivers {
                prop_assert_eq!(r.len(), model.len());
                prop_assert_eq!(r.is_empty(), model.is_empty());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Concurrent model: every value exactly once, FIFO per producer, end exactly at disconnect.

#[derive(Debug, Clone, Copy, PartialEq)]
enum SendMode {
    Send,
    TrySendSpin,
    SendTimeoutRetry,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RecvMode {
    Recv,
    TryRecvSpin,
    RecvTimeoutRetry,
    Iter,
}

fn send_mode() -> impl Strategy<Value = SendMode> {
    prop_oneof![
        Just(SendMode::Send),
        Just(SendMode::TrySendSpin),
        Just(SendMode::SendTimeoutRetry)
    ]
}

fn recv_mode() -> impl Strategy<Value = RecvMode> {
    prop_oneof![
        Just(RecvMode::Recv),
        Just(RecvMode::TryRecvSpin),
        Just(RecvMode::RecvTimeoutRetry),
        Just(RecvMode::Iter)
    ]
}

fn produce(s: Sender<(usize, u32)>, p: usize, n: u32, mode: SendMode, done: Arc<AtomicUsize>) {
    for i in 0..n {
        let mut v = (p, i);
        loop {
            match mode {
                SendMode::Send => {
                    s.send(v).unwrap();
                    break;
                }
                SendMode::TrySendSpin => match s.try_send(v) {
                    Ok(()) => break,
                    Err(TrySendError::Full(x)) => {
                        v = x;
                        relax();
                    }
                    Err(TrySendError::Disconnected(_)) => panic!("receivers vanished"),
                },
                SendMode::SendTimeoutRetry => match s.send_timeout(v, Duration::from_micros(300)) {
                    Ok(()) => break,
                    Err(SendTimeoutError::Timeout(x)) => v = x,
                    Err(SendTimeoutError::Disconnected(_)) => panic!("receivers vanished"),
                },
            }
        }
    }
    // counted before the handle drops: a receiver that sees the disconnect sees this too
    done.fetch_add(1, Ordering::SeqCst);
}

fn consume(
    r: Receiver<(usize, u32)>,
    mode: RecvMode,
    done: Arc<AtomicUsize>,
    producers: usize,
) -> Vec<(usize, u32)> {
    let mut got = Vec::new();
    match mode {
        RecvMode::Iter => got.extend(r.iter()),
        _ => loop {
            let v = match mode {
                RecvMode::Recv => r.recv().ok(),
                RecvMode::TryRecvSpin => match r.try_recv() {
                    Ok(v) => Some(v),
                    Err(TryRecvError::Empty) => {
                        relax();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => None,
                },
                _ => match r.recv_timeout(Duration::from_micros(300)) {
                    Ok(v) => Some(v),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => None,
                },
            };
            match v {
                Some(v) => got.push(v),
                None => break,
            }
        },
    }
    assert_eq!(
        done.load(Ordering::SeqCst),
        producers,
        "a receiver saw the disconnect before every producer finished"
    );
    got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn concurrent_delivery_is_exactly_once_and_fifo_per_producer(
        cap in prop_oneof![Just(None), (0..4usize).prop_map(Some)],
        producers in proptest::collection::vec((any::<bool>(), 0..120u32, send_mode()), 1..4),
        consumers in proptest::collection::vec((any::<bool>(), recv_mode()), 1..4),
    ) {
        let (s, r) = match cap {
            Some(c) => chan::bounded(c),
            None => chan::unbounded(),
        };
        // On a rendezvous channel a try_send succeeds only against a parked receiver, so a
        // spinning try_send with only spinning try_recv consumers can never meet one — a
        // livelock by the rules (Go's non-blocking send and receive never meet either), not
        // a bug. Such producers send blocking instead.
        let mut producers = producers;
        if cap == Some(0) && consumers.iter().all(|&(_, m)| m == RecvMode::TryRecvSpin) {
            for p in &mut producers {
                if p.2 == SendMode::TrySendSpin {
                    p.2 = SendMode::Send;
                }
            }
        }
        let done = Arc::new(AtomicUsize::new(0));
        let np = producers.len();
        let cs: Vec<_> = consumers
            .iter()
            .map(|&(t, mode)| {
                let (r, done) = (r.clone(), done.clone());
                spawn(t, move || consume(r, mode, done, np))
            })
            .collect();
        drop(r);
        let ps: Vec<_> = producers
            .iter()
            .enumerate()
            .map(|(p, &(t, n, mode))| {
                let (s, done) = (s.clone(), done.clone());
                spawn(t, move || produce(s, p, n, mode, done))
            })
            .collect();
        drop(s);
        for p in ps {
            p.join();
        }
        let mut seen: HashMap<(usize, u32), usize> = HashMap::new();
        for c in cs {
            let got = c.join();
            // FIFO per producer, as each consumer sees it
            let mut last: HashMap<usize, u32> = HashMap::new();
            for &(p, i) in &got {
                if let Some(&prev) = last.get(&p) {
                    prop_assert!(i > prev, "producer {} out of order: {} after {}", p, i, prev);
                }
                last.insert(p, i);
                *seen.entry((p, i)).or_default() += 1;
            }
        }
        let total: u32 = producers.iter().map(|p| p.1).sum();
        prop_assert_eq!(seen.len(), total as usize, "values lost");
        prop_assert!(seen.values().all(|&n| n == 1), "values duplicated");
    }
}

// ---------------------------------------------------------------------------------------
// Ports of Go's TestChan and friends.

const CAPS: [usize; 4] = [0, 1, 3, 16];

#[test]
fn recv_from_an_empty_channel_blocks_until_a_send() {
    for cap in CAPS {
        for on_thread in [false, true] {
            let (s, r) = chan::bounded::<i32>(cap);
            let got = Arc::new(AtomicBool::new(false));
            let g = got.clone();
            let h = spawn(on_thread, move || {
                let v = r.recv();
                g.store(true, Ordering::SeqCst);
                v
            });
            std::thread::sleep(SETTLE);
            assert!(
                !got.load(Ordering::SeqCst),
                "recv returned from an empty chan (cap {cap})"
            );
            s.send(7).unwrap();
            assert_eq!(h.join(), Ok(7));
        }
    }
}

#[test]
fn send_to_a_full_channel_blocks_until_a_recv() {
    for cap in CAPS {
        for on_thread in [false, true] {
            let (s, r) = chan::bounded::<usize>(cap);
            for i in 0..cap {
                s.send(i).unwrap();
            }
            let sent = Arc::new(AtomicBool::new(false));
            let f = sent.clone();
            let h = spawn(on_thread, move || {
                s.send(1000).unwrap();
                f.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(SETTLE);
            assert!(
                !sent.load(Ordering::SeqCst),
                "send to a full chan returned (cap {cap})"
            );
            let first = r.recv().unwrap();
            assert_eq!(first, if cap == 0 { 1000 } else { 0 });
            h.join();
            assert!(sent.load(Ordering::SeqCst));
            let rest: Vec<_> = r.iter().collect();
            let want: Vec<_> = if cap == 0 {
                vec![]
            } else {
                (1..cap).chain([1000]).collect()
            };
            assert_eq!(rest, want, "FIFO, with the blocked value last");
        }
    }
}

#[test]
fn rendezvous_send_completes_only_when_a_receiver_takes_it() {
    for on_thread in [false, true] {
        let (s, r) = chan::bounded::<u8>(0);
        let sent_at = spawn(on_thread, move || {
            s.send(1).unwrap();
            Instant::now()
        });
        std::thread::sleep(SETTLE);
        let arrived = Instant::now();
        assert_eq!(r.recv(), Ok(1));
        assert!(
            sent_at.join() >= arrived,
            "send completed before the receiver arrived"
        );
        assert_eq!(r.len(), 0);
        assert!(
            r.is_full() && r.is_empty(),
            "a rendezvous channel is both full and empty"
        );
    }
}

#[test]
fn dropping_every_sender_wakes_all_waiting_receivers() {
    for cap in CAPS {
        let (s, r) = chan::bounded::<u8>(cap);
        let waiting: Vec<_> = (0..6)
            .map(|i| {
                let r = r.clone();
                spawn(i % 2 == 0, move || r.recv())
            })
            .collect();
        let s2 = s.clone();
        std::thread::sleep(SETTLE);
        drop(s);
        std::thread::sleep(Duration::from_millis(10));
        drop(s2);
        for w in waiting {
            assert_eq!(w.join(), Err(RecvError));
        }
        assert_eq!(r.try_recv(), Err(TryRecvError::Disconnected));
    }
}

#[test]
fn receivers_drain_the_queue_before_seeing_the_disconnect() {
    let (s, r) = chan::bounded(8);
    for i in 0..5 {
        s.send(i).unwrap();
    }
    drop(s);
    assert_eq!(r.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(r.recv(), Err(RecvError));
}

#[test]
fn dropping_every_receiver_fails_blocked_senders_and_returns_values() {
    for cap in [0, 1] {
        let (s, r) = chan::bounded::<String>(cap);
        for i in 0..cap {
            s.send(format!("queued {i}")).unwrap();
        }
        let blocked: Vec<_> = (0..4)
            .map(|i| {
                let s = s.clone();
                spawn(i % 2 == 1, move || s.send(format!("v{i}")))
            })
            .collect();
        std::thread::sleep(SETTLE);
        drop(r);
        for (i, b) in blocked.into_iter().enumerate() {
            assert_eq!(b.join().unwrap_err().into_inner(), format!("v{i}"));
        }
        assert!(s.send("late".into()).is_err());
    }
}

#[test]
fn dropping_every_receiver_drops_queued_values() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (s, r) = chan::unbounded();
    for _ in 0..10 {
        s.send(Counted(drops.clone())).unwrap();
    }
    drop(r.recv().unwrap());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(r);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        10,
        "queued values freed with the last receiver"
    );
    let back = s.send(Counted(drops.clone())).unwrap_err();
    drop(back);
    assert_eq!(drops.load(Ordering::SeqCst), 11);
}

#[test]
fn fifo_of_a_hundred_values() {
    for cap in CAPS {
        let (s, r) = chan::bounded(cap);
        let p = coronet::go(move || (0..100).for_each(|i| s.send(i).unwrap()));
        let got: Vec<i32> = r.iter().collect();
        p.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }
}

#[test]
fn four_producers_four_consumers_deliver_everything() {
    for cap in CAPS {
        let (s, r) = chan::bounded::<u64>(cap);
        let (out_s, out_r) = chan::unbounded();
        for c in 0..4 {
            let (r, out_s) = (r.clone(), out_s.clone());
            spawn(c % 2 == 0, move || {
                let mut sum = 0;
                let mut n = 0;
                for v in r {
                    sum += v;
                    n += 1;
                }
                out_s.send((n, sum)).unwrap();
            });
        }
        drop((r, out_s));
        let ps: Vec<_> = (0..4u64)
            .map(|p| {
                let s = s.clone();
                spawn(p % 2 == 1, move || {
                    (0..1000).for_each(|i| s.send(p * 1000 + i).unwrap())
                })
            })
            .collect();
        drop(s);
        ps.into_iter().for_each(Runner::join);
        let (n, sum) = out_r.iter().fold((0, 0), |(a, b), (n, s)| (a + n, b + s));
        assert_eq!(n, 4000);
        assert_eq!(sum, 4000 * 3999 / 2);
    }
}

#[test]
fn ping_pong_buffered_and_unbuffered() {
    for cap in [0, 1] {
        for (ping_thread, pong_thread) in [(false, false), (true, false), (false, true)] {
            let (to_pong, pong_in) = chan::bounded::<u32>(cap);
            let (to_ping, ping_in) = chan::bounded::<u32>(cap);
            let pong = spawn(pong_thread, move || {
                for v in pong_in {
                    to_ping.send(v + 1).unwrap();
                }
            });
            let ping = spawn(ping_thread, move || {
                let mut v = 0;
                for _ in 0..2000 {
                    to_pong.send(v).unwrap();
                    v = ping_in.recv().unwrap() + 1;
                }
                v
            });
            assert_eq!(ping.join(), 4000);
            pong.join();
        }
    }
}

#[test]
fn non_blocking_recv_sees_data_or_disconnect_never_empty() {
    // Go's TestNonblockRecvRace: a channel with a value that is then closed is always ready.
    for _ in 0..300 {
        let (s, r) = chan::bounded(1);
        s.send(1).unwrap();
        let r2 = r.clone();
        let h = coronet::go(move || r2.try_recv());
        drop(s);
        let _ = r.recv();
        let got = h.join().unwrap();
        assert!(
            got != Err(TryRecvError::Empty),
            "a ready channel looked empty"
        );
    }
}

#[test]
fn recv_timeout_waits_then_gives_up() {
    for on_thread in [false, true] {
        let (s, r) = chan::bounded::<u8>(0);
        let h = spawn(on_thread, move || {
            let t = Instant::now();
            let res = r.recv_timeout(Duration::from_millis(40));
            (res, t.elapsed(), r)
        });
        let (res, took, r) = h.join();
        assert_eq!(res, Err(RecvTimeoutError::Timeout));
        assert!(took >= Duration::from_millis(40));
        // the timed-out waiter left no trace: a later send still rendezvous normally
        let h = coronet::go(move || r.recv_timeout(Duration::from_secs(20)));
        s.send(9).unwrap();
        assert_eq!(h.join().unwrap(), Ok(9));
    }
}

#[test]
fn send_timeout_waits_then_gives_the_value_back() {
    for on_thread in [false, true] {
        let (s, r) = chan::bounded::<String>(1);
        s.send("a".into()).unwrap();
        let h = spawn(on_thread, move || {
            let t = Instant::now();
            let res = s.send_timeout("b".into(), Duration::from_millis(40));
            (res, t.elapsed())
        });
        let (res, took) = h.join();
        assert_eq!(res, Err(SendTimeoutError::Timeout("b".to_string())));
        assert!(took >= Duration::from_millis(40));
        assert_eq!(r.recv().unwrap(), "a");
        assert_eq!(
            r.try_recv(),
            Err(TryRecvError::Disconnected),
            "the timed-out value is not queued"
        );
    }
}

#[test]
fn recv_deadline_is_met_by_a_later_send() {
    let (s, r) = chan::unbounded();
    let h = coronet::go(move || r.recv_deadline(Instant::now() + Duration::from_secs(20)));
    std::thread::sleep(SETTLE);
    s.send(5).unwrap();
    assert_eq!(h.join().unwrap(), Ok(5));
}

#[test]
fn many_coroutines_block_on_one_channel_without_blocking_workers() {
    // 1000 parked receivers must not tie up the workers: a sleeper still runs.
    let (s, r) = chan::bounded::<u32>(0);
    let rs: Vec<_> = (0..1000)
        .map(|_| {
            let r = r.clone();
            coronet::Spawn::new()
                .stack_size(32 << 10)
                .go(move || r.recv().unwrap())
        })
        .collect();
    coronet::go(|| coronet::time::sleep(Duration::from_millis(5)))
        .join()
        .unwrap();
    for i in 0..1000 {
        s.send(i).unwrap();
    }
    let sum: u32 = rs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 999 * 1000 / 2);
}

#[test]
fn dump_names_channel_waits() {
    let (s, r) = chan::bounded::<u8>(0);
    let (_s2, r2) = chan::bounded::<u8>(0);
    let a = coronet::Spawn::new()
        .name("chan-sender")
        .go(move || s.send(1));
    let b = coronet::Spawn::new()
        .name("chan-receiver")
        .go(move || r2.recv_timeout(Duration::from_secs(20)));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = coronet::dump();
        if d.contains("'chan-sender' [chan send]") && d.contains("'chan-receiver' [chan receive]") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dump never showed the waits:\n{d}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(r.recv(), Ok(1));
    a.join().unwrap().unwrap();
    drop(_s2);
    assert_eq!(b.join().unwrap(), Err(RecvTimeoutError::Disconnected));
}

#[test]
fn error_messages_match_crossbeam() {
    assert_eq!(
        chan::SendError(1).to_string(),
        "sending on a disconnected channel"
    );
    assert_eq!(
        TrySendError::Full(1).to_string(),
        "sending on a full channel"
    );
    assert_eq!(format!("{:?}", TrySendError::Full(1)), "Full(..)");
    assert_eq!(
        SendTimeoutError::Timeout(1).to_string(),
        "timed out waiting on send operation"
    );
    assert_eq!(
        RecvError.to_string(),
        "receiving on an empty and disconnected channel"
    );
    assert_eq!(
        TryRecvError::Empty.to_string(),
        "receiving on an empty channel"
    );
    assert_eq!(
        RecvTimeoutError::Timeout.to_string(),
        "timed out waiting on receive operation"
    );
    assert_eq!(
        RecvTimeoutError::Disconnected.to_string(),
        "channel is empty and disconnected"
    );
    let e: Box<dyn std::error::Error> = Box::new(chan::SendError(String::new()));
    assert_eq!(e.to_string(), "sending on a disconnected channel");
}

// ---------------------------------------------------------------------------------------
// Waiters live on the blocked caller's stack (src/chan/waiter.rs): a timeout must take its
// waiter back out of the queue even while a peer is handing it a value.

/// Both sides time out after a few microseconds, so expiries race hand-offs all the time:
/// every value is either received exactly once (and its send succeeded) or handed back to
/// its sender, in order.
#[test]
fn timeouts_racing_hand_offs_never_lose_or_duplicate_a_value() {
    const N: u64 = 3000;
    for (send_on_thread, recv_on_thread) in [(false, true), (true, false), (false, false)] {
        let (s, r) = chan::bounded::<u64>(0);
        let tx = spawn(send_on_thread, move || {
            let mut delivered = Vec::new();
            for i in 0..N {
                match s.send_timeout(i, Duration::from_micros(i % 50)) {
                    Ok(()) => delivered.push(i),
                    Err(SendTimeoutError::Timeout(v)) => assert_eq!(v, i, "wrong value back"),
                    Err(SendTimeoutError::Disconnected(v)) => panic!("disconnected at {v}"),
                }
            }
            delivered
        });
        let rx = spawn(recv_on_thread, move || {
            let mut got = Vec::new();
            for k in 0u64.. {
                match r.recv_timeout(Duration::from_micros(k % 40)) {
                    Ok(v) => got.push(v),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            got
        });
        let delivered = tx.join();
        assert_eq!(
            rx.join(),
            delivered,
            "received values differ from the successful sends \
             (sender on thread: {send_on_thread}, receiver on thread: {recv_on_thread})"
        );
    }
}

/// Receivers that keep giving up while the last sender leaves: the disconnect completes the
/// waiters still queued and skips the ones timing out, and every receiver sees it.
#[test]
fn timeouts_racing_a_disconnect_all_end() {
    for round in 0..200 {
        let (s, r) = chan::bounded::<u8>(0);
        let rs: Vec<_> = (0..4)
            .map(|i| {
                let r = r.clone();
                spawn(i % 2 == 0, move || loop {
                    match r.recv_timeout(Duration::from_micros(round % 30)) {
                        Err(RecvTimeoutError::Disconnected) => return,
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(v) => panic!("received {v} from a channel nobody sends on"),
                    }
                })
            })
            .collect();
        drop(r);
        std::thread::sleep(Duration::from_micros(round * 5));
        drop(s);
        for h in rs {
            h.join();
        }
    }
}
