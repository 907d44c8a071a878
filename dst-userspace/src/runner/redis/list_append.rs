//! The `redis-list-append` client: transactions of one to four micro-ops, each an append
//! (`RPUSH` of a unique integer) or a read (`LRANGE 0 -1`) of a list key, run atomically with
//! MULTI/EXEC — on the primary, or on the client's own host when the transaction only reads.
//! Recorded as Elle list-append transactions (`checker.model = "list-append"`), which finds
//! lost appends, stale and non-repeatable reads as dependency cycles.

use serde_json::{Value, json};

use super::{Conn, record};
use crate::runner::{
    rng::Rng,
    workload::{ClientCtx, Pacer, WorkloadError},
};

/// One micro-op: (append?, key, value appended).
type Mop = (bool, u64, i64);

fn encode(mops: &[Mop], reads: Option<&[Value]>) -> Value {
    Value::Array(
        mops.iter()
            .enumerate()
            .map(|(i, &(append, k, v))| {
                if append {
                    json!(["append", k, v])
                } else {
                    json!(["r", k, reads.map_or(Value::Null, |r| r[i].clone())])
                }
            })
            .collect(),
    )
}

/// The list values read by a transaction, from EXEC's replies (one per command).
fn reads_of(mops: &[Mop], replies: &[redis::Value]) -> Option<Vec<Value>> {
    if replies.len() != mops.len() {
        return None;
    }
    mops.iter()
        .zip(replies)
        .map(|(&(append, ..), r)| {
            if append {
                return Some(Value::Null);
            }
            let items: Vec<i64> = redis::FromRedisValue::from_redis_value(r).ok()?;
            Some(json!(items))
        })
        .collect()
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
    let mut rng = Rng::new(seed, 3300 + c as u64);
    let mut primary = Conn::new(0, port, w.op_timeout);
    let mut reader = Conn::new(c % hosts.len(), port, w.op_timeout);
    let mut process = c as i64;
    let mut pacer = Pacer::new(w, &mut rng, start, end);
    let mut seq = 0i64;
    while pacer.wait(&mut rng) {
        let n = 1 + rng.below(4);
        let mops: Vec<Mop> = (0..n)
            .map(|_| {
                let k = rng.below(w.keys as usize) as u64;
                if rng.unit() < w.read_share {
                    (false, k, 0)
                } else {
                    seq += 1;
                    (true, k, (c as i64) * 10_000_000 + seq)
                }
            })
            .collect();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for &(append, k, v) in &mops {
            let list = format!("la{k}");
            if append {
                pipe.cmd("RPUSH").arg(&list).arg(v);
            } else {
                pipe.cmd("LRANGE").arg(&list).arg(0).arg(-1);
            }
        }
        let conn = if mops.iter().any(|m| m.0) {
            &mut primary
        } else {
            &mut reader
        };
        record(
            log,
            &mut process,
            w.clients,
            "txn",
            None,
            encode(&mops, None),
            || {
                match conn.atomic::<Vec<redis::Value>>(hosts, &pipe) {
                    super::Reply::Ok(replies) => match reads_of(&mops, &replies) {
                        Some(reads) => (checkers::history::OpType::Ok, encode(&mops, Some(&reads))),
                        // A reply of the wrong shape: we cannot tell what happened.
                        None => (checkers::history::OpType::Info, Value::Null),
                    },
                    super::Reply::Refused => (checkers::history::OpType::Fail, Value::Null),
                    super::Reply::Unknown => (checkers::history::OpType::Info, Value::Null),
                }
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_replies_fill_the_reads() {
        let mops = [(true, 1, 7), (false, 1, 0)];
        let replies = [
            redis::Value::Int(1),
            redis::Value::Array(vec![redis::Value::BulkString(b"7".to_vec())]),
        ];
        let reads = reads_of(&mops, &replies).unwrap();
        assert_eq!(
            encode(&mops, Some(&reads)),
            json!([["append", 1, 7], ["r", 1, [7]]])
        );
        assert!(reads_of(&mops, &replies[..1]).is_none());
    }
}
