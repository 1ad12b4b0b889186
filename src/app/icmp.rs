//! ICMP errors on the unconnected SIP socket (Linux, IPv4): a PBX whose SIP port is closed
//! answers our datagrams with ICMP port unreachable, which the kernel reports to an unconnected
//! UDP socket only when `IP_RECVERR` is set. The next receive then fails once (`ECONNREFUSED`,
//! `EHOSTUNREACH`...) and the error queue keeps one entry per ICMP error, each naming the
//! address the refused datagram was sent to. The shell hands those addresses to the core as
//! [`crate::b2bua::Input::Unreachable`], so a call to a dead PBX fails at once instead of
//! after 32 s of retransmissions. Path MTU discovery is turned off on the socket so that the
//! only errors queued are unreachability (a "fragmentation needed" would otherwise be queued as
//! `EMSGSIZE`, and is not a reason to fail a transaction); the kernel fragments large SIP
//! datagrams itself either way. See docs/DECISIONS.md.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

/// Asks the kernel to report ICMP errors on `socket`. An IPv6 socket is left alone (an ICMPv6
/// "packet too big" would be queued like an unreachable); errors there go unnoticed as before.
#[cfg(target_os = "linux")]
pub fn enable(socket: &impl AsFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let sock = socket2::SockRef::from(socket);
    if !sock.local_addr()?.as_socket().is_some_and(|a| a.is_ipv4()) {
        return Ok(());
    }
    let fd = socket.as_fd().as_raw_fd();
    for (name, value) in [
        (libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_DONT),
        (libc::IP_RECVERR, 1),
    ] {
        let value: libc::c_int = value;
        let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
            .unwrap_or(libc::socklen_t::MAX);
        // SAFETY: `fd` is an open socket borrowed from `socket` for the duration of the call,
        // and the option value is a `c_int` that outlives the call, whose exact size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_IP,
                name,
                (&raw const value).cast::<libc::c_void>(),
                len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Not available outside Linux: nothing to enable.
#[cfg(not(target_os = "linux"))]
pub fn enable(_socket: &impl AsFd) -> io::Result<()> {
    Ok(())
}

/// Takes every queued ICMP error of `socket` and returns the destinations that were refused,
/// in the order the errors came. Called after a receive failed; never blocks.
#[cfg(target_os = "linux")]
pub fn drain_unreachable(socket: &impl AsFd) -> Vec<SocketAddr> {
    use std::mem::MaybeUninit;
    let sock = socket2::SockRef::from(socket);
    // The payload (the refused datagram) is not needed: `msg_name` carries its destination.
    let mut buf = [MaybeUninit::<u8>::uninit(); 1];
    let mut out = Vec::new();
    // Bounded: the queue is bounded by the socket's buffer, and the shell must go back to work.
    for _ in 0..256 {
        match sock.recv_from_with_flags(&mut buf, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) {
            Ok((_, addr)) => out.extend(addr.as_socket()),
            Err(_) => break,
        }
    }
    out
}

/// Not available outside Linux: nothing is ever queued.
#[cfg(not(target_os = "linux"))]
pub fn drain_unreachable(_socket: &impl AsFd) -> Vec<SocketAddr> {
    Vec::new()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::*;

    /// A datagram to a closed port on loopback: the receive fails with "connection refused" and
    /// the error queue names the closed port.
    #[test]
    fn a_closed_port_on_loopback_is_reported_with_its_address() {
        let closed = {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(&sock).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        sock.send_to(b"OPTIONS", closed).unwrap();
        let mut buf = [0u8; 64];
        let err = sock.recv_from(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        assert_eq!(drain_unreachable(&sock), [closed]);
        assert!(drain_unreachable(&sock).is_empty(), "drained");
    }

    /// What the shell relies on: a tokio receive waiting on the socket wakes up with the
    /// refusal (the kernel signals the queued error as readiness), then the queue is drained.
    #[test]
    fn a_waiting_tokio_receive_wakes_on_the_refusal() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let closed = {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.local_addr().unwrap()
            };
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            enable(&sock).unwrap();
            let mut buf = [0u8; 64];
            let waiting = sock.recv_from(&mut buf);
            let send = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                sock.send_to(b"OPTIONS", closed).await.unwrap();
                std::future::pending::<()>().await;
            };
            let got = tokio::select! {
                got = tokio::time::timeout(Duration::from_secs(2), waiting) => got,
                () = send => unreachable!(),
            };
            let err = got.expect("woken").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
            assert_eq!(drain_unreachable(&sock), [closed]);
        });
    }

    /// Without the option an unconnected socket hears nothing (why it is set).
    #[test]
    fn without_the_option_nothing_is_reported() {
        let closed = {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        sock.send_to(b"OPTIONS", closed).unwrap();
        let mut buf = [0u8; 64];
        let err = sock.recv_from(&mut buf).unwrap_err();
        assert_ne!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(drain_unreachable(&sock).is_empty());
    }
}
