//! Links and runs against coronet the way an edition-2018 dependent does: one echo round trip
//! between two coroutines over loopback.

use coronet::net::{TcpListener, TcpStream};
use std::io::{Read, Write};

fn main() {
    let got = coronet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = coronet::go(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&buf).unwrap();
        });
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        conn.read_exact(&mut back).unwrap();
        server.join().unwrap();
        back
    });
    assert_eq!(&got, b"hello");
    println!("dependent: echo over coronet ok");
}
