//! A Redis-protocol key-value server: one coroutine per connection, plain blocking code.
//!
//! ```text
//! cargo run --release --example kv                  # serve on 127.0.0.1:6380
//! redis-cli -p 6380 set greeting hello ex 60
//! redis-cli -p 6380 get greeting
//! redis-benchmark -p 6380 -t set,get -n 100000 -c 50 -q
//! ```
//!
//! Commands: PING, ECHO, GET, SET (with EX / PX / NX / XX), DEL, INCR, EXPIRE, TTL, MGET,
//! MSET, plus COMMAND and CONFIG GET (empty answers, so `redis-benchmark` and `redis-cli` are
//! happy). Requests may be pipelined: every complete command in the buffer is answered, and
//! the answers go out in one write (or, past 64 KiB of answers, in several, also within one
//! MGET, so that a client asking for a big value many times and never reading cannot make
//! the server hold gigabytes for it). Both RESP arrays and inline commands (`nc`) work.
//! Malformed input gets an `-ERR` and, for framing errors, the connection is closed; nothing a
//! client sends can crash the server.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};

/// Largest bulk string or inline line we accept.
const MAX_BULK: usize = 64 << 20;
/// Most arguments in one command.
const MAX_ARGS: usize = 1 << 20;
/// Answers held back before they are written: pipelined GETs of a 1 MiB value multiply what
/// a 14 KB request costs by a thousand (found by an audit: 2 GB for one client).
const MAX_OUT: usize = 64 << 10;
/// The store is split so that coroutines on different workers rarely contend.
const SHARDS: usize = 64;

struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    /// Whether the entry has not expired. Reads the clock only if it has an expiry: most
    /// entries have none, and a clock read (~20 ns) is a noticeable part of a GET.
    fn live(&self) -> bool {
        self.expires.map_or(true, |t| t > Instant::now())
    }
}

/// The keyspace. Locks are std's: held for a few hash-map operations, never across a park.
struct Store {
    shards: Vec<Mutex<HashMap<Vec<u8>, Entry>>>,
}

impl Store {
    fn new() -> Store {
        Store {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &[u8]) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Entry>> {
        // FNV-1a: cheap and good enough to spread keys over shards.
        let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        self.shards[(h % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Drops expired keys; run every second by a sweeper coroutine (reads also check).
    fn sweep(&self) {
        for s in &self.shards {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, e| e.live());
        }
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6380".into());
    // The calling thread is the runtime's first worker and the process ends with this
    // closure, as a Go program ends with main: on one CPU, one thread using the fds (the
    // runtime's monitor keeps a fd table of its own).
    let err = coronet::Builder::new()
        .main(move || {
            let listener = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| {
                eprintln!("kv: {e}");
                std::process::exit(1);
            });
            println!("kv: listening on {}", listener.local_addr().unwrap());
            let store = Arc::new(Store::new());
            let sweeper = store.clone();
            coronet::Spawn::new().name("sweeper").go(move || loop {
                coronet::time::sleep(Duration::from_secs(1));
                sweeper.sweep();
            });
            let mut backoff = Duration::ZERO;
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        backoff = Duration::ZERO;
                        let store = store.clone();
                        coronet::go(move || {
                            if let Err(e) = serve(stream, &store) {
                                eprintln!("kv: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        backoff =
                            (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                        eprintln!("kv: {e}; retrying in {backoff:?}");
                        coronet::time::sleep(backoff);
                    }
                }
            }
        })
        .unwrap_err();
    eprintln!("kv: cannot start the runtime: {err}");
    std::process::exit(1);
}

fn serve(mut stream: TcpStream, store: &Store) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut have = 0;
    let mut out = Vec::with_capacity(16 * 1024);
    // How far the command at the front of `buf` has been parsed (see `Progress`).
    let mut progress = Progress::default();
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = stream.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let mut at = 0;
        let mut close = false;
        while at < have {
            match parse(&buf[at..have], &mut progress) {
                Parsed::Command(args, used) => {
                    at += used;
                    // answers go out past MAX_OUT, also in the middle of a command (MGET)
                    let mut failed = None;
                    let mut flush = |out: &mut Vec<u8>| {
                        // parks while the client does not read
                        match stream.write_all(out) {
                            Ok(()) => out.clear(),
                            Err(e) => failed = Some(e),
                        }
                        failed.is_none()
                    };
                    execute(store, &args, &mut out, &mut flush);
                    if out.len() >= MAX_OUT {
                        flush(&mut out);
                    }
                    if let Some(e) = failed {
                        return Err(e);
                    }
                }
                Parsed::Partial => break,
                Parsed::Bad(msg) => {
                    out.extend_from_slice(format!("-ERR Protocol error: {msg}\r\n").as_bytes());
                    close = true;
                    break;
                }
            }
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        // A huge pending bulk must not grow the buffer without bound.
        if have > MAX_BULK + 1024 {
            stream.write_all(b"-ERR Protocol error: request too large\r\n")?;
            return Ok(());
        }
    }
}

#[derive(Debug, PartialEq)]
enum Parsed {
    /// A whole command and how many bytes it took.
    Command(Vec<Vec<u8>>, usize),
    Partial,
    Bad(&'static str),
}

/// Finds the `\r\n`-terminated line at the front of `b`: (line, bytes including CRLF).
fn line(b: &[u8]) -> Option<(&[u8], usize)> {
    let end = b.windows(2).position(|w| w == b"\r\n")?;
    Some((&b[..end], end + 2))
}

fn number(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// How far the command at the front of the buffer has been parsed, kept across reads: a
/// command that arrives in many pieces is parsed once, not once more with every piece (an
/// audit sent a 32 MB inline line, and rescanning it on every read cost 2.5 s of CPU; an
/// array of a million small arguments was as bad). Offsets count from the command's start,
/// which stays valid when the buffer is compacted.
#[derive(Default)]
struct Progress {
    /// A RESP array's arguments parsed so far, and how many it has (0: header not read).
    args: Vec<Vec<u8>>,
    count: usize,
    /// An array: the bytes its header and `args` took. An inline line: how far it has been
    /// searched for its CRLF.
    at: usize,
}

/// Parses one command, RESP array or inline, from the front of `b`, going on from `p`
/// (which is left as it was for the next call if the command is incomplete, and reset
/// otherwise).
fn parse(b: &[u8], p: &mut Progress) -> Parsed {
    let parsed = if b[0] == b'*' {
        parse_array(b, p)
    } else {
        parse_inline(b, p)
    };
    if parsed != Parsed::Partial {
        *p = Progress::default();
    }
    parsed
}

/// Space-separated words on one line.
fn parse_inline(b: &[u8], p: &mut Progress) -> Parsed {
    // The CR of a CRLF may be the last byte already searched.
    let from = p.at.saturating_sub(1);
    let Some((_, used)) = line(&b[from..]) else {
        p.at = b.len();
        return if b.len() > MAX_BULK {
            Parsed::Bad("too big inline request")
        } else {
            Parsed::Partial
        };
    };
    let l = &b[..from + used - 2];
    let args: Vec<Vec<u8>> = l
        .split(|&c| c == b' ')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_vec())
        .collect();
    Parsed::Command(args, from + used)
}

/// `*<count>` and then `count` bulk strings `$<len>\r\n<bytes>\r\n`.
fn parse_array(b: &[u8], p: &mut Progress) -> Parsed {
    if p.count == 0 {
        let Some((head, used)) = line(b) else {
            return if b.len() > 64 {
                Parsed::Bad("invalid multibulk length")
            } else {
                Parsed::Partial
            };
        };
        match number(&head[1..]) {
            Some(0) => return Parsed::Command(Vec::new(), used),
            Some(n) if (1..=MAX_ARGS as i64).contains(&n) => p.count = n as usize,
            _ => return Parsed::Bad("invalid multibulk length"),
        }
        p.at = used;
        p.args = Vec::with_capacity(p.count.min(64));
    }
    while p.args.len() < p.count {
        let rest = &b[p.at..];
        if rest.is_empty() {
            return Parsed::Partial;
        }
        if rest[0] != b'$' {
            return Parsed::Bad("expected '$'");
        }
        let Some((h, used)) = line(rest) else {
            return if rest.len() > 64 {
                Parsed::Bad("invalid bulk length")
            } else {
                Parsed::Partial
            };
        };
        let len = match number(&h[1..]) {
            Some(n) if (0..=MAX_BULK as i64).contains(&n) => n as usize,
            _ => return Parsed::Bad("invalid bulk length"),
        };
        let body = &rest[used..];
        if body.len() < len + 2 {
            return Parsed::Partial;
        }
        if &body[len..len + 2] != b"\r\n" {
            return Parsed::Bad("bulk string not terminated by CRLF");
        }
        p.args.push(body[..len].to_vec());
        p.at += used + len + 2;
    }
    Parsed::Command(std::mem::take(&mut p.args), p.at)
}

fn simple(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(b"+");
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn error(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(b"-");
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    if n < 0 {
        out.push(b'-');
    }
    push_decimal(out, n.unsigned_abs());
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => out.extend_from_slice(b"$-1\r\n"),
        Some(v) => {
            out.push(b'$');
            push_decimal(out, v.len() as u64);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Appends `n` in decimal. Answers are built with this rather than `format!`, which would
/// allocate a `String` and go through `core::fmt` for every GET's length line.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn wrong_args(out: &mut Vec<u8>, cmd: &str) {
    error(
        out,
        &format!("ERR wrong number of arguments for '{cmd}' command"),
    );
}

/// Runs one command, appending its answer to `out`. A command whose answer can grow past
/// `MAX_OUT` (MGET: a 7 KB request for one big key a thousand times made a gigabyte, found
/// by an audit) hands what it has to `flush` on the way, and stops if that fails.
fn execute(
    store: &Store,
    args: &[Vec<u8>],
    out: &mut Vec<u8>,
    flush: &mut dyn FnMut(&mut Vec<u8>) -> bool,
) {
    let Some(name) = args.first() else {
        return; // an empty inline line: Redis ignores it too
    };
    let cmd = name.to_ascii_lowercase();
    match &cmd[..] {
        b"ping" => match args.len() {
            1 => simple(out, "PONG"),
            2 => bulk(out, Some(&args[1])),
            _ => wrong_args(out, "ping"),
        },
        b"echo" if args.len() == 2 => bulk(out, Some(&args[1])),
        b"get" if args.len() == 2 => {
            let shard = store.shard(&args[1]);
            bulk(
                out,
                shard
                    .get(&args[1])
                    .filter(|e| e.live())
                    .map(|e| &e.value[..]),
            );
        }
        b"set" if args.len() >= 3 => set(store, args, out),
        b"del" if args.len() >= 2 => {
            let n = args[1..]
                .iter()
                .filter(|k| store.shard(k).remove(*k).is_some_and(|e| e.live()))
                .count();
            integer(out, n as i64);
        }
        b"incr" if args.len() == 2 => {
            let mut shard = store.shard(&args[1]);
            let (old, expires) = match shard.get(&args[1]).filter(|e| e.live()) {
                Some(e) => match number(&e.value) {
                    Some(n) => (n, e.expires),
                    None => return error(out, "ERR value is not an integer or out of range"),
                },
                None => (0, None),
            };
            let Some(new) = old.checked_add(1) else {
                return error(out, "ERR increment or decrement would overflow");
            };
            shard.insert(
                args[1].clone(),
                Entry {
                    value: new.to_string().into_bytes(),
                    expires,
                },
            );
            integer(out, new);
        }
        b"expire" if args.len() == 3 => match number(&args[2]) {
            Some(secs) => {
                let now = Instant::now();
                let mut shard = store.shard(&args[1]);
                match shard.get_mut(&args[1]).filter(|e| e.live()) {
                    Some(e) if secs <= 0 => {
                        e.expires = Some(now);
                        integer(out, 1);
                    }
                    // a time past what `Instant` can hold is an error, as in Redis
                    Some(e) => match now.checked_add(Duration::from_secs(secs as u64)) {
                        Some(t) => {
                            e.expires = Some(t);
                            integer(out, 1);
                        }
                        None => error(out, "ERR invalid expire time in 'expire' command"),
                    },
                    None => integer(out, 0),
                }
            }
            None => error(out, "ERR value is not an integer or out of range"),
        },
        b"ttl" if args.len() == 2 => {
            let now = Instant::now();
            let shard = store.shard(&args[1]);
            match shard.get(&args[1]).filter(|e| e.live()) {
                None => integer(out, -2),
                Some(Entry { expires: None, .. }) => integer(out, -1),
                Some(Entry {
                    expires: Some(t), ..
                }) => {
                    // Redis rounds to the nearest second. In u128: a far expiry must not
                    // overflow the rounding.
                    let ms = t.saturating_duration_since(now).as_millis();
                    integer(out, ((ms + 500) / 1000).min(i64::MAX as u128) as i64);
                }
            }
        }
        b"mget" if args.len() >= 2 => {
            out.push(b'*');
            push_decimal(out, (args.len() - 1) as u64);
            out.extend_from_slice(b"\r\n");
            for k in &args[1..] {
                let shard = store.shard(k);
                bulk(out, shard.get(k).filter(|e| e.live()).map(|e| &e.value[..]));
                drop(shard);
                if out.len() >= MAX_OUT && !flush(out) {
                    return;
                }
            }
        }
        b"mset" if args.len() >= 3 && args.len() % 2 == 1 => {
            for kv in args[1..].chunks(2) {
                store.shard(&kv[0]).insert(
                    kv[0].clone(),
                    Entry {
                        value: kv[1].clone(),
                        expires: None,
                    },
                );
            }
            simple(out, "OK");
        }
        // What redis-cli and redis-benchmark ask on connect.
        b"command" | b"config" => out.extend_from_slice(b"*0\r\n"),
        b"echo" | b"get" | b"set" | b"del" | b"incr" | b"expire" | b"ttl" | b"mget" | b"mset" => {
            wrong_args(out, &String::from_utf8_lossy(&cmd))
        }
        _ => {
            // CR and LF would end the error line early and desync the client (Redis maps
            // them to spaces too).
            let shown: String = String::from_utf8_lossy(name)
                .chars()
                .take(64)
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            error(out, &format!("ERR unknown command '{shown}'"))
        }
    }
}

/// SET key value [EX seconds | PX milliseconds] [NX | XX]
fn set(store: &Store, args: &[Vec<u8>], out: &mut Vec<u8>) {
    let mut expires = None;
    let (mut nx, mut xx) = (false, false);
    let mut i = 3;
    while i < args.len() {
        let opt = String::from_utf8_lossy(&args[i]).to_ascii_lowercase();
        match opt.as_str() {
            "ex" | "px" if expires.is_none() && i + 1 < args.len() => {
                let n = match number(&args[i + 1]) {
                    Some(n) if n > 0 => n as u64,
                    _ => return error(out, "ERR invalid expire time in 'set' command"),
                };
                let d = if opt == "ex" {
                    Duration::from_secs(n)
                } else {
                    Duration::from_millis(n)
                };
                let Some(t) = Instant::now().checked_add(d) else {
                    return error(out, "ERR invalid expire time in 'set' command");
                };
                expires = Some(t);
                i += 2;
            }
            "nx" if !xx => {
                nx = true;
                i += 1;
            }
            "xx" if !nx => {
                xx = true;
                i += 1;
            }
            _ => return error(out, "ERR syntax error"),
        }
    }
    let mut shard = store.shard(&args[1]);
    // Only NX and XX need the old value: a plain SET hashes the key once, in `insert`.
    if nx || xx {
        let exists = shard.get(&args[1]).is_some_and(|e| e.live());
        if (nx && exists) || (xx && !exists) {
            return bulk(out, None);
        }
    }
    shard.insert(
        args[1].clone(),
        Entry {
            value: args[2].clone(),
            expires,
        },
    );
    simple(out, "OK");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(store: &Store, cmd: &[&str]) -> String {
        let args: Vec<Vec<u8>> = cmd.iter().map(|s| s.as_bytes().to_vec()).collect();
        let mut out = Vec::new();
        execute(store, &args, &mut out, &mut |_| true);
        String::from_utf8(out).unwrap()
    }

    /// One parse of a command from scratch.
    fn parse1(b: &[u8]) -> Parsed {
        parse(b, &mut Progress::default())
    }

    #[test]
    fn parses_resp_inline_partial_and_junk() {
        let b = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1";
        assert_eq!(
            parse1(b),
            Parsed::Command(vec![b"GET".to_vec(), b"k".to_vec()], 20)
        );
        assert_eq!(parse1(&b[20..]), Parsed::Partial);
        assert_eq!(parse1(b"*2\r\n$3\r\nGE"), Parsed::Partial);
        assert_eq!(
            parse1(b"PING  hi\r\n"),
            Parsed::Command(vec![b"PING".to_vec(), b"hi".to_vec()], 10)
        );
        assert!(matches!(parse1(b"*x\r\n"), Parsed::Bad(_)));
        assert!(matches!(parse1(b"*1\r\n$-5\r\n"), Parsed::Bad(_)));
        assert!(matches!(parse1(b"*1\r\n:3\r\n"), Parsed::Bad(_)));
        assert!(matches!(parse1(b"*1\r\n$1\r\nabc"), Parsed::Bad(_)));
    }

    /// Feeds `stream` to the parser as `serve` does, `piece` bytes more at a time: the same
    /// commands come out as from whole input, and nothing is parsed twice (a piece never
    /// adds to the bytes already known to be a partial command's).
    fn parse_in_pieces(stream: &[u8], piece: usize) -> Vec<Parsed> {
        let (mut got, mut p, mut start) = (Vec::new(), Progress::default(), 0);
        let mut have = 0;
        while have < stream.len() {
            have = (have + piece).min(stream.len());
            while start < have {
                let before = (p.args.len(), p.at);
                match parse(&stream[start..have], &mut p) {
                    Parsed::Partial => {
                        assert!(p.args.len() >= before.0 && p.at >= before.1, "went back");
                        break;
                    }
                    Parsed::Command(args, used) => {
                        start += used;
                        got.push(Parsed::Command(args, used));
                    }
                    bad => {
                        got.push(bad);
                        return got;
                    }
                }
            }
        }
        got
    }

    #[test]
    fn a_command_in_pieces_parses_as_a_whole_one_and_keeps_its_progress() {
        let stream =
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\nPING  hi\r\n*0\r\n*1\r\n$4\r\nPING\r\n";
        let whole = parse_in_pieces(stream, stream.len());
        assert_eq!(whole.len(), 4);
        for piece in 1..stream.len() {
            assert_eq!(parse_in_pieces(stream, piece), whole, "pieces of {piece}");
        }
        // what is kept: an array's finished arguments, an inline line's searched length
        let mut p = Progress::default();
        assert_eq!(
            parse(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva", &mut p),
            Parsed::Partial
        );
        assert_eq!((p.count, p.args.len(), p.at), (3, 2, 20));
        let mut p = Progress::default();
        assert_eq!(parse(b"GET some", &mut p), Parsed::Partial);
        assert_eq!(p.at, 8);
        assert_eq!(parse(b"GET some\r", &mut p), Parsed::Partial);
        assert_eq!(
            parse(b"GET some\r\n", &mut p),
            Parsed::Command(vec![b"GET".to_vec(), b"some".to_vec()], 10)
        );
        assert_eq!(
            (p.count, p.args.len(), p.at),
            (0, 0, 0),
            "reset after a command"
        );
        // junk after a kept prefix is still junk
        let mut p = Progress::default();
        assert_eq!(parse(b"*2\r\n$1\r\na\r\n", &mut p), Parsed::Partial);
        assert!(matches!(
            parse(b"*2\r\n$1\r\na\r\n:1\r\n", &mut p),
            Parsed::Bad(_)
        ));
        assert_eq!((p.count, p.args.len(), p.at), (0, 0, 0), "reset after junk");
    }

    #[test]
    fn commands_answer_like_redis() {
        let s = Store::new();
        assert_eq!(run(&s, &["PING"]), "+PONG\r\n");
        assert_eq!(run(&s, &["echo", "hi"]), "$2\r\nhi\r\n");
        assert_eq!(run(&s, &["GET", "k"]), "$-1\r\n");
        assert_eq!(run(&s, &["SET", "k", "v"]), "+OK\r\n");
        assert_eq!(run(&s, &["SET", "k", "w", "NX"]), "$-1\r\n");
        assert_eq!(run(&s, &["SET", "k2", "w", "XX"]), "$-1\r\n");
        assert_eq!(run(&s, &["GET", "k"]), "$1\r\nv\r\n");
        assert_eq!(run(&s, &["TTL", "k"]), ":-1\r\n");
        assert_eq!(run(&s, &["TTL", "nope"]), ":-2\r\n");
        assert_eq!(run(&s, &["SET", "t", "v", "EX", "100"]), "+OK\r\n");
        assert_eq!(run(&s, &["TTL", "t"]), ":100\r\n");
        assert_eq!(run(&s, &["SET", "p", "v", "PX", "1"]), "+OK\r\n");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(run(&s, &["GET", "p"]), "$-1\r\n");
        assert_eq!(run(&s, &["INCR", "n"]), ":1\r\n");
        assert_eq!(run(&s, &["INCR", "n"]), ":2\r\n");
        assert!(run(&s, &["INCR", "k"]).starts_with("-ERR value is not an integer"));
        assert_eq!(run(&s, &["EXPIRE", "n", "50"]), ":1\r\n");
        assert_eq!(run(&s, &["TTL", "n"]), ":50\r\n");
        assert_eq!(run(&s, &["EXPIRE", "nope", "50"]), ":0\r\n");
        assert_eq!(run(&s, &["MSET", "a", "1", "b", "2"]), "+OK\r\n");
        assert_eq!(
            run(&s, &["MGET", "a", "x", "b"]),
            "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"
        );
        assert_eq!(run(&s, &["DEL", "a", "b", "x"]), ":2\r\n");
        assert!(run(&s, &["GET"]).starts_with("-ERR wrong number of arguments for 'get'"));
        assert!(run(&s, &["SET", "k", "v", "EX", "0"]).starts_with("-ERR invalid expire"));
        assert!(run(&s, &["SET", "k", "v", "BOGUS"]).starts_with("-ERR syntax error"));
        assert!(run(&s, &["FLY"]).starts_with("-ERR unknown command 'FLY'"));
        s.sweep();
        assert_eq!(run(&s, &["GET", "k"]), "$1\r\nv\r\n");
    }

    #[test]
    fn pushes_decimals() {
        for n in [0, 7, 10, 99, 100, 65_536, u64::MAX] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
        for n in [0, -1, -2, 42, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            integer(&mut out, n);
            assert_eq!(out, format!(":{n}\r\n").into_bytes());
        }
    }

    /// Found by tests/fuzz_examples.rs: expiry times past what `Instant` holds panicked the
    /// connection's coroutine (overflow adding to an `Instant`, and in TTL's rounding), and
    /// CR/LF in an unknown command's name split its error reply in two.
    #[test]
    fn fuzz_regressions_extreme_expiries_and_crlf_in_names() {
        let s = Store::new();
        let max = "9223372036854775807";
        assert_eq!(run(&s, &["SET", "a", "1"]), "+OK\r\n");
        assert!(run(&s, &["EXPIRE", "a", max]).starts_with("-ERR invalid expire time"));
        assert!(run(&s, &["SET", "c", "v", "EX", max]).starts_with("-ERR invalid expire time"));
        // far but representable: accepted, and TTL's rounding must not overflow
        assert_eq!(run(&s, &["SET", "b", "v", "PX", max]), "+OK\r\n");
        assert!(run(&s, &["TTL", "b"]).starts_with(':'));
        assert_eq!(
            run(&s, &["A\r\n+OK\rB"]),
            "-ERR unknown command 'A  +OK B'\r\n"
        );
    }
}
