//! The cluster harness of `tests/cluster.rs`: three metaflow-proxy nodes on 127.0.0.2, .3 and
//! .4 (each with its own SIP, API and RTP ports and data directory), their shared store (the
//! embedded redb of each node, or one temporary PostgreSQL), one SIPp PBX on 127.0.0.1 that is
//! every node's upstream, and Kamailio on 127.0.0.5 running the operator's dispatcher
//! configuration `config/kamailio-dispatcher.cfg` unchanged, with the test's list file, address
//! and probe interval given as `-A` defines.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::kamailio::Kamailio;
use crate::common::ports::CallPorts;
use crate::common::postgres::Postgres;
use crate::common::proxy::{HttpReply, http_get, http_request, metric_sum};
use crate::common::sipp::Sipp;

/// The operator token every node accepts (`--api-auth-token`): one token opens the whole
/// cluster, as an operator configures it.
pub const TOKEN: &str = "cluster-test-token";
/// The nodes' names (`--node-id`) and addresses (SIP, media and API).
pub const NODES: [(&str, &str); 3] = [("a", "127.0.0.2"), ("b", "127.0.0.3"), ("c", "127.0.0.4")];
/// Where Kamailio listens.
pub const DISPATCHER_IP: &str = "127.0.0.5";
/// How long a node may take to answer 200 on `/ready` (with PostgreSQL: migrations included).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Seconds between two OPTIONS probes of each node by the test Kamailio.
const PROBE_INTERVAL_SECS: u32 = 1;
/// Milliseconds Kamailio waits for any reply from a node before trying the next.
const FR_TIMER_MS: u32 = 1000;

/// Where the nodes keep the `/v2` documents.
#[derive(Clone, Debug)]
pub enum Store {
    /// Each node its own embedded store (the default; no `--store`, no `--node-id`).
    Redb,
    /// One PostgreSQL for all (`--store URL --node-id NAME`).
    Postgres(String),
}

/// One metaflow-proxy node; killed on drop, its output printed if the test is failing.
pub struct Node {
    name: &'static str,
    ip: &'static str,
    child: Child,
    ports: CallPorts,
    _data: tempfile::TempDir,
    data_dir: PathBuf,
    log_dir: tempfile::TempDir,
}

impl Node {
    /// Starts node `name` on `ip` with `upstream` (`IP:PORT`) as its PBX and `store`; returns
    /// once `/ready` answers 200, panics with its output after [`READY_TIMEOUT`].
    pub fn start(name: &'static str, ip: &'static str, upstream: &str, store: &Store) -> Node {
        let ports = CallPorts::reserve();
        let data = tempfile::tempdir().unwrap();
        let data_dir = data.path().to_owned();
        let log_dir = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = vec![
            "--sip-listen".into(),
            format!("{ip}:{}", ports.proxy_sip),
            "--upstream".into(),
            upstream.into(),
            "--media-ip".into(),
            ip.into(),
            "--rtp-ports".into(),
            ports.rtp_range(),
            "--api-listen".into(),
            format!("{ip}:{}", ports.api),
            "--data-dir".into(),
            data_dir.to_str().unwrap().into(),
            "--api-auth-token".into(),
            TOKEN.into(),
        ];
        if let Store::Postgres(url) = store {
            args.extend([
                "--store".into(),
                url.clone(),
                "--node-id".into(),
                name.into(),
            ]);
        }
        let log = File::create(log_dir.path().join("node.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_metaflow-proxy"))
            .args(&args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start metaflow-proxy node {name}: {err}"));
        let mut node = Node {
            name,
            ip,
            child,
            ports,
            _data: data,
            data_dir,
            log_dir,
        };
        node.wait_ready(&args);
        node
    }

    fn wait_ready(&mut self, args: &[String]) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "node {} ({args:?}) exited with {status} before /ready:\n{}",
                    self.name,
                    self.output()
                );
            }
            if let Ok((200, _)) = http_get(self.api_socket(), "/ready") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} ({args:?}) not ready after {READY_TIMEOUT:?}:\n{}",
                self.name,
                self.output()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The node's `--node-id`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `IP:PORT` of the node's SIP socket (UDP and TCP).
    pub fn sip_addr(&self) -> String {
        format!("{}:{}", self.ip, self.ports.proxy_sip)
    }

    /// The node's API address (`api-listen`, also what the other nodes use to reach it).
    pub fn api_socket(&self) -> SocketAddr {
        format!("{}:{}", self.ip, self.ports.api).parse().unwrap()
    }

    /// The port block of the node: callers sending to it directly use its UAC ports.
    pub fn ports(&self) -> &CallPorts {
        &self.ports
    }

    /// `method path` with the cluster token and an optional JSON body; `Err` when the node
    /// cannot be reached.
    pub fn try_api(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<HttpReply> {
        http_request(self.api_socket(), method, path, Some(TOKEN), body)
    }

    /// As [`Node::try_api`], panicking when the node cannot be reached.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> HttpReply {
        self.try_api(method, path, body).unwrap_or_else(|err| {
            panic!(
                "{method} {path} on node {} failed: {err}\n{}",
                self.name,
                self.output()
            )
        })
    }

    /// Status and body of `GET /ready` (no token needed).
    pub fn ready(&self) -> (u16, String) {
        http_get(self.api_socket(), "/ready")
            .unwrap_or_else(|err| panic!("GET /ready on node {} failed: {err}", self.name))
    }

    /// The body of `GET /metrics`; panics unless it answers 200.
    pub fn metrics(&self) -> String {
        match http_get(self.api_socket(), "/metrics") {
            Ok((200, body)) => body,
            other => panic!("GET /metrics on node {} answered {other:?}", self.name),
        }
    }

    /// Calls the node has ended (`metaflow_proxy_calls_total`, any outcome).
    pub fn calls_ended(&self) -> f64 {
        metric_sum(&self.metrics(), "metaflow_proxy_calls_total", &[]).unwrap_or(0.0)
    }

    /// Calls in progress on the node (`metaflow_proxy_active_calls`).
    pub fn active_calls(&self) -> f64 {
        metric_sum(&self.metrics(), "metaflow_proxy_active_calls", &[]).unwrap_or(0.0)
    }

    /// RTP packets the node has relayed.
    pub fn rtp_packets(&self) -> f64 {
        metric_sum(&self.metrics(), "metaflow_proxy_rtp_packets_total", &[]).unwrap_or(0.0)
    }

    /// Process id of the node.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the node's process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no chance to flush, close or say goodbye.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Every event of the node's `events.jsonl` so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.data_dir.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Everything the node printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("node.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "===== node {} ({}) output =====\n{}",
                self.name,
                self.sip_addr(),
                self.output()
            );
        }
    }
}

/// Three nodes, their PBX's port block and, for the PostgreSQL store, the database.
pub struct Cluster {
    /// The nodes a, b and c, in that order.
    pub nodes: Vec<Node>,
    /// The PBX listens on `uas_sip`; callers through Kamailio use `uac_sip`/`uac_media`.
    pub pbx_ports: CallPorts,
    /// The shared database (dropped after the nodes).
    pub postgres: Option<Postgres>,
}

impl Cluster {
    /// Three nodes on the embedded store (each its own).
    pub fn start_redb() -> Cluster {
        Self::start(None)
    }

    /// A temporary PostgreSQL and three nodes sharing it.
    pub fn start_postgres() -> Cluster {
        Self::start(Some(Postgres::start()))
    }

    fn start(postgres: Option<Postgres>) -> Cluster {
        let store = postgres
            .as_ref()
            .map_or(Store::Redb, |pg| Store::Postgres(pg.url()));
        let pbx_ports = CallPorts::reserve();
        let upstream = format!("127.0.0.1:{}", pbx_ports.uas_sip);
        let nodes = NODES
            .iter()
            .map(|(name, ip)| Node::start(name, ip, &upstream, &store))
            .collect();
        Cluster {
            nodes,
            pbx_ports,
            postgres,
        }
    }

    /// Node `index` (0: a, 1: b, 2: c).
    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    /// The PBX: SIPp `uas` on the nodes' upstream port, taking up to `calls` calls, not yet
    /// started.
    pub fn pbx(&self, uas: &str, calls: u32, timeout_secs: u32) -> Sipp {
        Sipp::uas(uas)
            .local_port(self.pbx_ports.uas_sip)
            .media_port(self.pbx_ports.uas_media)
            .calls(calls)
            .timeout_secs(timeout_secs)
    }

    /// A caller sending straight to `node`, from that node's caller ports, not yet started.
    pub fn caller_to(&self, node: &Node, uac: &str, timeout_secs: u32) -> Sipp {
        Sipp::uac(uac, &node.sip_addr())
            .local_port(node.ports().uac_sip)
            .media_port(node.ports().uac_media)
            .timeout_secs(timeout_secs)
    }

    /// Kamailio on [`DISPATCHER_IP`] running `config/kamailio-dispatcher.cfg` over the nodes,
    /// probing them every [`PROBE_INTERVAL_SECS`]; returns once it answers OPTIONS.
    pub fn dispatcher(&self) -> Dispatcher {
        let list_dir = tempfile::tempdir().unwrap();
        let list = list_dir.path().join("dispatcher.list");
        let mut text = String::from("# set destination flags priority\n");
        for node in &self.nodes {
            text.push_str(&format!("1 sip:{} 0 0\n", node.sip_addr()));
        }
        std::fs::write(&list, text).unwrap();
        let port = self.pbx_ports.proxy_sip;
        let config =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/kamailio-dispatcher.cfg");
        let defines = vec![
            format!("SIP_IP={DISPATCHER_IP}"),
            format!("SIP_PORT={port}"),
            format!("DS_LIST=\"{}\"", list.display()),
            format!("DS_PING_INTERVAL={PROBE_INTERVAL_SECS}"),
            format!("FR_TIMER={FR_TIMER_MS}"),
            // One worker relays replies in the order they came: SIPp aborts a call on a 180
            // that arrives after the 200 OK, which parallel workers can make happen.
            "UDP_WORKERS=1".to_owned(),
        ];
        let kamailio = Kamailio::start_file(DISPATCHER_IP, port, &config, &defines);
        Dispatcher {
            kamailio,
            _list_dir: list_dir,
        }
    }

    /// A caller sending to Kamailio from the cluster's caller ports, not yet started.
    pub fn caller_via(&self, dispatcher: &Dispatcher, uac: &str, timeout_secs: u32) -> Sipp {
        Sipp::uac(uac, &dispatcher.kamailio.addr())
            .local_port(self.pbx_ports.uac_sip)
            .media_port(self.pbx_ports.uac_media)
            .timeout_secs(timeout_secs)
    }
}

/// Kamailio in front of the cluster, and its list file.
pub struct Dispatcher {
    /// The running Kamailio (log, address).
    pub kamailio: Kamailio,
    _list_dir: tempfile::TempDir,
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`; `None` after that.
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}
