//! SDP tests built from real offers/answers (SIP_DTMF2.cap, the T.38 fax
//! capture, the Aastra/TAS capture, WebRTC unit-test SDP) and seed corpora.

use std::net::IpAddr;
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;

/// 200 OK offer from SIP_DTMF2.cap (NEC Philips IP-DECT gateway), CRLF.
const DECT_OFFER: &str = "v=0\r\no=SIPDECT2504 4400 1459 IN IP4 192.168.105.110\r\ns=-\r\n\
c=IN IP4 192.168.105.110\r\nt=0 0\r\nm=audio 4376 RTP/AVP 8 0 18 96\r\na=sendrecv\r\n\
a=ptime:30\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:18 G729/8000\r\n\
a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n";

/// INVITE offer from the T.38 fax capture: static PCMA without rtpmap, 3-field rtpmap.
const FAX_OFFER: &str = "v=0\r\no=- 191 1228500736 IN IP4 138.132.169.101\r\ns=IMSS\r\n\
c=IN IP4 138.132.169.101\r\nt=0 0\r\nm=audio 15580 RTP/AVP 8 103 102\r\n\
a=rtpmap:103 G726-32/8000\r\na=ptime:30\r\na=rtpmap:102 telephone-event/8000/1\r\n\
a=fmtp:102 0-15\r\na=sqn:0\r\na=cdsc:1 image udptl t38\r\n";

/// INVITE offer from sipp_uac_Media_DTMF_Speex.pcap (session-level a=sendrecv).
const AASTRA_OFFER: &str = "v=0\r\no=- 6745093594015371536 1 IN IP4 213.64.235.116\r\ns=-\r\n\
c=IN IP4 213.64.235.116\r\nt=0 0\r\na=sendrecv\r\nm=audio 28832 RTP/AVP 8 98\r\n\
a=rtpmap:8 PCMA/8000\r\na=rtpmap:98 telephone-event/8000\r\na=fmtp:98 0-15\r\n\
a=sendrecv\r\na=ptime:20\r\n";

/// Opus offer of the Asterisk dtmf_sdp_recognition test (48 kHz and 8 kHz events), LF only.
const OPUS_OFFER: &str = "v=0\no=alice 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
m=audio 6000 RTP/AVP 96 101 102\na=rtpmap:96 opus/48000/2\n\
a=rtpmap:101 telephone-event/48000\na=rtpmap:102 telephone-event/8000\na=recvonly\n";

/// WebRTC SDP (trimmed from the WebRTC unit-test corpus): ICE, a=rtcp with address, LF only.
const WEBRTC_OFFER: &str = "v=0\no=- 1844 1 IN IP4 127.0.0.1\ns=-\nt=0 0\n\
a=ice-lite\nm=audio 2345 RTP/SAVPF 111 103\nc=IN IP4 74.125.127.126\n\
a=rtcp:2347 IN IP4 74.125.127.126\n\
a=candidate:a0+B/1 1 udp 2130706432 192.168.1.5 1234 typ host generation 2\n\
a=candidate:a0+B/3 1 udp 2130706432 74.125.127.126 2345 typ srflx raddr 192.168.1.5 rport 2346\n\
a=ice-ufrag:ufrag_voice\na=ice-pwd:pwd_voice\na=ice-options:trickle\na=end-of-candidates\n\
a=mid:audio\na=sendrecv\na=rtpmap:111 opus/48000/2\na=rtpmap:103 ISAC/16000\n\
m=video 0 RTP/SAVPF 120\nc=IN IP4 74.125.224.39\na=candidate:x 1 udp 1 1.2.3.4 9 typ host\n\
a=rtpmap:120 VP8/90000\n";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn anchor(addr: &str, rtp_port: u16) -> Anchor {
    Anchor {
        addr: ip(addr),
        rtp_port,
        rtcp_port: rtp_port + 1,
    }
}

fn rewritten(body: &str, anchors: &[Option<Anchor>]) -> String {
    String::from_utf8(rewrite(body.as_bytes(), anchors).unwrap()).unwrap()
}

#[test]
fn parses_dect_offer() {
    let sdp = Sdp::parse(DECT_OFFER.as_bytes()).unwrap();
    assert_eq!(sdp.session_connection(), Some(ip("192.168.105.110")));
    assert_eq!(sdp.origin_address(), Some(ip("192.168.105.110")));
    let audio = sdp.media().first().unwrap();
    assert_eq!(
        (audio.kind.as_str(), audio.port, audio.proto.as_str()),
        ("audio", 4376, "RTP/AVP")
    );
    assert_eq!(audio.formats, ["8", "0", "18", "96"]);
    assert_eq!(audio.connection, Some(ip("192.168.105.110")));
    assert_eq!(audio.direction, Some(Direction::SendRecv));
    assert_eq!(audio.telephone_event(), Some((96, 8000)));
    assert_eq!(audio.codec(18).unwrap().encoding, "G729");
    assert_eq!(audio.rtcp, None);
}

#[test]
fn static_payloads_and_channels() {
    let sdp = Sdp::parse(FAX_OFFER.as_bytes()).unwrap();
    let audio = sdp.media().first().unwrap();
    let pcma = audio.codec(8).unwrap();
    assert_eq!((pcma.encoding.as_str(), pcma.clock_rate), ("PCMA", 8000));
    assert_eq!(audio.codec(102).unwrap().channels, Some(1));
    assert_eq!(audio.codec(103).unwrap().encoding, "G726-32");
    assert!(audio.codec(0).is_none(), "PCMU is not offered");
    assert_eq!(audio.telephone_event(), Some((102, 8000)));
    assert_eq!(static_payload(13).unwrap().encoding, "CN");
    assert_eq!(static_payload(9).unwrap().encoding, "G722");
    assert!(static_payload(96).is_none());
}

#[test]
fn telephone_event_at_8k_and_48k() {
    let sdp = Sdp::parse(OPUS_OFFER.as_bytes()).unwrap();
    let audio = sdp.media().first().unwrap();
    assert_eq!(audio.telephone_event(), Some((101, 48000)));
    assert_eq!(audio.telephone_events(), vec![(101, 48000), (102, 8000)]);
    assert_eq!(audio.direction, Some(Direction::RecvOnly));
    let only_8k = OPUS_OFFER.replace("96 101 102", "96 102");
    let sdp = Sdp::parse(only_8k.as_bytes()).unwrap();
    assert_eq!(
        sdp.media().first().unwrap().telephone_event(),
        Some((102, 8000))
    );
}

#[test]
fn session_direction_is_inherited() {
    let sdp = Sdp::parse(AASTRA_OFFER.as_bytes()).unwrap();
    assert_eq!(sdp.session_direction(), Some(Direction::SendRecv));
    assert_eq!(
        sdp.media().first().unwrap().telephone_event(),
        Some((98, 8000))
    );
}

#[test]
fn webrtc_rtcp_and_media_connection() {
    let sdp = Sdp::parse(WEBRTC_OFFER.as_bytes()).unwrap();
    assert_eq!(sdp.session_connection(), None);
    let audio = sdp.media().first().unwrap();
    assert_eq!(audio.connection, Some(ip("74.125.127.126")));
    assert_eq!(audio.rtcp, Some((2347, Some(ip("74.125.127.126")))));
    assert_eq!(sdp.media().get(1).unwrap().port, 0);
}

#[test]
fn parse_errors() {
    assert_eq!(Sdp::parse(b"\xff\xfe").unwrap_err(), SdpError::NonUtf8);
    assert_eq!(
        Sdp::parse(b"o=- 1 1 IN IP4 1.2.3.4\r\n").unwrap_err(),
        SdpError::MissingVersion
    );
    assert_eq!(Sdp::parse(b"").unwrap_err(), SdpError::MissingVersion);
    let bad_line = Sdp::parse(b"v=0\r\ngarbage\r\n").unwrap_err();
    assert!(matches!(bad_line, SdpError::MalformedLine { line: 2, .. }));
    let bad_port = Sdp::parse(b"v=0\r\nm=audio $ RTP/AVP 8\r\n").unwrap_err();
    assert!(matches!(bad_port, SdpError::BadMediaLine { line: 2, .. }));
    assert!(rewrite(b"v=0\nm=audio 99999 RTP/AVP 0\n", &[None]).is_err());
}

#[test]
fn rewrite_anchors_whole_session() {
    let out = rewritten(DECT_OFFER, &[Some(anchor("203.0.113.5", 30000))]);
    let expected = DECT_OFFER
        .replace(
            "o=SIPDECT2504 4400 1459 IN IP4 192.168.105.110",
            "o=SIPDECT2504 4400 1459 IN IP4 203.0.113.5",
        )
        .replace("c=IN IP4 192.168.105.110", "c=IN IP4 203.0.113.5")
        .replace(
            "m=audio 4376 RTP/AVP 8 0 18 96\r\n",
            "m=audio 30000 RTP/AVP 8 0 18 96\r\nc=IN IP4 203.0.113.5\r\n",
        );
    assert_eq!(out, expected);
    let sdp = Sdp::parse(out.as_bytes()).unwrap();
    assert_eq!(sdp.media().first().unwrap().port, 30000);
}

#[test]
fn rewrite_removes_ice_and_rewrites_rtcp() {
    let out = rewritten(
        WEBRTC_OFFER,
        &[
            Some(anchor("198.51.100.7", 40000)),
            Some(anchor("198.51.100.7", 40002)),
        ],
    );
    assert!(out.contains("m=audio 40000 RTP/SAVPF 111 103\nc=IN IP4 198.51.100.7\na=rtcp:40001 IN IP4 198.51.100.7\na=mid:audio\n"));
    for gone in [
        "a=candidate:a0",
        "ice-ufrag",
        "ice-pwd",
        "ice-options",
        "end-of-candidates",
        "a=ice-lite",
    ] {
        assert!(!out.contains(gone), "{gone} left in {out}");
    }
    // The disabled video section is untouched, candidates included.
    assert!(out.ends_with("m=video 0 RTP/SAVPF 120\nc=IN IP4 74.125.224.39\na=candidate:x 1 udp 1 1.2.3.4 9 typ host\na=rtpmap:120 VP8/90000\n"));
    assert!(out.contains("o=- 1844 1 IN IP4 198.51.100.7\n"));
    assert!(!out.contains('\r'));
}

#[test]
fn rewrite_partial_keeps_session_lines() {
    let two = format!(
        "{AASTRA_OFFER}m=video 5004 RTP/AVP 99\r\na=rtcp:5005\r\na=rtpmap:99 H264/90000\r\n"
    );
    let out = rewritten(&two, &[None, Some(anchor("10.9.8.7", 20000))]);
    let expected = two
        .replace(
            "m=video 5004 RTP/AVP 99\r\n",
            "m=video 20000 RTP/AVP 99\r\nc=IN IP4 10.9.8.7\r\n",
        )
        .replace("a=rtcp:5005", "a=rtcp:20001");
    assert_eq!(
        out, expected,
        "audio section, o= and session c= must stay as they were"
    );
}

#[test]
fn rewrite_ipv6() {
    let v6 = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n\
m=audio 7078 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:7079 IN IP6 2001:db8::1\r\n";
    let sdp = Sdp::parse(v6.as_bytes()).unwrap();
    assert_eq!(sdp.session_connection(), Some(ip("2001:db8::1")));
    assert_eq!(
        sdp.media().first().unwrap().rtcp,
        Some((7079, Some(ip("2001:db8::1"))))
    );
    let out = rewritten(v6, &[Some(anchor("2001:db8:ffff::2", 31000))]);
    assert!(out.contains("o=- 1 1 IN IP6 2001:db8:ffff::2\r\n"));
    assert!(out.contains("m=audio 31000 RTP/AVP 0 101\r\nc=IN IP6 2001:db8:ffff::2\r\n"));
    assert!(out.contains("a=rtcp:31001 IN IP6 2001:db8:ffff::2\r\n"));
    let to_v4 = rewritten(v6, &[Some(anchor("192.0.2.1", 31000))]);
    assert!(to_v4.contains("\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"));
}

#[test]
fn rewrite_inserts_connection_after_info_and_at_end() {
    let body = "v=0\nc=IN IP4 1.1.1.1\nm=audio 1000 RTP/AVP 0\ni=voice\na=sendrecv\nm=audio 2000 RTP/AVP 8";
    let out = rewritten(
        body,
        &[Some(anchor("2.2.2.2", 3000)), Some(anchor("2.2.2.2", 4000))],
    );
    assert_eq!(
        out,
        "v=0\nc=IN IP4 2.2.2.2\nm=audio 3000 RTP/AVP 0\ni=voice\nc=IN IP4 2.2.2.2\na=sendrecv\nm=audio 4000 RTP/AVP 8\nc=IN IP4 2.2.2.2\n"
    );
}

#[test]
fn rewrite_leaves_port_zero_and_unanchored_alone() {
    let body = "v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 0 RTP/AVP 0\r\na=ice-ufrag:x\r\n";
    assert_eq!(rewritten(body, &[Some(anchor("2.2.2.2", 3000))]), body);
    assert_eq!(rewritten(DECT_OFFER, &[]), DECT_OFFER);
    assert_eq!(rewritten(DECT_OFFER, &[None]), DECT_OFFER);
}

#[test]
fn rewrite_keeps_multiport_suffix() {
    let body = "v=0\nm=video 49170/2 RTP/AVP 31\n";
    assert_eq!(
        rewritten(body, &[Some(anchor("2.2.2.2", 3000))]),
        "v=0\nm=video 3000/2 RTP/AVP 31\nc=IN IP4 2.2.2.2\n"
    );
}

/// External SDP seed corpora (WebRTC, Firefox, RFC 4317 examples, crashers).
fn corpus_files() -> Vec<Vec<u8>> {
    let root = std::env::var_os("METAFLOW_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/testdata"))
        .join("fuzz");
    let mut files = Vec::new();
    for dir in ["janus/sdp/1meetecho", "janus/sdp/2webrtc", "pjproject/sdp"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            files.extend(std::fs::read(entry.path()).ok());
        }
    }
    files
}

#[test]
fn seed_corpora_never_panic() {
    let files = corpus_files();
    if files.is_empty() {
        eprintln!("skipping: SDP seed corpora not present");
        return;
    }
    let mut parsed = 0usize;
    for body in &files {
        if let Ok(sdp) = Sdp::parse(body) {
            parsed += 1;
            let anchors = vec![Some(anchor("192.0.2.9", 50000)); sdp.media().len()];
            let out = rewrite(body, &anchors).unwrap();
            let again = Sdp::parse(&out).unwrap();
            assert_eq!(again.media().len(), sdp.media().len());
            for (before, after) in sdp.media().iter().zip(again.media()) {
                let expect_port = if before.port == 0 { 0 } else { 50000 };
                assert_eq!(after.port, expect_port);
                assert_eq!(after.rtpmaps, before.rtpmaps);
            }
        }
    }
    assert!(files.len() >= 60, "only {} SDP seeds found", files.len());
    assert!(
        parsed * 2 >= files.len(),
        "only {parsed} of {} parsed",
        files.len()
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..800)) {
        let _ = Sdp::parse(&bytes);
        let _ = rewrite(&bytes, &[Some(anchor("192.0.2.1", 1000)), None]);
    }

    #[test]
    fn mutated_sdps_never_panic(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..128), 1..6),
    ) {
        let seeds = [DECT_OFFER, FAX_OFFER, AASTRA_OFFER, OPUS_OFFER, WEBRTC_OFFER];
        let mut bytes = seeds.get(which).copied().unwrap_or(DECT_OFFER).as_bytes().to_vec();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok(sdp) = Sdp::parse(&bytes) {
            let anchors = vec![Some(anchor("192.0.2.1", 1000)); sdp.media().len()];
            let out = rewrite(&bytes, &anchors).unwrap();
            prop_assert!(Sdp::parse(&out).is_ok());
        }
    }
}

#[test]
fn ptime_is_read_per_stream() {
    let dect = Sdp::parse(DECT_OFFER.as_bytes()).unwrap();
    assert_eq!(dect.media()[0].ptime_ms, Some(30));
    let aastra = Sdp::parse(AASTRA_OFFER.as_bytes()).unwrap();
    assert_eq!(aastra.media()[0].ptime_ms, Some(20));
    let opus = Sdp::parse(OPUS_OFFER.as_bytes()).unwrap();
    assert_eq!(opus.media()[0].ptime_ms, None);
    let odd = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=ptime:20.0\r\n";
    assert_eq!(
        Sdp::parse(odd.as_bytes()).unwrap().media()[0].ptime_ms,
        Some(20)
    );
}
