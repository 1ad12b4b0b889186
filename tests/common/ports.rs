//! Port allocation for tests that run in parallel, inside one test binary and across binaries.
//!
//! Scheme: the range 20000..32000 (below Linux's ephemeral range 32768..60999, so the kernel
//! never hands these ports out for outgoing sockets) is cut into blocks of 64 ports. A test takes
//! one whole block for one call (proxy SIP and API, both SIPp SIP ports, both SIPp media port
//! pairs, the proxy's RTP range). A block is claimed by binding its last port (`base + 63`) and
//! holding that socket for the life of the [`CallPorts`]; every other port of the block must also
//! be free (UDP and TCP) when the block is claimed. Another process using this scheme finds the
//! claim port busy and moves on, so blocks are never shared while claimed. Each process starts its
//! search at a block derived from its pid (times a stride, so that processes with consecutive
//! pids start far apart) and walks forward with a process-wide counter, so tests of the same
//! binary get distinct blocks without asking the kernel.

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};

const REGION_START: u16 = 20000;
const BLOCK_SIZE: u16 = 64;
const BLOCK_COUNT: usize = 187; // 187 * 64 = 11968 ports: 20000..31968
const PID_STRIDE: usize = 37;

static NEXT_BLOCK: AtomicUsize = AtomicUsize::new(0);

/// Every port one call through the proxy needs, all inside one claimed block.
///
/// Layout (offsets from the block base): 0 proxy SIP (UDP+TCP), 1 proxy API (TCP), 2 UAC SIP,
/// 3 UAS SIP, 8..=11 UAC media (RTP, RTCP, and SIPp's second stream at +2, +3), 12..=15 UAS
/// media, 16..=47 proxy RTP range, 63 the claim socket.
#[derive(Debug)]
pub struct CallPorts {
    pub proxy_sip: u16,
    pub api: u16,
    pub uac_sip: u16,
    pub uas_sip: u16,
    pub uac_media: u16,
    pub uas_media: u16,
    pub rtp_low: u16,
    pub rtp_high: u16,
    _claim: UdpSocket,
}

impl CallPorts {
    /// Claims a free block; panics if none of the blocks is free.
    pub fn reserve() -> CallPorts {
        let start = (std::process::id() as usize).wrapping_mul(PID_STRIDE);
        for _ in 0..BLOCK_COUNT {
            let index = (start + NEXT_BLOCK.fetch_add(1, Ordering::Relaxed)) % BLOCK_COUNT;
            let base = REGION_START + BLOCK_SIZE * index as u16;
            if let Some(ports) = Self::try_claim(base) {
                return ports;
            }
        }
        panic!("no free block of {BLOCK_SIZE} ports in {REGION_START}..32000");
    }

    /// The `--rtp-ports` value for the proxy.
    pub fn rtp_range(&self) -> String {
        format!("{}-{}", self.rtp_low, self.rtp_high)
    }

    /// Port `base + offset` of the block, for a test that lays out ports of its own on a block
    /// it reserved (several phones, each with SIP, control and media ports); panics for the
    /// claim port or beyond.
    pub fn port(&self, offset: u16) -> u16 {
        assert!(
            offset < BLOCK_SIZE - 1,
            "offset {offset} is outside the block's {} usable ports",
            BLOCK_SIZE - 1
        );
        self.proxy_sip + offset
    }

    /// True when `port` lies in the proxy's RTP range.
    pub fn in_rtp_range(&self, port: u16) -> bool {
        (self.rtp_low..=self.rtp_high).contains(&port)
    }

    fn try_claim(base: u16) -> Option<CallPorts> {
        let claim = UdpSocket::bind(("127.0.0.1", base + BLOCK_SIZE - 1)).ok()?;
        let all_free = (base..base + BLOCK_SIZE - 1).all(|port| {
            UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && TcpListener::bind(("127.0.0.1", port)).is_ok()
        });
        all_free.then(|| CallPorts {
            proxy_sip: base,
            api: base + 1,
            uac_sip: base + 2,
            uas_sip: base + 3,
            uac_media: base + 8,
            uas_media: base + 12,
            rtp_low: base + 16,
            rtp_high: base + 47,
            _claim: claim,
        })
    }
}

/// True while a socket is bound to `port` over UDP, or listens on it over TCP (`tcp`): used to
/// see that SIPp is ready. Read from /proc/net rather than by trying to bind the port, which
/// would hold it for an instant and could make SIPp's own bind fail ("Address already in use").
pub fn port_in_use(port: u16, tcp: bool) -> bool {
    let (files, listen_only) = if tcp {
        (["/proc/net/tcp", "/proc/net/tcp6"], true)
    } else {
        (["/proc/net/udp", "/proc/net/udp6"], false)
    };
    let wanted = format!("{port:04X}");
    files.iter().any(|file| {
        std::fs::read_to_string(file).is_ok_and(|table| {
            table.lines().skip(1).any(|line| {
                let mut fields = line.split_whitespace();
                let local = fields.nth(1).unwrap_or("");
                let state = fields.nth(1).unwrap_or("");
                local.rsplit(':').next() == Some(wanted.as_str()) && (!listen_only || state == "0A")
            })
        })
    })
}
