//! Runs a real Kamailio (5.6, Debian's `kamailio` package) for one test, with a configuration the
//! test writes: the SIP proxy, registrar or dispatcher in front of or behind metaflow-proxy.
//!
//! Kamailio runs in the foreground (`-DD -E`) in its own process group with its own runtime
//! directory, pid file and working directory, all in a temporary directory, with little memory
//! (`-m 16 -M 4`) and one worker per transport. It listens on the address given by the test
//! (normally on 127.0.0.2, so it never meets anything bound on 127.0.0.1, nor a system service on
//! port 5060). Its log goes to a file printed when the test fails. Dropping it kills the whole
//! process group (Kamailio forks its workers).

use std::fs::File;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::spawn_peer;

/// Where Debian installs Kamailio's modules.
pub const MODULES_DIR: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";

/// How long Kamailio may take to answer its first OPTIONS.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running Kamailio; its process group is killed on drop and its log printed if the test is
/// failing.
pub struct Kamailio {
    child: Child,
    dir: tempfile::TempDir,
    ip: String,
    port: u16,
}

impl Kamailio {
    /// Starts Kamailio listening on `ip:port` over UDP and TCP with `config`: the module
    /// loading, module parameters and routing blocks of a configuration file. The global part
    /// (listen sockets, module path, process counts, logging to stderr) is written before it.
    /// `config` must answer an OPTIONS addressed to Kamailio itself with 200 (see
    /// [`OPTIONS_TO_MYSELF`]): that answer is how the start is detected. Returns once it
    /// answers; panics with its log after 10 s or if it exits.
    pub fn start(ip: &str, port: u16, config: &str) -> Kamailio {
        super::require_tool("kamailio");
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("run");
        std::fs::create_dir(&run_dir).unwrap();
        let cfg_path = dir.path().join("kamailio.cfg");
        let text = format!(
            "#!KAMAILIO\n\
             debug=2\n\
             log_stderror=yes\n\
             fork=yes\n\
             children=1\n\
             tcp_children=1\n\
             auto_aliases=no\n\
             dns=no\n\
             rev_dns=no\n\
             use_dns_cache=no\n\
             listen=udp:{ip}:{port}\n\
             listen=tcp:{ip}:{port}\n\
             alias=\"{ip}:{port}\"\n\
             mpath=\"{MODULES_DIR}\"\n\
             {config}\n"
        );
        std::fs::write(&cfg_path, &text).unwrap();
        let log = File::create(dir.path().join("kamailio.log")).unwrap();
        let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
        let mut command = Command::new("kamailio");
        command
            .args(["-DD", "-E", "-m", "16", "-M", "4", "-f"])
            .arg(path(&cfg_path))
            .arg("-Y")
            .arg(path(&run_dir))
            .arg("-P")
            .arg(path(&dir.path().join("kamailio.pid")))
            .arg("-w")
            .arg(dir.path());
        let child = spawn_peer(&mut command, log, "kamailio");
        let mut kamailio = Kamailio {
            child,
            dir,
            ip: ip.to_owned(),
            port,
        };
        kamailio.wait_ready(&text);
        kamailio
    }

    /// Starts Kamailio on a complete configuration file of the repository (for instance
    /// `config/kamailio-dispatcher.cfg`) as an operator would, with `defines` passed as `-A`
    /// preprocessor defines (`SIP_IP=127.0.0.5`, `DS_LIST="/tmp/x.list"`): the file must listen
    /// on `ip:port` once they apply, and answer an OPTIONS addressed to itself with 200. Runs in
    /// the foreground with logging to stderr (`-E`) and the same memory, runtime directory and
    /// working directory as [`Kamailio::start`]; returns once it answers.
    pub fn start_file(ip: &str, port: u16, config_file: &Path, defines: &[String]) -> Kamailio {
        super::require_tool("kamailio");
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("run");
        std::fs::create_dir(&run_dir).unwrap();
        let log = File::create(dir.path().join("kamailio.log")).unwrap();
        let mut command = Command::new("kamailio");
        command
            .args(["-DD", "-E", "-m", "16", "-M", "4", "-f"])
            .arg(config_file)
            .arg("-Y")
            .arg(&run_dir)
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-w")
            .arg(dir.path());
        for define in defines {
            command.arg("-A").arg(define);
        }
        let child = spawn_peer(&mut command, log, "kamailio");
        let mut kamailio = Kamailio {
            child,
            dir,
            ip: ip.to_owned(),
            port,
        };
        let described = format!("{} with -A {defines:?}", config_file.display());
        kamailio.wait_ready(&described);
        kamailio
    }

    fn wait_ready(&mut self, config: &str) {
        let socket = UdpSocket::bind((self.ip.as_str(), 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let local = socket.local_addr().unwrap();
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut attempt = 0;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "kamailio exited with {status} before answering OPTIONS:\n{}\n\
                     ===== configuration =====\n{config}",
                    self.log()
                );
            }
            attempt += 1;
            let options = format!(
                "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKready{attempt}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=probe{attempt}\r\n\
                 To: <sip:{addr}>\r\nCall-ID: ready-{attempt}@{local}\r\nCSeq: {attempt} OPTIONS\r\n\
                 Content-Length: 0\r\n\r\n",
                addr = self.addr()
            );
            let _ = socket.send_to(options.as_bytes(), self.addr());
            let mut buf = [0u8; 2048];
            if let Ok((n, _)) = socket.recv_from(&mut buf)
                && buf[..n].starts_with(b"SIP/2.0 200")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kamailio did not answer OPTIONS on {} within {READY_TIMEOUT:?}:\n{}\n\
                 ===== configuration =====\n{config}",
                self.addr(),
                self.log()
            );
        }
    }

    /// `IP:PORT` Kamailio listens on (UDP and TCP).
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Everything Kamailio logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    /// Waits up to `within` for a log line containing `needle`; whether it came.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The log lines containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // The main process and the workers it forked share the process group started above.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("===== kamailio log ({}) =====\n{}", self.addr(), self.log());
        }
    }
}

/// A `request_route` fragment that answers an OPTIONS addressed to Kamailio itself with 200
/// and stops: the readiness probe of [`Kamailio::start`].
pub const OPTIONS_TO_MYSELF: &str = "\
    if (is_method(\"OPTIONS\") && uri==myself && $rU==$null) {\n\
        sl_send_reply(\"200\", \"OK\");\n\
        exit;\n\
    }\n";

/// The modules every test configuration loads: transactions, stateless replies, record-routing,
/// hop limit, header operations, pseudo-variables and logging.
pub const BASE_MODULES: &str = "\
loadmodule \"tm.so\"\n\
loadmodule \"sl.so\"\n\
loadmodule \"rr.so\"\n\
loadmodule \"pv.so\"\n\
loadmodule \"maxfwd.so\"\n\
loadmodule \"textops.so\"\n\
loadmodule \"siputils.so\"\n\
loadmodule \"xlog.so\"\n\
loadmodule \"sanity.so\"\n\
loadmodule \"kex.so\"\n\
loadmodule \"corex.so\"\n\
modparam(\"rr\", \"enable_full_lr\", 0)\n\
modparam(\"rr\", \"append_fromtag\", 1)\n";
