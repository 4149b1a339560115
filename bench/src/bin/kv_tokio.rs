//! The tokio counterpart of `examples/kv.rs` for `redis-benchmark`: a Redis-protocol server
//! with PING, GET and SET (plus empty answers to CONFIG and COMMAND, which
//! `redis-benchmark` and `redis-cli` send first). One task per connection; the same
//! program shape as the example: read into a buffer, answer every complete command in it
//! (pipelining), send the answers in one write. RESP arrays and inline commands both work.
//!
//! Usage: kv_tokio 127.0.0.1:PORT [WORKERS] — prints `ready` once listening, runs until killed.

use coronet_bench::sys::full_backlog;
use coronet_bench::{ready, server_addr, server_workers};
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// As in the example: a sharded map so that workers rarely contend.
const SHARDS: usize = 64;
/// Largest bulk string or inline line accepted.
const MAX_BULK: usize = 64 << 20;

type Store = Vec<Mutex<HashMap<Vec<u8>, Vec<u8>>>>;

fn main() {
    let rt = match server_workers() {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    }
    .enable_all()
    .build()
    .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind(server_addr()).await.expect("bind");
        full_backlog(listener.as_raw_fd());
        let store: Arc<Store> = Arc::new((0..SHARDS).map(|_| Mutex::default()).collect());
        ready();
        loop {
            match listener.accept().await {
                Ok((conn, _)) => drop(tokio::spawn(serve(conn, store.clone()))),
                Err(e) => eprintln!("kv_tokio: accept: {e}"),
            }
        }
    });
}

async fn serve(mut conn: TcpStream, store: Arc<Store>) {
    conn.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 16 << 10];
    let mut have = 0;
    let mut out = Vec::with_capacity(16 << 10);
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match conn.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
        let mut at = 0;
        let mut close = false;
        while at < have {
            match parse(&buf[at..have]) {
                Ok(Some((args, used))) => {
                    at += used;
                    execute(&store, &args, &mut out);
                }
                Ok(None) => break,
                Err(msg) => {
                    out.extend_from_slice(b"-ERR Protocol error: ");
                    out.extend_from_slice(msg.as_bytes());
                    out.extend_from_slice(b"\r\n");
                    close = true;
                    break;
                }
            }
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if !out.is_empty() {
            if conn.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close {
            return;
        }
    }
}

/// A command's arguments and the bytes it took from the buffer.
type Command = (Vec<Vec<u8>>, usize);

/// One command from the front of `buf`: its arguments and the bytes it took, `None` when
/// incomplete, or a framing error.
fn parse(buf: &[u8]) -> Result<Option<Command>, &'static str> {
    let Some(eol) = find_crlf(buf, 0) else {
        return if buf.len() > MAX_BULK {
            Err("line too long")
        } else {
            Ok(None)
        };
    };
    if buf[0] != b'*' {
        // Inline: words separated by spaces, ended by a newline.
        let line = &buf[..eol];
        let args = line
            .split(|b| *b == b' ')
            .filter(|w| !w.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        return Ok(Some((args, eol + 2)));
    }
    let n = number(&buf[1..eol]).ok_or("invalid multibulk length")?;
    if !(0..=1 << 20).contains(&n) {
        return Err("invalid multibulk length");
    }
    let mut at = eol + 2;
    let mut args = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let Some(eol) = find_crlf(buf, at) else {
            return Ok(None);
        };
        if buf[at] != b'$' {
            return Err("expected '$'");
        }
        let len = number(&buf[at + 1..eol]).ok_or("invalid bulk length")?;
        if !(0..=MAX_BULK as i64).contains(&len) {
            return Err("invalid bulk length");
        }
        let start = eol + 2;
        let end = start + len as usize;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err("bulk string not ended by CRLF");
        }
        args.push(buf[start..end].to_vec());
        at = end + 2;
    }
    Ok(Some((args, at)))
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

fn number(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn shard<'a>(store: &'a Store, key: &[u8]) -> std::sync::MutexGuard<'a, HashMap<Vec<u8>, Vec<u8>>> {
    // FNV-1a, as the example does.
    let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    store[(h % SHARDS as u64) as usize]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn execute(store: &Store, args: &[Vec<u8>], out: &mut Vec<u8>) {
    let Some(name) = args.first() else { return };
    match (name.to_ascii_lowercase().as_slice(), args.len()) {
        (b"ping", 1) => out.extend_from_slice(b"+PONG\r\n"),
        (b"ping", 2) => bulk(out, Some(&args[1])),
        (b"get", 2) => bulk(out, shard(store, &args[1]).get(&args[1]).map(|v| &v[..])),
        (b"set", 3) => {
            shard(store, &args[1]).insert(args[1].clone(), args[2].clone());
            out.extend_from_slice(b"+OK\r\n");
        }
        (b"config" | b"command", _) => out.extend_from_slice(b"*0\r\n"),
        _ => {
            out.extend_from_slice(b"-ERR unknown command or wrong number of arguments for '");
            out.extend_from_slice(name);
            out.extend_from_slice(b"'\r\n");
        }
    }
}

fn bulk(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) => {
            out.push(b'$');
            out.extend_from_slice(v.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(b"$-1\r\n"),
    }
}
