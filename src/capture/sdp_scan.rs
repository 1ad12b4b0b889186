//! Minimal line scan of SIP messages carrying SDP: which telephone-event payload types and
//! clock rates each audio endpoint declared, and which side of the dialog declared them.

use std::net::IpAddr;

use crate::audio::g711::Law;

/// One `m=audio` section: where that side receives RTP and its telephone-event formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpAudio {
    /// Connection address (media-level `c=`, else session-level).
    pub addr: Option<IpAddr>,
    /// Port from the `m=` line.
    pub port: u16,
    /// `(payload type, clock rate)` of each `a=rtpmap:N telephone-event/RATE`.
    pub events: Vec<(u8, u32)>,
    /// Payload types an `a=rtpmap:N PCMA/8000` or `PCMU/8000` maps to G.711, so that dynamic
    /// types can be searched for in-band digits too.
    pub g711: Vec<(u8, Law)>,
}

/// What a SIP message with an SDP body tells the analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipSdp {
    /// Call-ID header, naming the dialog.
    pub call_id: Option<String>,
    /// Tag of the From header.
    pub from_tag: Option<String>,
    /// True for requests, false for responses.
    pub is_request: bool,
    /// Method named in CSeq.
    pub cseq_method: Option<String>,
    /// Audio sections in order.
    pub audio: Vec<SdpAudio>,
}

fn header_value<'a>(line: &'a str, names: &[&str]) -> Option<&'a str> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim();
    names
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
        .then(|| value.trim())
}

fn from_tag(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let start = lower.find(";tag=")? + 5;
    let tag = value.get(start..)?;
    let end = tag.find([';', '>', ' ', ',']).unwrap_or(tag.len());
    tag.get(..end).map(str::to_owned)
}

/// Parses `telephone-event/RATE` after `a=rtpmap:PT `; other encodings give `None`.
fn rtpmap_event(value: &str) -> Option<(u8, u32)> {
    let (pt, encoding) = value.trim().split_once(char::is_whitespace)?;
    let mut parts = encoding.trim().split('/');
    if !parts.next()?.eq_ignore_ascii_case("telephone-event") {
        return None;
    }
    let rate = parts.next().map_or(Some(8000), |r| r.trim().parse().ok())?;
    Some((pt.trim().parse().ok()?, rate))
}

/// Parses `PCMA/8000` or `PCMU/8000` after `a=rtpmap:PT `.
fn rtpmap_g711(value: &str) -> Option<(u8, Law)> {
    let (pt, encoding) = value.trim().split_once(char::is_whitespace)?;
    let mut parts = encoding.trim().split('/');
    let law = Law::from_encoding(parts.next()?)?;
    if parts.next().is_some_and(|r| r.trim() != "8000") {
        return None;
    }
    Some((pt.trim().parse().ok()?, law))
}

fn connection_addr(value: &str) -> Option<IpAddr> {
    let addr = value.split_whitespace().nth(2)?;
    addr.split('/').next()?.parse().ok()
}

/// Scans a UDP payload; `None` unless it is a SIP message whose body has an `m=audio` line.
pub fn scan_sip_sdp(payload: &[u8]) -> Option<SipSdp> {
    let text = String::from_utf8_lossy(payload);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let start_line = lines.next()?;
    let is_request = start_line.ends_with(" SIP/2.0");
    if !is_request && !start_line.starts_with("SIP/2.0 ") {
        return None;
    }
    let mut msg = SipSdp {
        call_id: None,
        from_tag: None,
        is_request,
        cseq_method: None,
        audio: Vec::new(),
    };
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if let Some(v) = header_value(line, &["call-id", "i"]) {
            msg.call_id = Some(v.to_owned());
        } else if let Some(v) = header_value(line, &["from", "f"]) {
            msg.from_tag = from_tag(v);
        } else if let Some(v) = header_value(line, &["cseq"]) {
            msg.cseq_method = v.split_whitespace().nth(1).map(str::to_ascii_uppercase);
        }
    }
    let mut session_addr = None;
    let mut current: Option<SdpAudio> = None;
    let mut in_media = false;
    for line in lines {
        if let Some(v) = line.strip_prefix("m=") {
            msg.audio.extend(current.take());
            in_media = true;
            let mut fields = v.split_whitespace();
            if fields.next() == Some("audio") {
                let port = fields
                    .next()
                    .and_then(|p| p.split('/').next()?.parse().ok());
                current = port.map(|port| SdpAudio {
                    addr: session_addr,
                    port,
                    events: Vec::new(),
                    g711: Vec::new(),
                });
            }
        } else if let Some(v) = line.strip_prefix("c=") {
            let addr = connection_addr(v);
            match current.as_mut() {
                Some(audio) => audio.addr = addr.or(audio.addr),
                None if !in_media => session_addr = addr,
                None => {}
            }
        } else if let Some(v) = line.strip_prefix("a=rtpmap:")
            && let Some(audio) = current.as_mut()
        {
            audio.events.extend(rtpmap_event(v));
            audio.g711.extend(rtpmap_g711(v));
        }
    }
    msg.audio.extend(current);
    (!msg.audio.is_empty()).then_some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delayed-offer 200 OK of SIP_DTMF2.cap, abridged to the lines the scan reads.
    const OK_WITH_OFFER: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.168.105.105\r\n\
        From: <sip:2502@192.168.105.105>;tag=abc\r\nTo: <sip:2504@192.168.105.105>;tag=xyz\r\n\
        Call-ID: 1234@192.168.105.110\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\r\n\
        v=0\r\no=- 1 1 IN IP4 192.168.105.110\r\ns=-\r\nc=IN IP4 192.168.105.110\r\nt=0 0\r\n\
        m=audio 4376 RTP/AVP 8 0 18 96\r\na=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=ptime:30\r\n";

    #[test]
    fn finds_event_payload_type_and_endpoint() {
        let msg = scan_sip_sdp(OK_WITH_OFFER.as_bytes()).unwrap();
        assert!(!msg.is_request);
        assert_eq!(msg.from_tag.as_deref(), Some("abc"));
        assert_eq!(msg.cseq_method.as_deref(), Some("INVITE"));
        assert_eq!(
            msg.audio,
            vec![SdpAudio {
                addr: Some("192.168.105.110".parse().unwrap()),
                port: 4376,
                events: vec![(96, 8000)],
                g711: vec![(8, Law::A)],
            }]
        );
    }

    #[test]
    fn media_level_connection_and_48k_rate() {
        let invite = "INVITE sip:b@x SIP/2.0\ni: c1\nf: <sip:a@x>;tag=t1\n\nv=0\nc=IN IP4 10.0.0.1\n\
            m=audio 4000 RTP/AVP 96 101 102\nc=IN IP4 10.0.0.51\na=rtpmap:96 opus/48000/2\n\
            a=rtpmap:101 telephone-event/48000\na=rtpmap:102 telephone-event/8000\n";
        let msg = scan_sip_sdp(invite.as_bytes()).unwrap();
        assert!(msg.is_request);
        assert_eq!(msg.call_id.as_deref(), Some("c1"));
        let audio = &msg.audio[0];
        assert_eq!(audio.addr, Some("10.0.0.51".parse().unwrap()));
        assert_eq!(audio.events, vec![(101, 48000), (102, 8000)]);
    }

    #[test]
    fn ignores_non_sip_and_sip_without_audio() {
        assert_eq!(scan_sip_sdp(b"\x80\x08\x00\x01garbage"), None);
        assert_eq!(
            scan_sip_sdp(b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n"),
            None
        );
    }
}
