//! The runtime's monitor thread (`coronet-sysmon`) in a process that has no other thread: a
//! `Builder::main` program with one worker. There it moves to a fd table of its own (see
//! `src/runtime/sysmon.rs`), so that the worker's table has one user and the kernel skips
//! its per-call reference on each file. Checked here: the move happened; the monitor's table
//! holds no copy of the program's fds (a socket made before the runtime started, then
//! closed by the program, is closed for its peer); and a stall report still reaches the
//! program's stderr, also after the program moves fd 2 elsewhere; and a POSIX lock the
//! program holds on its stderr's file survives the move.
//!
//! `harness = false` (Cargo.toml): libtest would run this on a second thread.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

mod util;
use util::threads;

/// The monitor's fds, as /proc names their files.
fn monitor_fds() -> Vec<String> {
    let task = util::thread_named("coronet-sysmon").expect("the monitor thread");
    std::fs::read_dir(task.join("fd"))
        .unwrap()
        .map(|e| {
            let link = std::fs::read_link(e.unwrap().path()).unwrap();
            link.to_string_lossy().into_owned()
        })
        .collect()
}

/// Whether a lock that would conflict with writing to the file is held by an owner other
/// than `probe`'s open file description: an OFD lock query, which sees this process's own
/// POSIX locks as conflicts too. (`probe` stays open: closing any fd of the file would
/// itself release the process's POSIX locks on it.)
fn write_locked(probe: &std::fs::File) -> bool {
    // SAFETY: all-zero is a valid `flock`, then filled in.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    // SAFETY: F_OFD_GETLK reads and writes one `flock` through the pointer.
    assert_eq!(
        unsafe { libc::fcntl(probe.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) },
        0
    );
    fl.l_type != libc::F_UNLCK as i16
}

/// A file under a POSIX write lock of this process, and a second open file description of it
/// for `write_locked`.
fn locked_file(tag: &str) -> (std::fs::File, std::fs::File) {
    let path = std::env::temp_dir().join(format!("coronet-{tag}-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let probe = std::fs::File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    // SAFETY: all-zero is a valid `flock`, then filled in.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    // SAFETY: F_SETLK reads one `flock` through the pointer.
    assert_eq!(
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) },
        0
    );
    assert!(write_locked(&probe));
    (file, probe)
}

/// Whether this kernel lets a thread borrow its process's fds through a pidfd, as the monitor
/// must before it moves (Linux 5.6; some seccomp profiles refuse it).
fn pidfd_getfd_allowed() -> bool {
    // SAFETY: pidfd_open reads no memory; the fd it makes is closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) } as i32;
    if pidfd < 0 {
        return false;
    }
    // SAFETY: pidfd_getfd reads no memory; a copy of the pidfd, closed below.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, pidfd, 0) } as i32;
    // SAFETY: both were made above and are owned by nothing else.
    unsafe {
        libc::close(pidfd);
        if copy >= 0 {
            libc::close(copy);
        }
    }
    copy >= 0
}

fn main() {
    // libtest's listing (`--list`, nextest): one test, this file's.
    if std::env::args().any(|a| a == "--list") {
        println!("sysmon_alone: test");
        return;
    }
    if !pidfd_getfd_allowed() {
        // The monitor stays on the shared table then (its module doc): nothing to check.
        println!("sysmon_alone: skipped: this kernel refuses pidfd_getfd");
        return;
    }
    // Made before the runtime starts, so the monitor's copy of the table would have it.
    let (mut near, far) = UnixStream::pair().unwrap();
    // POSIX locks the program holds while the runtime starts, one on a file open as its
    // stderr: closing any fd of such a file through the program's table would release it
    // (POSIX locks belong to the table they were taken through), as the monitor's first
    // probe of `pidfd_getfd` did, on fd 2. Closing the monitor's copies in its own table
    // must not.
    let (on_stderr, stderr_probe) = locked_file("stderr-lock");
    let (other, other_probe) = locked_file("lock");
    // SAFETY: dup and dup2 of fds this process holds open; no memory involved.
    let stderr_before = unsafe { libc::dup(2) };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::dup2(on_stderr.as_raw_fd(), 2) }, 2);
    assert_eq!(
        threads(),
        1,
        "this test needs to be the process's only thread"
    );
    let builder = coronet::Builder::new()
        .workers(1)
        .stall_report(Some(Duration::from_millis(300)));
    let err = builder
        .main(move || {
            let stderr_kept = write_locked(&stderr_probe);
            // (This dup2 closes fd 2, and so releases that lock: checked before it.)
            // SAFETY: as above; `stderr_before` is the stderr of before.
            unsafe { libc::dup2(stderr_before, 2) };
            assert!(stderr_kept, "the lock on stderr's file was released");
            assert_eq!(threads(), 2, "worker 0 and the monitor");
            // The monitor closes its copies after telling its spawner it has moved (so that
            // a slow `flush` never holds up the start): wait (generously) for it.
            let until = std::time::Instant::now() + Duration::from_secs(10);
            let mut fds = monitor_fds();
            while fds.len() > 2 && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
                fds = monitor_fds();
            }
            // Its pipe's read end and the pidfd through which it borrows stderr.
            let own = |f: &String| f.starts_with("pipe:") || f.contains("pidfd");
            assert!(
                fds.len() <= 2 && fds.iter().all(own),
                "the monitor's fds: {fds:?}"
            );
            // The read end's copy left in the program's table went too: of that pipe, only
            // the write end (for the signal handler) is the program's.
            let pipe = fds
                .iter()
                .find(|f| f.starts_with("pipe:"))
                .expect("the pipe");
            let ours = std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter(|e| {
                    let link = std::fs::read_link(e.as_ref().unwrap().path());
                    link.is_ok_and(|l| l.to_string_lossy() == *pipe)
                })
                .count();
            assert_eq!(ours, 1, "ends of the monitor's pipe in the program's table");
            assert!(write_locked(&other_probe), "a lock was released");
            drop((on_stderr, other, stderr_probe, other_probe));
            drop(far);
            near.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let n = near.read(&mut [0; 8]).expect("the peer's close is seen");
            assert_eq!(n, 0);

            // stderr moves to a file after the monitor started; the report goes there.
            let log = std::env::temp_dir().join(format!("coronet-sysmon-{}", std::process::id()));
            let file = std::fs::File::create(&log).unwrap();
            // SAFETY: dup and dup2 of fds this process holds open; no memory involved.
            let saved = unsafe { libc::dup(2) };
            // SAFETY: as above.
            assert_eq!(unsafe { libc::dup2(file.as_raw_fd(), 2) }, 2);
            let (tx, rx) = coronet::chan::bounded::<()>(0);
            let waiter = coronet::go(move || rx.recv().is_ok());
            let hog = coronet::Spawn::new()
                .name("hog")
                .go(|| std::thread::sleep(Duration::from_secs(2)));
            hog.join().unwrap();
            tx.send(()).unwrap();
            assert!(waiter.join().unwrap());
            // The line that it let go comes at the monitor's next look (75 ms apart): wait
            // (generously) for it.
            let until = std::time::Instant::now() + Duration::from_secs(10);
            let mut text = std::fs::read_to_string(&log).unwrap();
            while !text.contains("let worker 0 go") && std::time::Instant::now() < until {
                coronet::time::sleep(Duration::from_millis(20));
                text = std::fs::read_to_string(&log).unwrap();
            }
            // SAFETY: as above; `saved` is the stderr of before.
            unsafe { libc::dup2(saved, 2) };
            let _ = std::fs::remove_file(&log);
            assert!(text.contains("'hog' has held worker 0 for"), "{text:?}");
            assert!(text.contains("'hog' let worker 0 go after"), "{text:?}");
            println!("sysmon_alone: the monitor's own fd table and its reports: ok");
        })
        .unwrap_err();
    panic!("Builder::main returned: {err}");
}
