//! The recorder: an encoder thread takes whatever appends are queued, stamps and writes them as
//! one batch; a syncer thread (one of two) makes every batch written so far durable with one
//! `fdatasync` and only then acknowledges their operations, in file order (group commit,
//! pipelined: the next batch is encoded and written while a sync runs).

use std::{
    fs::{File, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
};

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::{HistoryError, Recovery, recover};
use crate::net::spec::monotonic_ns;

/// Largest batch (in operations) written with one sync; more queued appends wait for the next.
const MAX_BATCH_OPS: usize = 1 << 16;

/// The acknowledgement of one append: its operations are on disk with these indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Appended {
    /// Index of the first operation of this append.
    pub first_index: u64,
    /// Number of operations.
    pub count: u64,
    /// CLOCK_MONOTONIC ns stamped on them (same clock as fault evidence).
    pub time: u64,
}

/// Counters of the recorder (for `/metrics` and benchmarks).
#[derive(Debug, Default)]
pub struct Stats {
    /// Operations durably written since open.
    pub ops: AtomicU64,
    /// Group commits (one `fdatasync` each) since open.
    pub batches: AtomicU64,
    /// Bytes of the file that are durable.
    pub durable_len: AtomicU64,
    /// Index after the last durable operation.
    pub next_index: AtomicU64,
}

struct Request {
    ops: Vec<Map<String, Value>>,
    ack: oneshot::Sender<Result<Appended, HistoryError>>,
}

/// A durable JSONL history. Cheap to share behind an `Arc`; dropping it stops the writer after
/// the queued appends are written.
pub struct Recorder {
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    stats: Arc<Stats>,
    path: PathBuf,
    recovery: Recovery,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Recorder {
    /// Opens (or creates) `path`, recovering a torn tail, and starts the writer thread.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        Self::open_with_sync(path, |f: &File| f.sync_data())
    }

    /// [`Recorder::open`] with the durability step replaced (tests gate or fail it to show
    /// that nothing is acknowledged before it returns). `sync` must make every byte written
    /// to the file so far durable.
    pub fn open_with_sync(
        path: &Path,
        sync: impl Fn(&File) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Result<Self, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::Io {
                op: "creating the directory of",
                path: path.to_path_buf(),
                source,
            })?;
        }
        let recovery = recover(path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| HistoryError::Io {
                op: "opening",
                path: path.to_path_buf(),
                source,
            })?;
        // Make the file's directory entry durable too (a new file must survive a crash).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        let stats = Arc::new(Stats::default());
        stats.durable_len.store(recovery.len, Ordering::Release);
        stats
            .next_index
            .store(recovery.next_index, Ordering::Release);
        let (tx, rx) = mpsc::channel();
        let writer = {
            let stats = stats.clone();
            let owned = path.to_path_buf();
            let next = recovery.next_index;
            std::thread::Builder::new()
                .name("dst-history".into())
                .spawn(move || write_loop(file, owned, rx, stats, next, Box::new(sync)))
                .map_err(|source| HistoryError::Io {
                    op: "starting the writer thread for",
                    path: path.to_path_buf(),
                    source,
                })?
        };
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            stats,
            path: path.to_path_buf(),
            recovery,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The history file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What recovery found when the file was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Live counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Queues checked operations (see [`super::normalize_op`]); the receiver resolves once they
    /// are durable.
    pub fn submit(
        &self,
        ops: Vec<Map<String, Value>>,
    ) -> oneshot::Receiver<Result<Appended, HistoryError>> {
        let (ack, rx) = oneshot::channel();
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(tx) => {
                if let Err(mpsc::SendError(req)) = tx.send(Request { ops, ack }) {
                    let _ = req.ack.send(Err(HistoryError::Closed));
                }
            }
            None => {
                let _ = ack.send(Err(HistoryError::Closed));
            }
        }
        rx
    }

    /// Appends and waits (blocking) until the operations are durable. Not for async contexts:
    /// use [`Recorder::append_async`] there.
    pub fn append(&self, ops: Vec<Map<String, Value>>) -> Result<Appended, HistoryError> {
        self.submit(ops)
            .blocking_recv()
            .unwrap_or(Err(HistoryError::Closed))
    }

    /// Appends and waits until the operations are durable.
    pub async fn append_async(
        &self,
        ops: Vec<Map<String, Value>>,
    ) -> Result<Appended, HistoryError> {
        self.submit(ops).await.unwrap_or(Err(HistoryError::Closed))
    }

    /// Stops accepting appends, writes what is queued and joins the writer.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = w.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.close();
    }
}

type SyncFn = Box<dyn Fn(&File) -> std::io::Result<()> + Send + Sync>;

type Ack = oneshot::Sender<Result<Appended, HistoryError>>;

/// Syncer threads. Two let one `fdatasync` start while another is in flight (the kernel merges
/// them), so a batch written during a sync need not wait for it to finish first.
const SYNCERS: usize = 2;

/// A batch the encoder has written (to the page cache) and a syncer must make durable.
struct Written {
    seq: u64,
    acks: Vec<(Ack, Appended)>,
    bytes: u64,
    ops: u64,
    next_index: u64,
}

/// What the encoder and the syncers share.
struct Shared {
    file: File,
    path: PathBuf,
    stats: Arc<Stats>,
    failed: Mutex<Option<String>>,
    sync: SyncFn,
    rx: Mutex<mpsc::Receiver<Written>>,
    /// Synced batches waiting for earlier ones: acknowledgements go out in file order, so the
    /// durable prefix (`durable_len`) always holds every acknowledged operation.
    done: Mutex<(u64, std::collections::BTreeMap<u64, Written>)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Encoder: assigns indices and times in arrival order, writes each batch with one `write`,
/// and hands it to the syncers, then goes on with the next batch while they sync.
fn write_loop(
    mut file: File,
    path: PathBuf,
    rx: mpsc::Receiver<Request>,
    stats: Arc<Stats>,
    mut next: u64,
    sync: SyncFn,
) {
    let (sync_tx, sync_rx) = mpsc::channel::<Written>();
    let dup = file.try_clone();
    let failed = match &dup {
        Ok(_) => None,
        Err(e) => Some(format!(
            "{}: duplicating the file handle: {e}",
            path.display()
        )),
    };
    let Ok(dup) = dup.or_else(|_| File::open(&path)) else {
        for r in rx {
            let _ = r.ack.send(Err(HistoryError::Failed(format!(
                "{}: cannot open a second handle",
                path.display()
            ))));
        }
        return;
    };
    let shared = Arc::new(Shared {
        file: dup,
        path: path.clone(),
        stats,
        failed: Mutex::new(failed),
        sync,
        rx: Mutex::new(sync_rx),
        done: Mutex::new((0, Default::default())),
    });
    let syncers: Vec<_> = (0..SYNCERS)
        .filter_map(|i| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("dst-history-sync{i}"))
                .spawn(move || sync_loop(&shared))
                .ok()
        })
        .collect();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut seq = 0u64;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let mut n = batch[0].ops.len();
        while n < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.ops.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let why = lock(&shared.failed).clone();
        if let Some(why) = why {
            for r in batch {
                let _ = r.ack.send(Err(HistoryError::Failed(why.clone())));
            }
            continue;
        }
        buf.clear();
        let mut acks = Vec::with_capacity(batch.len());
        let time = monotonic_ns();
        for r in batch {
            let first_index = next;
            for op in &r.ops {
                encode(&mut buf, next, time, op);
                next += 1;
            }
            let a = Appended {
                first_index,
                count: next - first_index,
                time,
            };
            acks.push((r.ack, a));
        }
        if let Err(e) = file.write_all(&buf) {
            let why = format!("{}: write: {e}", path.display());
            tracing::error!("history write failed, refusing further appends: {why}");
            for (ack, _) in acks {
                let _ = ack.send(Err(HistoryError::Failed(why.clone())));
            }
            *lock(&shared.failed) = Some(why);
            continue;
        }
        let w = Written {
            seq,
            acks,
            bytes: buf.len() as u64,
            ops: n as u64,
            next_index: next,
        };
        seq += 1;
        if let Err(mpsc::SendError(w)) = sync_tx.send(w) {
            for (ack, _) in w.acks {
                let _ = ack.send(Err(HistoryError::Closed));
            }
        }
    }
    drop(sync_tx);
    for s in syncers {
        let _ = s.join();
    }
}

/// Syncer: takes every batch written so far, makes them durable with one `fdatasync`, then
/// acknowledges them (in file order) — group commit across batches and clients.
fn sync_loop(shared: &Shared) {
    loop {
        let group = {
            let rx = lock(&shared.rx);
            let Ok(first) = rx.recv() else {
                return;
            };
            let mut group = vec![first];
            while let Ok(w) = rx.try_recv() {
                group.push(w);
            }
            group
        };
        let known = lock(&shared.failed).clone();
        let result = match known {
            Some(why) => Err(why),
            None => (shared.sync)(&shared.file)
                .map_err(|e| format!("{}: fdatasync: {e}", shared.path.display())),
        };
        match result {
            Ok(()) => {
                let stats = &shared.stats;
                stats.batches.fetch_add(1, Ordering::Relaxed);
                let mut done = lock(&shared.done);
                // The other syncer failed meanwhile (it sets `failed` before taking `done`):
                // an earlier batch will never be durable, so these cannot be acknowledged.
                if let Some(why) = lock(&shared.failed).clone() {
                    for w in group {
                        for (ack, _) in w.acks {
                            let _ = ack.send(Err(HistoryError::Failed(why.clone())));
                        }
                    }
                    continue;
                }
                for w in group {
                    done.1.insert(w.seq, w);
                }
                loop {
                    let want = done.0;
                    let Some(w) = done.1.remove(&want) else {
                        break;
                    };
                    done.0 += 1;
                    stats.ops.fetch_add(w.ops, Ordering::Relaxed);
                    stats.durable_len.fetch_add(w.bytes, Ordering::Release);
                    stats.next_index.store(w.next_index, Ordering::Release);
                    for (ack, a) in w.acks {
                        let _ = ack.send(Ok(a));
                    }
                }
            }
            Err(why) => {
                tracing::error!("history sync failed, refusing further appends: {why}");
                *lock(&shared.failed) = Some(why.clone());
                for w in group {
                    for (ack, _) in w.acks {
                        let _ = ack.send(Err(HistoryError::Failed(why.clone())));
                    }
                }
                // Later batches already synced by the other syncer can never be acknowledged
                // in order any more: fail them too.
                let mut done = lock(&shared.done);
                for (_, w) in std::mem::take(&mut done.1) {
                    for (ack, _) in w.acks {
                        let _ = ack.send(Err(HistoryError::Failed(why.clone())));
                    }
                }
            }
        }
    }
}

/// One JSONL line: `index` and `time` first, then the operation's own fields.
fn encode(buf: &mut Vec<u8>, index: u64, time: u64, op: &Map<String, Value>) {
    let _ = write!(buf, "{{\"index\":{index},\"time\":{time}");
    for (k, v) in op {
        buf.push(b',');
        // Serializing a string key and a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, k);
        buf.push(b':');
        let _ = serde_json::to_writer(&mut *buf, v);
    }
    buf.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_puts_index_and_time_first() {
        let mut buf = Vec::new();
        let op = super::super::parse_ops(br#"{"process":1,"type":"ok","f":"read","value":null}"#)
            .unwrap()
            .remove(0);
        encode(&mut buf, 7, 99, &op);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"index\":7,\"time\":99,\"f\":\"read\",\"process\":1,\"type\":\"ok\",\"value\":null}\n"
        );
    }
}
