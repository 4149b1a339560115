use coronet::net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn echo_from_coroutines_and_threads() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = coronet::go(move || {
        for _ in 0..20 {
            let (mut s, _) = l.accept().unwrap();
            coronet::go(move || {
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => s.write_all(&buf[..n]).unwrap(),
                    }
                }
            });
        }
    });
    let clients: Vec<_> = (0..10)
        .map(|i| {
            coronet::go(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                for j in 0..100 {
                    let msg = format!("hello {i} {j}");
                    c.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                }
            })
        })
        .collect();
    let threads: Vec<_> = (0..10)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                for j in 0..100 {
                    let msg = format!("thread {i} {j}");
                    c.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    server.join().unwrap();
}

#[test]
fn close_unblocks_a_parked_reader() {
    coronet::run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::sync::Arc::new(TcpStream::connect(l.local_addr().unwrap()).unwrap());
        let _s = l.accept().unwrap();
        let c2 = c.clone();
        let r = coronet::go(move || (&*c2).read(&mut [0u8; 8]));
        coronet::time::sleep(Duration::from_millis(50));
        let t = Instant::now();
        c.close().unwrap();
        let e = r.join().unwrap().unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(
            e.to_string().ends_with("use of closed network connection"),
            "{e}"
        );
        assert!(e.to_string().starts_with("read tcp 127.0.0.1:"), "{e}");
    });
}

#[test]
fn dial_refused_reads_like_go() {
    let e = coronet::run(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        TcpStream::connect(a).unwrap_err()
    });
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(e.to_string().starts_with("dial tcp 127.0.0.1:"), "{e}");
    assert!(e.to_string().ends_with(": connection refused"), "{e}");
}
