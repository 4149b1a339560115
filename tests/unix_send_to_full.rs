//! `UnixDatagram::send_to` an unconnected receiver whose queue is full, in a binary of its
//! own because it measures the whole process's CPU time while the send waits.
//!
//! The kernel raises no event for such a sender when room appears, and counts its socket
//! writable all along (each refused send even raises a writable edge as it frees its
//! buffer): a wait for readiness retried the send in a busy loop, 0.34 s of CPU per second
//! of waiting on this machine (0.75-1 s on another), in a coroutine as on a thread (found by
//! an audit). The send now pauses between tries; these tests check that it costs little,
//! still goes out once there is room, and still meets `close`, deadlines and std's timeout
//! at once.

mod util;

use coronet::net::UnixDatagram;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `body` once in a coroutine and once on a plain OS thread (which is what `spawn_on`
/// gives in each case: the body's helpers are coroutines, or threads). One test at a time:
/// the process's CPU time one of them measures must not include the other's.
fn both(body: fn(bool)) {
    static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    coronet::run(move || body(true));
    std::thread::spawn(move || body(false)).join().unwrap();
}

/// A bound receiver nobody reads, an unbound sender that has filled its queue, the path and
/// how many datagrams the queue holds.
fn full_receiver(tag: &str) -> (UnixDatagram, Arc<UnixDatagram>, PathBuf, usize) {
    let path = std::env::temp_dir().join(format!("coronet-full-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = UnixDatagram::bind(&path).unwrap();
    let client = UnixDatagram::unbound().unwrap();
    client.set_nonblocking(true).unwrap();
    let mut queued = 0;
    let err = loop {
        match client.send_to(b"fill", &path) {
            Ok(_) => queued += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    client.set_nonblocking(false).unwrap();
    (server, Arc::new(client), path, queued)
}

#[test]
fn a_send_to_a_full_receiver_waits_without_spinning_and_goes_out_once_there_is_room() {
    both(|coroutine| {
        let (server, client, path, queued) = full_receiver(if coroutine { "co" } else { "th" });
        let p = path.clone();
        let c = client.clone();
        let sender = util::spawn_on(!coroutine, move || c.send_to(b"one more", &p));
        let cpu = util::cpu_time();
        coronet::time::sleep(Duration::from_secs(1));
        let spent = util::cpu_time() - cpu;
        // measured: a busy loop spends 0.34 s here (0.75-1 s on another machine), the pauses
        // about 10 ms
        assert!(
            spent < Duration::from_millis(150),
            "{spent:?} of CPU while one send waited for 1 s"
        );
        // room for one more: the send goes out (within a pause; the bound is for a hang)
        let mut buf = [0u8; 16];
        assert_eq!(server.recv(&mut buf).unwrap(), 4);
        let start = Instant::now();
        assert_eq!(sender().unwrap(), 8);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        let mut got = Vec::new();
        while got.len() < queued {
            let n = server.recv(&mut buf).unwrap();
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got.last().unwrap(), b"one more", "sent last, received last");
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn close_deadline_and_timeout_end_a_paused_send_to_at_once() {
    both(|coroutine| {
        let tag = if coroutine { "co-end" } else { "th-end" };
        let (_server, client, path, _) = full_receiver(tag);

        // std's per-call timeout
        client
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let start = Instant::now();
        let err = client.send_to(b"late", &path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        client.set_write_timeout(None).unwrap();

        // Go's deadline and close, each from another coroutine or thread while the send
        // waits: the send ends with its error within the bound (its pause ends at once)
        let ended_by = |end: &dyn Fn(&UnixDatagram)| {
            let (p, c) = (path.clone(), client.clone());
            let sender = util::spawn_on(!coroutine, move || {
                let start = Instant::now();
                (c.send_to(b"late", &p), start.elapsed())
            });
            coronet::time::sleep(Duration::from_millis(100));
            end(&client);
            let (r, took) = sender();
            assert!(took < Duration::from_secs(5), "{took:?}");
            r.unwrap_err().to_string()
        };
        let err = ended_by(&|c| c.set_write_deadline(Some(Instant::now())).unwrap());
        assert!(err.ends_with("i/o timeout"), "{err}");
        client.set_write_deadline(None).unwrap();
        let err = ended_by(&|c| c.close().unwrap());
        assert!(err.ends_with("use of closed network connection"), "{err}");
        std::fs::remove_file(&path).unwrap();
    });
}
