//! Cost of the SIP work done on every INVITE: parsing a typical phone INVITE with an SDP body,
//! serialising it again, and the round trip a B2BUA does (parse, rebuild a few headers, emit).
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)] // bench code: criterion macros, panics are failed runs

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metaflow_proxy::sip::SipMessage;

/// A typical INVITE from a desk phone: 13 headers and a PCMA/PCMU/telephone-event offer.
const INVITE: &str = "INVITE sip:2001@pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:1001@pbx.example.com>;tag=1928301774\r\n\
To: <sip:2001@pbx.example.com>\r\n\
Call-ID: a84b4c76e66710@192.0.2.10\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:1001@192.0.2.10:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE\r\n\
Supported: replaces, timer\r\n\
User-Agent: Yealink SIP-T46S 66.86.0.15\r\n\
P-Asserted-Identity: <sip:1001@pbx.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 281\r\n\
\r\n\
v=0\r\n\
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
a=rtcp:11781\r\n\
a=ssrc:1234567 cname:alice@example.com\r\n";

fn sip_invite(c: &mut Criterion) {
    let bytes = INVITE.as_bytes();
    let parsed = SipMessage::parse(bytes).unwrap();
    assert_eq!(
        parsed.body.len(),
        281,
        "the fixture's Content-Length must match its body"
    );

    let mut group = c.benchmark_group("sip_invite");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| SipMessage::parse(black_box(bytes)).unwrap())
    });
    group.bench_function("serialise", |b| b.iter(|| black_box(&parsed).to_bytes()));
    group.bench_function("parse_rewrite_serialise", |b| {
        b.iter(|| {
            let mut msg = SipMessage::parse(black_box(bytes)).unwrap();
            msg.remove_header("Via");
            msg.prepend_header("Via", "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKb2b1");
            msg.set_header("Call-ID", "b2b-0001@198.51.100.1");
            msg.set_header("Max-Forwards", "69");
            msg.to_bytes()
        })
    });
    group.bench_function("typed_accessors", |b| {
        b.iter(|| {
            let msg = black_box(&parsed);
            (
                msg.cseq(),
                msg.top_via(),
                msg.from_tag(),
                msg.to_tag(),
                msg.call_id().map(str::len),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, sip_invite);
criterion_main!(benches);
