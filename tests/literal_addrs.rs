//! Addresses given as strings that hold an IP literal (`"127.0.0.1:80"`, `("10.0.0.1", 80)`)
//! are parsed in place, as std's `to_socket_addrs` parses them before any lookup: no trip to
//! the blocking pool. It used to make every `connect("127.0.0.1:…")` from a coroutine cost
//! 3.5 times a `connect(SocketAddr)`.
//!
//! One test in a binary of its own: it counts the process's blocking-pool threads, which no
//! other test may start.

use coronet::net::{Dialer, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

#[test]
fn literal_addresses_in_strings_never_reach_the_blocking_pool() {
    coronet::run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let joined = format!("127.0.0.1:{port}");
        let accept = coronet::go(move || {
            (0..6)
                .map(|_| l.accept().unwrap().1.port())
                .collect::<Vec<_>>()
        });
        let conns = [
            TcpStream::connect(joined.as_str()).unwrap(),
            TcpStream::connect(&joined).unwrap(),
            TcpStream::connect(("127.0.0.1", port)).unwrap(),
            TcpStream::connect(("127.0.0.1".to_string(), port)).unwrap(),
            Dialer::new()
                .timeout(Duration::from_secs(10))
                .dial(joined.as_str())
                .unwrap(),
            Dialer::new()
                .dial_context(&coronet::context::Context::background(), joined.clone())
                .unwrap(),
        ];
        let mut accepted = accept.join().unwrap();
        let mut dialed: Vec<_> = conns
            .iter()
            .map(|c| c.local_addr().unwrap().port())
            .collect();
        accepted.sort_unstable();
        dialed.sort_unstable();
        assert_eq!(accepted, dialed);

        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = format!("127.0.0.1:{}", rx.local_addr().unwrap().port());
        let tx = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        tx.send_to(b"literal", to.as_str()).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"literal"[..], tx.local_addr().unwrap())
        );

        assert_eq!(
            coronet::stats().blocking_threads,
            0,
            "an IP literal took a trip to the blocking pool"
        );
        // A name does take the trip, so the count above can see one.
        coronet::net::lookup_host("localhost:80").unwrap();
        assert!(coronet::stats().blocking_threads >= 1);
    });
}
