//! The `etcd-register` workload client: a compare-and-set register per key over etcd's v3 JSON
//! gateway (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`), HTTP/1.1 through hyper on a connection
//! made inside the client's host namespace. Timeouts and server-side timeouts (503/500 with
//! "timed out"/"deadline") are `info`; a refused connection is `fail`; a txn whose compare did not
//! hold is a `fail` cas, which the cas-register model reads as "the value differed".

use std::{
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use checkers::history::{OpType, Process};
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, body::Bytes, client::conn::http1};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::endpoint::Endpoint;
use super::{
    rng::Rng,
    workload::{ClientCtx, Pacer, WorkloadError},
};

/// Result of one request.
enum Reply {
    /// HTTP 200 with this JSON body.
    Ok(Value),
    /// Certainly not applied (no connection, or a 4xx refusal).
    Refused,
    /// May have been applied.
    Unknown,
}

struct Conn {
    rt: tokio::runtime::Runtime,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
    host: usize,
    addr: SocketAddr,
    timeout: Duration,
}

impl Conn {
    fn post(&mut self, hosts: &[Endpoint<'_>], path: &str, body: &Value) -> Reply {
        if self.sender.is_none() {
            let addr = self.addr;
            let t = self.timeout;
            let Ok(Ok(stream)) = hosts[self.host].run(|| TcpStream::connect_timeout(&addr, t))
            else {
                return Reply::Refused;
            };
            let _ = stream.set_nonblocking(true);
            let sender = self.rt.block_on(async {
                let s = tokio::net::TcpStream::from_std(stream).ok()?;
                let (sender, conn) = http1::handshake(TokioIo::new(s)).await.ok()?;
                tokio::spawn(conn);
                Some(sender)
            });
            match sender {
                Some(s) => self.sender = Some(s),
                None => return Reply::Refused,
            }
        }
        let req = Request::post(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())));
        let Ok(req) = req else { return Reply::Refused };
        let sender = self.sender.as_mut().expect("connected above");
        let t = self.timeout;
        let out = self.rt.block_on(async {
            tokio::time::timeout(t, async {
                let resp = sender.send_request(req).await.ok()?;
                let status = resp.status().as_u16();
                let bytes = resp.into_body().collect().await.ok()?.to_bytes();
                Some((status, bytes))
            })
            .await
        });
        match out {
            Ok(Some((200, bytes))) => {
                serde_json::from_slice(&bytes).map_or(Reply::Unknown, Reply::Ok)
            }
            Ok(Some((status, _))) if (400..500).contains(&status) => Reply::Refused,
            _ => {
                // Timed out, broken, or a 5xx "request timed out": indeterminate; reconnect.
                self.sender = None;
                Reply::Unknown
            }
        }
    }
}

fn b64(v: i64) -> String {
    B64.encode(v.to_string())
}

fn unb64(s: &str) -> Option<i64> {
    String::from_utf8(B64.decode(s).ok()?).ok()?.parse().ok()
}

/// One client's op loop until the workload ends: read / write / cas on small integer values.
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(WorkloadError::Runtime)?;
    let mut rng = Rng::new(seed, 2000 + c as u64);
    let host = c % hosts.len();
    let mut conn = Conn {
        rt,
        sender: None,
        host,
        addr: SocketAddr::from((hosts[host].addr, port)),
        timeout: w.op_timeout,
    };
    let mut process = c as i64;
    let mut pacer = Pacer::new(w, &mut rng, start, end);
    while pacer.wait(&mut rng) {
        let k = rng.below(w.keys as usize) as i64;
        let key = Value::from(k);
        let kb = B64.encode(format!("r{k}"));
        let p = Process::Id(process);
        let roll = rng.unit();
        let (f, arg, reply) = if roll < w.read_share {
            log.record(
                p.clone(),
                OpType::Invoke,
                "read",
                Some(key.clone()),
                Value::Null,
            );
            (
                "read",
                Value::Null,
                conn.post(hosts, "/v3/kv/range", &json!({"key": kb})),
            )
        } else if roll < w.read_share + (1.0 - w.read_share) / 2.0 {
            let v = rng.below(5) as i64;
            log.record(
                p.clone(),
                OpType::Invoke,
                "write",
                Some(key.clone()),
                Value::from(v),
            );
            (
                "write",
                Value::from(v),
                conn.post(hosts, "/v3/kv/put", &json!({"key": kb, "value": b64(v)})),
            )
        } else {
            let (from, to) = (rng.below(5) as i64, rng.below(5) as i64);
            log.record(
                p.clone(),
                OpType::Invoke,
                "cas",
                Some(key.clone()),
                json!([from, to]),
            );
            let body = json!({
                "compare": [{"key": kb, "target": "VALUE", "result": "EQUAL", "value": b64(from)}],
                "success": [{"requestPut": {"key": kb, "value": b64(to)}}],
            });
            (
                "cas",
                json!([from, to]),
                conn.post(hosts, "/v3/kv/txn", &body),
            )
        };
        match reply {
            Reply::Ok(body) => {
                let (kind, value) = match f {
                    "read" => {
                        let v = body["kvs"][0]["value"].as_str().and_then(unb64);
                        (OpType::Ok, v.map_or(Value::Null, Value::from))
                    }
                    "cas" if body["succeeded"].as_bool() != Some(true) => (OpType::Fail, arg),
                    _ => (OpType::Ok, arg),
                };
                log.record(p, kind, f, Some(key), value);
            }
            Reply::Refused => {
                log.record(p, OpType::Fail, f, Some(key), arg);
            }
            Reply::Unknown => {
                log.record(p, OpType::Info, f, Some(key), arg);
                process += w.clients as i64;
            }
        }
    }
    Ok(())
}
