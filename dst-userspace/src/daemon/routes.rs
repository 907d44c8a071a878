//! The HTTP/JSON API (axum): faults, events (SSE), history, health and metrics. Every error is
//! JSON `{"error": ..., "field": ...}` with a status that says whose problem it is.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio_stream::{StreamExt as _, wrappers::BroadcastStream};

use super::{
    events::Bus,
    faults::{FaultError, Faults},
    metrics,
    scope::Scope,
};
use crate::{
    fault::{FaultFileError, FaultSet},
    history::{HistoryError, Recorder, parse_ops},
    k8s::{Resolver, lookup, retarget},
};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The fault engine thread.
    pub faults: Faults,
    /// The history recorder.
    pub history: Arc<Recorder>,
    /// Event fan-out.
    pub bus: Bus,
    /// When the daemon started (CLOCK_MONOTONIC ns).
    pub started: u64,
    /// Which targets this daemon may touch.
    pub scope: Arc<Scope>,
    /// Pod and container resolution (None without a cgroup v2 mount).
    pub resolver: Option<Resolver>,
}

/// An error response.
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(f) = self.field {
            body["field"] = f.into();
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<FaultError> for ApiError {
    fn from(e: FaultError) -> Self {
        let message = e.to_string();
        let (status, field) = match e {
            FaultError::Invalid(FaultFileError::Invalid { field, .. }) => {
                (StatusCode::BAD_REQUEST, Some(field))
            }
            FaultError::Invalid(FaultFileError::Empty) => {
                (StatusCode::BAD_REQUEST, Some("net".to_string()))
            }
            FaultError::Invalid(FaultFileError::Parse { .. }) => (StatusCode::BAD_REQUEST, None),
            FaultError::Refused { field, .. } => (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            FaultError::Forbidden { field, .. } => (StatusCode::FORBIDDEN, Some(field)),
            FaultError::Conflict { field, .. } => (StatusCode::CONFLICT, Some(field)),
            FaultError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            FaultError::Unavailable(_) | FaultError::Stopped => {
                (StatusCode::SERVICE_UNAVAILABLE, None)
            }
        };
        Self {
            status,
            message,
            field,
        }
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        let message = e.to_string();
        let (status, field) = match e {
            HistoryError::Invalid { field, .. } => (StatusCode::BAD_REQUEST, Some(field)),
            _ => (StatusCode::SERVICE_UNAVAILABLE, None),
        };
        Self {
            status,
            message,
            field,
        }
    }
}

/// The API routes (authentication is layered on by the caller for TCP).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/faults",
            get(list_faults).post(apply_faults).delete(clear_all),
        )
        .route("/v1/faults/{id}", get(get_fault).delete(clear_fault))
        .route("/v1/txn", get(list_txns))
        .route("/v1/txn/{txn}", post(prepare_txn).delete(abort_txn))
        .route("/v1/txn/{txn}/commit", post(commit_txn))
        .route("/v1/events", get(events))
        .route("/v1/history", get(read_history).post(append_history))
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// Routes served without the bearer token on TCP: only `/healthz` (200 when the fault engine
/// is loaded, 503 otherwise; no details), for Kubernetes readiness probes.
pub fn public_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.faults.call(|t| t.engine_status()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "engine not loaded\n").into_response(),
    }
}

/// Parses a fault set (JSON or TOML, the fault-file schema). The first problem names its field.
fn parse_set(body: &[u8]) -> Result<FaultSet, FaultError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        FaultError::Invalid(FaultFileError::Parse {
            format: "json",
            message: format!("the body is not UTF-8: {e}"),
        })
    })?;
    match FaultSet::parse(text) {
        Ok(s) => Ok(s),
        // An action kind that parsed but no backend of this build carries: a refusal, not a
        // malformed body (the kind tag itself is checked by the parser).
        Err(FaultFileError::Invalid { field, problem }) if field.ends_with(".action.kind") => {
            Err(FaultError::Refused { field, problem })
        }
        Err(e) => Err(e.into()),
    }
}

/// Parses a set, turns pod/container references into cgroup/netns targets and refuses targets
/// outside this daemon's node.
async fn resolved_set(s: &AppState, body: &[u8]) -> Result<FaultSet, FaultError> {
    let mut set = parse_set(body)?;
    for (i, f) in set.net.iter_mut().enumerate() {
        let t = &f.target;
        if t.pod.is_none() && t.container.is_none() {
            continue;
        }
        let field = format!(
            "net[{i}].target.{}",
            if t.pod.is_some() { "pod" } else { "container" }
        );
        let resolver = s.resolver.as_ref().ok_or_else(|| FaultError::Refused {
            field: field.clone(),
            problem: "no cgroup v2 hierarchy is mounted here, so pods cannot be found".into(),
        })?;
        let r = lookup(resolver, t.pod.as_deref(), t.container.as_deref())
            .await
            .map_err(|e| FaultError::Refused {
                field: field.clone(),
                problem: e.to_string(),
            })?;
        f.target = retarget(t, &r).map_err(|e| FaultError::Refused {
            field,
            problem: e.to_string(),
        })?;
    }
    s.scope.check(&set).map_err(|e| FaultError::Forbidden {
        field: e.field,
        problem: e.problem,
    })?;
    Ok(set)
}

async fn apply_faults(State(s): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let set = resolved_set(&s, &body).await?;
    let views = s
        .faults
        .call_quick(
            s.faults.peek(|t| t.apply_is_quick(&set)) == Some(true),
            move |t| t.apply(set),
        )
        .await??;
    Ok((StatusCode::CREATED, Json(json!({ "faults": views }))).into_response())
}

#[derive(Deserialize)]
struct PrepareQuery {
    /// Seconds the prepared set waits for its commit (default 30).
    ttl: Option<u64>,
}

/// Phase one of a cross-node apply: validate, resolve, load; nothing is active yet.
async fn prepare_txn(
    State(s): State<AppState>,
    Path(txn): Path<String>,
    Query(q): Query<PrepareQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let set = resolved_set(&s, &body).await?;
    let ttl = Duration::from_secs(q.ttl.unwrap_or(30).clamp(1, 600));
    let t = txn.clone();
    let ids = s.faults.call(move |tb| tb.prepare(t, set, ttl)).await??;
    Ok(Json(json!({ "txn": txn, "state": "prepared", "faults": ids })).into_response())
}

/// Phase two: install the prepared set atomically.
async fn commit_txn(
    State(s): State<AppState>,
    Path(txn): Path<String>,
) -> Result<Response, ApiError> {
    let views = s.faults.call(move |t| t.commit(&txn)).await??;
    Ok((StatusCode::CREATED, Json(json!({ "faults": views }))).into_response())
}

/// Rollback: forget a prepared set, or clear what a committed one installed.
async fn abort_txn(
    State(s): State<AppState>,
    Path(txn): Path<String>,
) -> Result<Response, ApiError> {
    let views = s.faults.call(move |t| t.abort(&txn)).await?;
    Ok(Json(json!({ "state": "aborted", "cleared": views })).into_response())
}

async fn list_txns(State(s): State<AppState>) -> Result<Response, ApiError> {
    let pending = s.faults.call(|t| t.pending()).await?;
    let list: Vec<_> = pending
        .into_iter()
        .map(|(txn, faults)| json!({"txn": txn, "faults": faults}))
        .collect();
    Ok(Json(json!({ "pending": list })).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    all: bool,
}

async fn list_faults(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let views = s.faults.call(move |t| t.list(q.all)).await?;
    Ok(Json(json!({ "faults": views })).into_response())
}

async fn get_fault(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = s.faults.call(move |t| t.get(&id)).await??;
    Ok(Json(view).into_response())
}

async fn clear_fault(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = s
        .faults
        .call_quick(
            s.faults.peek(|t| t.clear_is_quick(&id)) == Some(true),
            move |t| t.clear(&id),
        )
        .await??;
    Ok(Json(view).into_response())
}

async fn clear_all(State(s): State<AppState>) -> Result<Response, ApiError> {
    let views = s.faults.call(|t| t.clear_all()).await?;
    Ok(Json(json!({ "faults": views })).into_response())
}

async fn events(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let stream = BroadcastStream::new(s.bus.subscribe()).filter_map(|e| {
        let e = e.ok()?;
        let name = serde_json::to_value(&e)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_string))
            .unwrap_or_default();
        SseEvent::default().event(name).json_data(&e).ok().map(Ok)
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn append_history(State(s): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let ops = parse_ops(&body)?;
    let acked = s.history.append_async(ops).await?;
    Ok(Json(acked).into_response())
}

#[derive(Deserialize)]
struct HistoryQuery {
    /// Only operations with index >= from.
    from: Option<u64>,
}

async fn read_history(
    State(s): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let history = s.history.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, HistoryError> {
        use std::io::Read as _;
        let durable = history
            .stats()
            .durable_len
            .load(std::sync::atomic::Ordering::Acquire);
        let io = |op| {
            let path = history.path().to_path_buf();
            move |source| HistoryError::Io { op, path, source }
        };
        let f = std::fs::File::open(history.path()).map_err(io("opening"))?;
        let mut data = Vec::with_capacity(durable as usize);
        f.take(durable)
            .read_to_end(&mut data)
            .map_err(io("reading"))?;
        let Some(from) = q.from else {
            return Ok(data);
        };
        let mut out = Vec::new();
        for line in data.split_inclusive(|&b| b == b'\n') {
            let index = serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["index"].as_u64());
            if index.is_some_and(|i| i >= from) {
                out.extend_from_slice(line);
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| HistoryError::Failed(e.to_string()))??;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

async fn health(State(s): State<AppState>) -> Result<Response, ApiError> {
    use std::sync::atomic::Ordering::Relaxed;
    let (engine, active) = s
        .faults
        .call(|t| (t.engine_status(), t.list(false).len()))
        .await?;
    let st = s.history.stats();
    Ok(Json(json!({
        "status": "ok",
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_ns": crate::net::spec::monotonic_ns().saturating_sub(s.started),
        "engine": match engine { Ok(()) => json!({"loaded": true}), Err(e) => json!({"loaded": false, "error": e}) },
        "faults_active": active,
        "history": {
            "path": s.history.path(),
            "next_index": st.next_index.load(Relaxed),
            "ops": st.ops.load(Relaxed),
            "syncs": st.batches.load(Relaxed),
            "recovered": s.history.recovery(),
        },
    }))
    .into_response())
}

async fn metrics_text(State(s): State<AppState>) -> Result<Response, ApiError> {
    let views = s.faults.call(|t| t.list(true)).await?;
    let text = metrics::render(&views, Some(s.history.stats()));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}
