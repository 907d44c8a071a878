//! The `redis-kv` client: per key, GET (from the client's own host), SET and APPEND (to the
//! primary) of unique string values; the history is a kv store checked per key for
//! linearizability (`checker.model = "kv"`). A missing key reads as `""`.

use serde_json::Value;

use super::{Conn, record};
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
    let mut rng = Rng::new(seed, 3100 + c as u64);
    let mut primary = Conn::new(0, port, w.op_timeout);
    let mut reader = Conn::new(c % hosts.len(), port, w.op_timeout);
    let mut process = c as i64;
    let mut pacer = Pacer::new(w, &mut rng, start, end);
    let mut seq = 0u64;
    while pacer.wait(&mut rng) {
        let k = rng.below(w.keys as usize);
        let key = Some(Value::from(k as i64));
        let name = format!("kv{k}");
        if rng.unit() < w.read_share {
            record(
                log,
                &mut process,
                w.clients,
                "get",
                key,
                Value::Null,
                || {
                    reader
                        .call::<Option<String>>(hosts, redis::cmd("GET").arg(&name))
                        .complete(|v| Value::from(v.unwrap_or_default()))
                },
            );
            continue;
        }
        seq += 1;
        let v = format!("{c}.{seq}");
        if rng.below(2) == 0 {
            record(
                log,
                &mut process,
                w.clients,
                "put",
                key,
                Value::from(v.clone()),
                || {
                    primary
                        .call::<()>(hosts, redis::cmd("SET").arg(&name).arg(&v))
                        .complete(|()| Value::from(v.clone()))
                },
            );
        } else {
            let piece = format!(",{v}");
            record(
                log,
                &mut process,
                w.clients,
                "append",
                key,
                Value::from(piece.clone()),
                || {
                    primary
                        .call::<i64>(hosts, redis::cmd("APPEND").arg(&name).arg(&piece))
                        .complete(|_| Value::from(piece.clone()))
                },
            );
        }
    }
    Ok(())
}
