use super::*;

fn options(body: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-1\r\n\
         From: <sip:alice@example.com>;tag=1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: framer-test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: {}\r\n\r\n{}",
        body.len(),
        body
    )
    .into_bytes()
}

fn drain(framer: &mut StreamFramer) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(frame) = framer.next_frame().unwrap() {
        frames.push(frame);
    }
    frames
}

#[test]
fn two_messages_in_one_chunk_come_out_separately() {
    let first = options("v=0\r\n");
    let second = options("");
    let mut framer = StreamFramer::new(65536);
    framer.push(&[first.clone(), second.clone()].concat());
    let frames = drain(&mut framer);
    assert_eq!(
        frames,
        vec![
            Frame::Message(Bytes::from(first)),
            Frame::Message(Bytes::from(second))
        ]
    );
}

#[test]
fn byte_by_byte_delivery_yields_the_message_once_complete() {
    let message = options("hello body");
    let mut framer = StreamFramer::new(65536);
    let mut frames = Vec::new();
    for (index, byte) in message.iter().enumerate() {
        framer.push(&[*byte]);
        frames.extend(drain(&mut framer));
        if index + 1 < message.len() {
            assert!(frames.is_empty(), "complete too early at byte {index}");
        }
    }
    assert_eq!(frames, vec![Frame::Message(Bytes::from(message))]);
}

#[test]
fn ping_is_reported_and_lone_crlfs_are_ignored() {
    let message = options("");
    let mut framer = StreamFramer::new(65536);
    framer.push(b"\r\n\r\n");
    assert_eq!(drain(&mut framer), vec![Frame::Ping]);
    framer.push(b"\r\n");
    assert_eq!(
        drain(&mut framer),
        vec![],
        "a lone CRLF may still become a ping"
    );
    framer.push(&message);
    assert_eq!(
        drain(&mut framer),
        vec![Frame::Message(Bytes::from(message))]
    );
}

#[test]
fn ping_split_across_reads_is_still_a_ping() {
    let mut framer = StreamFramer::new(65536);
    for byte in b"\r\n\r\n" {
        framer.push(&[*byte]);
        let frames = drain(&mut framer);
        if *byte == b'\n' && framer.buffer_mut().is_empty() {
            assert_eq!(frames, vec![Frame::Ping]);
        } else {
            assert!(frames.is_empty());
        }
    }
}

#[test]
fn bad_content_length_is_malformed() {
    let text = String::from_utf8(options("")).unwrap();
    let broken = text.replace("Content-Length: 0", "Content-Length: zero");
    let mut framer = StreamFramer::new(65536);
    framer.push(broken.as_bytes());
    assert!(matches!(
        framer.next_frame(),
        Err(FrameError::Malformed(ParseError::InvalidContentLength(_)))
    ));
}

#[test]
fn garbage_is_malformed() {
    let mut framer = StreamFramer::new(65536);
    framer.push(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(framer.next_frame(), Err(FrameError::Malformed(_))));
}

#[test]
fn announced_oversize_body_fails_before_it_arrives() {
    let text = String::from_utf8(options("")).unwrap();
    let big = text.replace("Content-Length: 0", "Content-Length: 70000");
    let mut framer = StreamFramer::new(65536);
    framer.push(big.as_bytes());
    assert!(matches!(
        framer.next_frame(),
        Err(FrameError::Oversize { max: 65536, .. })
    ));
}

#[test]
fn configured_limit_below_the_parser_limit_is_enforced() {
    let message = options(&"x".repeat(2000));
    let mut framer = StreamFramer::new(1024);
    framer.push(&message);
    assert!(matches!(
        framer.next_frame(),
        Err(FrameError::Oversize { max: 1024, .. })
    ));
}

#[test]
fn endless_head_is_oversize() {
    let mut framer = StreamFramer::new(65536);
    framer.push(b"OPTIONS sip:a@b SIP/2.0\r\n");
    let filler =
        "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(1200);
    framer.push(filler.as_bytes());
    assert!(matches!(
        framer.next_frame(),
        Err(FrameError::Oversize { .. })
    ));
}

#[test]
fn body_learnt_once_then_completed_in_pieces() {
    let message = options(&"b".repeat(60 * 1024));
    let mut framer = StreamFramer::new(65536);
    let mut frames = Vec::new();
    for chunk in message.chunks(1000) {
        framer.push(chunk);
        frames.extend(drain(&mut framer));
    }
    assert_eq!(frames, vec![Frame::Message(Bytes::from(message))]);
}
