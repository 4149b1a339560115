//! `examples/proxy.rs` across a faulty network: loss, reordering and delay between real
//! network namespaces. Needs root with `ip` and `tc` (Debian's `iproute2`); otherwise each
//! test prints why it skipped and passes.
//!
//! ```text
//!   namespace A                      namespace R (router)                 namespace B
//!   client, upstream  a0 ─── veth ─── r0  [faults]  r1 ─── veth ─── b0   proxy
//!   192.0.2.1                    192.0.2.254    198.51.100.254           198.51.100.1
//! ```
//!
//! The client connects to the proxy in B, which dials the upstream back in A, so every byte
//! crosses the faulty router four times. The faults sit on the router's two outgoing
//! interfaces rather than on the endpoints: a packet a host's own qdisc drops is reported
//! to its TCP at once and simply sent again, which is no loss at all.
//!
//! The faults are netem's (`loss 1% delay 10ms 5ms reorder 10% 50%`) where the kernel has
//! it. Kernels built without netem (this sandbox's, for one) get the same three faults
//! from what they have: an htb qdisc with three classes and a classic-BPF classifier that
//! draws the kernel's random number for every packet — 1 % go to a class whose queue
//! holds nothing (lost), 10 % to a 4 Mbit/s class with a short queue (delayed up to ~90
//! ms and overtaken by later packets: reordered), the rest pass at once.
//!
//! The client and upstream are threads of this test that moved into namespace A with
//! `setns(2)` (a network namespace is per thread); the proxy runs in B under
//! `ip netns exec`. The namespaces have unique names and are deleted on drop, also when a
//! check fails.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const CLIENT_IP: &str = "192.0.2.1";
const PROXY_IP: &str = "198.51.100.1";

/// Builds the examples once (a nested `cargo build`, same target dir) and returns the path
/// of one. (Copied from `tests/examples.rs`.)
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo build --examples failed");
    });
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    p.pop();
    p.push("examples");
    p.push(name);
    assert!(p.exists(), "{} not built", p.display());
    p
}

/// Runs `ip`/`tc` with `args`; the error is the command and its stderr.
fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{cmd} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Three namespaces A — R — B with faults on R; deleted on drop.
struct Net {
    a: String,
    r: String,
    b: String,
    /// Which faults R applies, for the test's output.
    faults: &'static str,
}

impl Net {
    /// Builds the network, or says why it cannot be built here.
    fn new() -> Result<Net, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root (network namespaces need CAP_NET_ADMIN)".into());
        }
        for tool in ["ip", "tc"] {
            if Command::new(tool).arg("-V").output().is_err() {
                return Err(format!("`{tool}` is not installed (Debian: iproute2)"));
            }
        }
        static RUN: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        );
        let mut net = Net {
            a: String::new(),
            r: String::new(),
            b: String::new(),
            faults: "",
        };
        // Named one at a time so that drop deletes exactly those that were made.
        for (field, side) in [(&mut net.a, "a"), (&mut net.r, "r"), (&mut net.b, "b")] {
            let name = format!("coronet-{id}-{side}");
            run("ip", &["netns", "add", &name])
                .map_err(|e| format!("cannot create a network namespace: {e}"))?;
            *field = name;
        }
        net.wire()
            .map_err(|e| format!("cannot wire the namespaces: {e}"))?;
        net.faults = net.add_faults()?;
        Ok(net)
    }

    fn wire(&self) -> Result<(), String> {
        let (a, r, b) = (self.a.as_str(), self.r.as_str(), self.b.as_str());
        let ip = |args: &str| run("ip", &args.split(' ').collect::<Vec<_>>());
        for ns in [a, r, b] {
            ip(&format!("-n {ns} link set lo up"))?;
        }
        // Created straight inside the namespaces, so the short names cannot clash.
        ip(&format!(
            "link add a0 netns {a} type veth peer name r0 netns {r}"
        ))?;
        ip(&format!(
            "link add b0 netns {b} type veth peer name r1 netns {r}"
        ))?;
        ip(&format!("-n {a} addr add {CLIENT_IP}/24 dev a0"))?;
        ip(&format!("-n {r} addr add 192.0.2.254/24 dev r0"))?;
        ip(&format!("-n {r} addr add 198.51.100.254/24 dev r1"))?;
        ip(&format!("-n {b} addr add {PROXY_IP}/24 dev b0"))?;
        for (ns, dev) in [(a, "a0"), (r, "r0"), (r, "r1"), (b, "b0")] {
            ip(&format!("-n {ns} link set {dev} up"))?;
        }
        ip(&format!("-n {a} route add default via 192.0.2.254"))?;
        ip(&format!("-n {b} route add default via 198.51.100.254"))?;
        run(
            "ip",
            &[
                "netns",
                "exec",
                r,
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
            ],
        )
    }

    /// Puts loss, delay and reordering on both of R's interfaces: netem if the kernel has
    /// it, else htb + a random BPF classifier (see the file's header).
    fn add_faults(&self) -> Result<&'static str, String> {
        let r = self.r.as_str();
        let tc = |args: String| run("tc", &args.split(' ').collect::<Vec<_>>());
        let netem = ["r0", "r1"].iter().try_for_each(|dev| {
            tc(format!(
                "-n {r} qdisc add dev {dev} root netem loss 1% delay 10ms 5ms reorder 10% 50%"
            ))
        });
        if netem.is_ok() {
            return Ok("netem: loss 1%, delay 10ms ±5ms, reorder 10%");
        }
        // Classic BPF, one instruction per entry (code jt jf k):
        //   ld  rand                  A = a random u32 (SKF_AD_OFF + SKF_AD_RANDOM)
        //   jge 1% of 2^32, +1        A <  1%:  class 1:30, which drops
        //   ret 0x10030
        //   jge 11% of 2^32, +1       A < 11%:  class 1:20, slow
        //   ret 0x10020
        //   ret 0x10010               else:     class 1:10, fast
        let bpf = "6,32 0 0 4294963256,53 1 0 42949673,6 0 0 65584,\
                   53 1 0 472446402,6 0 0 65568,6 0 0 65552";
        for dev in ["r0", "r1"] {
            let q = format!("-n {r} qdisc add dev {dev}");
            let c = format!("-n {r} class add dev {dev} parent 1: classid");
            let steps = [
                format!("{q} root handle 1: htb default 10 r2q 100000"),
                format!("{c} 1:10 htb rate 10gbit"),
                format!("{c} 1:20 htb rate 4mbit quantum 1514"),
                format!("{q} parent 1:20 pfifo limit 30"),
                format!("{c} 1:30 htb rate 10gbit"),
                format!("{q} parent 1:30 pfifo limit 0"),
            ];
            for step in steps {
                tc(step).map_err(|e| format!("no netem ({netem:?}), and no htb either: {e}"))?;
            }
            // The program has spaces inside one argument: not split.
            run(
                "tc",
                &[
                    "-n", r, "filter", "add", "dev", dev, "parent", "1:", "protocol", "all", "bpf",
                    "bytecode", bpf,
                ],
            )
            .map_err(|e| format!("no netem ({netem:?}), and no BPF classifier either: {e}"))?;
        }
        Ok(
            "no netem in this kernel; htb + random BPF classifier: loss 1%, 10% delayed \
            ≤90 ms and reordered",
        )
    }

    /// Runs `f` on a thread inside namespace `ns` and returns its result. Threads `f`
    /// spawns are born in `ns` too.
    fn within<T: Send + 'static>(&self, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let file = File::open(format!("/run/netns/{ns}"))
            .or_else(|_| File::open(format!("/var/run/netns/{ns}")))
            .expect("the namespace file `ip netns add` made");
        thread::spawn(move || {
            // SAFETY: `file` is an open network-namespace file; setns only moves this
            // thread (a network namespace is per thread) and touches no memory of ours.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }

    /// TCP segments namespace `ns` retransmitted so far (`/proc/net/snmp`, per namespace).
    fn retransmits(&self, ns: &str) -> u64 {
        self.within(ns, || {
            let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap();
            let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
            let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
            let at = names.split(' ').position(|n| n == "RetransSegs").unwrap();
            values.split(' ').nth(at).unwrap().parse().unwrap()
        })
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.a, &self.r, &self.b] {
            if !ns.is_empty() {
                // Ignored: nothing more can be done in a destructor; the name is unique,
                // so a leftover never disturbs another run.
                let _ = run("ip", &["netns", "del", ns]);
            }
        }
    }
}

/// The proxy in namespace B; killed on drop (before `Net` deletes the namespaces, as it is
/// declared after it).
struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Proxy {
    fn start(net: &Net, upstream: SocketAddr, idle_secs: &str) -> Proxy {
        let listen = format!("{PROXY_IP}:0");
        let up = upstream.to_string();
        let proxy = example("proxy");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &net.b])
            .arg(&proxy)
            .args([listen.as_str(), up.as_str(), idle_secs])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.contains("listening on"), "proxy printed {first:?}");
        let addr = first.trim().rsplit(' ').next().unwrap().parse().unwrap();
        Proxy { child, addr }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An echo server in namespace A (a thread per connection); EOF is echoed as EOF.
fn echo_upstream(net: &Net) -> SocketAddr {
    net.within(&net.a, || {
        let l = TcpListener::bind(format!("{CLIENT_IP}:0")).unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            for s in l.incoming() {
                let s = s.unwrap();
                thread::spawn(move || {
                    let _ = io::copy(&mut &s, &mut &s);
                    let _ = s.shutdown(Shutdown::Write);
                });
            }
        });
        addr
    })
}

fn setup() -> Option<Net> {
    match Net::new() {
        Ok(net) => {
            eprintln!("faults: {}", net.faults);
            Some(net)
        }
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(131) ^ (i >> 9)) as u8)
        .collect()
}

#[test]
fn a_multi_megabyte_transfer_survives_loss_delay_and_reordering() {
    let Some(net) = setup() else { return };
    let upstream = echo_upstream(&net);
    let proxy = Proxy::start(&net, upstream, "30");
    let before = net.retransmits(&net.a) + net.retransmits(&net.b);

    const LEN: usize = 8 << 20;
    let to = proxy.addr;
    let (back, took) = net.within(&net.a, move || {
        let start = Instant::now();
        let s = TcpStream::connect(to).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            w.write_all(&pattern(LEN)).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::with_capacity(LEN);
        (&s).read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        (back, start.elapsed())
    });
    let retransmitted = net.retransmits(&net.a) + net.retransmits(&net.b) - before;
    eprintln!("{LEN} bytes there and back in {took:.2?}, {retransmitted} segments retransmitted");
    assert_eq!(back.len(), LEN);
    assert!(back == pattern(LEN), "bytes changed on the way");
    // The faults were real: TCP had to repair something.
    assert!(
        retransmitted > 0,
        "no segment was lost: the faults did not apply"
    );
}

#[test]
fn deadlines_fire_on_time_across_a_slow_lossy_link() {
    let Some(net) = setup() else { return };
    let upstream = echo_upstream(&net);
    let idle = Duration::from_millis(1500);
    let proxy = Proxy::start(&net, upstream, "1.5");
    let to = proxy.addr;
    net.within(&net.a, move || {
        // The client is a coronet stream on a plain thread: its deadlines are under test.
        let mut s = coronet::net::TcpStream::connect(to).unwrap();
        // Active for two idle periods, a byte every 200 ms: the proxy keeps the pair open
        // although packets are lost, delayed and reordered.
        let start = Instant::now();
        while start.elapsed() < idle * 2 {
            s.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)))
                .unwrap();
            s.write_all(b"p").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b)
                .expect("the pair was closed while active");
            thread::sleep(Duration::from_millis(200));
        }
        let quiet = Instant::now();

        // A read deadline with nothing to read: fires after, never before, and soon after.
        let wait = Duration::from_millis(600);
        s.set_read_deadline(Some(Instant::now() + wait)).unwrap();
        let t = Instant::now();
        let err = s.read(&mut [0u8; 1]).unwrap_err();
        let took = t.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(took >= wait, "deadline fired early: {took:?}");
        assert!(
            took < wait + Duration::from_secs(2),
            "deadline fired late: {took:?}"
        );

        // The proxy's idle deadline: the pair closes `idle`..`1.25 idle` after the last
        // byte (plus the link's delay and generous slack), not before.
        s.set_read_deadline(None).unwrap();
        let r = s.read(&mut [0u8; 1]);
        let closed = quiet.elapsed();
        assert!(
            matches!(r, Ok(0))
                || r.as_ref()
                    .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionReset),
            "expected the proxy to close the pair, got {r:?}"
        );
        assert!(
            closed >= idle - Duration::from_millis(250),
            "closed early: {closed:?}"
        );
        assert!(
            closed < idle * 2 + Duration::from_secs(3),
            "closed late: {closed:?}"
        );
        eprintln!("read deadline fired after {took:?}; the idle pair closed after {closed:?}");
    });
}
