//! `examples/proxy.rs` across a faulty network: loss, reordering and delay between real
//! network namespaces. Needs root and `ip` (Debian's `iproute2`, which also has `tc`);
//! otherwise each test prints why it skipped and passes.
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
//! The faults are netem's (`loss 0.5% delay 5ms 3ms`: every packet through the router is
//! held 2 to 8 ms, uniformly, so packets sent less than 6 ms apart overtake each other, and
//! one in 200 is dropped) where the kernel has netem. Kernels built without it (this
//! sandbox's, for one: no `sch_netem`, no modules) get the same faults from a delay line in
//! userspace: R routes every packet it forwards into a TUN device, a thread of this test
//! reads it, drops it or holds it for its delay, and writes it back into the TUN device,
//! from where R routes it on. Either way the sending kernels see a real lossy, slow,
//! reordering path between them.
//!
//! The client and upstream are threads of this test that moved into namespace A with
//! `setns(2)` (a network namespace is per thread); the proxy runs in B under
//! `ip netns exec`. The namespaces have unique names and are deleted on drop, also when a
//! check fails.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod util;
use util::examples::{example, spawn_listening};

const CLIENT_IP: &str = "192.0.2.1";
/// The faults on every packet the router forwards: lost with this probability (percent) …
const LOSS_PERCENT: f64 = 0.5;
/// … else held for `DELAY` ± `JITTER` (uniform).
const DELAY: Duration = Duration::from_millis(5);
const JITTER: Duration = Duration::from_millis(3);
const PROXY_IP: &str = "198.51.100.1";

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
    faults: String,
    /// The userspace faults, when the kernel has no netem; stopped before R is deleted.
    delay_line: Option<DelayLine>,
}

impl Net {
    /// Builds the network, or says why it cannot be built here.
    fn new() -> Result<Net, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root (network namespaces need CAP_NET_ADMIN)".into());
        }
        // `tc` comes with `ip`; without it (or without netem) the delay line stands in.
        if Command::new("ip").arg("-V").output().is_err() {
            return Err("`ip` is not installed (Debian: iproute2)".into());
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
            faults: String::new(),
            delay_line: None,
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

    /// Puts loss, delay and reordering on everything R forwards: netem on both of R's
    /// interfaces if the kernel has it, else the same faults from a userspace delay line
    /// (see the file's header).
    fn add_faults(&mut self) -> Result<String, String> {
        let r = self.r.clone();
        let tc = |args: String| run("tc", &args.split(' ').collect::<Vec<_>>());
        let spec = format!(
            "loss {LOSS_PERCENT}% delay {}ms {}ms",
            DELAY.as_millis(),
            JITTER.as_millis()
        );
        let netem = ["r0", "r1"]
            .iter()
            .try_for_each(|dev| tc(format!("-n {r} qdisc add dev {dev} root netem {spec}")));
        let no_netem = match netem {
            Ok(()) => return Ok(format!("netem on the router: {spec}")),
            Err(e) => e,
        };
        // Everything arriving on r0 or r1 is routed into the TUN device `d0`; what the delay
        // line writes back to `d0` is routed on by the main table as usual.
        let tun = self
            .within(&r, || open_tun("d0"))
            .map_err(|e| format!("no netem ({no_netem}), and no TUN device either: {e}"))?;
        let ip = |args: &str| run("ip", &args.split(' ').collect::<Vec<_>>());
        ip(&format!("-n {r} link set d0 up"))?;
        ip(&format!("-n {r} route add default dev d0 table 100"))?;
        for dev in ["r0", "r1"] {
            ip(&format!("-n {r} rule add iif {dev} lookup 100 pref 100"))?;
        }
        // Packets come back in on d0 from addresses d0 has no route to: no reverse-path
        // filtering.
        run(
            "ip",
            &[
                "netns",
                "exec",
                &r,
                "sh",
                "-c",
                "for f in all default d0; do echo 0 > /proc/sys/net/ipv4/conf/$f/rp_filter; done",
            ],
        )?;
        self.delay_line = Some(DelayLine::start(tun));
        Ok(format!(
            "no netem in this kernel ({no_netem}); userspace delay line on the router: {spec}"
        ))
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
        drop(self.delay_line.take());
        for ns in [&self.a, &self.r, &self.b] {
            if !ns.is_empty() {
                // Ignored: nothing more can be done in a destructor; the name is unique,
                // so a leftover never disturbs another run.
                let _ = run("ip", &["netns", "del", ns]);
            }
        }
    }
}

/// `TUNSETIFF` and its flags, from `<linux/if_tun.h>` (not in the libc crate for Linux).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

/// Creates the TUN device `name` in the calling thread's network namespace: an fd on which
/// each `read` is one IP packet routed into the device and each `write` injects one as if
/// it had arrived on it.
fn open_tun(name: &str) -> io::Result<OwnedFd> {
    let file = File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // `struct ifreq`: the name, then a union whose first member is the flags; 40 bytes.
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req = IfReq {
        name: [0; 16],
        flags: IFF_TUN | IFF_NO_PI,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: the fd is open (we own `file`); `req` is a valid, NUL-terminated ifreq the
    // kernel reads and writes within its 40 bytes.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file.into())
}

/// netem in userspace: a thread that reads packets from a TUN device, drops `LOSS_PERCENT`
/// of them, and writes the others back after `DELAY` ± `JITTER`, in the order they fall due.
struct DelayLine {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl DelayLine {
    fn start(tun: OwnedFd) -> DelayLine {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            // xorshift64*, seeded from the clock: a different loss pattern each run.
            let mut seed = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1;
            let mut random = move || {
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
            };
            // Packets waiting, by due time; the sequence number keeps the heap total.
            let mut held: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
            let mut seq = 0u64;
            let mut buf = vec![0u8; 65536];
            while !stopped.load(Ordering::Relaxed) {
                let now = Instant::now();
                // Hand back what is due; errors (the namespace going away) are ignored.
                while let Some(Reverse((due, _, _))) = held.peek() {
                    if *due > now {
                        break;
                    }
                    let Reverse((_, _, packet)) = held.pop().unwrap();
                    // SAFETY: the fd is open (`tun` lives in this closure); `packet` is
                    // valid for reads of its length.
                    let _ = unsafe {
                        libc::write(tun.as_raw_fd(), packet.as_ptr().cast(), packet.len())
                    };
                }
                // Wait for a packet, at most until the next one is due (or 50 ms, to see
                // `stop`).
                let wait = held
                    .peek()
                    .map_or(Duration::from_millis(50), |Reverse((due, _, _))| {
                        due.saturating_duration_since(now)
                    })
                    .min(Duration::from_millis(50));
                let mut pfd = libc::pollfd {
                    fd: tun.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // Round up: a 0 ms poll while a packet is due in 0.4 ms would spin.
                let ms = wait.as_micros().div_ceil(1000) as libc::c_int;
                // SAFETY: `pfd` is one valid pollfd, as the count says.
                if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
                    continue;
                }
                // SAFETY: the fd is open; `buf` is valid for writes of its length.
                let n = unsafe { libc::read(tun.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    continue;
                }
                if random() * 100.0 < LOSS_PERCENT {
                    continue;
                }
                let jitter = JITTER.as_secs_f64() * (2.0 * random() - 1.0);
                let due = Instant::now() + DELAY.mul_f64(1.0 + jitter / DELAY.as_secs_f64());
                seq += 1;
                held.push(Reverse((due, seq, buf[..n as usize].to_vec())));
            }
        });
        DelayLine {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // Ignored: a panic there has already been printed, and this may run while a
            // test is failing.
            let _ = t.join();
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
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &net.b]).arg(&proxy).args([
            listen.as_str(),
            up.as_str(),
            idle_secs,
        ]);
        let (child, addr) = spawn_listening(&mut cmd, "proxy");
        Proxy {
            child,
            addr: addr.parse().unwrap(),
        }
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
        let mut rtts = Vec::new();
        let quiet = loop {
            s.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)))
                .unwrap();
            let sent = Instant::now();
            s.write_all(b"p").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b)
                .expect("the pair was closed while active");
            rtts.push(sent.elapsed());
            if start.elapsed() >= idle * 2 {
                // The last byte has moved (its ACK reaches the proxy a little later).
                break Instant::now();
            }
            thread::sleep(Duration::from_millis(200));
        };
        // The delay is real: a round trip crosses the router four times (client → proxy →
        // upstream and back), each at least `DELAY - JITTER`.
        rtts.sort();
        let floor = (DELAY - JITTER) * 4;
        assert!(
            rtts[0] >= floor,
            "a round trip took {:?} (< {floor:?}): the delay did not apply",
            rtts[0]
        );
        eprintln!(
            "{} round trips through the proxy: {:?} to {:?}, median {:?}",
            rtts.len(),
            rtts[0],
            rtts[rtts.len() - 1],
            rtts[rtts.len() / 2]
        );

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
