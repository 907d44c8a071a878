//! Redis workload clients (through the `redis` crate, RESP over TCP, on connections made inside
//! the hosts' namespaces): `redis-set` (SADD/SMEMBERS), `redis-kv` (GET/SET/APPEND per key,
//! checked as a linearizable kv store), `redis-counter` (INCR/GET, a linearizable counter) and
//! `redis-list-append` (MULTI/EXEC transactions of RPUSH and LRANGE, checked by Elle's
//! list-append). Writes go to the primary (host 1), reads to the client's own host. A refusal
//! (READONLY, connection refused) is `fail`; a timeout or a dropped connection is `info`.

pub mod counter;
pub mod kv;
pub mod list_append;
pub mod set;

use std::time::Duration;

use checkers::history::{OpType, Process};
use serde_json::Value;

use crate::runner::{endpoint::Endpoint, log::HistoryLog};

/// What a command got.
pub(crate) enum Reply<T> {
    /// The server's answer.
    Ok(T),
    /// Certainly not executed (refused, not connected).
    Refused,
    /// Maybe executed (timeout, connection dropped).
    Unknown,
}

impl<T> Reply<T> {
    /// The history completion for this reply: `ok` with `f(value)`, `fail`, or `info`.
    pub(crate) fn complete(self, f: impl FnOnce(T) -> Value) -> (OpType, Value) {
        match self {
            Self::Ok(v) => (OpType::Ok, f(v)),
            Self::Refused => (OpType::Fail, Value::Null),
            Self::Unknown => (OpType::Info, Value::Null),
        }
    }
}

/// A lazily (re)connected connection to one host's Redis.
pub(crate) struct Conn {
    host: usize,
    port: u16,
    timeout: Duration,
    conn: Option<redis::Connection>,
}

impl Conn {
    /// A connection to host `host` (0-based), made on first use.
    pub(crate) fn new(host: usize, port: u16, timeout: Duration) -> Self {
        Self {
            host,
            port,
            timeout,
            conn: None,
        }
    }

    fn connection(&mut self, hosts: &[Endpoint<'_>]) -> Option<&mut redis::Connection> {
        if self.conn.is_none() {
            let url = format!("redis://{}:{}/", hosts[self.host].addr, self.port);
            let t = self.timeout;
            let made = hosts[self.host].run(|| {
                let c = redis::Client::open(url.as_str())?.get_connection_with_timeout(t)?;
                c.set_read_timeout(Some(t))?;
                c.set_write_timeout(Some(t))?;
                Ok::<_, redis::RedisError>(c)
            });
            self.conn = made.ok().and_then(Result::ok);
        }
        self.conn.as_mut()
    }

    fn classify<T>(&mut self, r: redis::RedisResult<T>) -> Reply<T> {
        match r {
            Ok(v) => Reply::Ok(v),
            Err(e) if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() => {
                self.conn = None;
                Reply::Unknown
            }
            // READONLY, wrong type, EXECABORT … : the server refused it.
            Err(_) => Reply::Refused,
        }
    }

    /// Runs one command.
    pub(crate) fn call<T: redis::FromRedisValue>(
        &mut self,
        hosts: &[Endpoint<'_>],
        cmd: &redis::Cmd,
    ) -> Reply<T> {
        let Some(conn) = self.connection(hosts) else {
            return Reply::Refused;
        };
        let r = cmd.query::<T>(conn);
        self.classify(r)
    }

    /// Runs a MULTI/EXEC transaction.
    pub(crate) fn atomic<T: redis::FromRedisValue>(
        &mut self,
        hosts: &[Endpoint<'_>],
        pipe: &redis::Pipeline,
    ) -> Reply<T> {
        let Some(conn) = self.connection(hosts) else {
            return Reply::Refused;
        };
        let r = pipe.query::<T>(conn);
        self.classify(r)
    }
}

/// Records one operation of `process` around `call`: the invocation with `arg`, then the
/// completion `call` returns. After an `info` the client continues as a new process (its
/// previous operation may still take effect), as Jepsen does.
pub(crate) fn record(
    log: &HistoryLog,
    process: &mut i64,
    clients: usize,
    f: &str,
    key: Option<Value>,
    arg: Value,
    call: impl FnOnce() -> (OpType, Value),
) {
    let p = Process::Id(*process);
    log.record(p.clone(), OpType::Invoke, f, key.clone(), arg.clone());
    let (kind, value) = call();
    // An unacknowledged write is recorded with its argument (what it may have done).
    let value = if value.is_null() && kind != OpType::Ok {
        arg
    } else {
        value
    };
    log.record(p, kind, f, key, value);
    if kind == OpType::Info {
        *process += clients as i64;
    }
}
