//! `select!`: defaults and timeouts, send arms, coroutines and threads, fairness, a stress
//! test that counts every value, and disconnected arms. Several tests port behaviours of
//! Go's `runtime/chan_test.go` (TestSelfSelect, TestSelectDuplicateChannel,
//! TestPseudoRandomSend; Copyright The Go Authors, BSD licence) in our own code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::chan::{self, Receiver, RecvError, RecvTimeoutError};
use coronet::select;

const SETTLE: Duration = Duration::from_millis(50);

#[test]
fn default_runs_when_nothing_is_ready() {
    let (s, r) = chan::bounded::<u8>(0);
    let picked = select! {
        recv(r) -> _ => "recv",
        send(s, 1) -> _ => "send", // no receiver waits on a rendezvous channel
        default => "default",
    };
    assert_eq!(picked, "default");
}

#[test]
fn a_ready_arm_beats_default() {
    let (s, r) = chan::unbounded();
    s.send(3).unwrap();
    let got = select! {
        recv(r) -> v => v,
        default => panic!("default chosen with a value queued"),
    };
    assert_eq!(got, Ok(3));
}

#[test]
fn default_timeout_fires_from_coroutines_and_threads() {
    let wait = || {
        let (_s, r) = chan::unbounded::<u8>();
        let t = Instant::now();
        let timed_out = select! {
            recv(r) -> _ => false,
            default(Duration::from_millis(40)) => true,
        };
        (timed_out, t.elapsed())
    };
    for (timed_out, took) in [
        coronet::go(wait).join().unwrap(),
        std::thread::spawn(wait).join().unwrap(),
    ] {
        assert!(timed_out);
        assert!(took >= Duration::from_millis(40));
    }
}

#[test]
fn a_value_arriving_before_the_timeout_wins() {
    let (s, r) = chan::bounded::<u8>(0);
    let h = coronet::go(move || {
        select! {
            recv(r) -> v => v.ok(),
            default(Duration::from_secs(20)) => None,
        }
    });
    std::thread::sleep(SETTLE);
    s.send(4).unwrap();
    assert_eq!(h.join().unwrap(), Some(4));
}

#[test]
fn zero_arm_select_with_timeout_is_a_sleep() {
    let t = Instant::now();
    let v = coronet::go(|| select! { default(Duration::from_millis(20)) => 5 })
        .join()
        .unwrap();
    assert_eq!(v, 5);
    assert!(t.elapsed() >= Duration::from_millis(20));
}

#[test]
fn send_arm_completes_when_a_receiver_arrives() {
    for on_thread in [false, true] {
        let (s, r) = chan::bounded::<String>(0);
        let (_other_s, other_r) = chan::unbounded::<u8>();
        let sel = move || {
            select! {
                send(s, "hello".to_string()) -> res => { res.unwrap(); "sent" }
                recv(other_r) -> _ => "recv",
            }
        };
        let h: Box<dyn FnOnce() -> &'static str> = if on_thread {
            let h = std::thread::spawn(sel);
            Box::new(move || h.join().unwrap())
        } else {
            let h = coronet::go(sel);
            Box::new(move || h.join().unwrap())
        };
        std::thread::sleep(SETTLE);
        assert_eq!(r.recv().unwrap(), "hello");
        assert_eq!(h(), "sent");
    }
}

#[test]
fn select_waiting_in_a_thread_is_served_by_a_coroutine_and_vice_versa() {
    let (s1, r1) = chan::bounded::<u32>(0);
    let (s2, r2) = chan::bounded::<u32>(0);
    let thread_sel = std::thread::spawn(move || {
        select! {
            recv(r1) -> v => v.unwrap(),
            recv(r2) -> v => v.unwrap() + 100,
        }
    });
    let (s3, r3) = chan::bounded::<u32>(0);
    let co_sel = coronet::go(move || {
        select! {
            recv(r3) -> v => v.unwrap(),
            default(Duration::from_secs(20)) => 0,
        }
    });
    std::thread::sleep(SETTLE);
    coronet::go(move || s2.send(1).unwrap()).join().unwrap();
    std::thread::spawn(move || s3.send(7).unwrap())
        .join()
        .unwrap();
    assert_eq!(thread_sel.join().unwrap(), 101);
    assert_eq!(co_sel.join().unwrap(), 7);
    drop(s1);
}

#[test]
fn two_ready_arms_are_chosen_fairly() {
    let (s1, r1) = chan::unbounded::<()>();
    let (s2, r2) = chan::unbounded::<()>();
    const N: usize = 10_000;
    for _ in 0..N {
        s1.send(()).unwrap();
        s2.send(()).unwrap();
    }
    let mut first = 0;
    for _ in 0..N {
        select! {
            recv(r1) -> v => { v.unwrap(); first += 1; }
            recv(r2) -> v => { v.unwrap(); }
        }
    }
    let share = first as f64 / N as f64;
    assert!(
        (0.4..=0.6).contains(&share),
        "arm 1 chosen {share:.3} of the time"
    );
}

#[test]
fn ready_arms_are_chosen_fairly_among_three() {
    // a rotation starting at a random arm would favour the arm after a never-ready one
    let (_s0, r0) = chan::unbounded::<()>();
    let (s1, r1) = chan::unbounded::<()>();
    let (s2, r2) = chan::unbounded::<()>();
    const N: usize = 10_000;
    for _ in 0..N {
        s1.send(()).unwrap();
        s2.send(()).unwrap();
    }
    let mut first = 0;
    for _ in 0..N {
        select! {
            recv(r0) -> _ => panic!("never ready"),
            recv(r1) -> _ => first += 1,
            recv(r2) -> _ => {}
        }
    }
    let share = first as f64 / N as f64;
    assert!(
        (0.4..=0.6).contains(&share),
        "arm 1 chosen {share:.3} of the time"
    );
}

#[test]
fn send_arms_are_chosen_pseudo_randomly() {
    // Go's TestPseudoRandomSend: two send arms on one channel, a receiver tallies.
    let (s, r) = chan::bounded::<u8>(0);
    const N: usize = 2000;
    let tally = std::thread::spawn(move || {
        let mut n = [0usize; 2];
        for v in r {
            n[v as usize] += 1;
        }
        n
    });
    coronet::go(move || {
        for _ in 0..N {
            select! {
                send(s, 0) -> res => res.unwrap(),
                send(s, 1) -> res => res.unwrap(),
            }
        }
    })
    .join()
    .unwrap();
    let n = tally.join().unwrap();
    assert_eq!(n[0] + n[1], N);
    assert!(
        n[0] > N / 10 && n[1] > N / 10,
        "send arms not random: {n:?}"
    );
}

#[test]
fn disconnected_arms_are_ready_with_errors() {
    let (s, r) = chan::bounded::<u8>(0);
    drop(s);
    let got = select! {
        recv(r) -> v => v,
        default(Duration::from_secs(20)) => panic!("a disconnected recv arm must be ready"),
    };
    assert_eq!(got, Err(RecvError));

    let (s, r) = chan::bounded::<String>(0);
    drop(r);
    let back = select! {
        send(s, "mine".to_string()) -> res => res.unwrap_err().into_inner(),
        default(Duration::from_secs(20)) => panic!("a disconnected send arm must be ready"),
    };
    assert_eq!(back, "mine");
}

#[test]
fn a_blocked_select_is_woken_by_disconnects() {
    let (s1, r1) = chan::bounded::<u8>(0);
    let (_s2, r2) = chan::bounded::<u8>(0);
    let (s3, r3) = chan::bounded::<String>(0);
    let h = coronet::go(move || {
        select! {
            recv(r1) -> v => format!("r1 {v:?}"),
            recv(r2) -> v => format!("r2 {v:?}"),
        }
    });
    let h2 = std::thread::spawn(move || {
        select! {
            send(s3, "back".to_string()) -> res => res.unwrap_err().into_inner(),
        }
    });
    std::thread::sleep(SETTLE);
    drop(s1);
    drop(r3);
    assert_eq!(h.join().unwrap(), "r1 Err(RecvError)");
    assert_eq!(h2.join().unwrap(), "back");
}

#[test]
fn the_same_channel_in_two_arms() {
    // Go's TestSelectDuplicateChannel: one channel listed twice still delivers once.
    let (s, r) = chan::bounded::<u32>(0);
    let h = coronet::go(move || {
        select! {
            recv(r) -> v => v.unwrap(),
            recv(r) -> v => v.unwrap() + 1000,
        }
    });
    std::thread::sleep(SETTLE);
    s.send(1).unwrap();
    let v = h.join().unwrap();
    assert!(v == 1 || v == 1001);
    assert!(s.try_send(2).is_err(), "the select took one value, not two");
}

#[test]
fn a_select_never_pairs_with_itself() {
    // Go's TestSelfSelect: send and recv arms on one rendezvous channel must meet a peer.
    for cap in [0usize, 1] {
        let (s, r) = chan::bounded::<usize>(cap);
        let hs: Vec<_> = (0..2usize)
            .map(|p| {
                let (s, r) = (s.clone(), r.clone());
                coronet::go(move || {
                    for _ in 0..500 {
                        select! {
                            send(s, p) -> res => res.unwrap(),
                            recv(r) -> v => {
                                if cap == 0 {
                                    assert_ne!(v.unwrap(), p, "received its own value");
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        // the last rounds may find no partner; drain/offer until both finish
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let helper = std::thread::spawn(move || {
            while !d.load(Ordering::SeqCst) {
                let _ = r.recv_timeout(Duration::from_millis(1));
                let _ = s.send_timeout(usize::MAX, Duration::from_millis(1));
            }
        });
        for h in hs {
            h.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        helper.join().unwrap();
    }
}

/// Many selectors over many channels, many producers: every value arrives exactly once.
#[test]
fn stress_no_value_lost_or_duplicated() {
    const PRODUCERS: usize = 6;
    const PER: u32 = 1500;
    const CHANS: usize = 4;
    const SELECTORS: usize = 5;
    let chans: Vec<_> = (0..CHANS)
        .map(|i| chan::bounded::<(usize, u32)>(i % 2))
        .collect();
    let (out_s, out_r) = chan::unbounded::<Vec<(usize, u32)>>();
    for k in 0..SELECTORS {
        let rs: Vec<Receiver<_>> = chans.iter().map(|(_, r)| r.clone()).collect();
        let out_s = out_s.clone();
        let body = move || {
            let never = chan::never();
            let mut live: Vec<Option<Receiver<_>>> = rs.into_iter().map(Some).collect();
            let mut got = Vec::new();
            while live.iter().any(Option::is_some) {
                let pick = |i: usize| live[i].as_ref().unwrap_or(&never);
                let (i, v) = select! {
                    recv(pick(0)) -> v => (0, v),
                    recv(pick(1)) -> v => (1, v),
                    recv(pick(2)) -> v => (2, v),
                    recv(pick(3)) -> v => (3, v),
                };
                match v {
                    Ok(v) => got.push(v),
                    Err(RecvError) => live[i] = None,
                }
            }
            out_s.send(got).unwrap();
        };
        if k % 2 == 0 {
            coronet::go(body);
        } else {
            std::thread::spawn(body);
        }
    }
    drop(out_s);
    let senders: Vec<_> = chans.iter().map(|(s, _)| s.clone()).collect();
    drop(chans);
    let ps: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let ss = senders.clone();
            let body = move || {
                for i in 0..PER {
                    let v = (p, i);
                    // alternate a plain send and a select over all four senders
                    if i % 2 == 0 {
                        ss[(p + i as usize) % CHANS].send(v).unwrap();
                    } else {
                        select! {
                            send(ss[0], v) -> r => r.unwrap(),
                            send(ss[1], v) -> r => r.unwrap(),
                            send(ss[2], v) -> r => r.unwrap(),
                            send(ss[3], v) -> r => r.unwrap(),
                        }
                    }
                }
            };
            if p % 3 == 0 {
                Err(std::thread::spawn(body))
            } else {
                Ok(coronet::go(body))
            }
        })
        .collect();
    drop(senders);
    for p in ps {
        match p {
            Ok(h) => h.join().unwrap(),
            Err(h) => h.join().unwrap(),
        }
    }
    let mut seen: HashMap<(usize, u32), u32> = HashMap::new();
    for got in out_r.iter() {
        for v in got {
            *seen.entry(v).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), PRODUCERS * PER as usize, "values lost");
    assert!(seen.values().all(|&n| n == 1), "values duplicated");
}

#[test]
fn dump_shows_a_parked_select() {
    let (_s, r) = chan::bounded::<u8>(0);
    let (stop_s, stop_r) = chan::bounded::<()>(0);
    let h = coronet::Spawn::new().name("selector").go(move || {
        select! {
            recv(r) -> _ => {},
            recv(stop_r) -> _ => {},
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !coronet::dump().contains("'selector' [select]") {
        assert!(Instant::now() < deadline, "dump never showed the select");
        std::thread::sleep(Duration::from_millis(5));
    }
    stop_s.send(()).unwrap();
    h.join().unwrap();
}

/// Selects with a short timeout racing senders with a short timeout, both ways round (a
/// select receiving, a select sending): each value is delivered exactly once or handed back.
#[test]
fn select_timeouts_racing_hand_offs_never_lose_or_duplicate_a_value() {
    const N: u32 = 2000;
    let (s1, r1) = chan::bounded::<u32>(0);
    let (s2, r2) = chan::bounded::<u32>(0);
    // a plain sender on each channel, one on a coroutine and one on a thread
    let sender = |s: chan::Sender<u32>, base: u32| {
        move || {
            let mut delivered = Vec::new();
            for i in base..base + N {
                let v = s.send_timeout(i, Duration::from_micros(u64::from(i % 30)));
                match v {
                    Ok(()) => delivered.push(i),
                    Err(e) => assert_eq!(e.into_inner(), i, "wrong value back"),
                }
            }
            delivered
        }
    };
    let a = coronet::go(sender(s1, 0));
    let b = std::thread::spawn(sender(s2, N));
    // a selecting receiver that keeps timing out; a disconnected arm is switched off
    let never = chan::never();
    let mut live = [Some(r1), Some(r2)];
    let mut got = Vec::new();
    let mut k = 0u64;
    while live.iter().any(Option::is_some) {
        k += 1;
        let pick = |i: usize| live[i].as_ref().unwrap_or(&never);
        let (i, v) = select! {
            recv(pick(0)) -> v => (0, v),
            recv(pick(1)) -> v => (1, v),
            default(Duration::from_micros(k % 25)) => continue,
        };
        match v {
            Ok(v) => got.push(v),
            Err(RecvError) => live[i] = None,
        }
    }
    let mut sent = a.join().unwrap();
    sent.extend(b.join().unwrap());
    sent.sort_unstable();
    got.sort_unstable();
    assert_eq!(
        got, sent,
        "received values differ from the successful sends"
    );

    // and the other way round: a select sending with a timeout, plain receivers timing out
    let (s1, r1) = chan::bounded::<u32>(0);
    let (s2, r2) = chan::bounded::<u32>(0);
    let receiver = |r: Receiver<u32>| {
        move || {
            let mut got = Vec::new();
            for k in 0u64.. {
                match r.recv_timeout(Duration::from_micros(k % 30)) {
                    Ok(v) => got.push(v),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            got
        }
    };
    let a = coronet::go(receiver(r1));
    let b = std::thread::spawn(receiver(r2));
    let mut sent = Vec::new();
    for i in 0..N {
        select! {
            send(s1, i) -> res => { res.unwrap(); sent.push(i) },
            send(s2, i) -> res => { res.unwrap(); sent.push(i) },
            default(Duration::from_micros(u64::from(i % 25))) => {},
        }
    }
    drop((s1, s2));
    let mut got = a.join().unwrap();
    got.extend(b.join().unwrap());
    got.sort_unstable();
    assert_eq!(
        got, sent,
        "received values differ from the successful select sends"
    );
}

/// The macro's inner rules are reachable from safe code, with arm names of the caller's
/// choosing: two alike made `run` link one waiter twice, and the channel's queue kept a
/// pointer into the select's dead frame (found by a soundness audit: the select took the
/// value, and the channel's next operation walked the frame; AddressSanitizer calls it a
/// stack use after return, and this test died of SIGSEGV). `run` refuses such a list
/// before it links anything.
#[test]
fn an_arm_listed_twice_through_the_inner_rule_is_refused() {
    #[inline(never)]
    #[allow(unused_parens)] // the inner rule takes each body in parentheses
    fn select_twice(r: &Receiver<u64>) -> u64 {
        select!(@build
            [(recv (r) (m) (m.unwrap())) (recv (r) (m) (m.unwrap()))]
            [] [] [a a] [0])
    }
    let (s, r) = chan::bounded::<u64>(0);
    let r2 = r.clone();
    let h = coronet::go(move || select_twice(&r2));
    std::thread::sleep(SETTLE);
    // Nothing of the refused select is left in the channel's queues.
    assert!(s.try_send(1).is_err(), "the refused select is not waiting");
    let err = h.join().unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(msg.contains("listed twice"), "{msg}");
    let h = coronet::go(move || r.recv().unwrap());
    std::thread::sleep(SETTLE);
    s.send(7).unwrap();
    assert_eq!(h.join().unwrap(), 7);
    assert!(s.try_send(8).is_err(), "no receiver is left waiting");
}
