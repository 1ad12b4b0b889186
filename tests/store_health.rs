//! The store against a real file system: a full disk makes writes fail with a Kazoo 500 and
//! `/ready` answer 503, and once space returns the store takes writes again without a restart;
//! a second proxy on a data directory already in use says why once, not twice.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::{HttpReply, Proxy, http_get, metric_sum};

const TOKEN: &str = "store-health-token";
const METAFLOWS: &str = "/v2/accounts/default/metaflows";
/// Size of the tmpfs the data directory lives on.
const TMPFS_SIZE: &str = "16m";

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size`; panics naming the reason when it cannot (the test needs root).
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap_or_else(|err| panic!("cannot run mount (this test needs root): {err}"));
        assert!(
            output.status.success(),
            "mount -t tmpfs failed (this test needs root to mount a small file system): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes `path` in 64 KiB chunks until the file system refuses more.
fn fill(path: &Path) {
    let mut file = File::create(path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    while file
        .write_all(&chunk)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
}

/// A metaflow document padded with `padding` bytes of an unknown top-level key (tolerated).
fn padded_metaflows(round: usize, padding: usize) -> String {
    format!(
        r#"{{"data":{{"numbers":{{"{round}":{{"module":"hangup"}}}},"padding":"{}"}}}}"#,
        "x".repeat(padding)
    )
}

fn post(proxy: &Proxy, body: &str) -> HttpReply {
    proxy.api("POST", METAFLOWS, Some(TOKEN), Some(body))
}

fn ready(proxy: &Proxy) -> (u16, String) {
    http_get(proxy.api_addr().parse().unwrap(), "/ready").unwrap()
}

#[test]
fn a_full_disk_degrades_the_store_and_it_recovers_when_space_returns() {
    let tmpfs = Tmpfs::mount(TMPFS_SIZE);
    let data_dir: PathBuf = tmpfs.path().join("data");
    let proxy = Proxy::start_in(&data_dir, &["--api-auth-token", TOKEN]);
    assert_eq!(post(&proxy, &padded_metaflows(0, 16)).status, 200);

    let filler = tmpfs.path().join("filler");
    fill(&filler);
    let mut failed = None;
    for round in 1..200 {
        let reply = post(&proxy, &padded_metaflows(round, 64 * 1024));
        if reply.status != 200 {
            failed = Some(reply);
            break;
        }
        fill(&tmpfs.path().join(format!("filler-{round}")));
    }
    let failed = failed.expect("no write failed on a full file system");
    assert_eq!(failed.status, 500, "{}", failed.body);
    let envelope = failed.json();
    assert_eq!(envelope["status"], "error", "{}", failed.body);
    assert_eq!(envelope["error"], "500", "{}", failed.body);
    assert_eq!(envelope["data"]["message"], "datastore fault");
    let (status, body) = ready(&proxy);
    assert_eq!(status, 503, "/ready while the disk is full: {body}");
    assert!(body.contains("store"), "/ready names the store: {body}");
    let failures = metric_sum(
        &proxy.metrics(),
        "metaflow_proxy_store_write_failures_total",
        &[],
    );
    assert!(failures.unwrap_or(0.0) >= 1.0, "write failures counted");

    for entry in std::fs::read_dir(tmpfs.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::remove_file(path).unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready(&proxy).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "/ready not 200 again: {:?}",
            ready(&proxy)
        );
        thread::sleep(Duration::from_millis(100));
    }
    let written = post(&proxy, &padded_metaflows(999, 16));
    assert_eq!(written.status, 200, "{}", written.body);
    let fetched = proxy.api("GET", METAFLOWS, Some(TOKEN), None);
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert!(
        fetched.json()["data"]["numbers"]["999"].is_object(),
        "{}",
        fetched.body
    );
    drop(proxy);
}

#[test]
fn a_second_proxy_on_the_same_data_dir_prints_the_cause_once() {
    let proxy = Proxy::start(&[]);
    let output = Command::new(env!("CARGO_BIN_EXE_metaflow-proxy"))
        .args(["--sip-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(proxy.data_dir())
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success(), "a second proxy must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let cause = "Database already open";
    assert_eq!(
        stderr.matches(cause).count(),
        1,
        "the cause is printed exactly once:\n{stderr}"
    );
    assert!(stderr.contains("cannot open the store"), "{stderr}");
}
