//! A client for `examples/echo.rs`: sends lines, prints what comes back.
//!
//! ```text
//! cargo run --release --example echo &
//! cargo run --release --example echo_client -- 127.0.0.1:7000 "hello" "world"
//! ```

use std::io::{Read, Write};

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7000".into());
    let mut lines: Vec<String> = args.collect();
    if lines.is_empty() {
        lines = vec!["hello, coronet".into(), "one coroutine per connection".into()];
    }
    // Plain blocking code; `run` makes main a coroutine so reads park instead of blocking.
    coronet::run(move || {
        let mut conn = coronet::net::TcpStream::connect(addr.as_str()).unwrap_or_else(|e| {
            eprintln!("echo_client: {e}");
            std::process::exit(1);
        });
        for line in lines {
            conn.write_all(line.as_bytes()).unwrap();
            let mut back = vec![0u8; line.len()];
            conn.read_exact(&mut back).unwrap();
            println!("{}", String::from_utf8_lossy(&back));
        }
    });
}
