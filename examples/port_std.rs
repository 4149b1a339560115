//! Porting std code to coronet: the same line-counting server twice, once on `std::net` and
//! threads, once on `coronet` — the only differences are the two marked lines.
//!
//! ```text
//! cargo run --example port_std
//! diff <(sed -n '/^mod with_std/,/^}/p' examples/port_std.rs) \
//!      <(sed -n '/^mod with_coronet/,/^}/p' examples/port_std.rs)
//! ```
//!
//! Each version serves 50 clients that send 20 lines each and checks the counts it gets
//! back. Handler code — `BufReader`, `lines()`, `writeln!`, `?` on `io::Error` — is unchanged:
//! coronet's types implement the same traits with the same blocking semantics, and a read
//! parks the coroutine instead of blocking a thread. One behaviour does differ, on purpose:
//! coronet's streams have TCP_NODELAY on, as Go's do, so the many small writes `writeln!`
//! makes are not held back by Nagle's algorithm; with std they are, and it shows in the time.

mod with_std {
    use std::io::{BufRead, BufReader, Write};

    use std::net::{TcpListener, TcpStream}; // ← the import

    use std::thread::spawn; // ← the spawn

    /// Answers every line with "<n> <line>", n counting lines on this connection.
    pub fn handle(stream: TcpStream) -> std::io::Result<()> {
        let mut out = stream.try_clone()?;
        for (n, line) in BufReader::new(stream).lines().enumerate() {
            writeln!(out, "{} {}", n + 1, line?)?;
        }
        Ok(())
    }

    pub fn serve(listener: TcpListener) {
        for stream in listener.incoming() {
            let stream = stream.expect("accept");
            spawn(move || handle(stream));
        }
    }

    pub fn main(clients: usize) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        spawn(move || serve(listener));
        let handles: Vec<_> = (0..clients)
            .map(|i| spawn(move || super::client(TcpStream::connect(addr).unwrap(), i)))
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}

mod with_coronet {
    use std::io::{BufRead, BufReader, Write};

    use coronet::net::{TcpListener, TcpStream}; // ← the import

    use coronet::go as spawn; // ← the spawn

    /// Answers every line with "<n> <line>", n counting lines on this connection.
    pub fn handle(stream: TcpStream) -> std::io::Result<()> {
        let mut out = stream.try_clone()?;
        for (n, line) in BufReader::new(stream).lines().enumerate() {
            writeln!(out, "{} {}", n + 1, line?)?;
        }
        Ok(())
    }

    pub fn serve(listener: TcpListener) {
        for stream in listener.incoming() {
            let stream = stream.expect("accept");
            spawn(move || handle(stream));
        }
    }

    pub fn main(clients: usize) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        spawn(move || serve(listener));
        let handles: Vec<_> = (0..clients)
            .map(|i| spawn(move || super::client(TcpStream::connect(addr).unwrap(), i)))
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}

/// One client: 100 lines out, 100 numbered lines back. Generic over the stream type, so
/// both versions share it; nothing in it knows which one it runs on.
fn client<S>(stream: S, i: usize)
where
    S: std::io::Read + std::io::Write,
    for<'a> &'a S: std::io::Read + std::io::Write,
{
    use std::io::{BufRead, BufReader, Write};
    let mut reader = BufReader::new(&stream);
    let mut w = &stream;
    for j in 0..LINES {
        writeln!(w, "client {i} line {j}").unwrap();
        let mut back = String::new();
        reader.read_line(&mut back).unwrap();
        assert_eq!(back, format!("{} client {i} line {j}\n", j + 1));
    }
}

/// Lines per client.
const LINES: usize = 20;

fn main() {
    let clients = 50;
    let t = std::time::Instant::now();
    with_std::main(clients);
    println!(
        "std::net + threads:   {clients} clients x {LINES} lines in {:.2?}",
        t.elapsed()
    );
    let t = std::time::Instant::now();
    with_coronet::main(clients);
    println!(
        "coronet + coroutines: {clients} clients x {LINES} lines in {:.2?}",
        t.elapsed()
    );
    println!(
        "(the gap is mostly Nagle's algorithm: `writeln!` makes several small writes, and \
         coronet turns TCP_NODELAY on as Go does while std leaves it off)"
    );
}
