//! One node: the listener, the primary's heartbeats, follower promotion, and request handling.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream},
};

use crate::{
    Opts,
    wire::{Reply, request},
};

type Data = BTreeMap<String, BTreeSet<i64>>;

struct State {
    epoch: u64,
    /// Believed primary (0 = unknown).
    primary: u32,
    data: Data,
    last_heartbeat: Instant,
    /// Set when this node stepped down: its state must be replaced by the new primary's.
    needs_sync: bool,
}

struct Node {
    id: u32,
    peers: Vec<SocketAddr>,
    unsafe_mode: bool,
    heartbeat: Duration,
    election: Duration,
    rpc: Duration,
    state: Mutex<State>,
}

impl Node {
    fn majority(&self) -> usize {
        self.peers.len() / 2 + 1
    }

    fn others(&self) -> impl Iterator<Item = (u32, SocketAddr)> + '_ {
        self.peers
            .iter()
            .enumerate()
            .map(|(i, a)| (i as u32 + 1, *a))
            .filter(move |(i, _)| *i != self.id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adopts a higher epoch (and its primary, if known); stepping down marks the state stale.
    fn observe(&self, epoch: u64, primary: Option<u32>) {
        let mut st = self.lock();
        if epoch > st.epoch {
            if st.primary == self.id {
                st.needs_sync = true;
            }
            st.epoch = epoch;
            st.primary = primary.unwrap_or(0);
        } else if epoch == st.epoch
            && let Some(p) = primary
            && (st.primary == 0 || p < st.primary)
        {
            st.primary = p;
        }
    }
}

/// Runs the node until the process is killed.
pub async fn run(opts: Opts) -> anyhow::Result<()> {
    let node = Arc::new(Node {
        id: opts.id,
        peers: opts.peers.clone(),
        unsafe_mode: opts.r#unsafe,
        heartbeat: Duration::from_millis(opts.heartbeat_ms),
        election: Duration::from_millis(opts.election_ms),
        rpc: Duration::from_millis(opts.rpc_ms),
        state: Mutex::new(State {
            epoch: 1,
            primary: 1,
            data: Data::new(),
            last_heartbeat: Instant::now(),
            needs_sync: false,
        }),
    });
    let listener = TcpListener::bind(opts.listen).await?;
    eprintln!(
        "dst-example-kv node {} listening on {} ({} mode)",
        opts.id,
        opts.listen,
        if opts.r#unsafe { "UNSAFE" } else { "safe" }
    );
    tokio::spawn(ticker(Arc::clone(&node)));
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(Arc::clone(&node), stream));
    }
}

async fn serve(node: Arc<Node>, stream: TcpStream) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = handle(&node, &line).await;
        if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn handle(node: &Arc<Node>, line: &str) -> String {
    let parts: Vec<&str> = line.split_whitespace().collect();
    match parts.as_slice() {
        ["ADD", key, elem] => match elem.parse::<i64>() {
            Ok(e) => client_op(node, line, |n| Box::pin(primary_add(n, key.to_string(), e))).await,
            Err(_) => "ERR bad element (integer expected)".into(),
        },
        ["READ", key] => {
            client_op(node, line, |n| Box::pin(primary_read(n, key.to_string()))).await
        }
        ["HB", epoch, primary] => {
            let (Ok(epoch), Ok(primary)) = (epoch.parse(), primary.parse()) else {
                return "ERR bad HB".into();
            };
            node.observe(epoch, Some(primary));
            let sync = {
                let mut st = node.lock();
                if epoch >= st.epoch {
                    st.last_heartbeat = Instant::now();
                }
                std::mem::take(&mut st.needs_sync).then_some(st.epoch)
            };
            if let Some(e) = sync {
                tokio::spawn(resync(Arc::clone(node), primary, e));
            }
            format!("HBACK {}", node.lock().epoch)
        }
        ["REPL", epoch, key, elem] => {
            let (Ok(epoch), Ok(elem)) = (epoch.parse::<u64>(), elem.parse::<i64>()) else {
                return "ERR bad REPL".into();
            };
            let mut st = node.lock();
            if epoch < st.epoch {
                return format!("STALE {}", st.epoch);
            }
            drop(st);
            node.observe(epoch, None);
            st = node.lock();
            st.data.entry(key.to_string()).or_default().insert(elem);
            "ACK".into()
        }
        ["STATE"] => {
            let st = node.lock();
            format!(
                "STATE {} {}",
                st.epoch,
                serde_json::to_string(&st.data).unwrap_or_default()
            )
        }
        ["PING"] => {
            let st = node.lock();
            format!("PONG {} {}", st.epoch, st.primary)
        }
        _ => format!("ERR unknown request {line:?}"),
    }
}

type OpFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send + 'a>>;

/// Runs a client operation here if this node is primary, else forwards it to the primary.
async fn client_op<'a>(
    node: &'a Arc<Node>,
    line: &str,
    local: impl FnOnce(&'a Arc<Node>) -> OpFuture<'a>,
) -> String {
    let primary = node.lock().primary;
    if primary == node.id {
        return local(node).await;
    }
    let Some(addr) = primary
        .checked_sub(1)
        .and_then(|i| node.peers.get(i as usize))
    else {
        return "ERR unavailable (no primary known)".into();
    };
    match request(*addr, line, node.rpc * 3).await {
        Reply::Line(l) => l,
        Reply::Unreachable => "ERR unavailable".into(),
        Reply::Timeout => "ERR timeout".into(),
    }
}

async fn primary_add(node: &Arc<Node>, key: String, elem: i64) -> String {
    let epoch = {
        let mut st = node.lock();
        st.data.entry(key.clone()).or_default().insert(elem);
        st.epoch
    };
    let line = format!("REPL {epoch} {key} {elem}");
    if node.unsafe_mode {
        // Acknowledge first, replicate in the background: the bug the demo exposes.
        let n = Arc::clone(node);
        tokio::spawn(async move {
            for (_, addr) in n.others() {
                let _ = request(addr, &line, n.rpc).await;
            }
        });
        return "OK".into();
    }
    let replies = futures_all(node.others().map(|(_, a)| request(a, &line, node.rpc))).await;
    let mut acks = 1;
    for r in replies {
        match r {
            Reply::Line(l) if l == "ACK" => acks += 1,
            Reply::Line(l) => {
                if let Some(e) = l.strip_prefix("STALE ").and_then(|e| e.parse().ok()) {
                    node.observe(e, None);
                }
            }
            _ => {}
        }
    }
    let still_primary = {
        let st = node.lock();
        st.primary == node.id && st.epoch == epoch
    };
    if acks >= node.majority() && still_primary {
        "OK".into()
    } else {
        "ERR timeout".into()
    }
}

async fn primary_read(node: &Arc<Node>, key: String) -> String {
    let (epoch, local) = {
        let st = node.lock();
        (st.epoch, st.data.get(&key).cloned().unwrap_or_default())
    };
    let render = |s: &BTreeSet<i64>| {
        format!(
            "OK {}",
            s.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        )
    };
    if node.unsafe_mode {
        return render(&local);
    }
    // Read only with a majority confirming this primary's epoch (no stale primary reads).
    let replies = futures_all(node.others().map(|(_, a)| request(a, "PING", node.rpc))).await;
    let mut confirm = 1;
    for r in replies {
        if let Reply::Line(l) = r {
            let f: Vec<&str> = l.split_whitespace().collect();
            if let ["PONG", e, _] = f.as_slice()
                && let Ok(e) = e.parse::<u64>()
            {
                if e <= epoch {
                    confirm += 1;
                } else {
                    node.observe(e, None);
                }
            }
        }
    }
    let st = node.lock();
    if confirm >= node.majority() && st.primary == node.id && st.epoch == epoch {
        render(st.data.get(&key).unwrap_or(&BTreeSet::new()))
    } else {
        "ERR unavailable".into()
    }
}

/// Replaces this node's state with the primary's (after stepping down).
async fn resync(node: Arc<Node>, primary: u32, epoch: u64) {
    let Some(addr) = primary
        .checked_sub(1)
        .and_then(|i| node.peers.get(i as usize).copied())
    else {
        return;
    };
    if let Reply::Line(l) = request(addr, "STATE", node.rpc * 3).await
        && let Some((e, json)) = l.strip_prefix("STATE ").and_then(|r| r.split_once(' '))
        && let (Ok(e), Ok(data)) = (e.parse::<u64>(), serde_json::from_str::<Data>(json))
    {
        let mut st = node.lock();
        if e >= epoch {
            st.data = data;
            return;
        }
    }
    node.lock().needs_sync = true;
}

/// Heartbeats while primary; promotion attempts while a follower without a live primary.
async fn ticker(node: Arc<Node>) {
    let mut tick = tokio::time::interval(node.heartbeat);
    loop {
        tick.tick().await;
        let (is_primary, epoch, silent) = {
            let st = node.lock();
            (
                st.primary == node.id,
                st.epoch,
                st.last_heartbeat.elapsed() > node.election,
            )
        };
        if is_primary {
            let line = format!("HB {epoch} {}", node.id);
            for r in futures_all(node.others().map(|(_, a)| request(a, &line, node.rpc))).await {
                if let Reply::Line(l) = r
                    && let Some(e) = l.strip_prefix("HBACK ").and_then(|e| e.parse::<u64>().ok())
                    && e > epoch
                {
                    node.observe(e, None);
                }
            }
        } else if silent {
            try_promote(&node).await;
        }
    }
}

async fn try_promote(node: &Arc<Node>) {
    let others: Vec<(u32, SocketAddr)> = node.others().collect();
    let replies = futures_all(others.iter().map(|(_, a)| request(*a, "PING", node.rpc))).await;
    let mut reachable = Vec::new();
    let mut max_epoch = node.lock().epoch;
    for ((id, addr), r) in others.iter().zip(replies) {
        if let Reply::Line(l) = r {
            let f: Vec<&str> = l.split_whitespace().collect();
            if let ["PONG", e, p] = f.as_slice()
                && let (Ok(e), Ok(p)) = (e.parse::<u64>(), p.parse::<u32>())
            {
                if p == *id {
                    // A reachable node still claims to be primary: follow it, do not compete.
                    node.observe(e, Some(p));
                    node.lock().last_heartbeat = Instant::now();
                    return;
                }
                max_epoch = max_epoch.max(e);
                reachable.push((*id, *addr));
            }
        }
    }
    if reachable.len() + 1 < node.majority() || reachable.iter().any(|(id, _)| *id < node.id) {
        return;
    }
    let new_epoch = max_epoch + 1;
    let mut merged = node.lock().data.clone();
    for (_, addr) in &reachable {
        if let Reply::Line(l) = request(*addr, "STATE", node.rpc * 3).await
            && let Some((_, json)) = l.strip_prefix("STATE ").and_then(|r| r.split_once(' '))
            && let Ok(data) = serde_json::from_str::<Data>(json)
        {
            for (k, v) in data {
                merged.entry(k).or_default().extend(v);
            }
        } else {
            return; // Could not gather a majority's state: do not promote on partial data.
        }
    }
    let mut st = node.lock();
    if st.epoch >= new_epoch {
        return;
    }
    st.epoch = new_epoch;
    st.primary = node.id;
    st.data = merged;
    st.needs_sync = false;
    st.last_heartbeat = Instant::now();
    eprintln!(
        "node {} promoted itself to primary at epoch {new_epoch}",
        node.id
    );
}

/// Awaits all futures concurrently, results in order.
async fn futures_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    futures::future::join_all(futs).await
}
