//! `mfp-plain-relay`: the smallest RTP relay this machine can run, as a yardstick for the proxy.
//!
//! One epoll loop (mio), one UDP socket per side of each pair, the first source of each socket
//! latched, and every datagram of 12 bytes or more forwarded out of the paired socket to the
//! source latched there. No SIP, no inspection, no counters, no timers: what it costs per packet
//! is what one receive and one send cost on this kernel, which is the floor for any relay built
//! on sockets. `mfp-load --direct-via` sends its baseline pairs through it, in the same run as
//! the proxied calls, so the two costs can be compared.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::Parser;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

/// Shortest datagram forwarded; shorter ones (the load tool's priming packets) only latch.
const MIN_FORWARDED: usize = 12;
/// Largest datagram relayed intact.
const BUFFER_LEN: usize = 2048;
/// Receives per readiness event at most (more data re-arms the edge with the next datagram).
const MAX_BURST: usize = 4096;

/// Where the relay listens.
#[derive(Debug, Parser)]
#[command(
    name = "mfp-plain-relay",
    about = "A bare UDP relay (epoll, one socket per side, first source latched) used as the \
baseline for mfp-load --direct-via. Pair i listens on BASE+2i (side a) and BASE+2i+1 (side b)."
)]
struct Args {
    /// Address the sockets bind to.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    ip: IpAddr,

    /// First port; pair i uses BASE+2i and BASE+2i+1.
    #[arg(long, value_name = "PORT", default_value_t = 30000)]
    base_port: u16,

    /// Number of pairs.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=16000))]
    pairs: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfp-plain-relay: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let count = usize::from(args.pairs) * 2;
    let mut sockets = Vec::with_capacity(count);
    for index in 0..count {
        let port = u16::try_from(index)
            .ok()
            .and_then(|i| args.base_port.checked_add(i))
            .ok_or_else(|| io::Error::other("--base-port + 2 × --pairs exceeds 65535"))?;
        let addr = SocketAddr::new(args.ip, port);
        let mut socket = UdpSocket::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
        poll.registry()
            .register(&mut socket, Token(index), Interest::READABLE)?;
        sockets.push(socket);
    }
    eprintln!(
        "mfp-plain-relay: {} pairs on {}:{}-{}",
        args.pairs,
        args.ip,
        args.base_port,
        usize::from(args.base_port) + count - 1
    );
    let mut latched: Vec<Option<SocketAddr>> = vec![None; count];
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; BUFFER_LEN];
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in &events {
            drain(event.token().0, &sockets, &mut latched, &mut buf);
        }
    }
}

/// Relays everything waiting on socket `index` (mio readiness is edge-triggered).
fn drain(index: usize, sockets: &[UdpSocket], latched: &mut [Option<SocketAddr>], buf: &mut [u8]) {
    let Some(socket) = sockets.get(index) else {
        return;
    };
    let peer = index ^ 1;
    // Bounded so that a socket reporting errors forever cannot hold the loop.
    for _ in 0..MAX_BURST {
        let (len, source) = match socket.recv_from(buf) {
            Ok(received) => received,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => continue,
        };
        if let Some(slot @ None) = latched.get_mut(index) {
            *slot = Some(source);
        }
        if len < MIN_FORWARDED {
            continue;
        }
        if let (Some(Some(destination)), Some(out), Some(packet)) =
            (latched.get(peer), sockets.get(peer), buf.get(..len))
        {
            let _ = out.send_to(packet, *destination);
        }
    }
}
