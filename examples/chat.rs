//! A TCP chat server: a coroutine per client, and broadcast through channels.
//!
//! ```text
//! cargo run --release --example chat                  # serve on 127.0.0.1:7002
//! cargo run --release --example chat -- 0.0.0.0:7002 60   # elsewhere, 60 s idle limit
//! nc 127.0.0.1 7002                                   # in two or three terminals
//! ```
//!
//! The protocol is lines, so `nc` is a client: the server asks `* nickname?`, the first line
//! is the nickname, every later line goes to everyone else as `nick: text`. Lines starting
//! with `*` are the server's: welcome, joins, leaves. `/quit` (or end of input, Ctrl-D in
//! `nc`) leaves: the server says `* bye`, the others hear `* nick left`, and the connection
//! is closed after everything queued for the client has been written.
//!
//! # Who owns what
//!
//! ```text
//!  client socket ──read──▶ reader coroutine ──Event──┐
//!  client socket ──read──▶ reader coroutine ──Event──┼─▶ hub coroutine (owns the client list)
//!  client socket ──read──▶ reader coroutine ──Event──┘        │ try to send each line
//!                                                              ▼
//!  client socket ◀─write── writer coroutine ◀── bounded queue (one per client)
//! ```
//!
//! - The **hub** alone owns the list of clients, so it needs no lock: joins, lines and leaves
//!   arrive as [`Event`]s on one channel and are handled in order. Everybody therefore sees
//!   lines in the same order.
//! - Each client has a **bounded outgoing queue** and a **writer** coroutine that drains it
//!   into the socket. The hub offers each line with `select! { send(..) => .., default => ..
//!   }` — Go's `select { case out <- line: default: }` — so it never waits for a client: a
//!   client whose queue is full (it stopped reading, its network is slow) is dropped, its
//!   socket closed, and everyone else is told.
//! - Each client's **reader** parses lines under a read deadline refreshed per line: a client
//!   silent for the idle time is told so and disconnected (that is also how half-open
//!   connections from vanished peers get cleaned up).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::chan::{self, Receiver, Sender};
use coronet::net::{TcpListener, TcpStream};

/// Lines a client may fall behind before it is dropped.
const QUEUE: usize = 128;
/// Longest line accepted, in bytes; a longer one ends the connection.
const MAX_LINE: usize = 4096;
/// Longest nickname, in bytes.
const MAX_NICK: usize = 32;

/// A line ready to send, shared by every queue it is in.
type Line = Arc<str>;

/// What readers tell the hub.
enum Event {
    Join {
        id: u64,
        nick: String,
        conn: Arc<TcpStream>,
        out: Sender<Line>,
    },
    Say {
        id: u64,
        text: String,
    },
    Leave {
        id: u64,
        why: Why,
    },
}

/// Why a reader stopped.
#[derive(Clone, Copy)]
enum Why {
    /// EOF or a broken connection.
    Quit,
    /// The client sent `/quit`.
    Bye,
    /// Nothing read for the idle time.
    Idle,
    /// A line over `MAX_LINE` bytes.
    TooLong,
}

/// A client as the hub knows it.
struct Client {
    nick: String,
    /// To close the socket of a client that is too slow: its writer may be blocked.
    conn: Arc<TcpStream>,
    out: Sender<Line>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().cloned().unwrap_or("127.0.0.1:7002".into());
    let idle = match args.get(1).map(|s| s.parse::<f64>()) {
        None => Duration::from_secs(300),
        Some(Ok(s)) if s.is_finite() && s > 0.0 && s < 1e9 => Duration::from_secs_f64(s),
        Some(_) => {
            eprintln!("chat: idle seconds must be a positive number");
            eprintln!("usage: chat [LISTEN_ADDR [IDLE_SECONDS]]");
            std::process::exit(2);
        }
    };
    coronet::run(move || {
        let listener = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| {
            eprintln!("chat: {e}");
            std::process::exit(1);
        });
        println!("chat: listening on {}", listener.local_addr().unwrap());
        // Bounded: a hub that falls behind slows the talkers down, not the memory up.
        let (events, hub_events) = chan::bounded(1024);
        coronet::Spawn::new()
            .name("hub")
            .go(move || hub(hub_events));
        let mut backoff = Duration::ZERO;
        for id in 0.. {
            match listener.accept() {
                Ok((conn, _)) => {
                    backoff = Duration::ZERO;
                    let events = events.clone();
                    coronet::go(move || serve(id, conn, events, idle));
                }
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    eprintln!("chat: {e}; retrying in {backoff:?}");
                    coronet::time::sleep(backoff);
                }
            }
        }
    });
}

/// One client's reader: asks for a nickname, joins, forwards lines until the client leaves.
fn serve(id: u64, conn: TcpStream, events: Sender<Event>, idle: Duration) {
    let conn = Arc::new(conn);
    let mut lines = BufReader::new(&*conn);
    let next_line = |lines: &mut BufReader<&TcpStream>| {
        conn.set_read_deadline(Some(Instant::now() + idle))?;
        read_line(lines)
    };
    // Before the writer exists, we may write ourselves. Ignored errors: the read fails next.
    let _ = (&*conn).write_all(b"* nickname?\n");
    let nick = match next_line(&mut lines) {
        Ok(Some(nick)) => nick.trim().to_string(),
        _ => return,
    };
    if nick.is_empty() || nick.len() > MAX_NICK || nick.starts_with('*') {
        let msg = format!("* a nickname is 1 to {MAX_NICK} bytes and does not start with '*'\n");
        let _ = (&*conn).write_all(msg.as_bytes());
        return;
    }

    let (out, queue) = chan::bounded(QUEUE);
    let writer_conn = conn.clone();
    coronet::go(move || write_lines(&writer_conn, queue));
    let join = Event::Join {
        id,
        nick,
        conn: conn.clone(),
        out,
    };
    if events.send(join).is_err() {
        return; // the hub is gone: the server is shutting down
    }
    let why = loop {
        match next_line(&mut lines) {
            Ok(Some(text)) if text.is_empty() => {}
            Ok(Some(text)) if text == "/quit" => break Why::Bye,
            Ok(Some(text)) => {
                if events.send(Event::Say { id, text }).is_err() {
                    return;
                }
            }
            Ok(None) => break Why::Quit,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => break Why::Idle,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => break Why::TooLong,
            Err(_) => break Why::Quit,
        }
    };
    let _ = events.send(Event::Leave { id, why });
}

/// Reads one line without its `\n` (or `\r\n`); `None` at EOF. Bytes that are not UTF-8
/// are replaced, not refused: `nc` users paste all sorts of things.
///
/// # Errors
///
/// `InvalidData` for a line longer than `MAX_LINE`; the socket's errors (`TimedOut` when the
/// deadline passes).
fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    // room for the line and its `\r\n`, and one byte more to tell a longer line
    r.by_ref()
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut buf)?;
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if buf.len() > MAX_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line longer than {MAX_LINE} bytes"),
        ));
    }
    // A last line without `\n` before EOF counts as a line.
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// One client's writer: drains its queue into the socket.
fn write_lines(conn: &TcpStream, queue: Receiver<Line>) {
    for line in queue.iter() {
        if (&*conn).write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    // The hub let the client go (its queue ended) or the peer is gone. Closing also wakes
    // the reader if it is still waiting. Ignored error: the hub may have closed it first.
    let _ = conn.close();
}

/// The hub: the only owner of the client list. Ends when every reader has gone.
fn hub(events: Receiver<Event>) {
    let mut clients = BTreeMap::new();
    for event in events.iter() {
        match event {
            Event::Join {
                id,
                nick,
                conn,
                out,
            } => {
                let here: Vec<&str> = clients.values().map(|c: &Client| c.nick.as_str()).collect();
                let welcome = if here.is_empty() {
                    format!("* welcome, {nick}; nobody else is here\n")
                } else {
                    format!("* welcome, {nick}; here: {}\n", here.join(", "))
                };
                // A fresh queue has room. Ignored: if the writer already died, the
                // reader's Leave follows.
                let _ = out.try_send(welcome.into());
                broadcast(&mut clients, format!("* {nick} joined\n"), None);
                clients.insert(id, Client { nick, conn, out });
            }
            Event::Say { id, text } => {
                if let Some(c) = clients.get(&id) {
                    let line = format!("{}: {text}\n", c.nick);
                    broadcast(&mut clients, line, Some(id));
                }
            }
            Event::Leave { id, why } => {
                // Absent if it was already dropped as too slow.
                if let Some(c) = clients.remove(&id) {
                    let (to_them, to_others) = match why {
                        Why::Quit => (None, ""),
                        Why::Bye => (Some("* bye\n"), ""),
                        Why::Idle => (Some("* idle for too long, bye\n"), " (idle)"),
                        Why::TooLong => (Some("* line too long, bye\n"), " (line too long)"),
                    };
                    if let Some(bye) = to_them {
                        let _ = c.out.try_send(bye.into());
                    }
                    // Dropping `c` ends its queue: the writer sends what is left, then
                    // closes the connection.
                    let nick = c.nick;
                    broadcast(&mut clients, format!("* {nick} left{to_others}\n"), None);
                }
            }
        }
    }
}

/// Offers `line` to every client but `except`, without ever waiting: a client whose queue
/// is full is dropped, and its leaving is announced in turn.
fn broadcast(clients: &mut BTreeMap<u64, Client>, line: String, except: Option<u64>) {
    let mut pending = vec![(Line::from(line), except)];
    while let Some((line, except)) = pending.pop() {
        let mut gone = Vec::new();
        for (&id, c) in clients.iter() {
            if Some(id) == except {
                continue;
            }
            coronet::select! {
                send(c.out, line.clone()) -> res => {
                    // Err: the writer died on a broken connection; its reader reports it.
                    let _ = res;
                },
                default => gone.push(id),
            }
        }
        for id in gone {
            let c = clients
                .remove(&id)
                .expect("a client found full is in the list");
            eprintln!("chat: dropping {}: {QUEUE} lines behind", c.nick);
            // The writer may be blocked in a write to a peer that reads nothing: closing
            // the socket is what frees it (and the reader). Linger 0 makes the close a
            // reset, so the kernel drops the backlog (megabytes, for a peer that stopped
            // reading) instead of keeping it to deliver. Ignored: already closed.
            let _ = c.conn.set_linger(Some(Duration::ZERO));
            let _ = c.conn.close();
            pending.push((format!("* {} left (too slow)\n", c.nick).into(), None));
        }
    }
}
