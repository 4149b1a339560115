//! `Builder::main`: the calling thread becomes worker 0 and runs `f` as the coroutine `main`;
//! the process ends when `f` returns (status 0) or panics (101), without waiting for other
//! coroutines, as a Go program ends with its `main`.
//!
//! `main` never returns and starts the global runtime, so each case runs in a child: the
//! test binary re-executes itself with `CORONET_MAIN_CHILD=<test name>`, and the child calls
//! `Builder::main`; the parent checks its exit status and output.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio, Termination};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};

mod util;
use util::{recurse, threads};

const CHILD: &str = "CORONET_MAIN_CHILD";

fn is_child(test: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(test)
}

/// Starts `test` again in a child process, with `envs` set, stdout and stderr piped.
fn spawn_child(test: &str, envs: &[(&str, &str)]) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .env(CHILD, test)
        .envs(envs.iter().copied())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child of `spawn_child`; its status, stdout and stderr. A child still running
/// after a minute is killed and fails the test (`main` must end the process). The pipes are
/// drained while it runs (`wait_with_output`), so no output size can stall it.
fn wait_child(child: std::process::Child) -> (ExitStatus, String, String) {
    let pid = child.id() as libc::pid_t;
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::Acquire) {
                if start.elapsed() > Duration::from_secs(60) {
                    // SAFETY: kill(2) with a pid and a signal number; no memory involved.
                    // Only `wait_with_output` reaps the child, and `done` is set right
                    // after it: the pid is the child's unless the minute ran out in that
                    // instant and the pid was reused at once.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return true;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            false
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::Release);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !watchdog.join().unwrap(),
        "child still running after 60 s; stderr:\n{stderr}"
    );
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// Runs `test` again in a child process (`spawn_child`, `wait_child`).
fn run_child(test: &str) -> (ExitStatus, String, String) {
    wait_child(spawn_child(test, &[]))
}

/// The child's side of a case: `Builder::main` with `workers` workers, which ends the process
/// and so must not come back.
fn main_in_child<R: Termination>(workers: usize, f: impl FnOnce() -> R + Send + 'static) -> ! {
    main_in_child_with(coronet::Builder::new().workers(workers), f)
}

/// [`main_in_child`] with a builder configured by the caller.
fn main_in_child_with<R: Termination>(
    builder: coronet::Builder,
    f: impl FnOnce() -> R + Send + 'static,
) -> ! {
    let err = builder.main(f).unwrap_err();
    panic!("Builder::main returned: {err}");
}

/// One echo through coronet's sockets, so the netpoller parks and wakes a coroutine.
fn echo_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = coronet::go(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0; 5];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"hello").unwrap();
    let mut back = [0; 5];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello");
    server.join().unwrap();
}

#[test]
fn main_runs_on_the_calling_thread_and_exits_0() {
    const TEST: &str = "main_runs_on_the_calling_thread_and_exits_0";
    if is_child(TEST) {
        let caller = std::thread::current().id();
        let before = threads();
        main_in_child(1, move || {
            assert_eq!(
                std::thread::current().id(),
                caller,
                "main on another thread"
            );
            let handlers = coronet::go(|| std::thread::current().id());
            assert_eq!(
                handlers.join().unwrap(),
                caller,
                "a coroutine on another thread"
            );
            echo_once();
            // No worker thread beside the caller: only the monitor (`Builder::stall_report`;
            // tests/sysmon_alone.rs checks that it keeps a fd table of its own where the
            // caller was the process's only thread).
            assert_eq!(threads(), before + 1, "threads before main: {before}");
            // No newline: only the flush at exit gets this out.
            print!("main done");
        });
    }
    let (status, stdout, stderr) = run_child(TEST);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stdout.ends_with("main done"), "stdout:\n{stdout}");
}

/// With more workers than one, `main` still starts on the calling thread (worker 0's
/// `same_worker` queue), so what the caller tied to its thread before — a thread-local, say
/// — is `main`'s. Found by reading the docs against the code: `main` was queued where any
/// worker could steal it, and an idle second worker woken by the spawn often did.
#[test]
fn main_runs_on_the_calling_thread_with_more_workers() {
    const TEST: &str = "main_runs_on_the_calling_thread_with_more_workers";
    thread_local! {
        static SET_BEFORE_MAIN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    if is_child(TEST) {
        let caller = std::thread::current().id();
        SET_BEFORE_MAIN.with(|c| c.set(7));
        main_in_child(4, move || {
            assert_eq!(
                std::thread::current().id(),
                caller,
                "main on another thread"
            );
            assert_eq!(
                SET_BEFORE_MAIN.with(|c| c.get()),
                7,
                "the caller's thread-local"
            );
            echo_once();
            print!("main done");
        });
    }
    // Each child is one chance for another worker to take `main` first.
    for round in 0..30 {
        let (status, stdout, stderr) = run_child(TEST);
        assert_eq!(status.code(), Some(0), "round {round}: stderr:\n{stderr}");
        assert!(
            stdout.ends_with("main done"),
            "round {round}: stdout:\n{stdout}"
        );
    }
}

#[test]
fn a_panic_in_main_exits_101_with_its_message() {
    const TEST: &str = "a_panic_in_main_exits_101_with_its_message";
    if is_child(TEST) {
        main_in_child(1, || panic!("boom in main"));
    }
    let (status, _, stderr) = run_child(TEST);
    assert_eq!(status.code(), Some(101), "stderr:\n{stderr}");
    assert!(
        stderr.contains("coroutine 'main' (id "),
        "stderr:\n{stderr}"
    );
    assert!(stderr.contains("boom in main"), "stderr:\n{stderr}");
}

/// `main`'s result ends the process as a Rust `main`'s does: an `Err` is printed with
/// `Error: ` and its `Debug`, status 1; an `ExitCode` is the status; `Ok(())` is 0.
#[test]
fn mains_result_is_reported_as_a_rust_mains() {
    const TEST: &str = "mains_result_is_reported_as_a_rust_mains";
    if is_child(TEST) {
        match std::env::var("MAIN_RESULT").unwrap().as_str() {
            "err" => main_in_child(1, || -> std::io::Result<()> {
                echo_once();
                Err(std::io::Error::other("no configuration file"))?;
                unreachable!("the `?` returned")
            }),
            "code" => main_in_child(2, || std::process::ExitCode::from(42)),
            _ => main_in_child(1, || -> Result<(), String> {
                echo_once();
                Ok(())
            }),
        }
    }
    let run = |how| wait_child(spawn_child(TEST, &[("MAIN_RESULT", how)]));
    let (status, _, stderr) = run("err");
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("Error: Custom { kind: Other, error: \"no configuration file\" }"),
        "stderr:\n{stderr}"
    );
    let (status, _, stderr) = run("code");
    assert_eq!(status.code(), Some(42), "stderr:\n{stderr}");
    let (status, _, stderr) = run("ok");
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("Error"), "stderr:\n{stderr}");
}

#[test]
fn main_returning_ends_the_process_without_waiting_for_other_coroutines() {
    const TEST: &str = "main_returning_ends_the_process_without_waiting_for_other_coroutines";
    if is_child(TEST) {
        main_in_child(2, || {
            // Parked for an hour on each worker's timers, or blocked in accept: none of
            // them holds the process up.
            for _ in 0..8 {
                drop(coronet::go(|| {
                    coronet::time::sleep(Duration::from_secs(3600))
                }));
            }
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            drop(coronet::go(move || drop(listener.accept())));
            echo_once();
            eprintln!("child: main returns");
        });
    }
    let start = Instant::now();
    let (status, _, stderr) = run_child(TEST);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("child: main returns"), "stderr:\n{stderr}");
    // generous: an hour's sleep is what a wait for the others would take
    assert!(
        start.elapsed() < Duration::from_secs(50),
        "{:?}",
        start.elapsed()
    );
}

/// Set as the thread-local below starts to drop, at the process's exit.
static TLS_TORN_DOWN: AtomicBool = AtomicBool::new(false);

/// A thread-local whose destructor waits (sleeps), as a pool that drains connections might.
struct SleepsAsItDrops;

impl Drop for SleepsAsItDrops {
    fn drop(&mut self) {
        TLS_TORN_DOWN.store(true, Ordering::SeqCst);
        for _ in 0..5 {
            coronet::time::sleep(Duration::from_millis(20));
        }
        let (_tx, rx) = coronet::chan::bounded::<u8>(0);
        // Long enough to be sure it parks (and so is reported): a wait whose deadline has
        // passed by its first look returns without parking, which 20 ms did once on a
        // loaded machine (the thread descheduled between taking the deadline and the look).
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        eprintln!("child: the thread-local's wait is over");
    }
}

thread_local! {
    static SLEEPER: std::cell::RefCell<Option<SleepsAsItDrops>> = const {
        std::cell::RefCell::new(None)
    };
    static DATA: Vec<u64> = vec![7; 1024];
}

/// A coroutine holding a reference into a thread-local across its sleeps. It must never run
/// once the thread's thread-locals are being destroyed.
fn hold_thread_local_across_parks() {
    DATA.with(|d| loop {
        coronet::time::sleep(Duration::from_millis(5));
        if TLS_TORN_DOWN.load(Ordering::SeqCst) || d.iter().any(|&x| x != 7) {
            eprintln!("child: a coroutine ran with the thread-locals torn down");
            // SAFETY: _exit(2) ends the process at once; nothing is touched after it.
            unsafe { libc::_exit(3) };
        }
    })
}

/// `main`'s return ends the process from worker 0's scheduler, not from inside the coroutine
/// `main`: there, the thread-local destructors `exit` runs ran on `main`'s stack, and one
/// that waited suspended `main`, so the scheduler resumed the worker's other coroutines with
/// their thread-locals freed (found by a soundness audit: a use after free under valgrind
/// and AddressSanitizer). Now the wait blocks the thread, and no coroutine runs again.
#[test]
fn a_thread_local_destructor_that_waits_at_exit_runs_no_coroutine() {
    const TEST: &str = "a_thread_local_destructor_that_waits_at_exit_runs_no_coroutine";
    if is_child(TEST) {
        main_in_child(1, || {
            SLEEPER.with(|s| *s.borrow_mut() = Some(SleepsAsItDrops));
            drop(coronet::go(hold_thread_local_across_parks));
            coronet::time::sleep(Duration::from_millis(30));
            eprintln!("child: main returns");
        });
    }
    let (status, _, stderr) = run_child(TEST);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("child: main returns"), "stderr:\n{stderr}");
    assert!(
        stderr.contains("child: the thread-local's wait is over"),
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("coronet: worker 0 waits (ChanRecv) as the process exits"),
        "the channel wait is reported; stderr:\n{stderr}"
    );
}

/// `coronet::exit` from any coroutine ends the process with its status, the same way.
#[test]
fn exit_from_a_coroutine_ends_the_process_with_its_status() {
    const TEST: &str = "exit_from_a_coroutine_ends_the_process_with_its_status";
    if is_child(TEST) {
        main_in_child(2, || {
            SLEEPER.with(|s| *s.borrow_mut() = Some(SleepsAsItDrops));
            drop(
                coronet::Spawn::new()
                    .same_worker()
                    .go(hold_thread_local_across_parks),
            );
            let h = coronet::Spawn::new().same_worker().go(|| {
                coronet::time::sleep(Duration::from_millis(30));
                coronet::exit(3)
            });
            let _ = h.join();
            eprintln!("child: main went on after exit");
        });
    }
    let (status, _, stderr) = run_child(TEST);
    assert_eq!(status.code(), Some(3), "stderr:\n{stderr}");
    assert!(!stderr.contains("main went on"), "stderr:\n{stderr}");
    assert!(
        stderr.contains("child: the thread-local's wait is over"),
        "stderr:\n{stderr}"
    );
}

/// A plain thread's dial that races the two families (Happy Eyeballs), or whose lookup is
/// bounded by a timeout, runs its helper on a thread, not a coroutine, so the runtime is
/// not started behind the program's back and its `Builder::main` still works.
#[test]
fn a_dial_on_a_plain_thread_leaves_the_runtime_unstarted() {
    const TEST: &str = "a_dial_on_a_plain_thread_leaves_the_runtime_unstarted";
    if is_child(TEST) {
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = refused.local_addr().unwrap();
        drop(refused);
        // IPv4 first and refused, so the IPv6 fallback starts at once and connects
        let c = TcpStream::connect(&[dead, v6.local_addr().unwrap()][..]).unwrap();
        assert_eq!(c.peer_addr().unwrap(), v6.local_addr().unwrap());
        // and a dial bounded by a timeout, whose lookup of a name runs beside the caller
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = coronet::net::Dialer::new()
            .timeout(Duration::from_secs(30))
            .dial(("localhost", port))
            .unwrap();
        assert!(c.peer_addr().unwrap().ip().is_loopback());
        main_in_child(1, || print!("main done"));
    }
    let (status, stdout, stderr) = run_child(TEST);
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:
{stderr}"
    );
    assert!(
        stdout.ends_with("main done"),
        "stdout:
{stdout}"
    );
}

#[test]
fn main_after_the_runtime_started_is_an_error() {
    coronet::run(|| ());
    let err = coronet::Builder::new()
        .main(|| unreachable!("main ran on a runtime that already started"))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("Builder::main"), "{err}");
}

/// A default stack that cannot exist is refused when the runtime is configured, and a
/// `main` whose stack cannot be mapped returns the error: found by probing the API, `main`
/// left the process idle for ever (the coroutine failed to start on worker 0, where only a
/// log line said so, and nobody joins `main`). In a child, so that a regression that does
/// start the runtime or hangs stays there (the watchdog kills a child after a minute).
#[test]
fn an_impossible_stack_is_an_error_not_an_idle_process() {
    const TEST: &str = "an_impossible_stack_is_an_error_not_an_idle_process";
    if is_child(TEST) {
        let err = coronet::Builder::new()
            .stack_size(usize::MAX)
            .build_global()
            .unwrap_err();
        println!("build_global: {:?}: {err}", err.kind());
        for (size, workers) in [(usize::MAX, 1), (usize::MAX, 2), (1 << 62, 1)] {
            let err = coronet::Builder::new()
                .workers(workers)
                .stack_size(size)
                .main(|| println!("main ran"))
                .unwrap_err();
            println!("main({size}, {workers}): {:?}: {err}", err.kind());
        }
        // (4 EiB passes the arithmetic but no x86_64 or AArch64 address space holds it, so
        // the mapping fails whatever the overcommit setting.)
        // The runtime never started: a valid configuration still can.
        coronet::Builder::new().workers(1).build_global().unwrap();
        std::process::exit(if coronet::go(|| 7).join().unwrap() == 7 {
            3
        } else {
            4
        });
    }
    let (status, stdout, stderr) = run_child(TEST);
    assert_eq!(
        status.code(),
        Some(3),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stdout.contains("main ran"), "stdout:\n{stdout}");
    let max = usize::MAX;
    for line in [
        format!("build_global: InvalidInput: coronet: Builder::build_global: Builder::stack_size: a {max}-byte coroutine stack does not fit in the address space"),
        format!("main({max}, 1): InvalidInput: coronet: Builder::main: no stack for the coroutine main: a {max}-byte coroutine stack does not fit in the address space"),
        format!("main({max}, 2): InvalidInput: "),
        format!("main({}, 1): OutOfMemory: coronet: Builder::main: no stack for the coroutine main: ", 1u64 << 62),
    ] {
        assert!(stdout.contains(&line), "no {line:?} in stdout:\n{stdout}");
    }
}

#[test]
fn an_overflow_on_the_calling_threads_worker_names_the_coroutine() {
    const TEST: &str = "an_overflow_on_the_calling_threads_worker_names_the_coroutine";
    if is_child(TEST) {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid rlimit; lowering our own core-size limit is always allowed. No
        // core dump from the abort to come.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
        main_in_child(1, || {
            let h = coronet::Spawn::new()
                .name("deep")
                .stack_size(64 << 10)
                .go(|| recurse(0));
            let _ = h.join();
            unreachable!("the overflowing coroutine returned");
        });
    }
    let (status, _, stderr) = run_child(TEST);
    assert_eq!(status.signal(), Some(libc::SIGABRT), "stderr:\n{stderr}");
    assert!(
        stderr.contains("coroutine 'deep' (id ") && stderr.contains("has overflowed its stack"),
        "stderr:\n{stderr}"
    );
}

/// Runs `jobs` pool jobs at once under `Builder::max_blocking_threads(cap)`, each waiting
/// (up to 20 s) until `meet` of them have started: whether all met, and the most that ran
/// at once.
fn pool_jobs_meeting(cap: usize, jobs: usize, meet: usize) -> (bool, usize) {
    let started = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..jobs)
        .map(|_| {
            let (started, running, most) = (started.clone(), running.clone(), most.clone());
            coronet::go(move || {
                coronet::spawn_blocking(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let since = Instant::now();
                    let mut met = true;
                    while started.load(Ordering::SeqCst) < meet {
                        if since.elapsed() > Duration::from_secs(20) {
                            met = false; // the others never started: fail, do not hang
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    met
                })
            })
        })
        .collect();
    let all_met = handles.into_iter().all(|h| h.join().unwrap());
    assert!(
        coronet::stats().blocking_threads <= cap,
        "pool threads past the cap of {cap}"
    );
    (all_met, most.load(Ordering::SeqCst))
}

/// `Builder::max_blocking_threads` above the default: 600 pool jobs that can only finish
/// together (each waits for all the others) all run, where under the default cap of 512 the
/// last 88 would wait in the queue for jobs that wait for them (a limit found by an audit).
#[test]
fn a_raised_blocking_pool_cap_lets_600_jobs_wait_for_each_other() {
    const TEST: &str = "a_raised_blocking_pool_cap_lets_600_jobs_wait_for_each_other";
    if is_child(TEST) {
        let builder = coronet::Builder::new().workers(1).max_blocking_threads(600);
        main_in_child_with(builder, || {
            let (all_met, most) = pool_jobs_meeting(600, 600, 600);
            assert!(all_met, "600 jobs did not all run at once (at most {most})");
            print!("600 met");
        });
    }
    let (status, stdout, stderr) = run_child(TEST);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stdout.ends_with("600 met"), "stdout:\n{stdout}");
}

/// And below it: with a cap of 3, twelve jobs run three at a time (each waits until three
/// have started, so the three do run at once) and never four.
#[test]
fn a_lowered_blocking_pool_cap_is_never_exceeded() {
    const TEST: &str = "a_lowered_blocking_pool_cap_is_never_exceeded";
    if is_child(TEST) {
        let builder = coronet::Builder::new().workers(1).max_blocking_threads(3);
        main_in_child_with(builder, || {
            let (all_met, most) = pool_jobs_meeting(3, 12, 3);
            assert!(all_met, "three jobs never ran at once");
            assert_eq!(most, 3, "jobs at once under a cap of 3");
            print!("cap kept");
        });
    }
    let (status, stdout, stderr) = run_child(TEST);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stdout.ends_with("cap kept"), "stdout:\n{stdout}");
}

/// A coroutine that blocks its worker's thread (here in `std::thread::sleep`) while another
/// coroutine of that worker waits is reported on stderr by name, once, with a line when it
/// lets go — where before the program hung or crawled in silence.
#[test]
fn a_coroutine_holding_its_worker_is_reported_by_name() {
    const TEST: &str = "a_coroutine_holding_its_worker_is_reported_by_name";
    if is_child(TEST) {
        let builder = coronet::Builder::new()
            .workers(1)
            .stall_report(Some(Duration::from_millis(300)));
        main_in_child_with(builder, move || {
            let (tx, rx) = coronet::chan::bounded::<()>(0);
            let waiter = coronet::Spawn::new()
                .name("waiter")
                .go(move || rx.recv().is_ok());
            let hog = coronet::Spawn::new()
                .name("hog")
                .go(|| std::thread::sleep(Duration::from_secs(2)));
            println!("hog {}", hog.coroutine().id());
            hog.join().unwrap();
            tx.send(()).unwrap();
            assert!(waiter.join().unwrap());
            // The line that it let go comes at the monitor's next look (75 ms apart).
            coronet::time::sleep(Duration::from_secs(2));
        });
    }
    let (status, stdout, stderr) = run_child(TEST);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    // After libtest's "test … ... " on the same line.
    let id: String = stdout
        .split_once("hog ")
        .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_else(|| panic!("the hog's id; stdout:\n{stdout}"));
    let held = format!("coronet: coroutine {id} 'hog' has held worker 0 for ");
    assert_eq!(stderr.matches(&held).count(), 1, "stderr:\n{stderr}");
    assert!(
        stderr.contains("the 2 other coroutines of that worker cannot run until it does"),
        "stderr:\n{stderr}"
    );
    let let_go = format!("coronet: coroutine {id} 'hog' let worker 0 go after ");
    assert!(stderr.contains(&let_go), "stderr:\n{stderr}");
}

/// No report where nobody waits for the worker, or the coroutine does not hold it: a
/// coroutine yielding beside a waiter, an idle worker asleep, a coroutine blocking a worker
/// it has alone — also on two workers while a thread keeps spawning short coroutines, which
/// pass through the held worker's stealable queue on their way to the other (one report
/// came from that queue before it was left out); and with `stall_report(None)`, none at
/// all. Each child ends with a real stall, which the first two must report (so the quiet
/// before it is the monitor's judgement, not its absence) and the third must not.
#[test]
fn no_stall_report_where_nobody_waits_or_when_turned_off() {
    const TEST: &str = "no_stall_report_where_nobody_waits_or_when_turned_off";
    const PHASE: Duration = Duration::from_millis(1500);
    if is_child(TEST) {
        let mode = std::env::var("STALL_MODE").unwrap();
        let after = (mode != "off").then_some(Duration::from_millis(500));
        let workers = if mode == "two" { 2 } else { 1 };
        coronet::Builder::new()
            .workers(workers)
            .stall_report(after)
            .build_global()
            .unwrap();
        if mode == "two" {
            // A lone busy coroutine; short ones spawned from this thread meanwhile, half
            // of them queued on its worker for the other to steal.
            let hog = coronet::go(|| {
                let start = Instant::now();
                while start.elapsed() < PHASE {
                    std::hint::spin_loop();
                }
            });
            let start = Instant::now();
            while start.elapsed() < PHASE {
                // Each keeps the other worker a little busy, so that some wait a while.
                drop(coronet::go(|| {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_micros(30) {
                        std::hint::spin_loop();
                    }
                }));
                std::thread::sleep(Duration::from_micros(50));
            }
            hog.join().unwrap();
        } else {
            // Alone on its worker: the test's thread joins it, no coroutine waits.
            coronet::go(|| std::thread::sleep(PHASE)).join().unwrap();
            // Yielding beside a parked waiter.
            let (tx, rx) = coronet::chan::bounded::<()>(0);
            let waiter = coronet::go(move || rx.recv().is_ok());
            coronet::go(|| {
                let start = Instant::now();
                while start.elapsed() < PHASE {
                    coronet::yield_now();
                }
            })
            .join()
            .unwrap();
            // Idle: the worker sleeps in epoll_wait beside the waiter.
            std::thread::sleep(PHASE);
            tx.send(()).unwrap();
            assert!(waiter.join().unwrap());
        }
        eprintln!("quiet so far");
        // A real stall: a hog beside a waiter on one worker.
        coronet::go(|| {
            let (tx, rx) = coronet::chan::bounded::<()>(0);
            let waiter = coronet::Spawn::new()
                .same_worker()
                .go(move || rx.recv().is_ok());
            coronet::Spawn::new()
                .name("hog")
                .same_worker()
                .go(|| std::thread::sleep(PHASE))
                .join()
                .unwrap();
            tx.send(()).unwrap();
            assert!(waiter.join().unwrap());
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        std::process::exit(0);
    }
    let children: Vec<_> = ["one", "two", "off"]
        .into_iter()
        .map(|mode| (mode, spawn_child(TEST, &[("STALL_MODE", mode)])))
        .collect();
    for (mode, child) in children {
        let (status, _, stderr) = wait_child(child);
        assert!(status.success(), "{mode}; stderr:\n{stderr}");
        let (quiet, stall) = stderr.split_once("quiet so far").expect("the child's mark");
        assert!(!quiet.contains("coronet: "), "{mode}; stderr:\n{stderr}");
        assert_eq!(
            stall.contains("'hog' has held worker "),
            mode != "off",
            "{mode}; stderr:\n{stderr}"
        );
    }
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    // SAFETY: all-zero is a valid timespec for clock_gettime to fill.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: clock_gettime writes one timespec through the pointer.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
        0
    );
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A process stopped (SIGSTOP, a debugger, a frozen cgroup) stands still as a whole: the
/// monitor must not take that time for a worker's. Here a coroutine computes in slices of
/// 600 ms of CPU time, yielding between them (well below the 3 s threshold: a slice would
/// have to get under a fifth of a core to stretch past it), and the parent stops the child
/// three times for 3.5 s: an audit saw a false report after most stops, when the slice
/// running at the stop was the one the last look before it had seen.
#[test]
fn a_stopped_process_is_not_reported_as_a_stall() {
    const TEST: &str = "a_stopped_process_is_not_reported_as_a_stall";
    if is_child(TEST) {
        let builder = coronet::Builder::new()
            .workers(1)
            .stall_report(Some(Duration::from_secs(3)));
        main_in_child_with(builder, || {
            let (tx, rx) = coronet::chan::bounded::<()>(0);
            let waiter = coronet::go(move || rx.recv().is_ok());
            let slices = coronet::Spawn::new().name("slices").go(|| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(14) {
                    let cpu = thread_cpu();
                    while thread_cpu() - cpu < Duration::from_millis(600) {
                        std::hint::spin_loop();
                    }
                    coronet::yield_now();
                }
            });
            println!("computing");
            slices.join().unwrap();
            tx.send(()).unwrap();
            assert!(waiter.join().unwrap());
        });
    }
    let mut child = spawn_child(TEST, &[]);
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("computing") {
        let mut byte = [0; 1];
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "the child ended early");
        seen.push(byte[0]);
    }
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        // SAFETY: kill(2) with the pid of our child, not yet reaped; no memory involved.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        std::thread::sleep(Duration::from_millis(3500));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    }
    let (status, _, stderr) = wait_child(child);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("has held"), "stderr:\n{stderr}");
}

/// A worker held outside any coroutine — here by a logger that waits, on the scheduler's
/// "starts coroutine" line, for a flag a parked coroutine holds — is reported too, though
/// no coroutine is `Running` there (an audit found it silent), with a line when it moves.
#[test]
fn a_worker_held_by_its_logger_is_reported() {
    const TEST: &str = "a_worker_held_by_its_logger_is_reported";
    static HELD: AtomicBool = AtomicBool::new(false);
    struct Gate;
    impl log::Log for Gate {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, record: &log::Record) {
            if !record.args().to_string().contains("starts coroutine") {
                return;
            }
            // Waits for the flag to drop, 1.5 s at most.
            let start = Instant::now();
            while HELD.load(Ordering::Acquire) && start.elapsed() < Duration::from_millis(1500) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        fn flush(&self) {}
    }
    if is_child(TEST) {
        log::set_logger(&Gate).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
        let builder = coronet::Builder::new()
            .workers(1)
            .stall_report(Some(Duration::from_millis(300)));
        main_in_child_with(builder, || {
            let holder = coronet::go(|| {
                HELD.store(true, Ordering::Release);
                // Started by the scheduler after this parks: its line waits for the flag.
                let late = coronet::go(|| ());
                coronet::time::sleep(Duration::from_secs(3));
                HELD.store(false, Ordering::Release);
                late.join().unwrap();
            });
            holder.join().unwrap();
            // The line that it moves comes at the monitor's next look (75 ms apart).
            coronet::time::sleep(Duration::from_secs(2));
        });
    }
    let (status, _, stderr) = run_child(TEST);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(
        stderr.contains("coronet: worker 0 has run no coroutine for "),
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("coronet: worker 0 runs coroutines again after "),
        "stderr:\n{stderr}"
    );
}

/// A blocking pool whose threads are all busy while jobs wait and none is taken — here
/// three jobs that wait for each other under a cap of two, as 513 did under the default
/// cap in an audit and hung in silence — is reported, with a line when a job is taken
/// again (the two give up after 3 s).
#[test]
fn a_blocking_pool_that_takes_no_job_is_reported() {
    const TEST: &str = "a_blocking_pool_that_takes_no_job_is_reported";
    if is_child(TEST) {
        let builder = coronet::Builder::new()
            .workers(1)
            .max_blocking_threads(2)
            .stall_report(Some(Duration::from_millis(300)));
        main_in_child_with(builder, || {
            static ARRIVED: AtomicUsize = AtomicUsize::new(0);
            let jobs: Vec<_> = (0..3)
                .map(|_| {
                    coronet::go(|| {
                        coronet::spawn_blocking(|| {
                            ARRIVED.fetch_add(1, Ordering::SeqCst);
                            let start = Instant::now();
                            while ARRIVED.load(Ordering::SeqCst) < 3
                                && start.elapsed() < Duration::from_secs(3)
                            {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                        })
                    })
                })
                .collect();
            for j in jobs {
                j.join().unwrap();
            }
            // The line that it moves comes at the monitor's next look (75 ms apart).
            coronet::time::sleep(Duration::from_secs(2));
        });
    }
    let (status, _, stderr) = run_child(TEST);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(
        stderr.contains("coronet: the blocking pool's 2 threads have been busy for "),
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("while 1 job waits for one"),
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("coronet: the blocking pool takes jobs again after "),
        "stderr:\n{stderr}"
    );
    assert!(!stderr.contains("has held worker"), "stderr:\n{stderr}");
}
