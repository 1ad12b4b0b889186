//! Plans of small captures built in memory: offers, sides of RTP flows, INFO and BYE steps,
//! the default offer without SIP, and errors on damaged files.

use std::net::SocketAddr;

use super::*;
use crate::pcap::writer::PcapWriter;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn rtp(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, pt];
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&1000u32.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn capture(packets: &[(u64, &str, &str, Vec<u8>)]) -> Vec<u8> {
    let mut writer = PcapWriter::new(Vec::new()).unwrap();
    for (at, src, dst, bytes) in packets {
        writer
            .write_udp(1_000_000_000 + at, addr(src), addr(dst), bytes)
            .unwrap();
    }
    writer.finish().unwrap()
}

fn sip(start: &str, from_tag: &str, cseq: &str, body: &str) -> Vec<u8> {
    let content = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{cseq_len}\r\n\
         From: <sip:a@x>;tag={from_tag}\r\nTo: <sip:b@y>\r\nCall-ID: c1\r\nCSeq: {cseq}\r\n\
         {content}Content-Length: {}\r\n\r\n{body}",
        body.len(),
        cseq_len = cseq.len()
    )
    .into_bytes()
}

fn sdp(ip: &str, port: u16, formats: &str, maps: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n{maps}"
    )
}

#[test]
fn offers_and_sides_come_from_the_sdp_and_requests_become_steps() {
    let offer = sdp(
        "10.0.0.1",
        4000,
        "8 96",
        "a=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\na=ptime:30\r\n",
    );
    let answer = sdp(
        "10.0.0.2",
        6000,
        "8 96",
        "a=rtpmap:96 telephone-event/8000\r\n",
    );
    let pcap = capture(&[
        (
            0,
            "10.0.0.1:5060",
            "10.0.0.2:5060",
            sip("INVITE sip:b@y SIP/2.0", "t1", "1 INVITE", &offer),
        ),
        (
            10_000,
            "10.0.0.2:5060",
            "10.0.0.1:5060",
            sip("SIP/2.0 200 OK", "t1", "1 INVITE", &answer),
        ),
        // The callee sends from another port than its SDP's; it goes to the caller's SDP address.
        (
            500_000,
            "10.0.0.2:7777",
            "10.0.0.1:4000",
            rtp(8, 1, 0xB, &[0xd5; 160]),
        ),
        (
            520_000,
            "10.0.0.1:4000",
            "10.0.0.2:6000",
            rtp(8, 9, 0xA, &[0xd5; 160]),
        ),
        (
            540_000,
            "10.0.0.1:5060",
            "10.0.0.2:5060",
            sip("INFO sip:b@y SIP/2.0", "t1", "2 INFO", ""),
        ),
        (
            900_000,
            "10.0.0.2:5060",
            "10.0.0.1:5060",
            sip("BYE sip:a@x SIP/2.0", "t2", "1 BYE", ""),
        ),
    ]);
    let plan = plan_capture(&pcap).unwrap();
    assert!(plan.from_sip);
    let encodings: Vec<&str> = plan
        .caller_offer
        .formats
        .iter()
        .map(|f| f.encoding.as_str())
        .collect();
    assert_eq!(encodings, ["PCMA", "telephone-event"]);
    assert_eq!(plan.caller_offer.ptime_ms, Some(30));
    let steps: Vec<(u64, Side)> = plan.steps.iter().map(|s| (s.at_us, s.from)).collect();
    assert_eq!(
        steps,
        [
            (0, Side::Callee),
            (20_000, Side::Caller),
            (40_000, Side::Caller),
            (400_000, Side::Callee)
        ]
    );
    assert!(matches!(plan.steps[2].payload, Payload::Info { .. }));
    assert_eq!(plan.steps[3].payload, Payload::Bye);
    assert_eq!(plan.rtp_counts(), (1, 1));
    let rendered = plan.callee_answer.render(addr("127.0.0.1:9000"), 5);
    assert!(
        rendered.contains("m=audio 9000 RTP/AVP 8 96\r\n"),
        "{rendered}"
    );
    assert!(
        rendered.contains("a=rtpmap:96 telephone-event/8000\r\n"),
        "{rendered}"
    );
}

#[test]
fn without_sip_the_first_flow_is_the_caller_and_the_offer_is_g711_with_events() {
    let pcap = capture(&[
        (
            0,
            "10.1.1.1:2000",
            "10.2.2.2:3000",
            rtp(0, 1, 0xA, &[0xff; 160]),
        ),
        (
            20_000,
            "10.2.2.2:3002",
            "10.1.1.1:2000",
            rtp(0, 1, 0xB, &[0xff; 160]),
        ),
        (
            40_000,
            "10.1.1.1:2000",
            "10.2.2.2:3000",
            rtp(0, 2, 0xA, &[0xff; 160]),
        ),
    ]);
    let plan = plan_capture(&pcap).unwrap();
    assert!(!plan.from_sip);
    assert_eq!(plan.caller_offer, Offer::default_offer());
    let sides: Vec<Side> = plan.steps.iter().map(|s| s.from).collect();
    assert_eq!(sides, [Side::Caller, Side::Callee, Side::Caller]);
}

#[test]
fn damaged_captures_are_errors_not_panics() {
    let pcap = capture(&[(
        0,
        "10.1.1.1:2000",
        "10.2.2.2:3000",
        rtp(0, 1, 0xA, &[0xff; 160]),
    )]);
    let cut = &pcap[..pcap.len() - 10];
    let err = plan_capture(cut).unwrap_err();
    let text = crate::base::ErrorChain(&err).to_string();
    assert!(text.contains("truncated"), "{text}");
    assert!(plan_capture(b"not a capture at all").is_err());
    assert!(plan_capture(&[]).is_err());
}
