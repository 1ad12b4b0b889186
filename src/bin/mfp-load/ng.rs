//! Just enough of rtpengine's ng control protocol (bencoded dictionaries over UDP, each message
//! prefixed by a cookie) to set up the baseline pairs through rtpengine, so that it relays
//! the same load as the proxy in a run of its own: an `offer` with the a side's SDP and an
//! `answer` with the b side's; rtpengine's answers say where each side must send.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use crate::error::LoadError;

/// How long rtpengine may take to answer one command.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets pair `index` (sides `a` and `b`) up through rtpengine at `control`; returns where the a
/// side and the b side must send.
pub(crate) fn set_up_pair(
    control: SocketAddr,
    index: usize,
    a: SocketAddr,
    b: SocketAddr,
) -> Result<(SocketAddr, SocketAddr), LoadError> {
    let socket = UdpSocket::bind(SocketAddr::new(control.ip(), 0))
        .map_err(|e| ng_error(control, format!("cannot bind: {e}")))?;
    socket
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| ng_error(control, e.to_string()))?;
    let call_id = format!("mfp-load-{}-{index}", std::process::id());
    let offer = command(
        &socket,
        control,
        &format!("o{index}"),
        &[
            ("command", "offer"),
            ("call-id", &call_id),
            ("from-tag", "a"),
            ("sdp", &sdp(a)),
        ],
    )?;
    let answer = command(
        &socket,
        control,
        &format!("a{index}"),
        &[
            ("command", "answer"),
            ("call-id", &call_id),
            ("from-tag", "a"),
            ("to-tag", "b"),
            ("sdp", &sdp(b)),
        ],
    )?;
    // The offer's SDP goes to the b side: where b sends. The answer's goes to a.
    let b_dest = media_address(&offer).ok_or_else(|| ng_error(control, offer.clone()))?;
    let a_dest = media_address(&answer).ok_or_else(|| ng_error(control, answer.clone()))?;
    Ok((a_dest, b_dest))
}

fn ng_error(control: SocketAddr, reason: String) -> LoadError {
    LoadError::Rtpengine { control, reason }
}

/// A one-stream PCMU/PCMA offer for `at`.
fn sdp(at: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8\r\na=sendrecv\r\n",
        ip = at.ip(),
        port = at.port()
    )
}

/// Sends one command and returns the SDP of its answer (or the whole answer when it has none).
fn command(
    socket: &UdpSocket,
    control: SocketAddr,
    cookie: &str,
    fields: &[(&str, &str)],
) -> Result<String, LoadError> {
    let mut message = format!("{cookie} d");
    let mut sorted = fields.to_vec();
    sorted.sort_by_key(|(key, _)| *key);
    for (key, value) in sorted {
        message.push_str(&format!("{}:{key}{}:{value}", key.len(), value.len()));
    }
    message.push('e');
    socket
        .send_to(message.as_bytes(), control)
        .map_err(|e| ng_error(control, e.to_string()))?;
    let mut buf = vec![0u8; 65536];
    let len = socket
        .recv(&mut buf)
        .map_err(|e| ng_error(control, format!("no answer to {cookie}: {e}")))?;
    let reply = String::from_utf8_lossy(buf.get(..len).unwrap_or_default()).into_owned();
    if !reply.contains("6:result2:ok") {
        return Err(ng_error(control, reply));
    }
    Ok(bencoded_string(&reply, "3:sdp").unwrap_or(reply))
}

/// The bencoded string value following `key` in `reply`.
fn bencoded_string(reply: &str, key: &str) -> Option<String> {
    let rest = &reply[reply.find(key)? + key.len()..];
    let colon = rest.find(':')?;
    let len: usize = rest.get(..colon)?.parse().ok()?;
    rest.get(colon + 1..colon + 1 + len).map(str::to_owned)
}

/// The connection address and audio port of `sdp`.
fn media_address(sdp: &str) -> Option<SocketAddr> {
    let ip: IpAddr = sdp
        .lines()
        .find_map(|line| line.trim().strip_prefix("c=IN IP4 "))?
        .trim()
        .parse()
        .ok()?;
    let port: u16 = sdp
        .lines()
        .find_map(|line| line.trim().strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdp_of_a_reply_gives_the_media_address() {
        let reply = "o1 d3:sdp58:v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30004 RTP/AVP 0 8\r\na=x\r\n\
                     6:result2:oke";
        let sdp = bencoded_string(reply, "3:sdp").unwrap();
        assert_eq!(
            media_address(&sdp),
            Some("127.0.0.1:30004".parse().unwrap())
        );
    }
}
