//! Built-in workload clients. `kv-set`: the example service's line protocol (`ADD key elem`,
//! `READ key`), every operation recorded as invoke then ok / fail / info. A reply of
//! `ERR unavailable` or a refused connection is `fail` (it certainly did not apply); a timeout,
//! a broken connection or `ERR timeout` is `info` (it may have), and — as in Jepsen — the
//! client continues as a new process.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use checkers::history::{OpType, Process};
use serde_json::{Value, json};

use super::endpoint::Endpoint;
use super::{
    log::HistoryLog,
    rng::Rng,
    scenario::{Client, Workload},
};

/// Errors of the workload (harness errors).
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A client thread panicked.
    #[error("client {0} crashed (panicked); its history is incomplete")]
    ClientCrashed(usize),
    /// An exec client's command was killed by a signal.
    #[error(
        "client {client}: its command was killed by signal {signal} (a crash of the test client)"
    )]
    Crashed {
        /// Client number.
        client: usize,
        /// The signal.
        signal: i32,
    },
    /// The client's async runtime could not start.
    #[error("starting a client runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A client got a reply outside the protocol and stopped.
    #[error(
        "client {client} stopped on a reply outside the protocol: {reply:?}; is the system under test speaking the kv-set protocol?"
    )]
    Protocol {
        /// Client number.
        client: usize,
        /// The reply.
        reply: String,
    },
    /// A namespace operation failed.
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}

enum Outcome {
    Ok(Value),
    Fail,
    Info,
    /// A reply the client does not understand: the harness cannot interpret the system.
    Protocol(String),
}

struct Conn {
    host: usize,
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
    timeout: Duration,
}

impl Conn {
    fn request(&mut self, hosts: &[Endpoint<'_>], line: &str) -> Result<String, bool> {
        if self.stream.is_none() {
            let addr = self.addr;
            let t = self.timeout;
            let s = hosts[self.host]
                .run(|| TcpStream::connect_timeout(&addr, t))
                .map_err(|_| false)?;
            let s = s.map_err(|_| false)?;
            let _ = s.set_read_timeout(Some(self.timeout));
            let _ = s.set_write_timeout(Some(self.timeout));
            let _ = s.set_nodelay(true);
            self.stream = Some(BufReader::new(s));
        }
        let stream = self.stream.as_mut().expect("connected above");
        let sent = stream.get_mut().write_all(format!("{line}\n").as_bytes());
        let mut reply = String::new();
        match sent.and_then(|()| stream.read_line(&mut reply)) {
            Ok(n) if n > 0 => Ok(reply.trim_end().to_string()),
            _ => {
                self.stream = None;
                Err(true)
            }
        }
    }
}

fn classify(reply: Result<String, bool>, ok: impl FnOnce(&str) -> Option<Value>) -> Outcome {
    match reply {
        Ok(l) if l == "OK" || l.starts_with("OK ") => match ok(l.trim_start_matches("OK").trim()) {
            Some(v) => Outcome::Ok(v),
            None => Outcome::Protocol(l),
        },
        Ok(l) if l.starts_with("ERR unavailable") => Outcome::Fail,
        Ok(l) if l.starts_with("ERR") => Outcome::Info,
        Ok(l) => Outcome::Protocol(l),
        // Could not connect: nothing was sent.
        Err(false) => Outcome::Fail,
        Err(true) => Outcome::Info,
    }
}

fn parse_set(s: &str) -> Option<Value> {
    if s.is_empty() {
        return Some(json!([]));
    }
    s.split(',')
        .map(|e| e.parse::<i64>().ok().map(Value::from))
        .collect::<Option<Vec<_>>>()
        .map(Value::Array)
}

/// What every client thread is given: its number, the workload, the hosts, the service port,
/// the history, the run's seed and the workload's time span.
#[derive(Clone, Copy)]
pub struct ClientCtx<'a> {
    /// Client number (0-based); the client runs on host `c % hosts`.
    pub c: usize,
    /// The workload settings.
    pub w: &'a Workload,
    /// The hosts.
    pub hosts: &'a [Endpoint<'a>],
    /// The service's port.
    pub port: u16,
    /// Where operations are recorded.
    pub log: &'a HistoryLog,
    /// The run's seed.
    pub seed: u64,
    /// When the first operation may start.
    pub start: Instant,
    /// When the workload ends.
    pub end: Instant,
}

/// Paces one client: on average `clients / rate` seconds between its operations (each gap drawn
/// from the run's seed within ±50 %), until the workload ends.
pub struct Pacer {
    interval: Duration,
    next: Instant,
    end: Instant,
}

impl Pacer {
    /// A pacer whose first operation falls at a seeded offset after `start`.
    pub fn new(w: &Workload, rng: &mut Rng, start: Instant, end: Instant) -> Self {
        let interval = Duration::from_secs_f64(w.clients as f64 / f64::from(w.rate));
        Self {
            interval,
            next: start + interval.mul_f64(rng.unit()),
            end,
        }
    }

    /// Sleeps until the next operation is due; false once the workload has ended.
    pub fn wait(&mut self, rng: &mut Rng) -> bool {
        if let Some(wait) = self.next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        self.next += self.interval.mul_f64(0.5 + rng.unit());
        Instant::now() < self.end
    }
}

/// One client's op loop until the workload ends.
fn client(ctx: ClientCtx<'_>) -> Result<(), WorkloadError> {
    let ClientCtx {
        c,
        w,
        hosts,
        port,
        log,
        seed,
        start,
        end,
    } = ctx;
    let mut rng = Rng::new(seed, 1000 + c as u64);
    let host = c % hosts.len();
    let mut conn = Conn {
        host,
        addr: SocketAddr::from((hosts[host].addr, port)),
        stream: None,
        timeout: w.op_timeout,
    };
    let mut process = c as i64;
    let mut pacer = Pacer::new(w, &mut rng, start, end);
    let mut seq = 0i64;
    while pacer.wait(&mut rng) {
        let key = Value::from(rng.below(w.keys as usize) as i64);
        let p = Process::Id(process);
        let outcome = if rng.unit() < w.read_share {
            log.record(
                p.clone(),
                OpType::Invoke,
                "read",
                Some(key.clone()),
                Value::Null,
            );
            let r = conn.request(hosts, &format!("READ {key}"));
            (classify(r, parse_set), "read", Value::Null)
        } else {
            seq += 1;
            let elem = (c as i64) * 10_000_000 + seq;
            log.record(
                p.clone(),
                OpType::Invoke,
                "add",
                Some(key.clone()),
                Value::from(elem),
            );
            let r = conn.request(hosts, &format!("ADD {key} {elem}"));
            (
                classify(r, |_| Some(Value::from(elem))),
                "add",
                Value::from(elem),
            )
        };
        let (o, f, arg) = outcome;
        match o {
            Outcome::Ok(v) => {
                log.record(p, OpType::Ok, f, Some(key), v);
            }
            Outcome::Fail => {
                log.record(p, OpType::Fail, f, Some(key), arg);
            }
            Outcome::Info => {
                log.record(p, OpType::Info, f, Some(key), arg);
                // Indeterminate: this process may still be in flight; continue as a new one.
                process += w.clients as i64;
                conn.stream = None;
            }
            Outcome::Protocol(reply) => {
                log.record(p, OpType::Info, f, Some(key), arg);
                return Err(WorkloadError::Protocol { client: c, reply });
            }
        }
    }
    Ok(())
}

/// Runs every client from `start` until `end`; returns when all have stopped.
pub fn run(
    w: &Workload,
    hosts: &[Endpoint<'_>],
    port: u16,
    log: &HistoryLog,
    seed: u64,
    start: Instant,
    end: Instant,
) -> Result<(), WorkloadError> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..w.clients)
            .map(|c| {
                let ctx = ClientCtx {
                    c,
                    w,
                    hosts,
                    port,
                    log,
                    seed,
                    start,
                    end,
                };
                s.spawn(move || match w.client {
                    Client::KvSet => client(ctx),
                    Client::EtcdRegister => super::etcd::client(ctx),
                    Client::RedisSet => super::redis::set::client(ctx),
                    Client::RedisKv => super::redis::kv::client(ctx),
                    Client::RedisCounter => super::redis::counter::client(ctx),
                    Client::RedisListAppend => super::redis::list_append::client(ctx),
                    Client::Exec => super::exec::client(ctx),
                })
            })
            .collect();
        let mut first_error = None;
        for (c, h) in handles.into_iter().enumerate() {
            let r = h
                .join()
                .map_err(|_| WorkloadError::ClientCrashed(c))
                .and_then(|r| r);
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    })
}

/// After the faults healed: one client per host reads every key until it gets an answer
/// (retrying up to `attempts` times), so lost acknowledged writes show up in the history.
pub fn final_reads(
    w: &Workload,
    hosts: &[Endpoint<'_>],
    port: u16,
    log: &HistoryLog,
    attempts: u32,
) {
    if w.client != Client::KvSet {
        // Registers are decided by linearizability alone; final reads add nothing there.
        return;
    }
    std::thread::scope(|s| {
        for (h, host) in hosts.iter().enumerate() {
            s.spawn(move || {
                let mut conn = Conn {
                    host: h,
                    addr: SocketAddr::from((host.addr, port)),
                    stream: None,
                    timeout: w.op_timeout,
                };
                let process = Process::Id(1_000_000 + h as i64);
                for k in 0..w.keys {
                    for _ in 0..attempts {
                        let key = Value::from(i64::from(k));
                        log.record(
                            process.clone(),
                            OpType::Invoke,
                            "read",
                            Some(key.clone()),
                            Value::Null,
                        );
                        match classify(conn.request(hosts, &format!("READ {k}")), parse_set) {
                            Outcome::Ok(v) => {
                                log.record(process.clone(), OpType::Ok, "read", Some(key), v);
                                break;
                            }
                            _ => {
                                log.record(
                                    process.clone(),
                                    OpType::Fail,
                                    "read",
                                    Some(key),
                                    Value::Null,
                                );
                                conn.stream = None;
                                std::thread::sleep(Duration::from_millis(300));
                            }
                        }
                    }
                }
            });
        }
    });
}
