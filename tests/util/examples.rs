//! Running the examples as programs: shared by every test file that starts one (`examples.rs`,
//! `fuzz_examples.rs`, `tls.rs`, `chat.rs`, `proxy.rs`, `netem.rs`).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Builds the examples once per test process (a nested `cargo build`, same target dir) and
/// returns the path of one. `cargo test` does not build examples when asked for one test
/// file, and builds those with `test = true` only as test harnesses.
pub fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // `cargo test` gives this process the variables it sets for a crate being compiled
        // (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...). Some build scripts (ring's) ask to rerun
        // when one of those changes, so passing them on would rebuild ring here, and rebuild it
        // back on the next plain `cargo build`: 15 s or more each time on a loaded machine.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let set_by_cargo_for_a_crate = [
                "CARGO_PKG_",
                "CARGO_BIN_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_CFG_",
                "CARGO_FEATURE_",
            ]
            .iter()
            .any(|prefix| key.starts_with(prefix))
                || [
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&key.as_ref());
            if set_by_cargo_for_a_crate {
                cargo.env_remove(key.as_ref());
            }
        }
        let status = cargo.status().expect("run cargo");
        assert!(status.success(), "cargo build --examples failed");
    });
    // target/debug/deps/TESTNAME-HASH → target/debug/examples/NAME
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    p.pop();
    p.push("examples");
    p.push(name);
    assert!(p.exists(), "{} not built", p.display());
    p
}

/// Spawns `cmd`, a server that prints `<name>: listening on ADDR` as its first line, and
/// returns it with ADDR. Its stdout is piped (and closed after that line); set up anything
/// else (stderr, environment, a wrapper such as `ip netns exec`) on `cmd` first.
pub fn spawn_listening(cmd: &mut Command, name: &str) -> (Child, String) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.contains("listening on"),
        "{name} printed {first:?} instead of its address"
    );
    let addr = first.trim().rsplit(' ').next().unwrap().to_string();
    (child, addr)
}

/// A server example on an ephemeral port; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    /// Starts `name` with `127.0.0.1:0` and reads the address from its first line
    /// (`<name>: listening on ADDR`).
    pub fn start(name: &str) -> Server {
        Server::start_with(name, &[])
    }

    /// [`Server::start`] with more arguments after the address.
    pub fn start_with(name: &str, args: &[&str]) -> Server {
        let mut cmd = Command::new(example(name));
        cmd.arg("127.0.0.1:0").args(args);
        let (child, addr) = spawn_listening(&mut cmd, name);
        Server { child, addr }
    }

    pub fn port(&self) -> &str {
        self.addr.rsplit(':').next().unwrap()
    }

    /// A plain std socket to the server whose reads and writes give up after 20 s.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// The server must still be running (no crash on what we sent).
    pub fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "server exited: {:?}",
            self.child.try_wait()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `tool` is on PATH; prints that the part of the test that needs it is skipped if not.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipped: `{tool}` is not installed (.ci/run installs it)");
    }
    found
}

/// Runs `cmd` to completion, asserts it succeeded, and returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}
