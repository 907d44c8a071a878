//! `dst daemon`: owns the loaded programs and every active fault, records history, and serves
//! the HTTP/JSON API on a unix socket (mode 0600) and, only with a bearer token, on TCP.
//!
//! Dead man: the programs are attached through links owned by this process, so every fault
//! disappears when it exits for any reason; each rule also carries a kernel-enforced expiry.
//! On SIGTERM/SIGINT it first clears the faults and writes their final evidence.

pub mod auth;
pub mod delay;
pub mod events;
pub mod faults;
pub mod listener;
pub mod lock;
pub mod metrics;
pub mod routes;
pub mod scope;
pub mod sysfaults;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde_json::json;

use crate::{history::Recorder, net::spec::monotonic_ns};

/// Default unix socket.
pub const DEFAULT_SOCKET: &str = "/run/dst/dst.sock";
/// Default history file.
pub const DEFAULT_HISTORY: &str = "/var/lib/dst/history.jsonl";

/// Errors that stop the daemon from starting or finishing cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds the socket's lock.
    #[error(
        "another dst daemon (pid {pid}) is already serving {socket}; stop it first or pass a \
         different --socket"
    )]
    AlreadyRunning {
        /// The socket.
        socket: PathBuf,
        /// Pid written in the lock file (may be empty).
        pid: String,
    },
    /// A socket or lock file operation failed.
    #[error("{op} {path}: {source}")]
    Socket {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// TCP was requested without a usable token.
    #[error("token file {path}: {problem}; TCP is only served with a bearer token")]
    Token {
        /// The token file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// TCP listen requested without --token-file.
    #[error("--listen needs --token-file: the daemon refuses to serve TCP without a bearer token")]
    TcpWithoutToken,
    /// The history file could not be opened or recovered.
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    /// Writing the final evidence failed.
    #[error("writing final evidence to {path}: {source}")]
    Evidence {
        /// The evidence file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error("--tls-cert/--tls-key: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The async runtime could not start or the server failed.
    #[error("daemon runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// How to run the daemon.
#[derive(Clone, Debug)]
pub struct Config {
    /// Unix socket path.
    pub socket: PathBuf,
    /// History file (JSONL).
    pub history: PathBuf,
    /// Where the final evidence goes on SIGTERM; default `<history>.evidence.json`.
    pub evidence_out: Option<PathBuf>,
    /// Optional TCP address (requires `token_file`).
    pub listen: Option<SocketAddr>,
    /// Bearer token file for TCP.
    pub token_file: Option<PathBuf>,
    /// TLS certificate chain and key (PEM) for the TCP listener; plain HTTP without.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Largest request body in bytes (413 above).
    pub body_limit: usize,
    /// Longest a request may take to answer.
    pub request_timeout: Duration,
    /// Refuse targets outside this node (implied by `listen`).
    pub confine: bool,
    /// Cgroup subtrees a confined daemon may target (default: the whole cgroup2 mount).
    pub cgroup_roots: Vec<PathBuf>,
}

impl Config {
    /// The evidence path in effect.
    pub fn evidence_path(&self) -> PathBuf {
        self.evidence_out
            .clone()
            .unwrap_or_else(|| self.history.with_extension("evidence.json"))
    }
}

/// Runs the daemon until SIGTERM/SIGINT (blocking; builds its own runtime).
pub fn run(config: Config) -> Result<(), DaemonError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?
        .block_on(serve(config))
}

/// Serves until SIGTERM/SIGINT, then clears every fault and writes the final evidence.
pub async fn serve(config: Config) -> Result<(), DaemonError> {
    let token = match (&config.listen, &config.token_file) {
        (Some(_), None) => return Err(DaemonError::TcpWithoutToken),
        (Some(_), Some(f)) => Some(auth::Token::from_file(f)?),
        (None, _) => None,
    };
    let lock = lock::lock(&config.socket)?;
    let history = Arc::new(Recorder::open(&config.history)?);
    let r = history.recovery();
    if r.truncated_bytes > 0 {
        tracing::warn!(
            "history {}: truncated a torn tail of {} bytes",
            config.history.display(),
            r.truncated_bytes
        );
    }
    let tls = match &config.tls {
        Some((cert, key)) => Some(crate::tls::server_config(cert, key)?),
        None => None,
    };
    let resolver = crate::k8s::Resolver::host().ok();
    let scope = scope_of(&config, resolver.clone());
    let bus = events::Bus::default();
    let faults = faults::Faults::start(bus.clone());
    let state = routes::AppState {
        faults: faults.clone(),
        history: history.clone(),
        bus,
        started: monotonic_ns(),
        scope: Arc::new(scope),
        resolver,
    };
    let public = routes::public_router(state.clone());
    let app = routes::router(state)
        .layer(axum::extract::DefaultBodyLimit::max(config.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            config.request_timeout,
            listener::timeout,
        ));
    let unix = lock::bind(&config.socket)?;
    let tcp = match config.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Socket {
                    op: "listening on",
                    path: PathBuf::from(addr.to_string()),
                    source,
                })?,
        ),
        None => None,
    };
    tracing::info!("dst daemon serving {}", config.socket.display());
    let poller = {
        let faults = faults.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                if faults.call(|t| t.poll()).await.is_err() {
                    break;
                }
            }
        })
    };
    let unix_server = axum::serve(unix, app.clone().merge(public.clone()).into_make_service());
    let tcp_server = async {
        match (tcp, token) {
            (Some(l), Some(token)) => {
                let app = public
                    .merge(app.layer(axum::middleware::from_fn_with_state(token, auth::require)));
                match tls {
                    Some(cfg) => {
                        let l = listener::TlsListener::new(l, cfg)?;
                        axum::serve(l, app.into_make_service()).await
                    }
                    None => axum::serve(l, app.into_make_service()).await,
                }
            }
            _ => std::future::pending().await,
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(DaemonError::Runtime)?;
    tokio::select! {
        r = unix_server => r.map_err(DaemonError::Runtime)?,
        r = tcp_server => r.map_err(DaemonError::Runtime)?,
        _ = term.recv() => tracing::info!("SIGTERM: clearing faults"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: clearing faults"),
    }
    poller.abort();
    let result = shutdown(&config, &faults, &history).await;
    let _ = std::fs::remove_file(&config.socket);
    drop(lock);
    result
}

/// The confinement policy of `config`.
fn scope_of(config: &Config, resolver: Option<crate::k8s::Resolver>) -> scope::Scope {
    if !(config.confine || config.listen.is_some()) {
        return scope::Scope::open();
    }
    let mut roots: Vec<PathBuf> = config
        .cgroup_roots
        .iter()
        .map(|r| {
            crate::cgroup::Cgroup::open(r)
                .map(|c| c.path().to_path_buf())
                .unwrap_or_else(|_| r.clone())
        })
        .collect();
    if roots.is_empty() {
        roots.extend(crate::cgroup::cgroup2_mount().ok());
    }
    scope::Scope {
        confined: true,
        cgroup_roots: roots,
        resolver,
    }
}

/// Clears every fault, writes the final evidence, closes the history.
async fn shutdown(
    config: &Config,
    faults: &faults::Faults,
    history: &Arc<Recorder>,
) -> Result<(), DaemonError> {
    let views = faults
        .call(|t| {
            t.clear_all();
            t.list(true)
        })
        .await
        .unwrap_or_default();
    let doc = json!({
        "time": monotonic_ns(),
        "clock": "CLOCK_MONOTONIC",
        "history": config.history,
        "history_next_index": history.stats().next_index.load(std::sync::atomic::Ordering::Acquire),
        "faults": views,
    });
    let path = config.evidence_path();
    write_durably(&path, &serde_json::to_vec_pretty(&doc).unwrap_or_default())
        .map_err(|source| DaemonError::Evidence { path, source })?;
    let h = history.clone();
    let _ = tokio::task::spawn_blocking(move || h.close()).await;
    Ok(())
}

fn write_durably(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
