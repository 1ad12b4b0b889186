//! Socket-level behaviour of the TCP transport on 127.0.0.1.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

use super::*;

const WAIT: Duration = Duration::from_secs(5);

fn request(call_id: &str, body: &str) -> Vec<u8> {
    format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-{call_id}\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn response(call_id: &str) -> Vec<u8> {
    format!(
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-{call_id}\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>;tag=b1\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

async fn start(config: TcpConfig) -> (TcpTransport, Receiver<TcpInbound>) {
    TcpTransport::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

async fn next(inbound: &mut Receiver<TcpInbound>) -> TcpInbound {
    timeout(WAIT, inbound.recv()).await.unwrap().unwrap()
}

async fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf
}

/// Reads until the peer closes (a reset counts as closed); returns the bytes seen before.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    match timeout(WAIT, stream.read_to_end(&mut seen)).await.unwrap() {
        Ok(_) => {}
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
    seen
}

async fn wait_for(transport: &TcpTransport, ready: impl Fn(&TcpStats) -> bool) -> TcpStats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = transport.stats();
        if ready(&stats) || tokio::time::Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn two_messages_in_one_write_arrive_separately() {
    let (transport, mut inbound) = start(TcpConfig::default()).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    let (first, second) = (request("one", "hello"), request("two", ""));
    client
        .write_all(&[first.clone(), second.clone()].concat())
        .await
        .unwrap();
    let got_first = next(&mut inbound).await;
    let got_second = next(&mut inbound).await;
    assert_eq!(got_first.data, first);
    assert_eq!(got_second.data, second);
    assert_eq!(got_first.from, client.local_addr().unwrap());
    assert_eq!(transport.stats().messages_in, 2);
}

#[tokio::test]
async fn message_written_byte_by_byte_is_framed_once() {
    let (transport, mut inbound) = start(TcpConfig::default()).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    client.set_nodelay(true).unwrap();
    let message = request("dribble", "slow body");
    for byte in &message {
        client.write_all(&[*byte]).await.unwrap();
        client.flush().await.unwrap();
    }
    assert_eq!(next(&mut inbound).await.data, message);
    assert!(inbound.try_recv().is_err(), "exactly one message");
}

#[tokio::test]
async fn sixty_kib_message_is_delivered_whole() {
    let (transport, mut inbound) = start(TcpConfig::default()).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    let message = request("big", &"x".repeat(60 * 1024));
    client.write_all(&message).await.unwrap();
    let got = next(&mut inbound).await;
    assert_eq!(got.data.len(), message.len());
    assert_eq!(got.data, message);
}

#[tokio::test]
async fn ping_gets_a_single_crlf_pong_and_lone_crlf_is_ignored() {
    let (transport, mut inbound) = start(TcpConfig::default()).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    client.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_exactly(&mut client, 2).await, b"\r\n");
    let message = request("after-ping", "");
    client.write_all(b"\r\n").await.unwrap();
    client.write_all(&message).await.unwrap();
    assert_eq!(next(&mut inbound).await.data, message);
    let mut extra = [0u8; 1];
    let more = timeout(Duration::from_millis(200), client.read(&mut extra)).await;
    assert!(more.is_err(), "a lone CRLF is not answered");
    assert_eq!(transport.stats().keepalive_pings, 1);
}

#[tokio::test]
async fn bad_content_length_closes_only_that_connection() {
    let (transport, mut inbound) = start(TcpConfig::default()).await;
    let mut good = TcpStream::connect(transport.local_addr()).await.unwrap();
    let mut bad = TcpStream::connect(transport.local_addr()).await.unwrap();
    let broken = String::from_utf8(request("bad", ""))
        .unwrap()
        .replace("Content-Length: 0", "Content-Length: -5");
    bad.write_all(broken.as_bytes()).await.unwrap();
    assert!(read_to_close(&mut bad).await.is_empty());
    let message = request("good", "still here");
    good.write_all(&message).await.unwrap();
    let got = next(&mut inbound).await;
    assert_eq!(got.data, message);
    assert_eq!(got.from, good.local_addr().unwrap());
    let stats = wait_for(&transport, |s| s.connections_open == 1).await;
    assert_eq!(stats.framing_errors, 1);
    assert_eq!(stats.connections_open, 1);
    assert_eq!(stats.messages_in, 1);
}

#[tokio::test]
async fn send_to_accepted_peer_reuses_its_connection() {
    let (transport, mut inbound) = start(TcpConfig::default()).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    client.write_all(&request("reuse", "")).await.unwrap();
    let from = next(&mut inbound).await.from;
    let answer = response("reuse");
    transport.send(from, answer.clone());
    assert_eq!(read_exactly(&mut client, answer.len()).await, answer);
    let stats = wait_for(&transport, |s| s.messages_out == 1).await;
    assert_eq!(stats.accepted_total, 1);
    assert_eq!(stats.connected_total, 0);
    assert_eq!(stats.messages_out, 1);
}

#[tokio::test]
async fn send_to_new_address_connects_and_the_reply_comes_back() {
    let (transport, mut inbound) = start(TcpConfig::default()).await;
    let remote = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target: SocketAddr = remote.local_addr().unwrap();
    let outgoing = request("outbound", "ping?");
    transport.send(target, outgoing.clone());
    let (mut peer, _) = timeout(WAIT, remote.accept()).await.unwrap().unwrap();
    assert_eq!(read_exactly(&mut peer, outgoing.len()).await, outgoing);
    let reply = response("outbound");
    peer.write_all(&reply).await.unwrap();
    let got = next(&mut inbound).await;
    assert_eq!(got.from, target);
    assert_eq!(got.data, reply);
    let second = request("outbound-2", "");
    transport.send(target, second.clone());
    assert_eq!(read_exactly(&mut peer, second.len()).await, second);
    let stats = transport.stats();
    assert_eq!(
        stats.connected_total, 1,
        "the second send reused the connection"
    );
    assert_eq!(stats.accepted_total, 0);
}

#[tokio::test]
async fn oversize_message_is_dropped_and_the_connection_closed() {
    let (transport, mut inbound) = start(TcpConfig::default()).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    let message = request("huge", &"y".repeat(70 * 1024));
    // The transport may close before the whole message is written.
    let _ = client.write_all(&message).await;
    let _ = timeout(WAIT, client.read(&mut [0u8; 16])).await.unwrap();
    let stats = wait_for(&transport, |s| s.oversize_drops == 1).await;
    assert_eq!(stats.oversize_drops, 1);
    assert_eq!(stats.messages_in, 0);
    assert!(inbound.try_recv().is_err());
}

#[tokio::test]
async fn configured_limit_drops_smaller_messages_too() {
    let config = TcpConfig {
        max_message: 1024,
        ..TcpConfig::default()
    };
    let (transport, mut inbound) = start(config).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    client
        .write_all(&request("over-limit", &"z".repeat(2048)))
        .await
        .unwrap();
    assert!(read_to_close(&mut client).await.is_empty());
    let stats = wait_for(&transport, |s| s.oversize_drops == 1).await;
    assert_eq!(stats.oversize_drops, 1);
    assert!(inbound.try_recv().is_err());
}

#[tokio::test]
async fn failed_connect_is_counted_and_the_message_dropped() {
    let (transport, _inbound) = start(TcpConfig::default()).await;
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = closed.local_addr().unwrap();
    drop(closed);
    transport.send(target, request("nowhere", ""));
    let stats = wait_for(&transport, |s| s.connect_failures == 1 && s.send_drops == 1).await;
    assert_eq!(stats.connect_failures, 1);
    assert_eq!(stats.send_drops, 1);
    assert_eq!(stats.connections_open, 0);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let config = TcpConfig {
        max_connections: 1,
        ..TcpConfig::default()
    };
    let (transport, mut inbound) = start(config).await;
    let mut first = TcpStream::connect(transport.local_addr()).await.unwrap();
    first.write_all(&request("first", "")).await.unwrap();
    next(&mut inbound).await;
    let mut second = TcpStream::connect(transport.local_addr()).await.unwrap();
    assert!(read_to_close(&mut second).await.is_empty());
    let stats = wait_for(&transport, |s| s.rejected_total == 1).await;
    assert_eq!(stats.rejected_total, 1);
    assert_eq!(stats.accepted_total, 1);
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let config = TcpConfig {
        idle_timeout: Duration::from_millis(200),
        ..TcpConfig::default()
    };
    let (transport, _inbound) = start(config).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    let opened = tokio::time::Instant::now();
    assert!(read_to_close(&mut client).await.is_empty());
    assert!(opened.elapsed() >= Duration::from_millis(150));
    let stats = wait_for(&transport, |s| s.connections_open == 0).await;
    assert_eq!(stats.idle_closes, 1);
}

#[tokio::test]
async fn sending_proceeds_while_reading_waits_on_a_full_inbound_channel() {
    let config = TcpConfig {
        inbound_queue: 1,
        ..TcpConfig::default()
    };
    let (transport, mut inbound) = start(config).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    let burst: Vec<Vec<u8>> = (0..3).map(|n| request(&format!("burst-{n}"), "")).collect();
    client.write_all(&burst.concat()).await.unwrap();
    // The first message fills the channel; the reader now waits with the rest unread.
    let stats = wait_for(&transport, |s| s.messages_in == 2).await;
    assert_eq!(
        stats.messages_in, 2,
        "one queued, one waiting for room, one unread"
    );
    let peer = client.local_addr().unwrap();
    let answer = response("burst-0");
    transport.send(peer, answer.clone());
    assert_eq!(read_exactly(&mut client, answer.len()).await, answer);
    for expected in &burst {
        assert_eq!(&next(&mut inbound).await.data, expected);
    }
}

#[test]
fn ipv4_mapped_peers_are_keyed_by_their_ipv4_address() {
    let mapped: SocketAddr = "[::ffff:192.0.2.7]:5070".parse().unwrap();
    let plain: SocketAddr = "192.0.2.7:5070".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
    assert_eq!(registry::canonical(mapped), plain);
    assert_eq!(registry::canonical(plain), plain);
    assert_eq!(registry::canonical(v6), v6);
}

/// Connects to `to` from `source` (any port).
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    timeout(WAIT, socket.connect(to)).await.unwrap().unwrap()
}

#[tokio::test]
async fn accepted_connection_that_never_sends_is_closed_after_the_first_byte_timeout() {
    let config = TcpConfig {
        first_byte_timeout: Duration::from_millis(200),
        ..TcpConfig::default()
    };
    let (transport, _inbound) = start(config).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    let opened = tokio::time::Instant::now();
    assert!(read_to_close(&mut client).await.is_empty());
    assert!(opened.elapsed() >= Duration::from_millis(150));
    let stats = wait_for(&transport, |s| s.connections_open == 0).await;
    assert_eq!(stats.idle_closes, 1);
    assert_eq!(stats.header_timeouts, 0);
}

#[tokio::test]
async fn quiet_connection_after_a_message_is_closed_by_the_idle_timeout_not_the_first_byte_one() {
    let config = TcpConfig {
        first_byte_timeout: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(600),
        ..TcpConfig::default()
    };
    let (transport, mut inbound) = start(config).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    client.write_all(&request("quiet", "")).await.unwrap();
    next(&mut inbound).await;
    let sent = tokio::time::Instant::now();
    assert!(read_to_close(&mut client).await.is_empty());
    assert!(sent.elapsed() >= Duration::from_millis(450));
    let stats = wait_for(&transport, |s| s.connections_open == 0).await;
    assert_eq!(stats.idle_closes, 1);
}

#[tokio::test]
async fn half_a_head_trickled_in_is_closed_after_the_header_timeout() {
    let config = TcpConfig {
        header_timeout: Duration::from_millis(300),
        ..TcpConfig::default()
    };
    let (transport, mut inbound) = start(config).await;
    let mut client = TcpStream::connect(transport.local_addr()).await.unwrap();
    // A complete message first: the timer covers each head, not the connection's age.
    client.write_all(&request("whole", "")).await.unwrap();
    next(&mut inbound).await;
    let head = request("half", "");
    let started = tokio::time::Instant::now();
    // One byte every 50 ms keeps the connection busy, which the idle timeout would accept.
    let mut closed = false;
    for byte in head.iter().take(60) {
        if client.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if transport.stats().header_timeouts == 1 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the trickled head was not cut off");
    assert!(started.elapsed() >= Duration::from_millis(250));
    read_to_close(&mut client).await;
    let stats = wait_for(&transport, |s| s.connections_open == 0).await;
    assert_eq!(stats.header_timeouts, 1);
    assert_eq!(stats.messages_in, 1);
    assert_eq!(stats.idle_closes, 0);
}

#[tokio::test]
async fn per_source_cap_refuses_one_more_from_that_ip_but_not_from_another() {
    let config = TcpConfig {
        max_per_source: 2,
        ..TcpConfig::default()
    };
    let (transport, mut inbound) = start(config).await;
    let to = transport.local_addr();
    let mut held = Vec::new();
    for n in 0..2 {
        let mut client = connect_from("127.0.0.1", to).await;
        client
            .write_all(&request(&format!("held-{n}"), ""))
            .await
            .unwrap();
        next(&mut inbound).await;
        held.push(client);
    }
    let mut refused = connect_from("127.0.0.1", to).await;
    assert!(read_to_close(&mut refused).await.is_empty());
    let stats = wait_for(&transport, |s| s.per_source_rejected == 1).await;
    assert_eq!(stats.per_source_rejected, 1);

    let mut other = connect_from("127.0.0.2", to).await;
    other.write_all(&request("other-ip", "")).await.unwrap();
    let message = next(&mut inbound).await;
    assert_eq!(message.from.ip().to_string(), "127.0.0.2");

    // A freed place is usable again.
    drop(held.pop());
    let _ = wait_for(&transport, |s| s.connections_open == 2).await;
    let mut again = connect_from("127.0.0.1", to).await;
    again.write_all(&request("again", "")).await.unwrap();
    next(&mut inbound).await;

    let mut text = String::new();
    transport.metrics_source().render_prometheus(&mut text);
    assert!(
        text.contains(
            "metaflow_proxy_sip_tcp_connections_refused_total{reason=\"per_source\"} 1\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn shared_budget_refuses_accepted_connections_once_used_up() {
    let budget = crate::connlimit::ConnectionBudget::new(1);
    let (transport, mut inbound) = TcpTransport::bind_with_budget(
        "127.0.0.1:0".parse().unwrap(),
        TcpConfig::default(),
        budget,
    )
    .await
    .unwrap();
    let mut first = connect_from("127.0.0.1", transport.local_addr()).await;
    first.write_all(&request("budget", "")).await.unwrap();
    next(&mut inbound).await;
    let mut second = connect_from("127.0.0.2", transport.local_addr()).await;
    assert!(read_to_close(&mut second).await.is_empty());
    let stats = wait_for(&transport, |s| s.budget_rejected == 1).await;
    assert_eq!(stats.budget_rejected, 1);
}
