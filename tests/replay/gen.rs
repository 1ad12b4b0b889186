//! Generator of the project's own replay captures (`pcaps/gen-*.pcap`): a SIP call with SDP
//! between two fixed addresses, G.711 audio both ways, and key presses as RFC 4733 events
//! (8 or 48 kHz, SIPp's stock packets or built here), SIP INFO or in-band tones.

use std::net::SocketAddr;

use metaflow_proxy::audio::g711::Law;
use metaflow_proxy::pcap::writer::PcapWriter;

use crate::common::tones::tone;

const CALLER_SIP: &str = "192.0.2.10:5060";
const CALLEE_SIP: &str = "192.0.2.20:5060";
const CALLER_RTP: &str = "192.0.2.10:40000";
const CALLEE_RTP: &str = "192.0.2.20:50000";
/// Capture start: 2024-01-01T00:00:00Z, so the files are reproducible.
const EPOCH_US: u64 = 1_704_067_200_000_000;
const SIPP: &str = "/usr/share/sip-tester";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// An RTP packet: version 2, no CSRC, no extension.
pub fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The RTP payloads of a SIPp stock DTMF capture with their offsets from its first packet.
pub fn sipp_digit(name: &str) -> Vec<(u64, Vec<u8>)> {
    let path = format!("{SIPP}/dtmf_2833_{name}.pcap");
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path} is required (install sipp): {e}"));
    let datagrams: Vec<_> = metaflow_proxy::capture::UdpDatagrams::new(&bytes)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let first = datagrams[0].ts_us;
    datagrams
        .iter()
        .map(|d| (d.ts_us - first, d.payload.to_vec()))
        .collect()
}

/// A call being written: packets are kept with their time and sorted when finished.
pub struct Call {
    packets: Vec<(u64, SocketAddr, SocketAddr, Vec<u8>)>,
}

/// Which end sends.
#[derive(Clone, Copy)]
pub enum End {
    Caller,
    Callee,
}

impl Call {
    /// INVITE (offer) at 0, 180, 200 (answer) and ACK within 50 ms; `rtpmap` lines are the
    /// SDP's formats after `m=audio PORT RTP/AVP`.
    pub fn new(formats: &str, rtpmaps: &[&str]) -> Call {
        let mut call = Call {
            packets: Vec::new(),
        };
        let sdp = |rtp: &str| {
            let a = addr(rtp);
            let mut body = format!(
                "v=0\r\no=gen 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n",
                ip = a.ip(),
                port = a.port()
            );
            for line in rtpmaps {
                body.push_str(&format!("a={line}\r\n"));
            }
            body
        };
        let head = |start: &str, cseq: &str, to_tag: bool| {
            format!(
                "{start}\r\nVia: SIP/2.0/UDP {CALLER_SIP};branch=z9hG4bKgen{}\r\nFrom: <sip:100@192.0.2.10>;tag=gencaller\r\n\
                 To: <sip:200@192.0.2.20>{}\r\nCall-ID: gen-call@192.0.2.10\r\nCSeq: {cseq}\r\nContact: <sip:x@{}>\r\n",
                cseq.len(),
                if to_tag { ";tag=gencallee" } else { "" },
                if start.starts_with("SIP/") {
                    CALLEE_SIP
                } else {
                    CALLER_SIP
                }
            )
        };
        let with_body = |head: String, body: &str| {
            format!(
                "{head}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let invite = with_body(
            head("INVITE sip:200@192.0.2.20 SIP/2.0", "1 INVITE", false),
            &sdp(CALLER_RTP),
        );
        let ringing = format!(
            "{}Content-Length: 0\r\n\r\n",
            head("SIP/2.0 180 Ringing", "1 INVITE", true)
        );
        let ok = with_body(head("SIP/2.0 200 OK", "1 INVITE", true), &sdp(CALLEE_RTP));
        let ack = format!(
            "{}Content-Length: 0\r\n\r\n",
            head("ACK sip:x@192.0.2.20:5060 SIP/2.0", "1 ACK", true)
        );
        call.sip(0, End::Caller, invite);
        call.sip(10_000, End::Callee, ringing);
        call.sip(40_000, End::Callee, ok);
        call.sip(50_000, End::Caller, ack);
        call
    }

    fn sip(&mut self, at_us: u64, from: End, text: String) {
        let (src, dst) = match from {
            End::Caller => (CALLER_SIP, CALLEE_SIP),
            End::Callee => (CALLEE_SIP, CALLER_SIP),
        };
        self.packets
            .push((at_us, addr(src), addr(dst), text.into_bytes()));
    }

    /// One RTP packet at `at_us`.
    pub fn rtp(&mut self, at_us: u64, from: End, packet: Vec<u8>) {
        let (src, dst) = match from {
            End::Caller => (CALLER_RTP, CALLEE_RTP),
            End::Callee => (CALLEE_RTP, CALLER_RTP),
        };
        self.packets.push((at_us, addr(src), addr(dst), packet));
    }

    /// 20 ms audio packets of `law` from `start_us` for `ms`; `samples` gives each packet's
    /// payload from its index.
    pub fn audio(
        &mut self,
        from: End,
        law: Law,
        start_us: u64,
        ms: u64,
        ssrc: u32,
        samples: impl Fn(u64) -> Vec<u8>,
    ) {
        let pt = if law == Law::A { 8 } else { 0 };
        for i in 0..ms / 20 {
            let seq = (1000 + i) as u16;
            let ts = (16_000 + i * 160) as u32;
            let payload = samples(i);
            self.rtp(
                start_us + i * 20_000,
                from,
                rtp(pt, i == 0, seq, ts, ssrc, &payload),
            );
        }
    }

    /// Silence both ways from `start_us` for `ms`.
    pub fn silence_both_ways(&mut self, law: Law, start_us: u64, ms: u64) {
        self.audio(End::Caller, law, start_us, ms, 0x0A0A_0001, |_| {
            vec![law.silence(); 160]
        });
        self.audio(End::Callee, law, start_us, ms, 0x0B0B_0002, |_| {
            vec![law.silence(); 160]
        });
    }

    /// A SIPp stock digit from the caller at `at_us`, without its end packets when `drop_end`.
    pub fn sipp_digit(&mut self, at_us: u64, name: &str, drop_end: bool) {
        for (offset, payload) in sipp_digit(name) {
            let is_end = payload.get(13).is_some_and(|b| b & 0x80 != 0);
            if !(drop_end && is_end) {
                self.rtp(at_us + offset, End::Caller, payload);
            }
        }
    }

    /// A SIP INFO `application/dtmf-relay` from the caller.
    pub fn info(&mut self, at_us: u64, cseq: u32, digit: char) {
        let body = format!("Signal={digit}\r\nDuration=160\r\n");
        let text = format!(
            "INFO sip:x@192.0.2.20:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER_SIP};branch=z9hG4bKinfo{cseq}\r\n\
             From: <sip:100@192.0.2.10>;tag=gencaller\r\nTo: <sip:200@192.0.2.20>;tag=gencallee\r\n\
             Call-ID: gen-call@192.0.2.10\r\nCSeq: {cseq} INFO\r\nContent-Type: application/dtmf-relay\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.sip(at_us, End::Caller, text);
    }

    /// A BYE from `from`.
    pub fn bye(&mut self, at_us: u64, from: End) {
        let (tags, uri) = match from {
            End::Caller => (
                "From: <sip:100@192.0.2.10>;tag=gencaller\r\nTo: <sip:200@192.0.2.20>;tag=gencallee",
                "sip:x@192.0.2.20:5060",
            ),
            End::Callee => (
                "From: <sip:200@192.0.2.20>;tag=gencallee\r\nTo: <sip:100@192.0.2.10>;tag=gencaller",
                "sip:x@192.0.2.10:5060",
            ),
        };
        let text = format!(
            "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKbye\r\n{tags}\r\n\
             Call-ID: gen-call@192.0.2.10\r\nCSeq: 90 BYE\r\nContent-Length: 0\r\n\r\n"
        );
        self.sip(at_us, from, text);
    }

    /// The pcap bytes, packets in time order.
    pub fn finish(mut self) -> Vec<u8> {
        self.packets.sort_by_key(|p| p.0);
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        for (at, src, dst, bytes) in &self.packets {
            writer.write_udp(EPOCH_US + at, *src, *dst, bytes).unwrap();
        }
        writer.finish().unwrap()
    }
}

/// One 48 kHz telephone-event press from the callee: 4 updates 20 ms apart and 3 end packets.
fn press_48k(call: &mut Call, at_us: u64, event: u8, seq: u16, ts: u32) {
    for i in 0..7u16 {
        let end = i >= 4;
        let duration = (960 * (u32::from(i.min(4)) + 1)) as u16;
        let mut payload = vec![event, if end { 0x8a } else { 0x0a }];
        payload.extend_from_slice(&duration.to_be_bytes());
        let at = at_us + u64::from(i.min(4)) * 20_000 + u64::from(i.saturating_sub(4)) * 100;
        call.rtp(
            at,
            End::Callee,
            rtp(101, i == 0, seq + i, ts, 0x4800_0048, &payload),
        );
    }
}

/// Every generated corpus capture by file stem.
pub fn captures() -> Vec<(&'static str, Vec<u8>)> {
    let pcmu = [
        "rtpmap:0 PCMU/8000",
        "rtpmap:101 telephone-event/8000",
        "fmtp:101 0-15",
    ];
    let mut out = Vec::new();

    let mut record = Call::new("0 101", &pcmu);
    record.silence_both_ways(Law::Mu, 100_000, 5000);
    record.sipp_digit(600_000, "star", false);
    record.sipp_digit(1_100_000, "9", false);
    record.bye(5_000_000, End::Caller);
    out.push(("gen-sipp-star9-record", record.finish()));

    let mut transfer = Call::new("0 101", &pcmu);
    transfer.silence_both_ways(Law::Mu, 100_000, 2500);
    transfer.sipp_digit(600_000, "star", false);
    transfer.sipp_digit(1_100_000, "5", false);
    out.push(("gen-sipp-star5-transfer", transfer.finish()));

    let mut lost = Call::new("0 101", &pcmu);
    lost.silence_both_ways(Law::Mu, 100_000, 2500);
    lost.sipp_digit(600_000, "star", true);
    lost.sipp_digit(1_100_000, "0", true);
    out.push(("gen-lost-end-star0", lost.finish()));

    let mut info = Call::new("0 101", &pcmu);
    info.silence_both_ways(Law::Mu, 100_000, 2500);
    info.info(600_000, 2, '*');
    info.info(900_000, 3, '0');
    out.push(("gen-info-star0", info.finish()));

    let mut inband = Call::new("8", &["rtpmap:8 PCMA/8000"]);
    let mut chunks = vec![vec![Law::A.silence(); 160]; 25];
    chunks.extend(tone('*', 100));
    chunks.extend(vec![vec![Law::A.silence(); 160]; 5]);
    chunks.extend(tone('0', 100));
    chunks.extend(vec![vec![Law::A.silence(); 160]; 100]);
    let count = chunks.len() as u64;
    inband.audio(End::Caller, Law::A, 100_000, count * 20, 0x1BAD_0001, |i| {
        chunks[i as usize].clone()
    });
    inband.audio(
        End::Callee,
        Law::A,
        100_000,
        count * 20,
        0x1BAD_0002,
        |_| vec![Law::A.silence(); 160],
    );
    out.push(("gen-inband-star0", inband.finish()));

    let mut wide = Call::new(
        "0 101",
        &[
            "rtpmap:0 PCMU/8000",
            "rtpmap:101 telephone-event/48000",
            "fmtp:101 0-15",
        ],
    );
    press_48k(&mut wide, 600_000, 10, 500, 96_000);
    press_48k(&mut wide, 1_000_000, 0, 507, 144_000);
    wide.rtp(
        2_500_000,
        End::Callee,
        rtp(0, false, 600, 200_000, 0x4800_0048, &[0xff; 160]),
    );
    out.push(("gen-callee-48k-star0", wide.finish()));
    out
}
