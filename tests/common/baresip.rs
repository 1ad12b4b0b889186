//! Runs baresip (Debian's 1.0), a real softphone, headless for one test: its configuration and
//! account in a temporary directory, `aubridge` as speaker (no sound card), as microphone either
//! `aubridge` too or a WAV file looped by `aufile` (a tone, so that whoever hears the phone can
//! tell it by frequency). Optionally it takes commands over `ctrl_tcp` (dial, DTMF, hang up)
//! and records what it receives with `sndfile` (one WAV per call, decoded audio).
//!
//! Each phone listens on an address and ports of its own (SIP, control, a small RTP range), so
//! phones of tests running in parallel never meet. Dropping it kills it; its output is printed
//! if the test is failing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use super::spawn_peer;

use super::tones::{Audio, write_tone_wav};

/// Where Debian installs baresip's modules.
const MODULES_DIR: &str = "/usr/lib/baresip/modules";
/// Length of a tone file; `aufile` plays it once, so it outlasts any test call.
const TONE_SECONDS: u32 = 120;
/// How long a control command may take to be answered.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// How to start one baresip: built by [`Baresip::configure`], started by
/// [`PhoneConfig::start`].
pub struct PhoneConfig {
    ip: String,
    sip_port: u16,
    rtp_port: u16,
    account: String,
    control_port: Option<u16>,
    tone_hz: Option<f64>,
    record: bool,
}

impl PhoneConfig {
    /// Takes commands over TCP on `ip:port` (`ctrl_tcp`), for [`Baresip::command`].
    pub fn control(mut self, port: u16) -> PhoneConfig {
        self.control_port = Some(port);
        self
    }

    /// Sends a sine at `hz` as its microphone instead of silence.
    pub fn tone(mut self, hz: f64) -> PhoneConfig {
        self.tone_hz = Some(hz);
        self
    }

    /// Records the audio it receives (one WAV per call), for [`Baresip::received_audio`].
    pub fn record(mut self) -> PhoneConfig {
        self.record = true;
        self
    }

    /// Writes the configuration and starts baresip; returns at once (see
    /// [`Baresip::wait_registered`]).
    pub fn start(self) -> Baresip {
        super::require_tool("baresip");
        let dir = tempfile::tempdir().unwrap();
        let source = match self.tone_hz {
            Some(hz) => {
                let wav = dir.path().join("tone.wav");
                write_tone_wav(&wav, hz, TONE_SECONDS);
                format!("aufile,{}", wav.display())
            }
            None => "aubridge,none".to_owned(),
        };
        let ip = &self.ip;
        let mut config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t{ip}:{sip_port}\n\
             net_interface\t\t{ip}\n\
             audio_player\t\taubridge,none\n\
             audio_source\t\t{source}\n\
             audio_alert\t\taubridge,none\n\
             rtp_ports\t\t{rtp_port}-{rtp_last}\n\
             module_path\t\t{MODULES_DIR}\n\
             module\t\t\tg711.so\n\
             module\t\t\taufile.so\n\
             module\t\t\taubridge.so\n\
             module_app\t\taccount.so\n\
             module_app\t\tmenu.so\n",
            sip_port = self.sip_port,
            rtp_port = self.rtp_port,
            rtp_last = self.rtp_port + 3,
        );
        if let Some(port) = self.control_port {
            config.push_str(&format!(
                "module_app\t\tctrl_tcp.so\nctrl_tcp_listen\t\t{ip}:{port}\n"
            ));
        }
        let recordings = dir.path().join("rec");
        if self.record {
            std::fs::create_dir(&recordings).unwrap();
            config.push_str(&format!(
                "module\t\t\tsndfile.so\nsnd_path\t\t{}\n",
                recordings.display()
            ));
        }
        std::fs::write(dir.path().join("config"), config).unwrap();
        std::fs::write(dir.path().join("accounts"), format!("{}\n", self.account)).unwrap();
        let log = std::fs::File::create(dir.path().join("baresip.log")).unwrap();
        let child = spawn_peer(
            Command::new("baresip").arg("-f").arg(dir.path()),
            log,
            "baresip",
        );
        let control = self
            .control_port
            .map(|port| SocketAddr::new(self.ip.parse().unwrap(), port));
        Baresip {
            child,
            dir,
            control,
            recordings,
        }
    }
}

/// A running baresip; killed on drop, its output printed if the test is failing.
pub struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
    control: Option<SocketAddr>,
    recordings: PathBuf,
}

impl Baresip {
    /// A phone listening for SIP on `ip:sip_port`, with RTP on `rtp_port..=rtp_port + 3`, and
    /// one account line `account` (`<sip:user@domain>;outbound=…;answermode=auto`, say).
    pub fn configure(ip: &str, sip_port: u16, rtp_port: u16, account: &str) -> PhoneConfig {
        PhoneConfig {
            ip: ip.to_owned(),
            sip_port,
            rtp_port,
            account: account.to_owned(),
            control_port: None,
            tone_hz: None,
            record: false,
        }
    }

    /// Everything baresip printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }

    /// Waits up to `within` for `needle` in baresip's output; panics with the output if it
    /// does not come or baresip exits.
    pub fn wait_for(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.output().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("baresip exited with {status}:\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "baresip did not print {needle:?} within {within:?}:\n{}",
                self.output()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `within` for baresip to report its registration answered 200.
    pub fn wait_registered(&mut self, within: Duration) {
        self.wait_for("200 OK", within);
    }

    /// Sends `command` (a `menu` command: `dial`, `sndcode`, `hangup`…) with `params` over
    /// `ctrl_tcp` and returns the answer's `data`; panics unless baresip answers `ok`.
    pub fn command(&self, command: &str, params: &str) -> String {
        let addr = self
            .control
            .expect("this phone was configured without control");
        let mut stream = TcpStream::connect_timeout(&addr, COMMAND_TIMEOUT)
            .unwrap_or_else(|err| panic!("cannot reach baresip's control on {addr}: {err}"));
        stream.set_read_timeout(Some(COMMAND_TIMEOUT)).unwrap();
        let body =
            serde_json::json!({"command": command, "params": params, "token": "test"}).to_string();
        write!(stream, "{}:{body},", body.len()).unwrap();
        let mut reader = BufReader::new(stream);
        // ctrl_tcp speaks netstrings; events may come before the command's response.
        loop {
            let mut length = Vec::new();
            reader.read_until(b':', &mut length).unwrap();
            let length: usize = String::from_utf8_lossy(&length)
                .trim_end_matches(':')
                .parse()
                .unwrap_or_else(|_| panic!("{command} {params}: no answer from baresip"));
            let mut message = vec![0; length + 1];
            reader.read_exact(&mut message).unwrap();
            let message: serde_json::Value = serde_json::from_slice(&message[..length]).unwrap();
            if message["response"] == true {
                assert!(
                    message["ok"] == true,
                    "baresip refused {command} {params}: {message}\n{}",
                    self.output()
                );
                return message["data"].as_str().unwrap_or_default().to_owned();
            }
        }
    }

    /// What the phone received during its one call, decoded: the single `*-dec.wav` that
    /// `sndfile` wrote (complete once the call has ended).
    pub fn received_audio(&self) -> Audio {
        let files: Vec<PathBuf> = std::fs::read_dir(&self.recordings)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        assert_eq!(
            files.len(),
            1,
            "one recording of received audio: {files:?}\n{}",
            self.output()
        );
        Audio::read_wav(&files[0])
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("===== baresip output =====\n{}", self.output());
        }
    }
}
