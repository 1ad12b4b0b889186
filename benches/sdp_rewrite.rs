//! Cost of anchoring an SDP: parsing a phone's offer and rewriting it to advertise the relay,
//! for a plain audio offer and for a WebRTC-style offer whose ICE lines are removed.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)] // bench code: criterion macros, panics are failed runs

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metaflow_proxy::sdp::{Anchor, Sdp, rewrite};

/// A desk phone's PCMA/PCMU/telephone-event offer.
const PHONE_OFFER: &str = "v=0\r\n\
o=- 20518 0 IN IP4 192.0.2.10\r\n\
s=SDP data\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 11780 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtcp:11781\r\n";

/// A browser-style offer with ICE credentials and candidates.
const ICE_OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=ice-options:trickle\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 8 0 101\r\n\
c=IN IP4 203.0.113.7\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host generation 0\r\n\
a=candidate:2 1 udp 1686052607 203.0.113.7 54321 typ srflx raddr 192.168.1.20 rport 54321\r\n\
a=candidate:3 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active\r\n\
a=ice-ufrag:EsAw\r\n\
a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
a=mid:0\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

fn anchors() -> [Option<Anchor>; 1] {
    [Some(Anchor {
        addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        rtp_port: 30_000,
        rtcp_port: 30_001,
    })]
}

fn sdp_rewrite(c: &mut Criterion) {
    let anchors = anchors();
    let mut group = c.benchmark_group("sdp");
    for (name, offer) in [("phone", PHONE_OFFER), ("webrtc_ice", ICE_OFFER)] {
        let body = offer.as_bytes();
        let out = String::from_utf8(rewrite(body, &anchors).unwrap()).unwrap();
        assert!(out.contains("30000") && !out.contains("candidate"), "{out}");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("parse_{name}"), |b| {
            b.iter(|| Sdp::parse(black_box(body)).unwrap())
        });
        group.bench_function(format!("rewrite_{name}"), |b| {
            b.iter(|| rewrite(black_box(body), black_box(&anchors)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, sdp_rewrite);
criterion_main!(benches);
