//! Captures RTP on the loopback interface with tshark and decodes it, to check what the
//! endpoints really received.

use std::fs::File;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The G.711 A-law stream shipped with SIPp that the `*_pcap*.xml` scenarios play.
pub const G711A_PCAP: &str = "/usr/share/sip-tester/g711a.pcap";

/// One RTP packet as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Capture time, microseconds since the epoch.
    pub time_us: u64,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub pt: u8,
    pub payload: Vec<u8>,
}

/// How long tshark may take to write a packet it captured into its file.
const FILE_WAIT: Duration = Duration::from_secs(10);

/// A tshark capture of UDP packets sent to some ports on `lo`; stop it with [`Capture::stop`].
pub struct Capture {
    child: Child,
    ports: Vec<u16>,
    /// A socket of this capture whose port is captured too: [`Capture::stop`] sends it an end
    /// marker and waits until the marker is in the file.
    marker: UdpSocket,
    dir: tempfile::TempDir,
}

impl Capture {
    /// Starts capturing UDP datagrams whose destination is one of `ports`, and returns once
    /// tshark reports that it is capturing (panics after 10 s).
    pub fn start(ports: &[u16]) -> Capture {
        super::require_tool("tshark");
        let dir = tempfile::tempdir().unwrap();
        let marker = UdpSocket::bind("127.0.0.1:0").unwrap();
        let marker_port = marker.local_addr().unwrap().port();
        let filter = ports
            .iter()
            .chain([&marker_port])
            .map(|port| format!("udp dst port {port}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let stderr_path = dir.path().join("tshark.err");
        let child = Command::new("tshark")
            .args(["-i", "lo", "-q", "-f", &filter, "-w"])
            .arg(dir.path().join("capture.pcapng"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start tshark: {err}"));
        let mut capture = Capture {
            child,
            ports: ports.to_vec(),
            marker,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            if log.contains("Capturing on") {
                return capture;
            }
            if let Ok(Some(status)) = capture.child.try_wait() {
                panic!("tshark exited with {status} before capturing:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "tshark not capturing after 10 s:\n{log}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the capture (SIGINT, so that the file is complete) and decodes every packet to
    /// the captured ports as RTP, in capture order. Call it once everything the test expects
    /// has been sent: every packet sent before it is in the result.
    pub fn stop(mut self) -> Vec<RtpPacket> {
        let file = self.dir.path().join("capture.pcapng");
        self.wait_for_end_marker(&file);
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let decode_as: Vec<String> = self
            .ports
            .iter()
            .flat_map(|port| ["-d".to_owned(), format!("udp.port=={port},rtp")])
            .collect();
        let marker_port = self.marker.local_addr().unwrap().port();
        read_rtp_matching(
            &file,
            &decode_as,
            &format!("rtp && !(udp.dstport == {marker_port})"),
        )
    }

    /// Sends a datagram with a unique payload to the marker port and waits until tshark wrote
    /// it into `file`. Packets reach the capture in the order they were sent on `lo`, so once
    /// the marker is in the file every packet sent before it is too (tshark hands captured
    /// packets to its file in batches, a few hundred milliseconds apart).
    fn wait_for_end_marker(&mut self, file: &Path) {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let token = format!("metaflow-proxy capture end {} {nanos}", std::process::id());
        let own = self.marker.local_addr().unwrap();
        self.marker.send_to(token.as_bytes(), own).unwrap();
        let deadline = Instant::now() + FILE_WAIT;
        loop {
            let written = std::fs::read(file).unwrap_or_default();
            if written
                .windows(token.len())
                .any(|window| window == token.as_bytes())
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "tshark exited with {status} before writing the end marker:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tshark did not write the end marker into {} within {FILE_WAIT:?}:\n{}",
                file.display(),
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// What tshark printed on standard error.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tshark.err")).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The RTP packets of SIPp's `g711a.pcap`: what a scenario playing it puts on the wire.
pub fn g711a_reference() -> Vec<RtpPacket> {
    super::require_tool("tshark");
    let packets = read_rtp(
        Path::new(G711A_PCAP),
        &["-o".to_owned(), "rtp.heuristic_rtp:TRUE".to_owned()],
    );
    assert!(!packets.is_empty(), "no RTP found in {G711A_PCAP}");
    packets
}

/// Reads every RTP packet of a capture file with `tshark -r`, `decode` telling tshark which
/// UDP traffic is RTP.
pub fn read_rtp(file: &Path, decode: &[String]) -> Vec<RtpPacket> {
    read_rtp_matching(file, decode, "rtp")
}

/// Like [`read_rtp`], keeping only the packets that match the display filter `filter`.
fn read_rtp_matching(file: &Path, decode: &[String], filter: &str) -> Vec<RtpPacket> {
    let fields = [
        "frame.time_epoch",
        "udp.srcport",
        "udp.dstport",
        "rtp.seq",
        "rtp.timestamp",
        "rtp.ssrc",
        "rtp.p_type",
        "rtp.payload",
    ];
    let mut command = Command::new("tshark");
    command.arg("-r").arg(file).args(decode);
    command.args(["-Y", filter, "-T", "fields", "-E", "separator=/t"]);
    for field in fields {
        command.args(["-e", field]);
    }
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run tshark: {err}"));
    assert!(
        output.status.success(),
        "tshark -r {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| parse_fields(line).unwrap_or_else(|| panic!("bad tshark line {line:?}")))
        .collect()
}

fn parse_fields(line: &str) -> Option<RtpPacket> {
    let mut parts = line.split('\t');
    let mut next = || parts.next();
    let time: f64 = next()?.parse().ok()?;
    Some(RtpPacket {
        time_us: (time * 1e6) as u64,
        src_port: next()?.parse().ok()?,
        dst_port: next()?.parse().ok()?,
        seq: next()?.parse().ok()?,
        ts: next()?.parse().ok()?,
        ssrc: u32::from_str_radix(next()?.trim_start_matches("0x"), 16).ok()?,
        pt: next()?.parse().ok()?,
        payload: decode_hex(next().unwrap_or(""))?,
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|byte| *byte != b':').collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// Checks that `received` holds every packet of `reference` exactly once, with the same
/// sequence number, timestamp, SSRC, payload type and payload bytes; `what` names the stream
/// in the panic message.
pub fn assert_same_stream(received: &[RtpPacket], reference: &[RtpPacket], what: &str) {
    let mut missing = Vec::new();
    let mut altered = Vec::new();
    for expected in reference {
        let copies: Vec<&RtpPacket> = received.iter().filter(|p| p.seq == expected.seq).collect();
        match copies.as_slice() {
            [] => missing.push(expected.seq),
            [got] => {
                let same = got.ts == expected.ts
                    && got.ssrc == expected.ssrc
                    && got.pt == expected.pt
                    && got.payload == expected.payload;
                if !same {
                    altered.push(((*got).clone(), expected.clone()));
                }
            }
            _ => altered.push((copies[0].clone(), expected.clone())),
        }
    }
    assert!(
        missing.is_empty() && altered.is_empty() && received.len() == reference.len(),
        "{what}: received {} packets, expected {}; {} missing (seq {:?}); {} altered or \
         duplicated (first: {:?})",
        received.len(),
        reference.len(),
        missing.len(),
        missing.iter().take(20).collect::<Vec<_>>(),
        altered.len(),
        altered.first()
    );
}

/// The packets of `packets` sent to `port`.
pub fn to_port(packets: &[RtpPacket], port: u16) -> Vec<RtpPacket> {
    packets
        .iter()
        .filter(|p| p.dst_port == port)
        .cloned()
        .collect()
}
