//! The proxy among real SIP proxies: a Kamailio (Debian's 5.6) that record-routes in front of
//! the proxy or in front of the PBX, a Kamailio dispatcher balancing calls over two proxies that
//! must stop sending calls to a draining one, and a Kamailio registrar acting as the PBX that
//! calls back a phone (baresip) registered over TCP through the proxy. Everything runs on
//! loopback: Kamailio on 127.0.0.2, baresip on 127.0.0.3, the proxies and SIPp on 127.0.0.1.
//! Needs `kamailio`, `sipp` and, for the registration test, `baresip`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::baresip::Baresip;
use common::calls::{assert_both_succeeded, callee, got_bye, wait_call};
use common::kamailio::{BASE_MODULES, Kamailio, OPTIONS_TO_MYSELF};
use common::ports::CallPorts;
use common::proxy::{Proxy, http_get, metric_sum};
use common::sipp::{Sipp, SippResult, first_line, header};

/// Limit for one SIPp run (each scenario finishes well before).
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// Where Kamailio listens: an address of its own on loopback.
const KAMAILIO_IP: &str = "127.0.0.2";
/// Where baresip listens.
const PHONE_IP: &str = "127.0.0.3";

/// The start of every routing block: hop limit, and the readiness probe.
fn route_prelude() -> String {
    format!(
        "    if (!mf_process_maxfwd_header(\"10\")) {{\n\
         \x20       sl_send_reply(\"483\", \"Too Many Hops\");\n\
         \x20       exit;\n\
         \x20   }}\n{OPTIONS_TO_MYSELF}"
    )
}

/// A record-routing Kamailio: initial INVITEs are record-routed and relayed to `next_hop`
/// (`IP:PORT`); in-dialog requests must carry a Route to Kamailio (`loose_route()`), those that
/// do not are logged (`kamtest: no route`) and answered 404 (an ACK is dropped).
fn record_routing_config(next_hop: &str) -> String {
    format!(
        "{BASE_MODULES}\n\
         request_route {{\n\
         {prelude}\
         \x20   if (has_totag()) {{\n\
         \x20       if (loose_route()) {{\n\
         \x20           xlog(\"L_NOTICE\", \"kamtest: loose_route $rm $ru from $si:$sp\\n\");\n\
         \x20           t_relay();\n\
         \x20           exit;\n\
         \x20       }}\n\
         \x20       if (is_method(\"ACK\") && t_check_trans()) {{\n\
         \x20           t_relay();\n\
         \x20           exit;\n\
         \x20       }}\n\
         \x20       xlog(\"L_ERR\", \"kamtest: no route: in-dialog $rm $ru from $si:$sp without Route to me\\n\");\n\
         \x20       if (!is_method(\"ACK\")) {{\n\
         \x20           sl_send_reply(\"404\", \"No Route To Me\");\n\
         \x20       }}\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"CANCEL\")) {{\n\
         \x20       if (t_check_trans()) {{\n\
         \x20           t_relay();\n\
         \x20       }}\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"INVITE\")) {{\n\
         \x20       record_route();\n\
         \x20       $du = \"sip:{next_hop}\";\n\
         \x20       xlog(\"L_NOTICE\", \"kamtest: initial INVITE $ru from $si:$sp to $du\\n\");\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   sl_send_reply(\"405\", \"Method Not Allowed\");\n\
         }}\n",
        prelude = route_prelude()
    )
}

/// The caller of a call through Kamailio, from the caller ports of `ports`.
fn caller_via(kamailio: &Kamailio, ports: &CallPorts, uac: &str) -> Sipp {
    Sipp::uac(uac, &kamailio.addr())
        .local_port(ports.uac_sip)
        .media_port(ports.uac_media)
        .timeout_secs(15)
}

/// The 200 OK to the INVITE that `party` received.
fn invite_ok(party: &SippResult) -> String {
    party
        .received()
        .into_iter()
        .find(|m| first_line(m).starts_with("SIP/2.0 200") && m.contains(" INVITE"))
        .unwrap_or_else(|| panic!("no 200 OK to the INVITE:\n{}", party.message_log))
}

/// Every header line named `name` (case-insensitive) of `message`, values only.
fn headers(message: &str, name: &str) -> Vec<String> {
    message
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
        .collect()
}

/// The requests named `method` that `party` received.
fn received_requests(party: &SippResult, method: &str) -> Vec<String> {
    party
        .received()
        .into_iter()
        .filter(|m| m.starts_with(&format!("{method} ")))
        .collect()
}

/// The requests named `method` that `party` sent.
fn sent_requests(party: &SippResult, method: &str) -> Vec<String> {
    party
        .sent()
        .into_iter()
        .filter(|m| m.starts_with(&format!("{method} ")))
        .collect()
}

/// Kamailio logged no in-dialog request without a Route to itself.
fn assert_no_unrouted_request(kamailio: &Kamailio) {
    let unrouted = kamailio.log_lines("kamtest: no route");
    assert!(
        unrouted.is_empty(),
        "in-dialog requests reached Kamailio without a Route to it:\n{}",
        unrouted.join("\n")
    );
}

/// The caller reaches the proxy through a record-routing Kamailio: the proxy's 200 OK must carry
/// Kamailio's Record-Route (RFC 3261 §12.1.1: a UAS copies the request's Record-Route into its
/// 1xx/2xx), so the caller's ACK and BYE go back through Kamailio with a Route to it (an
/// in-dialog request without one gets 404 there), the PBX gets the BYE and the caller its 200.
#[test]
fn record_route_kamailio_in_front_of_the_proxy() {
    let proxy = Proxy::start(&[]);
    let kamailio = Kamailio::start(
        KAMAILIO_IP,
        proxy.ports().proxy_sip + 4,
        &record_routing_config(&proxy.sip_addr()),
    );
    let callee = callee(&proxy, "uas_wait_bye.xml", 15).spawn();
    let caller = caller_via(&kamailio, proxy.ports(), "rr_uac_bye.xml").spawn();
    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);

    let ok = invite_ok(&caller);
    let record_routes = headers(&ok, "Record-Route");
    assert!(
        record_routes.iter().any(|rr| rr.contains(&kamailio.addr())),
        "the proxy's 200 OK to an INVITE that came through Kamailio lacks Kamailio's \
         Record-Route ({}): {record_routes:?}\n{ok}",
        kamailio.addr()
    );
    assert_both_succeeded(&caller, &callee);
    for method in ["ACK", "BYE"] {
        let sent = sent_requests(&caller, method);
        assert!(
            sent.iter().all(|m| headers(m, "Route")
                .iter()
                .any(|r| r.contains(&kamailio.addr()))),
            "the caller's {method} carries a Route to Kamailio: {sent:#?}"
        );
    }
    assert!(got_bye(&callee), "the PBX got the BYE");
    assert_no_unrouted_request(&kamailio);
    assert!(
        !kamailio.log_lines("kamtest: loose_route BYE").is_empty(),
        "the caller's BYE was routed by Kamailio:\n{}",
        kamailio.log()
    );
}

/// Same path with the PBX hanging up: the proxy's BYE to the caller carries a Route to Kamailio
/// (learned from the INVITE's Record-Route) and reaches the caller through it; the caller's ACK
/// had gone through Kamailio too.
#[test]
fn record_route_kamailio_in_front_of_the_proxy_pbx_hangs_up() {
    let proxy = Proxy::start(&[]);
    let kamailio = Kamailio::start(
        KAMAILIO_IP,
        proxy.ports().proxy_sip + 4,
        &record_routing_config(&proxy.sip_addr()),
    );
    let callee = callee(&proxy, "uas_bye.xml", 15).spawn();
    let caller = caller_via(&kamailio, proxy.ports(), "rr_uac_wait_bye.xml").spawn();
    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);

    let ok = invite_ok(&caller);
    assert!(
        headers(&ok, "Record-Route")
            .iter()
            .any(|rr| rr.contains(&kamailio.addr())),
        "the proxy's 200 OK lacks Kamailio's Record-Route ({}):\n{ok}",
        kamailio.addr()
    );
    assert_both_succeeded(&caller, &callee);
    let byes = received_requests(&caller, "BYE");
    assert_eq!(byes.len(), 1, "the caller got the BYE: {byes:#?}");
    let top_via = header(&byes[0], "Via").unwrap_or_default();
    assert!(
        top_via.contains(&kamailio.addr()),
        "the BYE reached the caller through Kamailio (top Via {top_via}):\n{}",
        byes[0]
    );
    assert!(
        !kamailio.log_lines("kamtest: loose_route BYE").is_empty(),
        "Kamailio routed the proxy's BYE by its Route header:\n{}",
        kamailio.log()
    );
    assert_no_unrouted_request(&kamailio);
}

/// A proxy whose upstream is a record-routing Kamailio in front of the PBX (a SIPp UAS), with
/// Kamailio and the PBX on a port block of their own: returns (proxy, Kamailio, that block).
fn proxy_behind_kamailio() -> (Proxy, Kamailio, CallPorts) {
    let pbx_side = CallPorts::reserve();
    let kamailio_addr = format!("{KAMAILIO_IP}:{}", pbx_side.proxy_sip);
    let proxy = Proxy::start_with_upstream(&kamailio_addr, &[]);
    let kamailio = Kamailio::start(
        KAMAILIO_IP,
        pbx_side.proxy_sip,
        &record_routing_config(&format!("127.0.0.1:{}", pbx_side.uas_sip)),
    );
    (proxy, kamailio, pbx_side)
}

/// The PBX sits behind a record-routing Kamailio: the proxy learns the route set from the PBX's
/// 200 OK, so its ACK and its BYE (relaying the caller's) carry a Route to Kamailio and reach
/// the PBX through it; the call completes.
#[test]
fn record_route_kamailio_in_front_of_the_pbx() {
    let (proxy, kamailio, pbx_side) = proxy_behind_kamailio();
    let callee = Sipp::uas("rr_uas_wait_bye.xml")
        .local_port(pbx_side.uas_sip)
        .media_port(pbx_side.uas_media)
        .timeout_secs(15)
        .spawn();
    let caller = Sipp::uac("tcp_uac_bye.xml", &proxy.sip_addr())
        .local_port(proxy.ports().uac_sip)
        .media_port(proxy.ports().uac_media)
        .timeout_secs(15)
        .spawn();
    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
    assert_both_succeeded(&caller, &callee);
    for method in ["ACK", "BYE"] {
        let got = received_requests(&callee, method);
        assert_eq!(got.len(), 1, "the PBX got one {method}: {got:#?}");
        let top_via = header(&got[0], "Via").unwrap_or_default();
        assert!(
            top_via.contains(&kamailio.addr()),
            "the proxy's {method} reached the PBX through Kamailio (top Via {top_via}):\n{}",
            got[0]
        );
    }
    for method in ["ACK", "BYE"] {
        assert!(
            !kamailio
                .log_lines(&format!("kamtest: loose_route {method}"))
                .is_empty(),
            "Kamailio routed the proxy's {method} by its Route header:\n{}",
            kamailio.log()
        );
    }
    assert_no_unrouted_request(&kamailio);
}

/// Same with the PBX hanging up: its BYE (Route to Kamailio, learned from the INVITE's
/// Record-Route) reaches the proxy through Kamailio, and the caller gets the proxy's BYE.
#[test]
fn record_route_kamailio_in_front_of_the_pbx_pbx_hangs_up() {
    let (proxy, kamailio, pbx_side) = proxy_behind_kamailio();
    let callee = Sipp::uas("rr_uas_bye.xml")
        .local_port(pbx_side.uas_sip)
        .media_port(pbx_side.uas_media)
        .timeout_secs(15)
        .spawn();
    let caller = Sipp::uac("uac_wait_bye.xml", &proxy.sip_addr())
        .local_port(proxy.ports().uac_sip)
        .media_port(proxy.ports().uac_media)
        .timeout_secs(15)
        .spawn();
    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
    assert_both_succeeded(&caller, &callee);
    assert!(got_bye(&caller), "the caller got the BYE");
    let acks = received_requests(&callee, "ACK");
    assert_eq!(acks.len(), 1, "the PBX got the ACK: {acks:#?}");
    assert!(
        headers(&acks[0], "Via")
            .first()
            .is_some_and(|via| via.contains(&kamailio.addr())),
        "the proxy's ACK reached the PBX through Kamailio:\n{}",
        acks[0]
    );
    assert!(
        !kamailio.log_lines("kamtest: loose_route BYE").is_empty(),
        "the PBX's BYE was routed by Kamailio:\n{}",
        kamailio.log()
    );
    assert_no_unrouted_request(&kamailio);
}

/// The status of the answer to an OPTIONS sent to `addr` (`IP:PORT`) from a throwaway socket.
fn options_status(addr: &str) -> Option<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let local = socket.local_addr().ok()?;
    let options = format!(
        "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=p1\r\nTo: <sip:{addr}>\r\n\
         Call-ID: probe@{local}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(options.as_bytes(), addr).ok()?;
    let mut buf = [0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n]).get(8..11)?.parse().ok()
}

/// Sum of `metaflow_proxy_calls_total` (calls ended, any outcome) of `proxy`.
fn calls_ended(proxy: &Proxy) -> f64 {
    metric_sum(&proxy.metrics(), "metaflow_proxy_calls_total", &[]).unwrap_or(0.0)
}

/// INVITEs `proxy` received so far.
fn invites_received(proxy: &Proxy) -> f64 {
    metric_sum(
        &proxy.metrics(),
        "metaflow_proxy_sip_requests_received_total",
        &["method=\"INVITE\""],
    )
    .unwrap_or(0.0)
}

/// Waits (5 s) until `proxy` counts at least `count` ended calls.
fn wait_calls_ended(proxy: &Proxy, count: f64, which: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while calls_ended(proxy) < count {
        assert!(
            Instant::now() < deadline,
            "{which} ended {} calls, expected {count}:\n{}",
            calls_ended(proxy),
            proxy.metrics()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Kamailio's dispatcher balances calls round robin over two proxies and probes them with
/// OPTIONS every second. Both take calls; once proxy 2 is draining (SIGTERM with a long
/// `shutdown-grace`, kept up by a call in progress) it answers the probes 503, Kamailio marks
/// it inactive, and every following call lands on proxy 1 and succeeds. (Kamailio does not
/// record-route here: in-dialog requests follow their Request-URI, the proxy's Contact.)
#[test]
fn dispatcher_stops_routing_to_a_draining_proxy() {
    let drain_dir = tempfile::tempdir().unwrap();
    let drain_config = drain_dir.path().join("proxy.toml");
    std::fs::write(&drain_config, "shutdown-grace = 60\n").unwrap();
    let proxy1 = Proxy::start(&[]);
    let proxy2 = Proxy::start(&["--config", drain_config.to_str().unwrap()]);

    let list_dir = tempfile::tempdir().unwrap();
    let list = list_dir.path().join("dispatcher.list");
    std::fs::write(
        &list,
        format!(
            "# set destination flags priority attributes\n\
             1 sip:{} 0 0\n\
             1 sip:{} 0 0\n",
            proxy1.sip_addr(),
            proxy2.sip_addr()
        ),
    )
    .unwrap();
    let config = format!(
        "{BASE_MODULES}\
         loadmodule \"dispatcher.so\"\n\
         modparam(\"dispatcher\", \"list_file\", \"{list}\")\n\
         modparam(\"dispatcher\", \"ds_ping_interval\", 1)\n\
         modparam(\"dispatcher\", \"ds_probing_mode\", 1)\n\
         modparam(\"dispatcher\", \"ds_probing_threshold\", 1)\n\
         modparam(\"dispatcher\", \"ds_ping_from\", \"sip:dispatcher@{KAMAILIO_IP}\")\n\
         request_route {{\n\
         {prelude}\
         \x20   if (has_totag()) {{\n\
         \x20       if (!is_method(\"ACK\") || !t_check_trans()) {{\n\
         \x20           xlog(\"L_NOTICE\", \"kamtest: in-dialog $rm to $ru\\n\");\n\
         \x20       }}\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"CANCEL\")) {{\n\
         \x20       if (t_check_trans()) {{\n\
         \x20           t_relay();\n\
         \x20       }}\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"INVITE\")) {{\n\
         \x20       if (!ds_select_dst(\"1\", \"4\")) {{\n\
         \x20           xlog(\"L_ERR\", \"kamtest: no destination for $ci\\n\");\n\
         \x20           sl_send_reply(\"503\", \"No Destination\");\n\
         \x20           exit;\n\
         \x20       }}\n\
         \x20       xlog(\"L_NOTICE\", \"kamtest: dispatch $ci to $du\\n\");\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   sl_send_reply(\"405\", \"Method Not Allowed\");\n\
         }}\n\
         event_route[dispatcher:dst-down] {{\n\
         \x20   xlog(\"L_NOTICE\", \"kamtest: dst-down $ru\\n\");\n\
         }}\n\
         event_route[dispatcher:dst-up] {{\n\
         \x20   xlog(\"L_NOTICE\", \"kamtest: dst-up $ru\\n\");\n\
         }}\n",
        list = list.display(),
        prelude = route_prelude()
    );
    let kamailio = Kamailio::start(KAMAILIO_IP, proxy1.ports().proxy_sip + 4, &config);

    // One PBX per proxy, taking any number of calls until the test ends.
    let pbx = |proxy: &Proxy| callee(proxy, "uas_wait_bye.xml", 60).calls(1000).spawn();
    let _pbx1 = pbx(&proxy1);
    let _pbx2 = pbx(&proxy2);
    let calls_via_kamailio = |count: u32| {
        caller_via(&kamailio, proxy1.ports(), "tcp_uac_bye.xml")
            .calls(count)
            .spawn_with_args(&["-r", "5"])
            .wait(RUN_LIMIT)
    };

    // Both proxies take calls.
    calls_via_kamailio(4).assert_success("callers through the dispatcher");
    wait_calls_ended(&proxy1, 1.0, "proxy 1");
    wait_calls_ended(&proxy2, 1.0, "proxy 2");

    // A call in progress on proxy 2 keeps it up while it drains.
    let long_call = Sipp::uac("uac_wait_bye.xml", &proxy2.sip_addr())
        .local_port(proxy2.ports().uac_sip)
        .media_port(proxy2.ports().uac_media)
        .timeout_secs(60)
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric_sum(&proxy2.metrics(), "metaflow_proxy_active_calls", &[]) != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the long call never came up on proxy 2:\n{}",
            proxy2.output()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-TERM", &proxy2.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let api2 = proxy2.api_addr().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !matches!(http_get(api2, "/ready"), Ok((503, _))) {
        assert!(Instant::now() < deadline, "proxy 2 never started draining");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        options_status(&proxy2.sip_addr()),
        Some(503),
        "the draining proxy 2 answers OPTIONS 503"
    );
    let down = format!("kamtest: dst-down sip:{}", proxy2.sip_addr());
    assert!(
        kamailio.wait_for_log(&down, Duration::from_secs(6)),
        "Kamailio never marked the draining proxy 2 inactive:\n{}",
        kamailio.log()
    );
    assert!(
        kamailio.log_lines("kamtest: dst-down").len() == 1,
        "only proxy 2 went down:\n{}",
        kamailio.log()
    );

    // Every new call now lands on proxy 1.
    let ended1 = calls_ended(&proxy1);
    let invites2 = invites_received(&proxy2);
    let calls = 4;
    calls_via_kamailio(calls).assert_success("callers after proxy 2 started draining");
    wait_calls_ended(&proxy1, ended1 + f64::from(calls), "proxy 1");
    assert_eq!(
        invites_received(&proxy2),
        invites2,
        "the draining proxy 2 got no INVITE:\n{}",
        proxy2.output()
    );
    assert!(
        metric_sum(&proxy2.metrics(), "metaflow_proxy_active_calls", &[]) == Some(1.0),
        "the long call is still up on proxy 2"
    );
    drop(long_call);
}

/// Kamailio is the PBX (registrar, in-memory location table, no authentication) and the proxy's
/// upstream over UDP. baresip registers alice over TCP through the proxy, so Kamailio stores the
/// proxy's rewritten Contact. A SIPp caller then calls alice at Kamailio, which looks the
/// Contact up and sends the INVITE to the proxy; the proxy must recognise the call as coming
/// from the PBX and send it to baresip over the TCP connection baresip registered on. baresip
/// answers by itself; the caller gets 200 and hangs up.
#[test]
fn tcp_registered_phone_is_called_back_through_the_pbx() {
    call_back_registered_phone("", false);
}

/// Same with the proxy reaching Kamailio over TCP (`upstream-transport = "tcp"`): the stored
/// Contact says `;transport=tcp`, so Kamailio opens its own TCP connection to the proxy, from a
/// port other than the one it listens on. With Kamailio's host in `pbx-addresses` the proxy
/// still takes that INVITE as the PBX's and calls baresip on its own connection.
#[test]
fn tcp_registered_phone_is_called_back_through_a_pbx_on_tcp() {
    call_back_registered_phone(
        &format!("upstream-transport = \"tcp\"\npbx-addresses = [\"{KAMAILIO_IP}\"]\n"),
        true,
    );
}

/// The call-back flow of the two tests above, with `proxy_config` as the proxy's `--config`
/// file; `contact_tcp` is whether the Contact Kamailio stores names TCP.
fn call_back_registered_phone(proxy_config: &str, contact_tcp: bool) {
    let config_dir = tempfile::tempdir().unwrap();
    let config_path = config_dir.path().join("proxy.toml");
    std::fs::write(&config_path, proxy_config).unwrap();
    let pbx_side = CallPorts::reserve();
    let kamailio_addr = format!("{KAMAILIO_IP}:{}", pbx_side.proxy_sip);
    let proxy =
        Proxy::start_with_upstream(&kamailio_addr, &["--config", config_path.to_str().unwrap()]);
    let config = format!(
        "{BASE_MODULES}\
         loadmodule \"usrloc.so\"\n\
         loadmodule \"registrar.so\"\n\
         modparam(\"usrloc\", \"db_mode\", 0)\n\
         request_route {{\n\
         {prelude}\
         \x20   if (has_totag()) {{\n\
         \x20       if (!is_method(\"ACK\") || !t_check_trans()) {{\n\
         \x20           xlog(\"L_NOTICE\", \"kamtest: in-dialog $rm to $ru from $proto:$si:$sp\\n\");\n\
         \x20       }}\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"REGISTER\")) {{\n\
         \x20       xlog(\"L_NOTICE\", \"kamtest: REGISTER $tu contact $ct from $proto:$si:$sp\\n\");\n\
         \x20       if (!save(\"location\")) {{\n\
         \x20           sl_reply_error();\n\
         \x20       }}\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"CANCEL\")) {{\n\
         \x20       if (t_check_trans()) {{\n\
         \x20           t_relay();\n\
         \x20       }}\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"INVITE\")) {{\n\
         \x20       if (!lookup(\"location\")) {{\n\
         \x20           xlog(\"L_ERR\", \"kamtest: INVITE $ru from $proto:$si:$sp: not registered\\n\");\n\
         \x20           sl_send_reply(\"404\", \"Not Found\");\n\
         \x20           exit;\n\
         \x20       }}\n\
         \x20       xlog(\"L_NOTICE\", \"kamtest: INVITE for $tU goes to $ru\\n\");\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   sl_send_reply(\"405\", \"Method Not Allowed\");\n\
         }}\n",
        prelude = route_prelude()
    );
    let kamailio = Kamailio::start(KAMAILIO_IP, pbx_side.proxy_sip, &config);
    let account = format!(
        "<sip:alice@{KAMAILIO_IP};transport=tcp>;outbound=\"sip:{};transport=tcp\";\
         regint=60;answermode=auto",
        proxy.sip_addr()
    );
    let mut phone =
        Baresip::configure(PHONE_IP, pbx_side.uas_sip, pbx_side.uas_media, &account).start();
    phone.wait_registered(Duration::from_secs(10));
    assert!(
        kamailio.wait_for_log("kamtest: REGISTER", Duration::from_secs(1)),
        "the REGISTER reached Kamailio:\n{}",
        kamailio.log()
    );
    let registers = kamailio.log_lines("kamtest: REGISTER");
    let stored = if contact_tcp {
        format!("@{};transport=tcp>", proxy.sip_addr())
    } else {
        format!("@{}>", proxy.sip_addr())
    };
    assert!(
        !registers.is_empty() && registers.iter().all(|line| line.contains(&stored)),
        "Kamailio stored the proxy's Contact (…{stored}): {registers:#?}"
    );

    let caller = caller_via(&kamailio, proxy.ports(), "tcp_uac_bye.xml")
        .spawn_with_args(&["-s", "alice"])
        .wait(RUN_LIMIT);
    caller.assert_success("caller (UAC) calling alice at Kamailio");
    let ok = invite_ok(&caller);
    assert!(
        header(&ok, "Server").is_some_and(|server| server.contains("baresip")),
        "the 200 OK came from baresip:\n{ok}"
    );
    assert!(
        phone.output().contains("Call established"),
        "baresip answered the call:\n{}",
        phone.output()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !phone.output().contains("terminated") {
        assert!(
            Instant::now() < deadline,
            "baresip never saw the call end:\n{}",
            phone.output()
        );
        thread::sleep(Duration::from_millis(100));
    }
}
