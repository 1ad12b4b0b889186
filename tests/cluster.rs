//! Several proxies behind a Kamailio dispatcher, sharing one PostgreSQL: the deployment the
//! README's "Running several proxies" describes, run whole on loopback. Three nodes on 127.0.0.2,
//! .3 and .4, Kamailio on 127.0.0.5 with `config/kamailio-dispatcher.cfg` itself, a SIPp PBX and
//! SIPp callers on 127.0.0.1, and a temporary PostgreSQL cluster on 127.0.0.1 (never the
//! system's). These tests check what an operator relies on: calls spread and survive the loss
//! of a node, configuration written on one node applies on the others, a call can be acted on
//! from any node, an acknowledged write is never lost, and a PostgreSQL restart neither drops
//! calls nor lets a write be silently lost. Needs `kamailio`, `sipp` and Debian's `postgresql`
//! (server programs under /usr/lib/postgresql/*/bin); a missing one fails the test.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

#[path = "cluster/mod.rs"]
mod cluster;
mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cluster::{Cluster, Dispatcher, Node, poll};
use common::calls::{got_bye, sent_bye};
use common::postgres::Postgres;
use common::sipp::SippResult;
use serde_json::Value;

/// Limit for one SIPp run.
const RUN_LIMIT: Duration = Duration::from_secs(40);
/// The account every SIPp caller belongs to (its From host, 127.0.0.1, is no account's realm).
const ACCOUNT: &str = "default";

/// `data` of a reply's envelope, panicking with the reply when it is not a 2xx.
fn ok_data(what: &str, reply: &common::proxy::HttpReply) -> Value {
    assert!(
        (200..300).contains(&reply.status),
        "{what} answered {}: {}",
        reply.status,
        reply.body
    );
    reply.json()["data"].clone()
}

/// Waits until `node` counts `count` ended calls (10 s); panics with its metrics otherwise.
fn wait_calls_ended(node: &Node, count: f64) {
    let reached = poll(Duration::from_secs(10), || {
        (node.calls_ended() >= count).then_some(())
    });
    assert!(
        reached.is_some(),
        "node {} ended {} calls, expected {count}",
        node.name(),
        node.calls_ended()
    );
}

/// Ended calls of every node, in node order.
fn ended_per_node(cluster: &Cluster) -> Vec<f64> {
    cluster.nodes.iter().map(Node::calls_ended).collect()
}

/// The temporary PostgreSQL the cluster tests share their lifecycle helper with: it starts,
/// takes a table and a row, stops (refusing connections), starts again on the same port and
/// data directory, and still has the row. Everything the PostgreSQL-backed tests below rely on.
#[test]
fn temporary_postgres_stops_and_starts_again_with_its_data() {
    let mut postgres = Postgres::start();
    assert!(postgres.url().starts_with("postgres://mfp@127.0.0.1:"));
    postgres.psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')");
    postgres.stop();
    assert!(
        !postgres.accepts_connections(),
        "stopped PostgreSQL accepts connections"
    );
    postgres.start_again();
    assert_eq!(postgres.psql("SELECT v FROM kept"), "before restart");
}

/// `count` callers through the dispatcher at 10 calls/s (each hangs up after 1 s), all
/// required to succeed by the caller.
fn calls(cluster: &Cluster, dispatcher: &Dispatcher, count: u32) -> SippResult {
    cluster
        .caller_via(dispatcher, "rr_uac_bye.xml", 30)
        .calls(count)
        .spawn_with_args(&["-r", "10"])
        .wait(RUN_LIMIT)
}

/// Calls through the dispatcher land on all three nodes (round robin); after `kill -9` of one
/// node, calls placed at once still succeed (Kamailio tries the next node when one does not
/// answer), the probes or the failed call take the node out, and from then on every new call
/// succeeds on the other two without Kamailio trying the dead one. Each node keeps its own
/// embedded store here: nothing in this test needs shared configuration.
#[test]
fn dispatcher_spreads_calls_and_fails_over() {
    let mut cluster = Cluster::start_redb();
    let dispatcher = cluster.dispatcher();
    let _pbx = cluster.pbx("uas_wait_bye.xml", 1000, 120).spawn();

    // Every node takes calls.
    calls(&cluster, &dispatcher, 9)
        .assert_success("9 callers through the dispatcher, all nodes up");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ended_per_node(&cluster).iter().sum::<f64>() < 9.0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let spread = ended_per_node(&cluster);
    println!("calls per node (a, b, c), all up: {spread:?}");
    assert_eq!(
        spread.iter().sum::<f64>(),
        9.0,
        "every call ended on a node: {spread:?}"
    );
    assert!(
        spread.iter().all(|&count| count >= 1.0),
        "the dispatcher spreads calls over all three nodes: {spread:?}\n{}",
        dispatcher.kamailio.log()
    );

    // Node c dies without a word.
    let dead = cluster.nodes[2].sip_addr();
    cluster.nodes[2].kill9();
    let killed_at = Instant::now();

    // Calls placed at once succeed, whether or not Kamailio noticed yet.
    calls(&cluster, &dispatcher, 6).assert_success("6 callers right after node c was killed");
    let marked_down = |line: &str| {
        line.contains(&dead) && (line.contains("node down") || line.contains("marking it down"))
    };
    let noticed = poll(Duration::from_secs(10), || {
        dispatcher
            .kamailio
            .log()
            .lines()
            .any(marked_down)
            .then_some(())
    });
    assert!(
        noticed.is_some(),
        "Kamailio never took the dead node c ({dead}) out:\n{}",
        dispatcher.kamailio.log()
    );
    println!(
        "node c was out {:?} after kill -9 (checked once those calls ended)",
        killed_at.elapsed()
    );
    // With one-second probes, each timing out after a second, the calls placed within the first
    // few hundred milliseconds include one sent to node c before any probe noticed: the
    // failure_route took it to the next node.
    let failovers = dispatcher.kamailio.log_lines("failing over INVITE");
    assert!(
        !failovers.is_empty(),
        "no call was failed over from the dead node c:\n{}",
        dispatcher.kamailio.log()
    );
    println!("{} call(s) failed over from node c", failovers.len());

    // From now on: every call succeeds on a or b, and none is tried on c.
    let attempts_on_dead = || {
        dispatcher
            .kamailio
            .log_lines("dispatching INVITE")
            .iter()
            .filter(|line| line.contains(&dead))
            .count()
    };
    let tried_on_dead = attempts_on_dead();
    let before = [
        cluster.nodes[0].calls_ended(),
        cluster.nodes[1].calls_ended(),
    ];
    calls(&cluster, &dispatcher, 8).assert_success("8 callers once node c is out");
    wait_calls_ended(&cluster.nodes[0], before[0] + 1.0);
    wait_calls_ended(&cluster.nodes[1], before[1] + 1.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let survivors =
        |cluster: &Cluster| cluster.nodes[0].calls_ended() + cluster.nodes[1].calls_ended();
    while survivors(&cluster) < before[0] + before[1] + 8.0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        survivors(&cluster),
        before[0] + before[1] + 8.0,
        "nodes a and b ended all 8 calls"
    );
    assert_eq!(
        attempts_on_dead(),
        tried_on_dead,
        "Kamailio sent no INVITE to the dead node once it was out:\n{}",
        dispatcher.kamailio.log()
    );
}

/// REGISTER is dispatched by a hash of the To URI (the address of record): a phone registering
/// again with a new Call-ID (as after a reboot) reaches the node it registered on before, so the
/// PBX's calls to it keep going through the node that knows it.
#[test]
fn register_sticks_to_one_node() {
    let cluster = Cluster::start_redb();
    let dispatcher = cluster.dispatcher();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    let phones = ["alice", "bob", "carol", "dave"];
    let rounds = 3;
    for round in 0..rounds {
        for phone in phones {
            let register = format!(
                "REGISTER sip:example.com SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK-reg-{phone}-{round};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{phone}@example.com>;tag=r{round}\r\n\
                 To: <sip:{phone}@example.com>\r\nCall-ID: reg-{phone}-{round}@{local}\r\n\
                 CSeq: 1 REGISTER\r\nContact: <sip:{phone}@{local}>\r\nExpires: 60\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            socket
                .send_to(register.as_bytes(), dispatcher.kamailio.addr())
                .unwrap();
        }
    }
    let lines = poll(Duration::from_secs(5), || {
        let lines = dispatcher.kamailio.log_lines("dispatching REGISTER");
        (lines.len() >= phones.len() * rounds).then_some(lines)
    })
    .unwrap_or_else(|| {
        panic!(
            "Kamailio did not dispatch every REGISTER:\n{}",
            dispatcher.kamailio.log()
        )
    });
    let mut used = std::collections::BTreeSet::new();
    for phone in phones {
        let aor = format!("sip:{phone}@example.com to ");
        let nodes: std::collections::BTreeSet<&str> = lines
            .iter()
            .filter_map(|line| line.split_once(&aor).map(|(_, node)| node.trim()))
            .collect();
        assert_eq!(
            nodes.len(),
            1,
            "every REGISTER of {phone} went to the same node: {nodes:?}\n{}",
            lines.join("\n")
        );
        used.extend(nodes);
    }
    println!(
        "REGISTERs of {} phones went to {} node(s): {used:?}",
        phones.len(),
        used.len()
    );
}

/// The metaflows document of the default account, as written.
const HANGUP_ON_STAR_0: &str =
    r#"{"data":{"binding_digit":"*","numbers":{"0":{"module":"hangup"}}}}"#;

/// Account metaflows written through node a apply to calls on node c: node c sees the new
/// revision through its own API (the time it took is printed), and a caller on node c who dials
/// `*0` (RFC 4733 events) is hung up by node c's hangup module (BYE to both parties, neither
/// sent one).
#[test]
fn metaflow_written_on_a_applies_on_c() {
    let cluster = Cluster::start_postgres();
    let (a, c) = (cluster.node(0), cluster.node(2));
    let path = format!("/v2/accounts/{ACCOUNT}/metaflows");

    // A few writes first, to measure how fast they reach node c.
    let mut latencies = Vec::new();
    for round in 0..5 {
        let body = format!(
            r#"{{"data":{{"binding_digit":"*","numbers":{{"9{round}":{{"module":"hangup"}}}}}}}}"#
        );
        let written = a.api("POST", &path, Some(&body));
        ok_data("POST metaflows on node a", &written);
        let revision = written.json()["revision"].clone();
        assert!(
            revision.is_string(),
            "a write answers its revision: {}",
            written.body
        );
        let at = Instant::now();
        let seen = poll(Duration::from_secs(5), || {
            let reply = c.api("GET", &path, None);
            (reply.status == 200 && reply.json()["revision"] == revision).then_some(())
        });
        assert!(
            seen.is_some(),
            "node c never showed revision {revision} written on node a; it shows: {}",
            c.api("GET", &path, None).body
        );
        latencies.push(at.elapsed());
    }
    println!("write on a → visible on c (poll every 50 ms): {latencies:?}");

    let written = a.api("POST", &path, Some(HANGUP_ON_STAR_0));
    let revision = written.json()["revision"].clone();
    ok_data("POST metaflows on node a", &written);
    let seen = poll(Duration::from_secs(5), || {
        let reply = c.api("GET", &path, None);
        (reply.json()["revision"] == revision).then(|| reply.json()["data"].clone())
    })
    .expect("node c shows the hangup metaflow written on node a");
    assert_eq!(seen["numbers"]["0"]["module"], "hangup", "{seen}");

    let pbx = cluster.pbx("uas_wait_bye.xml", 1, 20).spawn();
    let caller = cluster.caller_to(c, "dtmf_uac_star0.xml", 20).spawn();
    let caller = caller.wait(RUN_LIMIT);
    let pbx = pbx.wait(RUN_LIMIT);
    caller.assert_success("caller on node c dialing *0");
    pbx.assert_success("PBX behind node c");
    assert!(got_bye(&caller), "node c sent BYE to the caller");
    assert!(got_bye(&pbx), "node c sent BYE to the PBX");
    assert!(
        !sent_bye(&caller) && !sent_bye(&pbx),
        "the BYEs came from node c's hangup module, not from a party"
    );
    let matched = poll(Duration::from_secs(3), || {
        c.events()
            .into_iter()
            .find(|event| event["event"] == "metaflow_match")
    })
    .unwrap_or_else(|| panic!("node c logged no metaflow_match: {:#?}", c.events()));
    assert_eq!(matched["module"], "hangup", "{matched}");
    assert_eq!(matched["collected"], "0", "{matched}");
}

/// The `call_id` of every entry of `GET /v2/accounts/{ACCOUNT}/channels` on `node`.
fn listed_calls(node: &Node) -> Vec<String> {
    let reply = node.api("GET", &format!("/v2/accounts/{ACCOUNT}/channels"), None);
    let data = ok_data(&format!("GET channels on node {}", node.name()), &reply);
    data.as_array()
        .unwrap_or_else(|| panic!("channels data is not a list: {}", reply.body))
        .iter()
        .filter_map(|entry| entry["call_id"].as_str().map(str::to_owned))
        .collect()
}

/// Waits (5 s) for `node` to be in a call, and returns its Call-ID as node a's channel list
/// shows it.
fn wait_listed(node: &Node) -> String {
    poll(Duration::from_secs(5), || {
        listed_calls(node).into_iter().next()
    })
    .unwrap_or_else(|| panic!("node {} never listed the call", node.name()))
}

/// A call in progress on node a is listed by node b, and the hangup node sent to node b is
/// carried out by node a: 202 from node b, BYE to both parties, and the call leaves the lists.
#[test]
fn channel_hangup_sent_to_b_ends_call_owned_by_a() {
    let cluster = Cluster::start_postgres();
    let (a, b) = (cluster.node(0), cluster.node(1));
    let pbx = cluster.pbx("uas_wait_bye.xml", 1, 30).spawn();
    let caller = cluster.caller_to(a, "uac_wait_bye.xml", 30).spawn();
    let call_id = wait_listed(a);

    let on_b = poll(Duration::from_secs(5), || {
        listed_calls(b).contains(&call_id).then_some(())
    });
    assert!(
        on_b.is_some(),
        "node b does not list the call {call_id} in progress on node a: {:?}",
        listed_calls(b)
    );
    assert!(
        listed_calls(cluster.node(2)).contains(&call_id),
        "node c lists the call {call_id} too"
    );

    let hangup = b.api(
        "PUT",
        &format!("/v2/accounts/{ACCOUNT}/channels/{call_id}"),
        Some(r#"{"action":"metaflow","data":{"module":"hangup"}}"#),
    );
    assert_eq!(
        hangup.status, 202,
        "node b hands the hangup over: {}",
        hangup.body
    );

    let caller = caller.wait(RUN_LIMIT);
    let pbx = pbx.wait(RUN_LIMIT);
    caller.assert_success("caller on node a, hung up through node b");
    pbx.assert_success("PBX behind node a");
    assert!(got_bye(&caller) && got_bye(&pbx), "both parties got a BYE");
    assert_eq!(
        common::calls::caller_call_id(&caller),
        call_id,
        "the listed call is the caller's"
    );
    let gone = poll(Duration::from_secs(5), || {
        (!listed_calls(a).contains(&call_id) && !listed_calls(b).contains(&call_id)).then_some(())
    });
    assert!(gone.is_some(), "the ended call left the channel lists");
}

/// Writes acknowledged by node a (2xx) while it is killed with SIGKILL mid-way are all readable
/// through node b afterwards: a 2xx means the write is in PostgreSQL, not only in a node's memory.
#[test]
fn acknowledged_writes_survive_kill_of_a_node() {
    let mut cluster = Cluster::start_postgres();
    let writer_node = cluster.nodes[0].api_socket();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut acknowledged: Vec<(String, String)> = Vec::new();
            let mut refused = 0;
            for round in 0..2000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("w{round}");
                let body = format!(r#"{{"data":{{"first_name":"{name}","last_name":"kill9"}}}}"#);
                match common::proxy::http_request(
                    writer_node,
                    "PUT",
                    &format!("/v2/accounts/{ACCOUNT}/users"),
                    Some(cluster::TOKEN),
                    Some(&body),
                ) {
                    Ok(reply) if (200..300).contains(&reply.status) => {
                        let id = reply.json()["data"]["id"]
                            .as_str()
                            .unwrap_or_else(|| panic!("a created user has an id: {}", reply.body))
                            .to_owned();
                        acknowledged.push((id, name));
                    }
                    Ok(reply) => panic!(
                        "write {round} on node a answered {}: {}",
                        reply.status, reply.body
                    ),
                    Err(_) => {
                        // Node a is gone (or going): nothing was acknowledged.
                        refused += 1;
                        if refused > 3 {
                            break;
                        }
                    }
                }
            }
            acknowledged
        })
    };
    thread::sleep(Duration::from_millis(1500));
    cluster.nodes[0].kill9();
    stop.store(true, Ordering::Relaxed);
    let acknowledged = writer.join().unwrap();
    assert!(
        acknowledged.len() >= 5,
        "node a acknowledged only {} writes before the kill",
        acknowledged.len()
    );
    println!(
        "{} writes acknowledged by node a before kill -9",
        acknowledged.len()
    );

    // Node b reads from its snapshot, which PostgreSQL's notifications refresh within a
    // fraction of a second: the last writes get 3 s to show before they count as lost.
    let b = cluster.node(1);
    let readable = |(id, name): &(String, String)| {
        let reply = b.api("GET", &format!("/v2/accounts/{ACCOUNT}/users/{id}"), None);
        reply.status == 200 && reply.json()["data"]["first_name"] == name.as_str()
    };
    let mut missing: Vec<(String, String)> = acknowledged.clone();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        missing.retain(|write| !readable(write));
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        missing.is_empty(),
        "{} of {} writes acknowledged by node a are not readable through node b: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
}

/// Whether a reply body names the store that is down (PostgreSQL, the store, the database).
fn names_the_store(body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    ["postgres", "store", "database"]
        .iter()
        .any(|word| body.contains(word))
}

/// A call in progress on node a while PostgreSQL stops and starts again: the call goes on
/// (RTP still relayed, still listed by node a), writes answer 503 naming the store (never 500,
/// never a silent success), `/ready` answers 503 naming it; once PostgreSQL is back, within
/// 30 s writes succeed and `/ready` is 200 on every node, and no node restarted.
#[test]
fn postgres_restart_keeps_calls_and_refuses_writes_meanwhile() {
    let mut cluster = Cluster::start_postgres();
    let pids: Vec<u32> = cluster.nodes.iter().map(Node::pid).collect();
    let path = format!("/v2/accounts/{ACCOUNT}/metaflows");
    let pbx = cluster.pbx("uas_wait_bye.xml", 1, 60).spawn();
    let caller = cluster
        .caller_to(cluster.node(0), "uac_pcap_wait_bye.xml", 60)
        .spawn();
    let call_id = wait_listed(cluster.node(0));

    cluster.postgres.as_mut().unwrap().stop();
    let a = cluster.node(0);

    // The call goes on: its RTP is still relayed (the caller streams for 7 s from the answer).
    let rtp_before = a.rtp_packets();
    thread::sleep(Duration::from_millis(1000));
    assert!(
        a.rtp_packets() > rtp_before,
        "node a stopped relaying the call's RTP while PostgreSQL is down"
    );
    assert_eq!(a.active_calls(), 1.0, "the call is still up on node a");

    // Writes are refused, saying why; a write that takes too long to answer is retried.
    let refused = poll(Duration::from_secs(10), || {
        let reply = a.try_api("POST", &path, Some(HANGUP_ON_STAR_0)).ok()?;
        (reply.status != 200).then_some(reply)
    })
    .expect("a write on node a with PostgreSQL down did not stop answering 200 within 10 s");
    assert_eq!(
        refused.status, 503,
        "a write with PostgreSQL down answers 503: {}",
        refused.body
    );
    assert!(
        names_the_store(&refused.body),
        "the 503 says the store is unavailable: {}",
        refused.body
    );
    let degraded = poll(Duration::from_secs(10), || {
        let (status, body) = a.ready();
        (status == 503).then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "/ready on node a stays {:?} with PostgreSQL down",
            a.ready()
        )
    });
    assert!(
        names_the_store(&degraded),
        "/ready names the store that is down: {degraded}"
    );
    assert_eq!(a.active_calls(), 1.0, "the call is still up on node a");
    assert!(
        listed_calls(a).contains(&call_id),
        "node a still lists its call with PostgreSQL down"
    );

    cluster.postgres.as_mut().unwrap().start_again();
    let started = Instant::now();
    for node in &cluster.nodes {
        let healthy = poll(Duration::from_secs(30), || {
            let ready = node.ready().0 == 200;
            let write = node.try_api("POST", &path, Some(HANGUP_ON_STAR_0)).ok()?;
            (ready && write.status == 200).then_some(())
        });
        assert!(
            healthy.is_some(),
            "node {} is not back (ready {:?}) 30 s after PostgreSQL came back",
            node.name(),
            node.ready()
        );
    }
    println!(
        "cluster healthy again {:?} after PostgreSQL restart",
        started.elapsed()
    );
    for (node, pid) in cluster.nodes.iter_mut().zip(&pids) {
        assert!(node.is_running(), "node {} exited", node.name());
        assert_eq!(node.pid(), *pid, "node {} restarted", node.name());
    }

    let a = cluster.node(0);
    let hangup = a.api(
        "PUT",
        &format!("/v2/accounts/{ACCOUNT}/channels/{call_id}"),
        Some(r#"{"action":"metaflow","data":{"module":"hangup"}}"#),
    );
    assert_eq!(hangup.status, 202, "{}", hangup.body);
    let caller = caller.wait(RUN_LIMIT);
    let pbx = pbx.wait(RUN_LIMIT);
    caller.assert_success("caller whose call outlived the PostgreSQL restart");
    pbx.assert_success("PBX whose call outlived the PostgreSQL restart");
}
