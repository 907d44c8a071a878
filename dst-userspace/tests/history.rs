//! The history recorder without a daemon and without root: group commit under concurrency,
//! acknowledged ops present and parseable, torn-tail recovery, index continuing after restart.

use std::{
    collections::HashSet,
    io::Write as _,
    path::PathBuf,
    sync::{Arc, atomic::Ordering},
};

use dst::history::{HistoryError, Recorder, parse_ops};
use serde_json::Value;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("dst-history-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn op(value: &str) -> Vec<serde_json::Map<String, Value>> {
    parse_ops(format!(r#"{{"process":1,"type":"ok","f":"write","value":"{value}"}}"#).as_bytes())
        .unwrap()
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line parses"))
        .collect()
}

#[test]
fn concurrent_appends_are_group_committed_and_all_present() {
    let dir = TempDir::new("group");
    let path = dir.0.join("h.jsonl");
    let rec = Arc::new(Recorder::open(&path).unwrap());
    let (threads, per) = (16, 200);
    let acked: Vec<Vec<(u64, String)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let rec = rec.clone();
                let path = path.clone();
                s.spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..per {
                        let v = format!("t{t}-{i}");
                        let a = rec.append(op(&v)).unwrap();
                        assert_eq!(a.count, 1);
                        if i % 50 == 0 {
                            // Acknowledged means already in the file (written, then synced).
                            let text = std::fs::read_to_string(&path).unwrap();
                            let line = text.lines().nth(a.first_index as usize).unwrap();
                            assert!(line.contains(&format!("\"{v}\"")), "{line}");
                        }
                        got.push((a.first_index, v));
                    }
                    got
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = threads * per;
    let stats = rec.stats();
    assert_eq!(stats.ops.load(Ordering::Relaxed), total as u64);
    let batches = stats.batches.load(Ordering::Relaxed);
    assert!(
        batches < total as u64,
        "group commit: {batches} syncs for {total} appends from {threads} threads"
    );
    rec.close();
    let file = lines(&path);
    assert_eq!(file.len(), total);
    for (i, v) in file.iter().enumerate() {
        assert_eq!(v["index"], i as u64, "indices are dense and in file order");
        assert!(v["time"].as_u64().is_some_and(|t| t > 0));
    }
    let mut seen = HashSet::new();
    for (index, value) in acked.into_iter().flatten() {
        assert_eq!(file[index as usize]["value"], value.as_str());
        assert!(seen.insert(index), "index {index} acknowledged twice");
    }
    // Times never go backwards along the index.
    let times: Vec<u64> = file.iter().map(|v| v["time"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn torn_tail_is_truncated_and_index_continues() {
    let dir = TempDir::new("torn");
    let path = dir.0.join("h.jsonl");
    {
        let rec = Recorder::open(&path).unwrap();
        for i in 0..10 {
            rec.append(op(&format!("v{i}"))).unwrap();
        }
    }
    let before = std::fs::read(&path).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(br#"{"index":10,"time":1,"process":1,"ty"#)
        .unwrap();
    let rec = Recorder::open(&path).unwrap();
    let r = rec.recovery().clone();
    assert_eq!((r.ops, r.next_index), (10, 10));
    assert!(r.truncated_bytes > 0);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "only the torn line went"
    );
    let a = rec.append(op("after")).unwrap();
    assert_eq!(a.first_index, 10);
    let a = rec.append([op("b1"), op("b2")].concat()).unwrap();
    assert_eq!((a.first_index, a.count), (11, 2));
    rec.close();
    let file = lines(&path);
    assert_eq!(file.len(), 13);
    assert_eq!(file[12]["value"], "b2");
}

#[test]
fn corruption_before_the_end_is_refused() {
    let dir = TempDir::new("corrupt");
    let path = dir.0.join("h.jsonl");
    std::fs::write(&path, "{\"index\":0}\nnot json\n{\"index\":2}\n").unwrap();
    assert!(matches!(
        Recorder::open(&path),
        Err(HistoryError::Corrupt { line: 2, .. })
    ));
}

#[test]
fn async_appends_from_a_runtime() {
    let dir = TempDir::new("async");
    let path = dir.0.join("h.jsonl");
    let rec = Arc::new(Recorder::open(&path).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let n = rt.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let rec = rec.clone();
                tokio::spawn(async move { rec.append_async(op(&format!("a{i}"))).await })
            })
            .collect();
        let mut n = 0;
        for t in tasks {
            t.await.unwrap().unwrap();
            n += 1;
        }
        n
    });
    rec.close();
    assert_eq!(n, 64);
    assert_eq!(lines(&path).len(), 64);
    assert!(matches!(rec.append(op("late")), Err(HistoryError::Closed)));
}

#[test]
fn nothing_is_acknowledged_before_the_sync_returns() {
    let dir = TempDir::new("gate");
    let path = dir.0.join("h.jsonl");
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let gate_rx = std::sync::Mutex::new(gate_rx);
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let rec = Recorder::open_with_sync(&path, move |f: &std::fs::File| {
        entered_tx.send(()).ok();
        gate_rx.lock().unwrap().recv().unwrap()?;
        f.sync_data()
    })
    .unwrap();
    let mut pending = rec.submit(op("gated"));
    entered_rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("the syncer started a sync");
    // Written to the file already, but the sync has not returned: no acknowledgement yet.
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("\"gated\"")
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(matches!(
        pending.try_recv(),
        Err(tokio::sync::oneshot::error::TryRecvError::Empty)
    ));
    gate_tx.send(Ok(())).unwrap();
    let a = pending.blocking_recv().unwrap().unwrap();
    assert_eq!((a.first_index, a.count), (0, 1));

    // A failing sync: that append fails, and so does every later one (no false promises).
    let failing = rec.submit(op("lost"));
    entered_rx.recv().unwrap();
    gate_tx
        .send(Err(std::io::Error::other("disk gone")))
        .unwrap();
    assert!(matches!(
        failing.blocking_recv().unwrap(),
        Err(HistoryError::Failed(m)) if m.contains("disk gone")
    ));
    assert!(matches!(
        rec.append(op("after")),
        Err(HistoryError::Failed(_))
    ));
    assert_eq!(rec.stats().ops.load(Ordering::Relaxed), 1);
}
