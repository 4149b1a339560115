//! `accept` skips its check of the open file's blocking mode while nobody else can reach the
//! listener (`NetFd::exposed`). A listener exposed and put in blocking mode (a clone turned
//! into a std listener) while an accept is parked must be checked again on the retry: if a
//! competing acceptor took the connection between the epoll event and the retry, an
//! `accept4` on the blocking file would hold the worker thread in the kernel until the next
//! connection (found by a review: the flag was read once, before the park).
//!
//! A file of its own: it needs one worker, so that the coroutine holding the worker and the
//! parked accept share it.
use coronet::net::{TcpListener, UnixStream};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn a_parked_accept_rechecks_the_blocking_mode_of_a_listener_exposed_meanwhile() {
    coronet::Builder::new().workers(1).build_global().unwrap();
    let t0 = Instant::now();
    let elapsed = coronet::run(move || {
        let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = l.local_addr().unwrap();
        // A: parks in accept while the listener is not exposed (may_block = false)
        let la = l.clone();
        let a = coronet::go(move || la.accept().map(|(_, p)| p));
        // C: parks on a read; its event will come first in the same epoll harvest
        let go_b = Arc::new(AtomicBool::new(false));
        let (mut c_end, mut t_end) = UnixStream::pair().unwrap();
        let gb = go_b.clone();
        let c = coronet::go(move || {
            let mut b = [0u8; 1];
            c_end.read_exact(&mut b).unwrap();
            gb.store(true, Ordering::SeqCst); // let B accept now
            std::thread::sleep(Duration::from_millis(200)); // hold the worker meanwhile
        });
        coronet::time::sleep(Duration::from_millis(50));
        // expose: a clone handed to std, which puts the shared open file in blocking mode
        let std_l: std::net::TcpListener = l.try_clone().unwrap().into();
        // B: a competing blocking acceptor on a plain thread, once C says so
        let gb = go_b.clone();
        let b = std::thread::spawn(move || {
            while !gb.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            std_l.accept().map(|(_, p)| p)
        });
        // both events queue while the worker is busy here (C's first)
        t_end.write_all(b"x").unwrap();
        let _c1 = std::net::TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        // a watchdog connection, 8 s on, ends any accept4 still blocked in the kernel
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(8));
            let _c = std::net::TcpStream::connect(addr);
            std::thread::sleep(Duration::from_secs(1));
        });
        // the worker harvests both; C runs, B takes the connection, then A retries
        coronet::time::sleep(Duration::from_millis(400));
        let e = t0.elapsed();
        assert!(
            b.join().unwrap().is_ok(),
            "the std acceptor took the connection"
        );
        c.join().unwrap();
        drop(a);
        e
    });
    assert!(
        elapsed < Duration::from_secs(5), // about 0.5 s; blocked, 8 s
        "the worker was blocked in accept4 for {elapsed:?}"
    );
}
