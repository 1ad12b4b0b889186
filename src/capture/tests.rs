//! Container and link-layer tests: the same RTP event packet (the first of SIP_DTMF2.cap)
//! wrapped in every supported file format and link type.

use std::net::SocketAddr;

use super::*;

/// RTP telephone-event packet: digit 6 start, PT 96, SSRC 0x5711BF84.
const RTP: [u8; 16] = [
    0x80, 0xe0, 0xf4, 0xd4, 0xea, 0x50, 0xb0, 0xd9, 0x57, 0x11, 0xbf, 0x84, 0x06, 0x07, 0x00, 0x00,
];

fn udp(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x11, 0x18, 0x11, 0x18];
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

fn ipv4(l4: &[u8], fragment_offset: u16) -> Vec<u8> {
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 1]);
    v.extend_from_slice(&fragment_offset.to_be_bytes());
    v.extend_from_slice(&[64, 17, 0, 0, 192, 168, 105, 172, 192, 168, 105, 110]);
    v.extend_from_slice(l4);
    v
}

fn ipv6_with_hop_by_hop(l4: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&((8 + l4.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 64]); // next header: hop-by-hop
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]); // hop-by-hop, next = UDP
    v.extend_from_slice(l4);
    v
}

fn ethernet_vlan(ip: &[u8]) -> Vec<u8> {
    let mut v = vec![0; 12];
    v.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x08, 0x00]);
    v.extend_from_slice(ip);
    v
}

fn pcap(big_endian: bool, nanos: bool, link_type: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&u32b(65535));
    out.extend_from_slice(&u32b(link_type));
    for frame in frames {
        out.extend_from_slice(&u32b(100));
        out.extend_from_slice(&u32b(if nanos { 5_000 } else { 5 }));
        out.extend_from_slice(&u32b(frame.len() as u32));
        out.extend_from_slice(&u32b(frame.len() as u32));
        out.extend_from_slice(frame);
    }
    out
}

fn block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let len = (body.len() + 12) as u32;
    let mut v = block_type.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&body);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

fn only_datagram(capture: &[u8]) -> UdpDatagram<'_> {
    let all: Vec<_> = UdpDatagrams::new(capture)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0]
}

#[test]
fn classic_pcap_both_byte_orders_and_resolutions() {
    let frame = ethernet_vlan(&ipv4(&udp(&RTP), 0));
    for (big_endian, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
        let capture = pcap(big_endian, nanos, 1, std::slice::from_ref(&frame));
        let d = only_datagram(&capture);
        assert_eq!(d.ts_us, 100_000_005);
        assert_eq!(d.src, "192.168.105.172:4376".parse::<SocketAddr>().unwrap());
        assert_eq!(d.payload, &RTP);
    }
}

#[test]
fn link_types_sll_sll2_raw_loopback_and_ipv6() {
    let v4 = ipv4(&udp(&RTP), 0);
    let mut sll = vec![0; 14];
    sll.extend_from_slice(&[0x08, 0x00]);
    sll.extend_from_slice(&v4);
    let mut sll2 = vec![0x86, 0xdd];
    sll2.extend_from_slice(&[0; 18]);
    sll2.extend_from_slice(&ipv6_with_hop_by_hop(&udp(&RTP)));
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&v4);
    for (link_type, frame) in [
        (113, sll),
        (276, sll2),
        (101, v4.clone()),
        (228, v4.clone()),
        (0, null),
    ] {
        let capture = pcap(false, false, link_type, &[frame]);
        assert_eq!(
            only_datagram(&capture).payload,
            &RTP,
            "link type {link_type}"
        );
    }
}

#[test]
fn non_first_fragments_are_skipped() {
    let capture = pcap(
        false,
        false,
        101,
        &[ipv4(&udp(&RTP), 0x00b9), ipv4(&udp(&RTP), 0x2000)],
    );
    let all: Vec<_> = UdpDatagrams::new(&capture).unwrap().collect();
    assert_eq!(
        all.len(),
        1,
        "only the first fragment (MF set, offset 0) is decoded"
    );
}

#[test]
fn pcapng_sections_interfaces_and_resolutions() {
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let mut capture = block(0x0a0d_0d0a, &shb);
    // Interface 0: Ethernet, µs. Interface 1: raw IP, ns (if_tsresol = 9).
    capture.extend(block(1, &[1, 0, 0, 0, 0, 0, 0, 0]));
    capture.extend(block(
        1,
        &[101, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0],
    ));
    let v4 = ipv4(&udp(&RTP), 0);
    let epb = |iface: u32, ticks: u64, data: &[u8]| {
        let mut b = iface.to_le_bytes().to_vec();
        b.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ticks as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        block(6, &b)
    };
    capture.extend(epb(1, 1_500_000_000_123_456_789, &v4));
    capture.extend(epb(0, 1_500_000_000_123_456, &ethernet_vlan(&v4)));
    let mut spb = (v4.len() as u32 + 18).to_le_bytes().to_vec();
    spb.extend_from_slice(&ethernet_vlan(&v4));
    capture.extend(block(3, &spb));
    capture.extend(block(0x0bad, &[1, 2, 3, 4]));
    let all: Vec<_> = UdpDatagrams::new(&capture)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let times: Vec<u64> = all.iter().map(|d| d.ts_us).collect();
    assert_eq!(
        times,
        vec![
            1_500_000_000_123_456,
            1_500_000_000_123_456,
            1_500_000_000_123_456
        ]
    );
    assert!(all.iter().all(|d| d.payload == RTP));
}

#[test]
fn truncated_and_unknown_files_are_errors() {
    assert!(matches!(
        FrameReader::new(b"abc"),
        Err(CaptureError::Truncated { .. })
    ));
    assert!(matches!(
        FrameReader::new(b"GIF89a.........................."),
        Err(CaptureError::UnknownFormat(_))
    ));
    let capture = pcap(false, false, 101, &[ipv4(&udp(&RTP), 0)]);
    let cut = &capture[..capture.len() - 1];
    let items: Vec<_> = FrameReader::new(cut).unwrap().collect();
    assert!(matches!(
        items.as_slice(),
        [Err(CaptureError::Truncated { offset: 24 })]
    ));
}

#[test]
fn sdp_of_the_receiving_side_decides_the_payload_type() {
    // RTP with PT 96 and PT 101 events; the SDP declares 101, so the 96 packet is audio.
    let invite = "INVITE sip:b@h SIP/2.0\r\nCall-ID: c\r\nFrom: <sip:a@h>;tag=a1\r\nCSeq: 1 INVITE\r\n\r\n\
        v=0\r\nc=IN IP4 192.168.105.110\r\nm=audio 4376 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let mut event = RTP;
    event[1] = 0x80 | 101;
    let frames = [
        ipv4(&udp(invite.as_bytes()), 0),
        ipv4(&udp(&RTP), 0),
        ipv4(&udp(&event), 0),
    ];
    let report = analyze(
        &pcap(false, false, 101, &frames),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    let stream = &report.streams[0];
    assert_eq!(stream.config_source, Some(ConfigSource::Sdp));
    assert_eq!(stream.event_config.map(|c| c.payload_type), Some(101));
    assert_eq!(
        stream.sender_leg,
        Some(Leg::B),
        "RTP toward the INVITE sender comes from the b-leg"
    );
    assert_eq!(report.digits().len(), 1);
    assert_eq!(report.digits()[0].digit, '6');
}

/// RTP packets of one G.711 stream carrying `digits` as tones (80 ms, 80 ms apart).
fn tone_stream(pt: u8, ssrc: u32, digits: &str) -> Vec<Vec<u8>> {
    use crate::dtmf::inband::testgen::{Pair, Signal};
    let law = if pt == 0 {
        crate::audio::g711::Law::Mu
    } else {
        crate::audio::g711::Law::A
    };
    let mut signal = Signal::default().silence(100);
    for d in digits.chars() {
        signal = signal.tone(d, 80, Pair::level(-15.0)).silence(80);
    }
    signal
        .silence(100)
        .samples
        .chunks(160)
        .enumerate()
        .map(|(i, chunk)| {
            let mut pkt = vec![0x80, pt];
            pkt.extend_from_slice(&(i as u16).to_be_bytes());
            pkt.extend_from_slice(&(i as u32 * 160).to_be_bytes());
            pkt.extend_from_slice(&ssrc.to_be_bytes());
            pkt.extend(chunk.iter().map(|&x| law.encode(x as i16)));
            ipv4(&udp(&pkt), 0)
        })
        .collect()
}

#[test]
fn analyze_reports_inband_digits_of_pcma_and_pcmu_streams() {
    let mut frames = tone_stream(8, 0xa, "159#");
    frames.extend(tone_stream(0, 0xb, "*0D"));
    let report = analyze(
        &pcap(false, false, 101, &frames),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    let id = |ssrc| StreamId {
        src: "192.168.105.172:4376".parse().unwrap(),
        dst: "192.168.105.110:4376".parse().unwrap(),
        ssrc,
    };
    assert_eq!(report.digit_string(&id(0xa)), "159#");
    assert_eq!(report.digit_string(&id(0xb)), "*0D");
    assert!(
        report
            .digits()
            .iter()
            .all(|d| d.source == DigitSource::Inband && !d.timed_out)
    );
    assert!(
        report
            .digits()
            .iter()
            .all(|d| (60..=100).contains(&d.duration_ms))
    );
    let text = report.render_text();
    assert!(text.contains("in-band tones only"), "{text}");
    assert!(
        text.contains("digit 5") && text.contains("inband"),
        "{text}"
    );
    let json = report.render_json_lines();
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["source"], "inband");
    assert_eq!(first["payload_type"], 8);
}
