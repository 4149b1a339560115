//! A client for `examples/echo.rs`: sends lines, prints what comes back.
//!
//! ```text
//! cargo run --release --example echo &
//! cargo run --release --example echo_client -- 127.0.0.1:7000 "hello" "world"
//! ```

use std::io::{Read, Write};
use std::os::unix::ffi::OsStringExt;

fn main() {
    // Bytes, not `String`s: an argument need not be UTF-8, and the echo does not care.
    let mut args = std::env::args_os().skip(1).map(|a| a.into_vec());
    let addr = args.next().map_or_else(
        || "127.0.0.1:7000".into(),
        |a| String::from_utf8_lossy(&a).into_owned(),
    );
    let mut lines: Vec<Vec<u8>> = args.collect();
    if lines.is_empty() {
        lines = vec![
            b"hello, coronet".to_vec(),
            b"one coroutine per connection".to_vec(),
        ];
    }
    // Plain blocking code; `run` makes main a coroutine so reads park instead of blocking.
    coronet::run(move || {
        let mut conn = coronet::net::TcpStream::connect(addr.as_str()).unwrap_or_else(|e| {
            eprintln!("echo_client: {e}");
            std::process::exit(1);
        });
        for line in lines {
            conn.write_all(&line).unwrap();
            let mut back = vec![0u8; line.len()];
            conn.read_exact(&mut back).unwrap();
            println!("{}", String::from_utf8_lossy(&back));
        }
    });
}
