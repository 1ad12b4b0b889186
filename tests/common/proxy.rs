//! Runs the metaflow-proxy binary for one test, with its own ports and data directory.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::ports::CallPorts;

/// How long the proxy may take to answer 200 on `GET /ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running proxy; killed on drop. Its output is printed if the test is failing.
pub struct Proxy {
    child: Child,
    ports: CallPorts,
    data_dir: PathBuf,
    /// The temporary directory behind `data_dir`, removed on drop (none when the test gave one).
    _data_tmp: Option<tempfile::TempDir>,
    log_dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts the proxy on loopback with fresh ports (SIP, API, RTP range), `--upstream` set to
    /// the port reserved for the UAS, a temporary `--data-dir`, plus `extra_args`. Returns once
    /// `GET /ready` answers 200; panics (printing the proxy's output) after 10 s or if it exits.
    pub fn start(extra_args: &[&str]) -> Proxy {
        let data_tmp = tempfile::tempdir().unwrap();
        let data_dir = data_tmp.path().to_owned();
        Self::start_with(data_dir, Some(data_tmp), extra_args)
    }

    /// As [`Proxy::start`], with `--data-dir` the given directory (which the test cleans up).
    pub fn start_in(data_dir: &Path, extra_args: &[&str]) -> Proxy {
        Self::start_with(data_dir.to_owned(), None, extra_args)
    }

    fn start_with(
        data_dir: PathBuf,
        data_tmp: Option<tempfile::TempDir>,
        extra_args: &[&str],
    ) -> Proxy {
        Self::launch_on(Bind::default(), data_dir, data_tmp, extra_args)
    }

    /// Starts the proxy on fresh ports with the addresses of `bind`, `--data-dir data_dir`
    /// (`data_tmp` is kept alive with it) and `extra_args`; returns once `/ready` is 200.
    fn launch_on(
        bind: Bind<'_>,
        data_dir: PathBuf,
        data_tmp: Option<tempfile::TempDir>,
        extra_args: &[&str],
    ) -> Proxy {
        let ports = CallPorts::reserve();
        let log_dir = tempfile::tempdir().unwrap();
        let log = File::create(log_dir.path().join("proxy.log")).unwrap();
        let sip = format!("{}:{}", bind.sip_ip, ports.proxy_sip);
        let upstream = bind
            .upstream
            .map_or_else(|| format!("127.0.0.1:{}", ports.uas_sip), str::to_owned);
        let api = format!("127.0.0.1:{}", ports.api);
        let rtp = ports.rtp_range();
        let data_path = data_dir.to_str().unwrap().to_owned();
        let mut args: Vec<&str> = vec![
            "--sip-listen",
            &sip,
            "--upstream",
            &upstream,
            "--media-ip",
            bind.media_ip,
            "--rtp-ports",
            &rtp,
            "--api-listen",
            &api,
            "--data-dir",
            &data_path,
        ];
        // The userspace relay keeps its whole suite: the kernel path is only used where a test
        // asks for it (or the whole suite is run again with MFP_TEST_FASTPATH=kernel).
        let fastpath = std::env::var("MFP_TEST_FASTPATH").unwrap_or_else(|_| "off".to_owned());
        if !extra_args.contains(&"--media-fastpath") {
            args.extend_from_slice(&["--media-fastpath", &fastpath]);
        }
        args.extend_from_slice(extra_args);
        let child = launch(&args, log, "start");
        let mut proxy = Proxy {
            child,
            ports,
            data_dir,
            _data_tmp: data_tmp,
            log_dir,
        };
        proxy.wait_ready(&args);
        proxy
    }

    fn wait_ready(&mut self, args: &[&str]) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "metaflow-proxy {args:?} exited with {status} before /ready:\n{}",
                    self.output()
                );
            }
            if let Ok((200, _)) = http_get(self.api_socket(), "/ready") {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "metaflow-proxy {args:?} not ready after {READY_TIMEOUT:?}:\n{}",
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The proxy's SIP address, `127.0.0.1:PORT`: where a caller sends its INVITE.
    pub fn sip_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.proxy_sip)
    }

    /// The port the proxy sends new calls to: the UAS (the PBX) must listen here.
    pub fn upstream_port(&self) -> u16 {
        self.ports.uas_sip
    }

    /// The HTTP API address, `127.0.0.1:PORT`.
    pub fn api_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.api)
    }

    /// The proxy's `--data-dir`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The whole port block of this call: SIPp SIP and media ports, the proxy's RTP range.
    pub fn ports(&self) -> &CallPorts {
        &self.ports
    }

    /// The body of `GET /metrics`; panics unless it answers 200.
    pub fn metrics(&self) -> String {
        match http_get(self.api_socket(), "/metrics") {
            Ok((200, body)) => body,
            Ok((status, body)) => panic!("GET /metrics answered {status}: {body}"),
            Err(err) => panic!("GET /metrics failed: {err}"),
        }
    }

    /// Everything the proxy printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.log_dir.path().join("proxy.log")
    }

    fn api_socket(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.api))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("===== metaflow-proxy output =====\n{}", self.output());
        }
    }
}

/// Runs the metaflow-proxy binary with `args`, its output going to `log` and `RUST_LOG`
/// defaulting to `debug`; panics saying it could not `verb` the proxy when it cannot run.
fn launch(args: &[&str], log: File, verb: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_metaflow-proxy"))
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "debug".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|err| panic!("cannot {verb} metaflow-proxy: {err}"))
}

/// A minimal HTTP/1.0 GET (so the answer is never chunked): returns the status and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or("");
    Ok((status, body.to_owned()))
}

/// Sum of the samples of metric `name` (any labels) whose label set contains every `labels`
/// pair, written as `key="value"`; `None` when no such sample exists.
pub fn metric_sum(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in metrics.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        if series_name != name || !labels.iter().all(|label| series_labels.contains(label)) {
            continue;
        }
        if let Ok(value) = value.parse::<f64>() {
            found = Some(found.unwrap_or(0.0) + value);
        }
    }
    found
}

/// One HTTP answer read by [`http_request`]: the status, the headers (names lower-cased) and
/// the body.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    /// The body parsed as JSON; panics (quoting the body) when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.body))
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A minimal HTTP/1.0 request (so the answer is never chunked) with an optional
/// `X-Auth-Token` and an optional JSON body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<HttpReply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    if let Some(token) = token {
        request.push_str(&format!("X-Auth-Token: {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
        request.push_str("Content-Type: application/json\r\n");
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:?}")))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok(HttpReply {
        status,
        headers,
        body: body.to_owned(),
    })
}

impl Proxy {
    /// Sends `method path` to this proxy's API with an optional token and JSON body; panics
    /// when the request cannot be made.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> HttpReply {
        http_request(self.api_socket(), method, path, token, body)
            .unwrap_or_else(|err| panic!("{method} {path} failed: {err}"))
    }

    /// Kills the proxy with SIGKILL (no chance to flush or close anything), then starts it
    /// again on the same ports and data directory with `extra_args`; returns once `/ready`
    /// answers 200. The output of both runs stays in the same log.
    pub fn kill_and_restart(&mut self, extra_args: &[&str]) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
        let log = File::options().append(true).open(self.log_path()).unwrap();
        let ports = &self.ports;
        let owned: Vec<String> = vec![
            "--sip-listen".into(),
            format!("127.0.0.1:{}", ports.proxy_sip),
            "--upstream".into(),
            format!("127.0.0.1:{}", ports.uas_sip),
            "--media-ip".into(),
            "127.0.0.1".into(),
            "--rtp-ports".into(),
            ports.rtp_range(),
            "--api-listen".into(),
            format!("127.0.0.1:{}", ports.api),
            "--data-dir".into(),
            self.data_dir.to_str().unwrap().to_owned(),
        ];
        let mut args: Vec<&str> = owned.iter().map(String::as_str).collect();
        args.extend_from_slice(extra_args);
        self.child = launch(&args, log, "restart");
        self.wait_ready(&args);
    }

    /// Every event of `DATA_DIR/events.jsonl` so far, one JSON object per line (a torn last
    /// line is skipped).
    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.data_dir().join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl Proxy {
    /// Process id of the running proxy (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the proxy to exit; its exit status, if it did.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Proxy {
    /// Starts the proxy like [`Proxy::start`] but with its SIP socket bound to `sip_ip` and its
    /// media sockets to `media_ip` (for instance the wildcard, with advertised addresses in
    /// `extra_args`), on the ports reserved for it.
    pub fn start_bound(sip_ip: &str, media_ip: &str, extra_args: &[&str]) -> Proxy {
        let data_tmp = tempfile::tempdir().unwrap();
        let data_dir = data_tmp.path().to_owned();
        let bind = Bind {
            sip_ip,
            media_ip,
            upstream: None,
        };
        Self::launch_on(bind, data_dir, Some(data_tmp), extra_args)
    }

    /// Starts the proxy like [`Proxy::start`] but with `--upstream upstream` (`IP:PORT`, for
    /// instance a Kamailio in front of the PBX) instead of the port reserved for the UAS.
    pub fn start_with_upstream(upstream: &str, extra_args: &[&str]) -> Proxy {
        let data_tmp = tempfile::tempdir().unwrap();
        let data_dir = data_tmp.path().to_owned();
        let bind = Bind {
            upstream: Some(upstream),
            ..Bind::default()
        };
        Self::launch_on(bind, data_dir, Some(data_tmp), extra_args)
    }
}

/// Where a test proxy binds: its SIP and media addresses, and its upstream (the UAS's reserved
/// port when `None`).
struct Bind<'a> {
    sip_ip: &'a str,
    media_ip: &'a str,
    upstream: Option<&'a str>,
}

impl Default for Bind<'_> {
    fn default() -> Self {
        Bind {
            sip_ip: "127.0.0.1",
            media_ip: "127.0.0.1",
            upstream: None,
        }
    }
}
