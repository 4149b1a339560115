//! Shared pieces of the benchmark binaries: argument parsing, the `RESULT` line every
//! contender prints, memory and CPU readings from `/proc`, a latency histogram, and thin
//! wrappers over the epoll and socket calls used by the load client and the epoll baseline.
//!
//! Every binary prints exactly one line per measurement:
//!
//! ```text
//! RESULT ns/op=123.4 ops=1000000
//! ```
//!
//! `run.sh` prefixes it with the table and contender names and the `report` binary turns
//! the lines into tables with ratios to Go.

pub mod hist;
pub mod sys;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Positional and `--key value` arguments.
pub struct Args {
    pub positional: Vec<String>,
    named: HashMap<String, String>,
}

impl Args {
    /// Parses `std::env::args()`, skipping the program name.
    pub fn parse() -> Args {
        let mut positional = Vec::new();
        let mut named = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            match a.strip_prefix("--") {
                Some(key) => {
                    let value = it.next().unwrap_or_else(|| panic!("--{key} needs a value"));
                    named.insert(key.to_string(), value);
                }
                None => positional.push(a),
            }
        }
        Args { positional, named }
    }

    /// The `i`th positional argument, or a panic naming what was expected.
    pub fn pos(&self, i: usize, what: &str) -> &str {
        self.positional
            .get(i)
            .unwrap_or_else(|| panic!("missing argument {i}: {what}"))
    }

    /// `--key value` parsed as `T`, or `default` when absent.
    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        match self.named.get(key) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("--{key}: cannot parse {v:?}")),
            None => default,
        }
    }

    /// `--key SECONDS` (fractional allowed) as a `Duration`.
    pub fn secs(&self, key: &str, default: f64) -> Duration {
        Duration::from_secs_f64(self.get(key, default))
    }
}

/// Prints one `RESULT k=v ...` line and flushes it, so `run.sh` sees it even if the
/// process is killed right after.
pub fn result(fields: &[(&str, f64)]) {
    let mut line = String::from("RESULT");
    for (k, v) in fields {
        // Three significant decimals are plenty and keep the lines short.
        let _ = write!(line, " {k}={}", trim(*v));
    }
    println!("{line}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

fn trim(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// Resident set size of this process in KiB, from `VmRSS` in `/proc/self/status`.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line in /proc/self/status")
}

/// CPU time that process `pid` has used, to the nanosecond where the kernel allows.
///
/// `/proc/PID/stat` has utime and stime in clock ticks (10 ms), each truncated, so a
/// difference of two readings is off by up to 20 ms: ±1.5 % of what a server uses in a
/// side-by-side window. So the reading is the sum over the live threads of the time on CPU in
/// `/proc/PID/task/TID/schedstat` (ns), with the set of threads it summed; [`cpu_between`]
/// takes the difference of two readings, and falls back to the ticks when a thread of the
/// first is gone by the second (an exited thread's time leaves the per-thread sum).
#[derive(Clone, Debug)]
pub struct CpuReading {
    ticks: Duration,
    ns: Option<(u64, Vec<u32>)>,
}

pub fn process_cpu(pid: u32) -> CpuReading {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
    // The command name (field 2) may contain spaces; the fields we want follow its ')'.
    let rest = &stat[stat.rfind(')').expect("')' in /proc/PID/stat") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let ticks = Duration::from_secs_f64(ticks as f64 / sys::clock_ticks_per_sec() as f64);
    CpuReading {
        ticks,
        ns: threads_on_cpu_ns(pid),
    }
}

/// The sum of `/proc/PID/task/*/schedstat`'s first field (ns on CPU) and the thread ids
/// summed; `None` if any of it cannot be read (a kernel without schedstat).
fn threads_on_cpu_ns(pid: u32) -> Option<(u64, Vec<u32>)> {
    let mut total = 0;
    let mut tids = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let tid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        // a thread that exits between the listing and this read: its time is gone either way
        let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")) else {
            continue;
        };
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
        tids.push(tid);
    }
    // sorted, so that `cpu_between` finds each in a 9,000-thread server without a quadratic scan
    tids.sort_unstable();
    Some((total, tids))
}

/// The CPU used between two readings of one process: in ns when every thread of the first
/// reading is still there at the second (threads that started in between count whole), in
/// clock ticks otherwise.
pub fn cpu_between(a: &CpuReading, b: &CpuReading) -> Duration {
    match (&a.ns, &b.ns) {
        (Some((na, ta)), Some((nb, tb)))
            if ta.iter().all(|t| tb.binary_search(t).is_ok()) && nb >= na =>
        {
            Duration::from_nanos(nb - na)
        }
        _ => b.ticks.saturating_sub(a.ticks),
    }
}

/// CPU time of an optional server process: `None` when no `--server-pid` was given.
pub fn server_cpu(pid: Option<u32>) -> Option<CpuReading> {
    pid.map(process_cpu)
}

/// Reads the `ready` contract for servers: the address to listen on is the first argument.
pub fn server_addr() -> String {
    std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_string())
}

/// The number of workers (threads running coroutines or tasks) an echo server should use:
/// the optional second argument, 1 by default. Thread-per-connection and the single-threaded
/// epoll loop have no such knob and ignore it.
pub fn server_workers() -> usize {
    std::env::args()
        .nth(2)
        .map_or(1, |w| w.parse().expect("workers: a positive integer"))
}

/// Tells `run.sh` the server is listening.
pub fn ready() {
    println!("ready");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// Echo servers read into a heap buffer of this size (Go's `io.Copy` uses the same).
pub const ECHO_BUF: usize = 32 << 10;

/// The idle benchmark's line: memory per parked coroutine/task/goroutine, and `setup_s`, the
/// seconds from the first spawn until all `n` were parked.
pub fn idle_result(
    n: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    spawn_s: f64,
    stack_kib: Option<usize>,
) {
    let mut fields = vec![
        (
            "bytes/each",
            (rss_after_kib.saturating_sub(rss_before_kib) * 1024) as f64 / n as f64,
        ),
        ("_n", n as f64),
        ("_rss_before_MiB", rss_before_kib as f64 / 1024.0),
        ("_rss_after_MiB", rss_after_kib as f64 / 1024.0),
        ("setup_s", spawn_s),
    ];
    if let Some(kib) = stack_kib {
        fields.push(("_stack_KiB", kib as f64));
    }
    result(&fields);
}
