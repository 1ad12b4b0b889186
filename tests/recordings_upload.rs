//! Kazoo's `record_call` `url`/`method`: once the recording is finished, the proxy sends the
//! file to a local HTTP receiver. The receiver first cuts the upload in the middle of its body
//! (or answers 503), then accepts: the file must arrive exactly once and byte-identical, and a
//! proxy killed (SIGKILL) with an upload still pending must deliver it after its restart.
//! Needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::calls::{run_call, wait_for_events};
use common::proxy::{Proxy, metric_sum};
use common::receiver::{Mode, Receiver};

/// How long an upload may take to arrive once its recording is finished (first retry 1 s).
const DELIVERY_WAIT: Duration = Duration::from_secs(20);

/// A proxy whose `*9` records the call with upload to `url` by `method`; the metaflows file
/// lives in the returned directory.
fn start_proxy(url: &str, method: &str) -> (Proxy, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metaflows.json");
    let metaflows = serde_json::json!({"numbers": {"9": {"module": "record_call",
        "data": {"action": "start", "url": url, "method": method}}}});
    std::fs::write(&file, metaflows.to_string()).unwrap();
    let proxy = Proxy::start(&["--metaflows", file.to_str().unwrap()]);
    (proxy, dir, file)
}

fn record_a_call(proxy: &Proxy) {
    run_call(
        proxy,
        "uas_wait_bye.xml",
        "record_uac_star9_pcap.xml",
        18,
        Duration::from_secs(20),
    );
    wait_for_events(
        proxy,
        &["call_ended", "recording_stopped"],
        Duration::from_secs(5),
    );
}

/// The only recording file under `data_dir/recordings`.
fn recording_file(data_dir: &Path) -> PathBuf {
    let mut found = Vec::new();
    let mut dirs = vec![data_dir.join("recordings")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "wav") {
                found.push(path);
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

fn spool_entries(data_dir: &Path) -> usize {
    std::fs::read_dir(data_dir.join("upload-spool"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

fn counter(proxy: &Proxy, name: &str) -> f64 {
    metric_sum(&proxy.metrics(), name, &[]).unwrap_or(0.0)
}

#[test]
fn an_upload_cut_mid_body_is_retried_and_arrives_once() {
    common::require_tool("sipp");
    let receiver = Receiver::start(Mode::CutOnce);
    let url = format!("http://127.0.0.1:{}/store/call.wav", receiver.port);
    let (proxy, _metaflows, _) = start_proxy(&url, "put");
    record_a_call(&proxy);
    wait_until("the upload", DELIVERY_WAIT, || {
        !receiver.accepted().is_empty()
    });
    // Give a duplicate the time to show up: none may.
    thread::sleep(Duration::from_secs(3));
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1, "{} uploads arrived", accepted.len());
    let upload = &accepted[0];
    assert_eq!(upload.method, "PUT", "Kazoo's default method");
    assert_eq!(upload.path, "/store/call.wav");
    let file = recording_file(proxy.data_dir());
    assert_eq!(upload.body, std::fs::read(&file).unwrap(), "byte-identical");
    let header = |name: &str| {
        upload
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(header("content-type").as_deref(), Some("audio/wav"));
    let id = file.file_stem().unwrap().to_str().unwrap();
    assert_eq!(header("x-recording-id").as_deref(), Some(id));
    wait_until("an empty spool", Duration::from_secs(2), || {
        spool_entries(proxy.data_dir()) == 0
    });
    assert_eq!(
        counter(&proxy, "metaflow_proxy_recording_uploads_total"),
        1.0
    );
    assert!(counter(&proxy, "metaflow_proxy_recording_upload_retries_total") >= 1.0);
    assert_eq!(
        counter(&proxy, "metaflow_proxy_recording_upload_failures_total"),
        0.0
    );
    assert_eq!(
        counter(&proxy, "metaflow_proxy_recording_uploads_pending"),
        0.0
    );
}

#[test]
fn a_pending_upload_survives_a_killed_proxy() {
    common::require_tool("sipp");
    let receiver = Receiver::start(Mode::Unavailable);
    let url = format!("http://127.0.0.1:{}/in", receiver.port);
    let (mut proxy, _metaflows, metaflows_file) = start_proxy(&url, "post");
    record_a_call(&proxy);
    wait_until("a refused attempt", DELIVERY_WAIT, || {
        !receiver.received().is_empty()
    });
    assert_eq!(
        spool_entries(proxy.data_dir()),
        1,
        "the upload waits in the spool"
    );
    assert!(receiver.accepted().is_empty());

    // Killed with the upload pending; the receiver accepts only once the proxy is back.
    proxy.kill_and_restart(&["--metaflows", metaflows_file.to_str().unwrap()]);
    receiver.set_mode(Mode::Accept);
    wait_until("the upload after the restart", DELIVERY_WAIT, || {
        !receiver.accepted().is_empty()
    });
    thread::sleep(Duration::from_secs(2));
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1, "{} uploads arrived", accepted.len());
    assert_eq!(accepted[0].method, "POST");
    assert_eq!(accepted[0].path, "/in");
    let file = recording_file(proxy.data_dir());
    assert_eq!(
        accepted[0].body,
        std::fs::read(&file).unwrap(),
        "byte-identical"
    );
    wait_until("an empty spool", Duration::from_secs(2), || {
        spool_entries(proxy.data_dir()) == 0
    });
}
