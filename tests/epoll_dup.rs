//! Closing a socket takes it out of its worker's epoll set. coronet leaves that to the
//! kernel (releasing an open file removes it from every epoll set) when its handle held
//! the only reference, and deletes the entry itself otherwise: here a user's dup keeps the
//! open file alive, is put back at the closed number, and is adopted and registered again
//! on the same worker, which an entry left behind would refuse (EEXIST). A file of its
//! own: it reuses an fd number, which no other test may take meanwhile, and needs one
//! worker, so that the second registration meets the first one's epoll set.

use coronet::net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

/// Reads one byte from `s`, which parks (registering `s` with the worker's epoll) until
/// `c` sends it a little later.
fn read_after_a_park(s: &mut TcpStream, c: &TcpStream) -> std::io::Result<u8> {
    let mut c = c.try_clone().unwrap();
    let writer = coronet::go(move || {
        coronet::time::sleep(Duration::from_millis(20));
        c.write_all(b"x").unwrap();
    });
    s.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)))
        .unwrap();
    let mut b = [0u8; 1];
    let r = s.read_exact(&mut b).map(|()| b[0]);
    writer.join().unwrap();
    r
}

#[test]
fn a_dup_of_a_closed_socket_can_be_registered_again_at_its_number() {
    coronet::Builder::new().workers(1).build_global().unwrap();
    coronet::go(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        assert_eq!(read_after_a_park(&mut s, &c).unwrap(), b'x');
        let n = s.as_raw_fd();
        let dup = s.as_fd().try_clone_to_owned().unwrap();
        drop(s);
        // SAFETY: F_GETFD on a number is harmless; `n` must be free before dup2 takes it.
        assert_eq!(
            unsafe { libc::fcntl(n, libc::F_GETFD) },
            -1,
            "fd {n} reused"
        );
        // SAFETY: `dup` is open and `n` free (checked above; nothing else runs here).
        assert_eq!(unsafe { libc::dup2(dup.as_raw_fd(), n) }, n);
        // SAFETY: `n` is open (just made by dup2) and owned by nothing else.
        let mut again = unsafe { TcpStream::from_raw_fd(n) };
        let got = read_after_a_park(&mut again, &c);
        assert_eq!(
            got.unwrap(),
            b'x',
            "the closed socket's epoll entry was left behind"
        );
        drop(dup);
    })
    .join()
    .unwrap();
}
