//! Unit tests for message parsing, framing, accessors and serialisation.

use super::*;

const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport\r\n\
Via: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bKdef\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@a.example>;tag=1928\r\n\
To: <sip:bob@b.example>\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@10.0.0.1>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

fn invite() -> SipMessage {
    SipMessage::parse(INVITE.as_bytes()).unwrap()
}

#[test]
fn parses_request_and_accessors() {
    let m = invite();
    assert!(m.is_request());
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(m.request_uri(), Some("sip:bob@b.example"));
    assert_eq!(m.status(), None);
    assert_eq!(m.call_id(), Some("a84b4c76e66710"));
    assert_eq!(m.cseq(), Some((314159, Method::Invite)));
    assert_eq!(m.max_forwards(), Some(70));
    assert_eq!(m.from_tag().as_deref(), Some("1928"));
    assert_eq!(m.to_tag(), None);
    assert_eq!(m.content_type(), Some("application/sdp"));
    assert_eq!(&m.body[..], b"v=0\n");
    let via = m.top_via().unwrap();
    assert_eq!(via.branch.as_deref(), Some("z9hG4bKabc"));
    assert_eq!(m.vias().len(), 2);
    assert!(m.validate_request().is_ok());
}

#[test]
fn compact_headers_folding_and_bare_lf() {
    let raw = "\r\n\r\nOPTIONS sip:a@b SIP/2.0\n\
v: SIP/2.0/UDP h;branch=z9hG4bK1\n\
i: abc\n\
f: <sip:x@y>;tag=1\n\
t: <sip:a@b>\n\
Subject : first\n \tsecond\n\
CSeq: 1\n  OPTIONS\n\
l: 0\n\
\n";
    let m = SipMessage::parse(raw.as_bytes()).unwrap();
    assert_eq!(m.header("Call-ID"), Some("abc"));
    assert_eq!(m.header("i"), Some("abc"));
    assert_eq!(m.header("call-id"), Some("abc"));
    assert_eq!(m.header("Subject"), Some("first second"));
    assert_eq!(m.cseq(), Some((1, Method::Options)));
    let names: Vec<&str> = m.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Via",
            "Call-ID",
            "From",
            "To",
            "Subject",
            "CSeq",
            "Content-Length"
        ]
    );
    assert!(m.validate_request().is_ok());
}

#[test]
fn parses_responses_with_empty_and_utf8_reason() {
    let m = SipMessage::parse(b"SIP/2.0 100 \r\nVia: SIP/2.0/UDP h\r\n\r\n").unwrap();
    assert_eq!(m.status(), Some(100));
    assert_eq!(
        m.start,
        StartLine::Response {
            code: 100,
            reason: String::new()
        }
    );
    let m = SipMessage::parse("SIP/2.0 200 Привет мир\r\n\r\n".as_bytes()).unwrap();
    assert_eq!(
        m.start,
        StartLine::Response {
            code: 200,
            reason: "Привет мир".into()
        }
    );
}

/// Predicate telling whether a parse error is the expected variant.
type ErrorCheck = fn(&ParseError) -> bool;

#[test]
fn start_line_errors() {
    let cases: &[(&str, ErrorCheck)] = &[
        ("INVITE  sip:a@b SIP/2.0\r\n\r\n", |e| {
            matches!(e, ParseError::BadStartLine(_))
        }),
        ("INVITE sip:a@b SIP/2.0 \r\n\r\n", |e| {
            matches!(e, ParseError::BadStartLine(_))
        }),
        ("INVITE <sip:a@b> SIP/2.0\r\n\r\n", |e| {
            matches!(e, ParseError::BadRequestUri(_))
        }),
        ("IN@VITE sip:a@b SIP/2.0\r\n\r\n", |e| {
            matches!(e, ParseError::BadMethod(_))
        }),
        ("INVITE sip:a@b SIP/7.0\r\n\r\n", |e| {
            matches!(e, ParseError::UnsupportedVersion(_))
        }),
        ("SIP/2.0 4294967301 Big\r\n\r\n", |e| {
            matches!(e, ParseError::BadStatusCode(_))
        }),
        ("SIP/2.0 099 Low\r\n\r\n", |e| {
            matches!(e, ParseError::BadStatusCode(_))
        }),
        ("SIP/2.0 700 High\r\n\r\n", |e| {
            matches!(e, ParseError::BadStatusCode(_))
        }),
        ("\r\n\r\n", |e| matches!(e, ParseError::Empty)),
    ];
    for (raw, check) in cases {
        let err = SipMessage::parse(raw.as_bytes()).unwrap_err();
        assert!(check(&err), "{raw:?} gave {err:?}");
    }
    let version = SipMessage::parse(b"OPTIONS sip:a@b SIP/7.0\r\n\r\n").unwrap_err();
    assert_eq!(version.rejection().code, 505);
}

#[test]
fn header_errors() {
    let no_colon = SipMessage::parse(b"OPTIONS sip:a@b SIP/2.0\r\nNoColonHere\r\n\r\n");
    assert!(matches!(no_colon, Err(ParseError::MalformedHeader(_))));
    let fold_first = SipMessage::parse(b"OPTIONS sip:a@b SIP/2.0\r\n folded\r\n\r\n");
    assert_eq!(fold_first.unwrap_err(), ParseError::FoldWithoutHeader);
    let bad_utf8 = SipMessage::parse(b"OPTIONS sip:a@b SIP/2.0\r\nX: \xff\xfe\r\n\r\n");
    assert_eq!(bad_utf8.unwrap_err(), ParseError::NonUtf8);
    let mut many = String::from("OPTIONS sip:a@b SIP/2.0\r\n");
    for i in 0..=MAX_HEADERS {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let err = SipMessage::parse(many.as_bytes()).unwrap_err();
    assert_eq!(err, ParseError::TooManyHeaders { max: MAX_HEADERS });
    let big = vec![b'a'; MAX_MESSAGE_SIZE + 1];
    assert!(matches!(
        SipMessage::parse(&big),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn datagram_content_length_rules() {
    let head = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n";
    let no_cl = format!("{head}\r\nbody-rest");
    assert_eq!(
        &SipMessage::parse(no_cl.as_bytes()).unwrap().body[..],
        b"body-rest"
    );
    let extra = format!("{head}Content-Length: 4\r\n\r\nbodyEXTRA");
    assert_eq!(
        &SipMessage::parse(extra.as_bytes()).unwrap().body[..],
        b"body"
    );
    let short = format!("{head}Content-Length: 40\r\n\r\nbody");
    assert_eq!(
        SipMessage::parse(short.as_bytes()).unwrap_err(),
        ParseError::BodyTruncated {
            declared: 40,
            available: 4
        }
    );
    for bad in ["-1", "abc", "", "1 2", "99999999999999999999999"] {
        let raw = format!("{head}Content-Length: {bad}\r\n\r\n");
        let err = SipMessage::parse(raw.as_bytes()).unwrap_err();
        assert!(matches!(err, ParseError::InvalidContentLength(_)), "{bad}");
    }
}

#[test]
fn stream_framing() {
    let msg = INVITE.as_bytes();
    let mut buf = b"\r\n\r\n".to_vec();
    buf.extend_from_slice(msg);
    buf.extend_from_slice(b"OPTIONS");
    let (m, used) = SipMessage::parse_stream(&buf).unwrap().unwrap();
    assert_eq!(used, msg.len() + 4);
    assert_eq!(&m.body[..], b"v=0\n");
    for cut in [0, 3, 10, msg.len() - 30, msg.len() - 1] {
        assert_eq!(
            SipMessage::parse_stream(msg.get(..cut).unwrap()).unwrap(),
            None,
            "{cut}"
        );
    }
    let no_cl = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n";
    assert_eq!(
        SipMessage::parse_stream(no_cl).unwrap_err(),
        ParseError::MissingContentLength
    );
    let endless = vec![b'a'; MAX_MESSAGE_SIZE + 10];
    assert!(matches!(
        SipMessage::parse_stream(&endless),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn header_values_split_lists_only() {
    let raw = "OPTIONS sip:a@b SIP/2.0\r\n\
Contact: \"A, B\" <sip:a@b>;q=1, <sip:c@d>\r\n\
m: <sip:e@f>\r\n\
WWW-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\n\
Allow: INVITE, ACK,,BYE\r\n\r\n";
    let m = SipMessage::parse(raw.as_bytes()).unwrap();
    assert_eq!(
        m.header_values("contact"),
        vec!["\"A, B\" <sip:a@b>;q=1", "<sip:c@d>", "<sip:e@f>"]
    );
    assert_eq!(m.header_values("WWW-Authenticate").len(), 1);
    assert_eq!(m.header_values("Allow"), vec!["INVITE", "ACK", "BYE"]);
    assert!(m.header_values("Route").is_empty());
}

#[test]
fn header_mutation() {
    let mut m = invite();
    m.set_header("v", "SIP/2.0/UDP proxy;branch=z9hG4bKp");
    assert_eq!(
        m.header_values("Via"),
        vec!["SIP/2.0/UDP proxy;branch=z9hG4bKp"]
    );
    assert_eq!(m.headers.first().unwrap().name, "Via");
    m.prepend_header("Via", "SIP/2.0/UDP top;branch=z9hG4bKt");
    assert_eq!(m.top_via().unwrap().host, "top");
    m.push_header("x-custom", "1");
    assert_eq!(m.headers.last().unwrap().value, "1");
    m.set_header("Subject", "new");
    assert_eq!(m.headers.last().unwrap().name, "Subject");
    m.remove_header("VIA");
    assert!(m.header("Via").is_none());
}

#[test]
fn to_bytes_rewrites_content_length() {
    let mut m = invite();
    m.body = bytes::Bytes::from_static(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n");
    let wire = m.to_bytes();
    let text = String::from_utf8(wire.clone()).unwrap();
    assert!(text.contains("\r\nContent-Length: 29\r\n"));
    let parsed = SipMessage::parse(&wire).unwrap();
    assert_eq!(parsed.body, m.body);
    assert_eq!(parsed.headers.len(), m.headers.len());
    m.remove_header("Content-Length");
    let again = SipMessage::parse(&m.to_bytes()).unwrap();
    assert_eq!(again.header("Content-Length"), Some("29"));
    assert_eq!(again.headers.last().unwrap().name, "Content-Length");
}

#[test]
fn response_to_copies_dialog_headers_only() {
    let req = invite();
    let resp = SipMessage::response_to(&req, 180, "Ringing");
    assert_eq!(resp.status(), Some(180));
    let names: Vec<&str> = resp.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["Via", "Via", "From", "To", "Call-ID", "CSeq"]);
    assert!(resp.body.is_empty());
    assert!(resp.validate_response().is_ok());
    let wire = String::from_utf8(resp.to_bytes()).unwrap();
    assert!(wire.starts_with("SIP/2.0 180 Ringing\r\n"));
}

#[test]
fn validation_rejections() {
    let cases = [
        ("Call-ID", None, "Missing Call-ID"),
        ("CSeq", Some("314159 BYE"), "CSeq method mismatch"),
        ("CSeq", Some("x INVITE"), "Malformed CSeq"),
        (
            "CSeq",
            Some("36893488147419103232 INVITE"),
            "Malformed CSeq",
        ),
        ("Max-Forwards", Some("300"), "Invalid Max-Forwards: 300"),
        ("Max-Forwards", Some("ten"), "Invalid Max-Forwards: ten"),
        ("From", None, "Missing From"),
        ("To", Some("Bell, A <sip:a@b>"), "Malformed To"),
        ("Via", None, "Missing Via"),
        (
            "Date",
            Some("Fri, 01 Jan 2010 16:00:00 EST"),
            "Date not in GMT",
        ),
    ];
    for (name, value, reason) in cases {
        let mut m = invite();
        match value {
            Some(v) => m.set_header(name, v),
            None => m.remove_header(name),
        }
        let err = m.validate_request().unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (400, reason), "{name}");
    }
    let mut dup = invite();
    dup.push_header("Call-ID", "other");
    assert_eq!(
        dup.validate_request().unwrap_err().reason,
        "Duplicate Call-ID"
    );
    let mut scheme = invite();
    scheme.start = StartLine::Request {
        method: Method::Invite,
        uri: "http://x".into(),
    };
    assert_eq!(scheme.validate_request().unwrap_err().code, 416);
    let mut headers = invite();
    headers.start = StartLine::Request {
        method: Method::Invite,
        uri: "sip:a@b?Route=x".into(),
    };
    assert_eq!(headers.validate_request().unwrap_err().code, 400);
}

#[test]
fn hand_built_lowercase_names_are_recognised() {
    let mut m = SipMessage::request(Method::Options, "sip:a@b");
    m.headers.push(Header {
        name: "content-length".into(),
        value: "99".into(),
    });
    m.headers.push(Header {
        name: "i".into(),
        value: "cid".into(),
    });
    m.body = bytes::Bytes::from_static(b"xy");
    assert_eq!(m.call_id(), Some("cid"));
    let wire = String::from_utf8(m.to_bytes()).unwrap();
    assert_eq!(wire.matches("ength: ").count(), 1, "{wire}");
    assert!(wire.contains("content-length: 2\r\n"));
}

#[test]
fn route_and_contact_accessors_split_lists_in_order() {
    let mut m = invite();
    m.push_header("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>");
    m.push_header("rOUTE", "<sip:r1.example;lr>");
    m.push_header("m", "<sip:alice@10.0.0.9>");
    assert_eq!(
        m.record_routes(),
        vec!["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    );
    assert_eq!(m.routes(), vec!["<sip:r1.example;lr>"]);
    assert_eq!(
        m.contacts(),
        vec!["<sip:alice@10.0.0.1>", "<sip:alice@10.0.0.9>"]
    );
    assert_eq!(
        m.contact_addr().map(|c| c.uri),
        Some("sip:alice@10.0.0.1".to_string())
    );
    assert_eq!(
        SipMessage::request(Method::Bye, "sip:x").contact_addr(),
        None
    );
}
