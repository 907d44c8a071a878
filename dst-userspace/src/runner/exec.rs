//! The `exec` workload client: one user command per operation, so any system can be tested
//! (see [`super::scenario::ExecClient`] for the contract).

use std::{
    os::unix::process::ExitStatusExt as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use checkers::history::{OpType, Process};
use serde_json::Value;

use super::endpoint::Endpoint;
use super::{
    rng::Rng,
    scenario::ExecClient,
    workload::{ClientCtx, Pacer, WorkloadError},
};

enum Outcome {
    Ok(Value),
    Fail,
    Info,
    Crashed(i32),
}

#[allow(clippy::too_many_arguments)]
fn one(
    e: &ExecClient,
    hosts: &[Endpoint<'_>],
    host: usize,
    port: u16,
    f: &str,
    key: i64,
    value: &Value,
    timeout: Duration,
) -> Outcome {
    let mut cmd = e
        .command
        .replace("{f}", f)
        .replace("{key}", &key.to_string())
        .replace("{value}", &value.to_string())
        .replace("{addr}", &hosts[host].addr.to_string())
        .replace("{port}", &port.to_string());
    let addrs: Vec<_> = hosts.iter().map(|h| h.addr).collect();
    cmd = super::sut::expand_addrs(&cmd, &addrs);
    let child = hosts[host].run(|| {
        Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .env("DST_F", f)
            .env("DST_KEY", key.to_string())
            .env("DST_VALUE", value.to_string())
            .env("DST_ADDR", hosts[host].addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
    });
    let Ok(Ok(mut child)) = child else {
        return Outcome::Fail;
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                if let Some(mut o) = child.stdout.take() {
                    let _ = std::io::Read::read_to_string(&mut o, &mut out);
                }
                return match (status.code(), status.signal()) {
                    (Some(0), _) => {
                        let t = out.trim();
                        if t.is_empty() {
                            Outcome::Ok(value.clone())
                        } else {
                            Outcome::Ok(
                                serde_json::from_str(t)
                                    .unwrap_or_else(|_| Value::String(t.to_string())),
                            )
                        }
                    }
                    (Some(1), _) => Outcome::Fail,
                    (_, Some(sig)) => Outcome::Crashed(sig),
                    _ => Outcome::Info,
                };
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Info;
            }
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
    let Some(e) = w.exec.as_ref() else {
        return Ok(());
    };
    let mut rng = Rng::new(seed, 4000 + c as u64);
    let host = c % hosts.len();
    let mut process = c as i64;
    let mut pacer = Pacer::new(w, &mut rng, start, end);
    let mut seq = 0i64;
    while pacer.wait(&mut rng) {
        let key = rng.below(w.keys as usize) as i64;
        let (f, arg) = if rng.unit() < w.read_share {
            (e.read.as_str(), Value::Null)
        } else {
            seq += 1;
            (e.write.as_str(), Value::from((c as i64) * 10_000_000 + seq))
        };
        let p = Process::Id(process);
        log.record(
            p.clone(),
            OpType::Invoke,
            f,
            Some(Value::from(key)),
            arg.clone(),
        );
        match one(e, hosts, host, port, f, key, &arg, w.op_timeout) {
            Outcome::Ok(v) => {
                log.record(
                    p,
                    OpType::Ok,
                    f,
                    Some(Value::from(key)),
                    if arg.is_null() { v } else { arg },
                );
            }
            Outcome::Fail => {
                log.record(p, OpType::Fail, f, Some(Value::from(key)), arg);
            }
            Outcome::Info => {
                log.record(p, OpType::Info, f, Some(Value::from(key)), arg);
                process += w.clients as i64;
            }
            Outcome::Crashed(sig) => {
                log.record(p, OpType::Info, f, Some(Value::from(key)), arg);
                return Err(WorkloadError::Crashed {
                    client: c,
                    signal: sig,
                });
            }
        }
    }
    Ok(())
}
