//! The examples, run as programs against real clients: `echo_client`, `curl`, `redis-cli`.
//! A client that is not installed is skipped with a printed reason (`.ci/run` installs them).

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

mod util;
use util::examples::{example, have, run, Server};

#[test]
fn echo_demo_runs_its_clients_and_exits() {
    let out = run(Command::new(example("echo")).arg("--demo"));
    assert!(out.contains("100 connections x 1,000 round trips"), "{out}");
}

#[test]
fn echo_client_talks_to_echo_server() {
    let server = Server::start("echo");
    let out = run(Command::new(example("echo_client")).args([
        server.addr.as_str(),
        "hello",
        "one coroutine per connection",
    ]));
    assert_eq!(out, "hello\none coroutine per connection\n");
}

#[test]
fn http_hello_answers_curl_and_keeps_the_connection_alive() {
    let mut server = Server::start("http_hello");
    if have("curl") {
        let url = format!("http://{}/", server.addr);
        // two URLs in one curl: the second request must reuse the first connection
        let out = Command::new("curl")
            .args(["-sv", &url, &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Hello, World!\nHello, World!\n"
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("Re-using existing connection") || log.contains("Reusing existing"),
            "{log}"
        );
        let code = run(Command::new("curl").args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{}/missing", server.addr),
        ]));
        assert_eq!(code, "404");
    }
    // pipelined keep-alive requests by hand, then junk: 400 and close, server lives on
    let mut c = server.connect();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.windows(13).filter(|w| w == b"Hello, World!").count() < 2 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    c.write_all(b"\x00\xff garbage\r\n\r\n").unwrap();
    let mut rest = String::new();
    c.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 400"), "{rest}");
    server.assert_alive();
}

#[test]
fn kv_answers_redis_cli() {
    let mut server = Server::start("kv");
    if have("redis-cli") {
        let cli = |args: &[&str]| {
            let mut cmd = Command::new("redis-cli");
            cmd.args(["-h", "127.0.0.1", "-p", server.port()])
                .args(args);
            run(&mut cmd)
        };
        assert_eq!(cli(&["ping"]), "PONG\n");
        assert_eq!(cli(&["set", "greeting", "hello", "ex", "60"]), "OK\n");
        assert_eq!(cli(&["get", "greeting"]), "hello\n");
        assert_eq!(cli(&["ttl", "greeting"]), "60\n");
        assert_eq!(cli(&["incr", "n"]), "1\n");
        assert_eq!(cli(&["mset", "a", "1", "b", "2"]), "OK\n");
        assert_eq!(cli(&["mget", "a", "b", "c"]), "1\n2\n\n");
        assert_eq!(cli(&["del", "a", "b"]), "2\n");
        assert_eq!(cli(&["expire", "n", "100"]), "1\n");
        assert_eq!(cli(&["ttl", "n"]), "100\n");
    }
    // pipelined RESP and inline commands by hand
    let mut c = server.connect();
    c.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n")
        .unwrap();
    let want = b"+OK\r\n$1\r\nv\r\n+PONG\r\n";
    let mut got = vec![0u8; want.len()];
    c.read_exact(&mut got).unwrap();
    assert_eq!(got, want);
    // a framing error gets -ERR and a close; the server lives on
    c.write_all(b"*1\r\n$-7\r\n").unwrap();
    let mut rest = String::new();
    c.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("-ERR Protocol error"), "{rest}");
    server.assert_alive();
}

/// Resident memory of process `pid`, from `/proc`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb << 10
}

/// A client that SETs a 1 MiB value, pipelines 2,000 GETs of it (14 KB) and never reads
/// must not make kv hold 2 GB of answers for it (found by an audit: the answers to every
/// command in the buffer were gathered before the one write).
#[test]
fn kv_does_not_gather_gigabytes_for_a_client_that_does_not_read() {
    let mut server = Server::start("kv");
    let mut c = server.connect();
    let value = vec![b'v'; 1 << 20];
    c.write_all(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", value.len()).as_bytes())
        .unwrap();
    c.write_all(&value).unwrap();
    c.write_all(b"\r\n").unwrap();
    let mut ok = [0u8; 5];
    c.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
    c.write_all(&b"GET k\r\n".repeat(2000)).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let rss = rss_bytes(server.child.id());
    assert!(rss < 256 << 20, "kv holds {} MiB", rss >> 20);
    // the same from one command: MGET of that key a thousand times (7 KB; the seventh audit)
    let mut c = server.connect();
    let mut mget = b"*1001\r\n$4\r\nMGET\r\n".to_vec();
    for _ in 0..1000 {
        mget.extend_from_slice(b"$1\r\nk\r\n");
    }
    c.write_all(&mget).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let rss = rss_bytes(server.child.id());
    assert!(rss < 256 << 20, "kv holds {} MiB after one MGET", rss >> 20);
    server.assert_alive();
}

#[test]
fn port_std_runs_both_versions() {
    let out = run(&mut Command::new(example("port_std")));
    assert!(out.contains("std::net + threads:"), "{out}");
    assert!(out.contains("coronet + coroutines:"), "{out}");
}

#[test]
fn trace_shows_each_step_of_the_netpoller() {
    let out = Command::new(example("trace")).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    // the server's read parks, the worker sleeps, the event wakes it, it runs again
    for step in [
        "registered with worker 0",
        "on fd",
        "sleeps in epoll_wait",
        "epoll wake:",
        "unpark coroutine",
        "timer fire:",
    ] {
        assert!(log.contains(step), "no {step:?} in the trace:\n{log}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("client got \"hello, netpoller\" back"),
        "{stdout}"
    );
}
