//! Runs SIPp scenarios from `tests/sipp/` non-interactively and collects their outcome.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::ports::port_in_use;

/// A SIPp invocation being put together; [`Sipp::spawn`] starts it.
pub struct Sipp {
    scenario: String,
    remote: Option<String>,
    local_port: Option<u16>,
    media_port: Option<u16>,
    calls: u32,
    timeout_secs: u32,
    keys: Vec<(String, String)>,
}

impl Sipp {
    /// A caller running `tests/sipp/<scenario>` towards `remote` (`HOST:PORT`).
    pub fn uac(scenario: &str, remote: &str) -> Sipp {
        Sipp::new(scenario, Some(remote.to_owned()))
    }

    /// A callee running `tests/sipp/<scenario>`, waiting for the INVITE.
    pub fn uas(scenario: &str) -> Sipp {
        Sipp::new(scenario, None)
    }

    fn new(scenario: &str, remote: Option<String>) -> Sipp {
        Sipp {
            scenario: scenario.to_owned(),
            remote,
            local_port: None,
            media_port: None,
            calls: 1,
            timeout_secs: 20,
            keys: Vec::new(),
        }
    }

    /// SIP port (`-p`).
    pub fn local_port(mut self, port: u16) -> Sipp {
        self.local_port = Some(port);
        self
    }

    /// Media port (`-mp`): written in the SDP as `[media_port]`; SIPp binds it and port + 2.
    pub fn media_port(mut self, port: u16) -> Sipp {
        self.media_port = Some(port);
        self
    }

    /// Number of calls before SIPp exits (`-m`, default 1).
    pub fn calls(mut self, calls: u32) -> Sipp {
        self.calls = calls;
        self
    }

    /// SIPp's own global timeout (`-timeout N -timeout_error`): reaching it fails the run.
    pub fn timeout_secs(mut self, secs: u32) -> Sipp {
        self.timeout_secs = secs;
        self
    }

    /// A `-key NAME VALUE` pair, available in the scenario as `[NAME]`.
    pub fn key(mut self, name: &str, value: &str) -> Sipp {
        self.keys.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Path of a scenario shipped in `tests/sipp/`.
    pub fn scenario_path(scenario: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario)
    }

    /// The command-line arguments this builder stands for.
    pub fn args(&self, log_dir: &std::path::Path) -> Vec<String> {
        let path = Self::scenario_path(&self.scenario);
        assert!(path.is_file(), "missing scenario {}", path.display());
        let mut args = vec!["-sf".to_owned(), path.display().to_string()];
        args.extend(self.remote.iter().cloned());
        let log = |name: &str| log_dir.join(name).display().to_string();
        let fixed = [
            ("-i", "127.0.0.1".to_owned()),
            ("-m", self.calls.to_string()),
            ("-timeout", format!("{}s", self.timeout_secs)),
            ("-message_file", log("messages.log")),
            ("-error_file", log("errors.log")),
        ];
        for (flag, value) in fixed {
            args.push(flag.to_owned());
            args.push(value);
        }
        for (flag, port) in [("-p", self.local_port), ("-mp", self.media_port)] {
            if let Some(port) = port {
                args.push(flag.to_owned());
                args.push(port.to_string());
            }
        }
        for (name, value) in &self.keys {
            args.extend(["-key".to_owned(), name.clone(), value.clone()]);
        }
        args.extend(["-timeout_error", "-trace_msg", "-trace_err", "-nostdin"].map(str::to_owned));
        args
    }

    /// Starts SIPp with stdin closed and its output in files. For a callee with a fixed port,
    /// returns only once that port is bound, so that a caller started next is not refused.
    pub fn spawn(self) -> RunningSipp {
        self.spawn_with_args(&[])
    }
}

/// A SIPp process started by [`Sipp::spawn`]; killed on drop if still running.
pub struct RunningSipp {
    child: Child,
    log_dir: tempfile::TempDir,
    label: String,
}

impl RunningSipp {
    /// Waits for SIPp to exit (killing it after `limit`) and collects its exit status and logs.
    pub fn wait(mut self, limit: Duration) -> SippResult {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(50));
        };
        let read = |name: &str| {
            std::fs::read_to_string(self.log_dir.path().join(name)).unwrap_or_default()
        };
        SippResult {
            label: self.label.clone(),
            success: status.is_some_and(|status| status.success()),
            exit_code: status.and_then(|status| status.code()),
            stdout: read("stdout.txt"),
            stderr: read("stderr.txt"),
            message_log: read("messages.log"),
            error_log: read("errors.log"),
        }
    }
}

impl Drop for RunningSipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one SIPp run did. `success` is true when SIPp exited 0: every call succeeded.
#[derive(Debug)]
pub struct SippResult {
    pub label: String,
    pub success: bool,
    /// `None` when killed for running past the limit given to [`RunningSipp::wait`].
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Every SIP message sent and received (`-trace_msg`).
    pub message_log: String,
    /// Unexpected messages and errors (`-trace_err`).
    pub error_log: String,
}

impl SippResult {
    /// Panics with the logs of the run unless SIPp exited 0.
    pub fn assert_success(&self, role: &str) {
        assert!(
            self.success,
            "{role} failed (exit code {:?}): {}\n--- errors ---\n{}\n--- messages ---\n{}\n\
             --- stderr ---\n{}\n--- last screen ---\n{}",
            self.exit_code,
            self.label,
            self.error_log,
            self.message_log,
            self.stderr,
            last_chars(&self.stdout, 3000)
        );
    }

    /// The SIP messages SIPp received, in order, as text.
    pub fn received(&self) -> Vec<String> {
        self.messages("message received")
    }

    /// The SIP messages SIPp sent, in order, as text.
    pub fn sent(&self) -> Vec<String> {
        self.messages("message sent")
    }

    fn messages(&self, direction: &str) -> Vec<String> {
        // Each entry: a line of dashes and a date, "UDP message sent (N bytes):", a blank
        // line, the message.
        self.message_log
            .split(LOG_SEPARATOR)
            .filter_map(|entry| {
                let (_date, rest) = entry.split_once('\n')?;
                let (kind, message) = rest.split_once("\n\n")?;
                kind.contains(direction)
                    .then(|| message.trim_end().to_owned())
            })
            .collect()
    }
}

/// Start of each entry of SIPp's message log (the log's own line is a longer run of dashes).
const LOG_SEPARATOR: &str = "----------------------------------------";

/// The value of the first `name:` header of a SIP message (case-insensitive name).
pub fn header(message: &str, name: &str) -> Option<String> {
    message.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// The port of the first `m=audio` line of a SIP message's SDP body.
pub fn sdp_audio_port(message: &str) -> Option<u16> {
    message
        .lines()
        .find_map(|line| line.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
}

/// The address of the first `c=IN IP4` line of a SIP message's SDP body.
pub fn sdp_connection_ip(message: &str) -> Option<String> {
    message
        .lines()
        .find_map(|line| line.trim().strip_prefix("c=IN IP4 "))
        .map(|ip| ip.trim().to_owned())
}

fn last_chars(text: &str, count: usize) -> &str {
    let start = text.len().saturating_sub(count);
    let start = (start..=text.len())
        .find(|&index| text.is_char_boundary(index))
        .unwrap_or(text.len());
    &text[start..]
}

impl Sipp {
    /// Starts SIPp like [`Sipp::spawn`] with `extra_args` appended to its command line (for
    /// instance `["-t", "t1"]` for SIP over one TCP connection, `["-oocsf", path]` for an
    /// out-of-call scenario). For a callee with a fixed port, returns only once that port is
    /// bound: on TCP when `-t t1`/`-t tn` is among `extra_args`, else on UDP.
    pub fn spawn_with_args(self, extra_args: &[&str]) -> RunningSipp {
        super::require_tool("sipp");
        let log_dir = tempfile::tempdir().unwrap();
        let mut args = self.args(log_dir.path());
        args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
        let stdout = File::create(log_dir.path().join("stdout.txt")).unwrap();
        let stderr = File::create(log_dir.path().join("stderr.txt")).unwrap();
        let child = Command::new("sipp")
            .args(&args)
            .current_dir(log_dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start sipp: {err}"));
        let running = RunningSipp {
            child,
            log_dir,
            label: format!("sipp {}", args.join(" ")),
        };
        let over_tcp = extra_args
            .windows(2)
            .any(|pair| pair[0] == "-t" && pair[1].starts_with('t'));
        if let (None, Some(port)) = (&self.remote, self.local_port) {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !port_in_use(port, over_tcp) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        running
    }
}

impl SippResult {
    /// The transport of each logged message, in log order, with its direction: for example
    /// `("TCP", "sent")`. SIPp writes `UDP message sent` / `TCP message received` per entry.
    pub fn transports(&self) -> Vec<(String, String)> {
        self.message_log
            .split(LOG_SEPARATOR)
            .filter_map(|entry| {
                let (_date, rest) = entry.split_once('\n')?;
                let kind = rest.lines().next()?;
                let mut words = kind.split_whitespace();
                let transport = words.next()?.to_owned();
                if words.next()? != "message" {
                    return None; // e.g. SIPp's closing "Exit event" entry
                }
                let direction = words.next()?.trim_end_matches(':').to_owned();
                Some((transport, direction))
            })
            .collect()
    }
}

/// The first line of a SIP message (request line or status line).
pub fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim_end()
}

/// The sequence number of a SIP message's CSeq header.
pub fn cseq_number(message: &str) -> Option<u32> {
    header(message, "CSeq")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The branch parameter of a SIP message's top Via.
pub fn via_branch(message: &str) -> Option<String> {
    let via = header(message, "Via")?;
    let first = via.split(',').next()?;
    first
        .split(';')
        .find_map(|param| param.trim().strip_prefix("branch="))
        .map(str::to_owned)
}

/// The tag parameter of a From or To header value.
pub fn tag_param(value: &str) -> Option<&str> {
    value
        .split(';')
        .find_map(|param| param.trim().strip_prefix("tag="))
}
