//! End to end with the proxy binary: a phone registers through a proxy whose store is the
//! PostgreSQL server; the proxy is killed and started again; the PBX's call to the phone still
//! reaches the phone. Plain UDP sockets stand in for the phone and the PBX.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use super::common::proxy::Proxy;
use super::pg::{Pg, PgClient};

/// Receives one SIP message whose first line starts with `prefix`, skipping others.
fn expect(socket: &UdpSocket, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 65536];
    loop {
        assert!(Instant::now() < deadline, "no {prefix} within 10 s");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(prefix) {
                return text;
            }
        }
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// A response to `request` with `status`, its Via, From, To (tagged), Call-ID and CSeq, and
/// `extra` headers.
fn response(request: &str, status: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for via in header(request, "Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    for name in ["From", "Call-ID", "CSeq"] {
        out.push_str(&format!("{name}: {}\r\n", header(request, name)[0]));
    }
    out.push_str(&format!("To: {};tag=pbx1\r\n", header(request, "To")[0]));
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// The URI inside `<...>` of a Contact value.
fn uri(contact: &str) -> &str {
    contact
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or(contact, |(uri, _)| uri)
}

pub(crate) fn a_phone_registered_before_a_restart_still_gets_calls(
    pg: &Pg,
    rt: &tokio::runtime::Runtime,
) {
    let url = pg.url();
    let args = ["--store", url.as_str(), "--node-id", "proxy-e2e"];
    let mut proxy = Proxy::start(&args);
    // Until the PostgreSQL document store creates the schema at start, the test does.
    rt.block_on(async {
        let db = pg.client().await;
        let exists = db
            .query_one("SELECT to_regclass('mfp_registrations') IS NOT NULL", &[])
            .await
            .unwrap()
            .get::<_, bool>(0);
        if !exists {
            pg.migrate().await;
        }
    });
    let pbx = UdpSocket::bind(("127.0.0.1", proxy.upstream_port())).unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let phone_addr = phone.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:pbx.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {phone_addr};branch=z9hG4bKreg1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@pbx.example.com>;tag=ph1\r\nTo: <sip:alice@pbx.example.com>\r\n\
         Call-ID: reg-e2e-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{phone_addr}>;expires=600\r\n\
         Content-Length: 0\r\n\r\n"
    );
    phone
        .send_to(register.as_bytes(), proxy.sip_addr())
        .unwrap();
    let forwarded = expect(&pbx, "REGISTER ");
    let contact = header(&forwarded, "Contact")[0].to_owned();
    let ok = response(
        &forwarded,
        "200 OK",
        &format!("Contact: <{}>;expires=600\r\n", uri(&contact)),
    );
    pbx.send_to(ok.as_bytes(), proxy.sip_addr()).unwrap();
    expect(&phone, "SIP/2.0 200");

    rt.block_on(async {
        let db = pg.client().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = db
                .query(
                    "SELECT contact FROM mfp_registrations WHERE node_id = 'proxy-e2e'",
                    &[],
                )
                .await
                .unwrap();
            if rows.len() == 1 {
                assert_eq!(
                    rows[0].get::<_, String>(0),
                    format!("sip:alice@{phone_addr}")
                );
                break;
            }
            assert!(Instant::now() < deadline, "the binding was not written");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    proxy.kill_and_restart(&args);
    let target = uri(&contact).to_owned();
    let pbx_addr = pbx.local_addr().unwrap();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let invite = format!(
        "INVITE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx_addr};branch=z9hG4bKinv1\r\nMax-Forwards: 70\r\n\
         From: <sip:bob@pbx.example.com>;tag=pb1\r\nTo: <{target}>\r\nCall-ID: inv-e2e-1\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:bob@{pbx_addr}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    pbx.send_to(invite.as_bytes(), proxy.sip_addr()).unwrap();
    let got = expect(&phone, "INVITE ");
    assert!(
        got.starts_with(&format!("INVITE sip:alice@{phone_addr} SIP/2.0")),
        "the restarted proxy routes the PBX's call to the phone: {}\n{}",
        got.lines().next().unwrap_or_default(),
        proxy.output()
    );
}
