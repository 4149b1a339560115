//! Stack overflow in a coroutine, through the public API: the process prints which coroutine
//! overflowed and aborts, as std does for threads. And stack sizes that cannot be mapped give
//! an `io::Error` that says what to change, not a panic.
//!
//! A test that must die runs in a child: the test binary re-executes itself with
//! `CORONET_OVERFLOW_CHILD=<test name>`, and the child does the fatal part (std's own tests
//! of its overflow handler work the same way).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

mod util;
use util::recurse;

const CHILD: &str = "CORONET_OVERFLOW_CHILD";

/// Whether this process is the child that `expect_abort(test)` started.
fn is_child(test: &str) -> bool {
    if std::env::var(CHILD).as_deref() != Ok(test) {
        return false;
    }
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit; lowering our own core-size limit is always allowed. No core
    // dumps from the abort we are about to cause.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
    true
}

/// Runs `test` again in a child process, checks that it died of SIGABRT, returns its stderr.
fn expect_abort(test: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, test)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "child status {:?}, stderr:\n{stderr}",
        out.status
    );
    stderr
}

/// Prints the running coroutine's id (so the parent can check the message names it), then
/// overflows.
fn announce_and_overflow() -> u64 {
    eprintln!("child: coroutine id {}", coronet::current().id());
    recurse(0)
}

/// The id the child announced on stderr.
fn announced_id(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("child: coroutine id "))
        .unwrap_or_else(|| panic!("no id announced; stderr:\n{stderr}"));
    line.trim().parse().unwrap()
}

const FATAL: &str = "fatal runtime error: stack overflow, aborting";

#[test]
fn named_coroutine_overflow_names_it_and_aborts() {
    const TEST: &str = "named_coroutine_overflow_names_it_and_aborts";
    if is_child(TEST) {
        let h = coronet::Spawn::new()
            .name("deep")
            .stack_size(64 << 10)
            .go(announce_and_overflow);
        let _ = h.join();
        unreachable!("the overflowing coroutine returned");
    }
    let stderr = expect_abort(TEST);
    let id = announced_id(&stderr);
    let expected = format!("coroutine 'deep' (id {id}) has overflowed its stack\n{FATAL}\n");
    assert!(stderr.contains(&expected), "child stderr:\n{stderr}");
    // and what to do about it
    let advice = "coronet: a coroutine's stack does not grow; give this one a larger stack \
                  with Spawn::stack_size, or every coroutine with Builder::stack_size \
                  (256 KiB by default)\n";
    assert!(
        stderr.contains(&format!("{expected}{advice}")),
        "child stderr:\n{stderr}"
    );
}

#[test]
fn unnamed_coroutine_overflow_says_unnamed_and_aborts() {
    const TEST: &str = "unnamed_coroutine_overflow_says_unnamed_and_aborts";
    if is_child(TEST) {
        // the default stack size: overflowing 256 KiB takes a moment longer, nothing more
        let _ = coronet::go(announce_and_overflow).join();
        unreachable!("the overflowing coroutine returned");
    }
    let stderr = expect_abort(TEST);
    let id = announced_id(&stderr);
    let expected = format!("coroutine '<unnamed>' (id {id}) has overflowed its stack\n{FATAL}\n");
    assert!(stderr.contains(&expected), "child stderr:\n{stderr}");
    assert!(
        !stderr.contains("thread '"),
        "not reported as a thread overflow:\n{stderr}"
    );
}

/// Bigger than any Linux address space (47 bits, or 56 with 5-level paging): mmap must fail
/// with ENOMEM whatever the overcommit policy.
const ABSURD: usize = 1 << 62;

#[test]
fn try_go_with_an_absurd_stack_says_what_to_change() {
    let err = coronet::Spawn::new()
        .name("huge")
        .stack_size(ABSURD)
        .try_go(|| unreachable!("a coroutine with a 4 EiB stack ran"))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{err}");
    let message = err.to_string();
    // what happened, the limit that may be the cause, and both knobs that fix it
    for part in [
        &format!("cannot map a {ABSURD}-byte coroutine stack")[..],
        "vm.max_map_count",
        "raise vm.max_map_count",
        "Builder::stack_size",
        "Spawn::stack_size",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    // The runtime is unharmed.
    assert_eq!(coronet::go(|| 1).join().unwrap(), 1);
}

#[test]
fn try_go_with_a_size_past_the_address_space_is_invalid_input() {
    let err = coronet::Spawn::new()
        .stack_size(usize::MAX)
        .try_go(|| unreachable!("a coroutine with a usize::MAX stack ran"))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string().contains(&usize::MAX.to_string()),
        "names the size asked for: {err}"
    );
}

#[test]
fn go_with_an_absurd_stack_fails_the_join_not_the_runtime() {
    // `go` maps the stack when a worker starts the coroutine; the failure reaches `join`.
    let h = coronet::Spawn::new()
        .stack_size(ABSURD)
        .go(|| unreachable!("a coroutine with a 4 EiB stack ran"));
    let payload = h.join().unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .expect("the reason, as a String");
    assert!(message.contains("vm.max_map_count"), "{message}");
    assert_eq!(coronet::go(|| 2).join().unwrap(), 2);
}

/// `stack_size(0)` (or any size below 16 KiB) gets std's floor for threads, enough for a
/// coroutine that connects, writes, reads and times out — in a debug build too, where
/// corosensei's own 4 KiB minimum overflowed (the whole test binary aborted).
#[test]
fn a_tiny_stack_size_is_raised_to_a_floor_that_does_io() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let listener = coronet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = coronet::Spawn::new().stack_size(0).go(move || {
        let mut c = coronet::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"hi").unwrap();
        let mut echo = [0u8; 2];
        c.read_exact(&mut echo).unwrap();
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(10)))
            .unwrap();
        let timeout = c.read(&mut echo).unwrap_err();
        (echo, timeout.to_string())
    });
    let (mut server, _) = listener.accept().unwrap();
    let mut got = [0u8; 2];
    server.read_exact(&mut got).unwrap();
    server.write_all(&got).unwrap();
    let (echo, timeout) = client.join().unwrap();
    assert_eq!(&echo, b"hi");
    assert!(timeout.ends_with("i/o timeout"), "{timeout}");
}

/// A count of the signals the handler below has run.
static SIGNALS_SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS_SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Goes `depth` frames of 256 bytes down and spins there for 2 ms, signals landing on the
/// way and at the bottom.
#[inline(never)]
fn descend_and_spin(depth: usize) -> u64 {
    let mut pad = [0u8; 256];
    pad[depth % 256] = depth as u8;
    std::hint::black_box(&mut pad);
    if depth == 0 {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        return 0;
    }
    descend_and_spin(depth - 1) + u64::from(pad[(depth * 7) % 256])
}

/// A signal handler installed without `SA_ONSTACK` (as most are) runs on the interrupted
/// coroutine's stack; when its frame does not fit there, the kernel raises a SIGSEGV at no
/// address, which the guard-page check did not recognise: the process died of a bare
/// SIGSEGV with no word of which coroutine (found by an audit of signals). It is now
/// reported as that coroutine's overflow, with the advice.
#[test]
fn a_signal_frame_that_does_not_fit_is_reported_as_the_coroutines_overflow() {
    const TEST: &str = "a_signal_frame_that_does_not_fit_is_reported_as_the_coroutines_overflow";
    if is_child(TEST) {
        util::install_signal_handler(libc::SIGUSR1, count_signal, libc::SA_RESTART);
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let h = coronet::Spawn::new()
            .name("small")
            .stack_size(16 << 10)
            .go(move || {
                eprintln!("child: coroutine id {}", coronet::current().id());
                // SAFETY: gettid takes no arguments and cannot fail.
                tid_tx
                    .send(unsafe { libc::syscall(libc::SYS_gettid) })
                    .unwrap();
                // Deeper by 256 bytes a step: the signals' frames stop fitting well before
                // the recursion itself would reach the guard.
                (0..64).map(descend_and_spin).sum::<u64>()
            });
        let tid = tid_rx.recv().unwrap();
        std::thread::spawn(move || loop {
            // SAFETY: tgkill with ids and a signal number, nothing else.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) };
            std::thread::sleep(std::time::Duration::from_micros(20));
        });
        let _ = h.join();
        unreachable!("the coroutine returned; signals seen: {SIGNALS_SEEN:?}");
    }
    let stderr = expect_abort(TEST);
    let id = announced_id(&stderr);
    assert!(
        stderr.contains("no room for its handler's frame") && stderr.contains("SA_ONSTACK"),
        "child stderr:\n{stderr}"
    );
    let expected = format!("coroutine 'small' (id {id}) has overflowed its stack\n{FATAL}\n");
    assert!(stderr.contains(&expected), "child stderr:\n{stderr}");
}
