//! The `redis-set` workload client: SADD to the primary (host 1), SMEMBERS from the client's own
//! host (the primary, or a replica), through the `redis` crate on connections made inside the
//! hosts' namespaces. A READONLY or connection refusal is `fail`; a timeout is `info`. Against a
//! replica behind an asynchronous replication link, reads that miss acknowledged adds are what
//! the no-lost-writes invariant reports.

use checkers::history::{OpType, Process};
use serde_json::{Value, json};

use super::{Conn, Reply};
use crate::runner::{
    rng::Rng,
    workload::{ClientCtx, Pacer, WorkloadError},
};

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
    let mut primary = Conn::new(0, port, w.op_timeout);
    let mut reader = Conn::new(local, port, w.op_timeout);
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
