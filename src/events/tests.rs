//! Tests of the event log file format, ordering, shutdown and back-pressure.

use serde_json::json;

use super::*;

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn read_events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join(EVENTS_FILE_NAME))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn events_are_written_one_object_per_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested/data");
    let (log, writer) = EventLog::start(&data_dir).unwrap();
    let clone = log.clone();
    log.emit(
        "call_started",
        Some("abc@host"),
        fields(json!({"from": "1000"})),
    );
    clone.emit(
        "digit",
        Some("abc@host"),
        fields(json!({"digit": "5", "event": "spoof"})),
    );
    log.emit("proxy_started", None, Map::new());
    drop(clone);
    log.flush_and_close().await;
    writer.await.unwrap();

    let events = read_events(&data_dir);
    assert_eq!(events.len(), 3);
    let first = events.first().unwrap();
    assert_eq!(first["event"], "call_started");
    assert_eq!(first["call_id"], "abc@host");
    assert_eq!(first["from"], "1000");
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["ts", "event", "call_id", "from"]);
    let ts = first["ts"].as_str().unwrap();
    assert!(ts.len() == 24 && ts.ends_with('Z'), "{ts}");
    assert_eq!(
        events[1]["event"], "digit",
        "reserved keys are not overridden"
    );
    assert_eq!(events[1]["digit"], "5");
    assert_eq!(events[2]["call_id"], Value::Null);
}

#[tokio::test]
async fn dropping_every_handle_ends_the_writer_after_writing_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = EventLog::start(dir.path()).unwrap();
    for index in 0..100 {
        log.emit("tick", None, fields(json!({"index": index})));
    }
    let stats = log.stats();
    drop(log);
    writer.await.unwrap();
    let events = read_events(dir.path());
    assert_eq!(events.len(), 100);
    assert_eq!(events[99]["index"], 99);
    assert_eq!((stats.written(), stats.dropped()), (100, 0));
}

#[tokio::test]
async fn appends_to_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let (log, writer) = EventLog::start(dir.path()).unwrap();
        log.emit("round", None, fields(json!({"round": round})));
        log.flush_and_close().await;
        writer.await.unwrap();
    }
    let rounds: Vec<Value> = read_events(dir.path())
        .iter()
        .map(|e| e["round"].clone())
        .collect();
    assert_eq!(rounds, [json!(0), json!(1)]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = EventLog::start_with_capacity(dir.path(), 2).unwrap();
    // The writer cannot run before this task yields, so only two events fit.
    for index in 0..10 {
        log.emit("burst", None, fields(json!({"index": index})));
    }
    let stats = log.stats();
    assert_eq!(stats.dropped(), 8);
    log.flush_and_close().await;
    writer.await.unwrap();
    assert_eq!(read_events(dir.path()).len(), 2);
    assert_eq!(stats.written(), 2);
    let mut text = String::new();
    stats.render_prometheus(&mut text);
    assert!(
        text.contains("metaflow_proxy_events_dropped_total 8\n"),
        "{text}"
    );
}

#[tokio::test]
async fn events_after_close_are_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = EventLog::start(dir.path()).unwrap();
    let late = log.clone();
    log.flush_and_close().await;
    writer.await.unwrap();
    late.emit("late", None, Map::new());
    assert_eq!(late.stats().dropped(), 1);
    assert!(read_events(dir.path()).is_empty());
}

#[test]
fn start_reports_an_unusable_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let err = EventLog::start(&blocker.join("data")).unwrap_err();
    assert!(matches!(err, EventError::CreateDir { .. }), "{err}");
}

#[test]
fn disabled_log_accepts_and_discards() {
    let log = EventLog::disabled();
    log.emit("anything", Some("id"), Map::new());
    assert_eq!(log.stats().dropped(), 0);
}

/// After logrotate renames `events.jsonl`, a reopen sends later events to a new file of that
/// name; the renamed file keeps what came before and nothing after.
#[tokio::test]
async fn reopen_after_a_rename_starts_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = EventLog::start(dir.path()).unwrap();
    log.emit("before", None, Map::new());
    let rotated = dir.path().join("events.jsonl.1");
    // Let the writer take the first event before the rename, as a live proxy would have.
    for _ in 0..100 {
        if log.stats().written() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    std::fs::rename(dir.path().join(EVENTS_FILE_NAME), &rotated).unwrap();
    log.reopen().await;
    log.emit("after", None, Map::new());
    log.flush_and_close().await;
    writer.await.unwrap();
    let kinds = |text: String| -> Vec<String> {
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].to_string())
            .collect()
    };
    assert_eq!(
        kinds(std::fs::read_to_string(&rotated).unwrap()),
        ["\"before\""]
    );
    assert_eq!(
        kinds(std::fs::read_to_string(dir.path().join(EVENTS_FILE_NAME)).unwrap()),
        ["\"after\""]
    );
}
