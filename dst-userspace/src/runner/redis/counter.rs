//! The `redis-counter` client: INCR (to the primary) and GET (from the client's own host) of
//! one counter; the history is checked as a linearizable counter (`checker.model = "counter"`).
//! A lost acknowledged increment shows as a read below every linearization.

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
    let mut rng = Rng::new(seed, 3200 + c as u64);
    let mut primary = Conn::new(0, port, w.op_timeout);
    let mut reader = Conn::new(c % hosts.len(), port, w.op_timeout);
    let mut process = c as i64;
    let mut pacer = Pacer::new(w, &mut rng, start, end);
    while pacer.wait(&mut rng) {
        if rng.unit() < w.read_share {
            record(
                log,
                &mut process,
                w.clients,
                "read",
                None,
                Value::Null,
                || {
                    reader
                        .call::<Option<i64>>(hosts, redis::cmd("GET").arg("counter"))
                        .complete(|v| Value::from(v.unwrap_or(0)))
                },
            );
        } else {
            record(
                log,
                &mut process,
                w.clients,
                "add",
                None,
                Value::from(1),
                || {
                    primary
                        .call::<i64>(hosts, redis::cmd("INCR").arg("counter"))
                        .complete(|_| Value::from(1))
                },
            );
        }
    }
    Ok(())
}
