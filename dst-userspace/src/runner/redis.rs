//! The `redis-set` workload client: SADD to the primary (host 1), SMEMBERS from the client's own
//! host (the primary, or a replica), through the `redis` crate on connections made inside the
//! hosts' namespaces. A READONLY or connection refusal is `fail`; a timeout is `info`. Against a
//! replica behind an asynchronous replication link, reads that miss acknowledged adds are what
//! the no-lost-writes invariant reports.

use std::time::Duration;

use checkers::history::{OpType, Process};
use serde_json::{Value, json};

use super::{
    rng::Rng,
    workload::{ClientCtx, Pacer, WorkloadError},
};
use crate::testing::Host;

enum Reply<T> {
    Ok(T),
    Refused,
    Unknown,
}

struct Conn {
    host: usize,
    port: u16,
    timeout: Duration,
    conn: Option<redis::Connection>,
}

impl Conn {
    fn call<T: redis::FromRedisValue>(&mut self, hosts: &[Host], cmd: &redis::Cmd) -> Reply<T> {
        if self.conn.is_none() {
            let url = format!("redis://{}:{}/", hosts[self.host].addr, self.port);
            let t = self.timeout;
            let made = hosts[self.host].ns.run(|| {
                let c = redis::Client::open(url.as_str())?.get_connection_with_timeout(t)?;
                c.set_read_timeout(Some(t))?;
                c.set_write_timeout(Some(t))?;
                Ok::<_, redis::RedisError>(c)
            });
            match made {
                Ok(Ok(c)) => self.conn = Some(c),
                _ => return Reply::Refused,
            }
        }
        let conn = self.conn.as_mut().expect("connected above");
        match cmd.query::<T>(conn) {
            Ok(v) => Reply::Ok(v),
            Err(e) if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() => {
                self.conn = None;
                Reply::Unknown
            }
            // READONLY, wrong type, … : the server refused it.
            Err(_) => Reply::Refused,
        }
    }
}

/// One client's op loop until the workload ends.
pub fn client(ctx: ClientCtx<'_>) -> Result<(), WorkloadError> {
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
    let mut rng = Rng::new(seed, 3000 + c as u64);
    let local = c % hosts.len();
    let mut primary = Conn {
        host: 0,
        port,
        timeout: w.op_timeout,
        conn: None,
    };
    let mut reader = Conn {
        host: local,
        port,
        timeout: w.op_timeout,
        conn: None,
    };
    let mut process = c as i64;
    let mut pacer = Pacer::new(w, &mut rng, start, end);
    let mut seq = 0i64;
    while pacer.wait(&mut rng) {
        let k = rng.below(w.keys as usize) as i64;
        let key = Value::from(k);
        let p = Process::Id(process);
        let (f, kind, value) = if rng.unit() < w.read_share {
            log.record(
                p.clone(),
                OpType::Invoke,
                "read",
                Some(key.clone()),
                Value::Null,
            );
            match reader.call::<Vec<i64>>(hosts, redis::cmd("SMEMBERS").arg(format!("s{k}"))) {
                Reply::Ok(mut v) => {
                    v.sort_unstable();
                    ("read", OpType::Ok, json!(v))
                }
                Reply::Refused => ("read", OpType::Fail, Value::Null),
                Reply::Unknown => ("read", OpType::Info, Value::Null),
            }
        } else {
            seq += 1;
            let e = (c as i64) * 10_000_000 + seq;
            log.record(
                p.clone(),
                OpType::Invoke,
                "add",
                Some(key.clone()),
                Value::from(e),
            );
            let kind =
                match primary.call::<i64>(hosts, redis::cmd("SADD").arg(format!("s{k}")).arg(e)) {
                    Reply::Ok(_) => OpType::Ok,
                    Reply::Refused => OpType::Fail,
                    Reply::Unknown => OpType::Info,
                };
            ("add", kind, Value::from(e))
        };
        log.record(p, kind, f, Some(key), value);
        if kind == OpType::Info {
            process += w.clients as i64;
        }
    }
    Ok(())
}
