//! `dst daemon`: run the long-lived fault owner, history recorder and HTTP API.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

/// Arguments of `dst daemon`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Unix socket to serve (mode 0600); one daemon per socket.
    #[arg(long, env = "DST_SOCKET", default_value = dst::daemon::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// History file (JSONL), recovered on start.
    #[arg(long, default_value = dst::daemon::DEFAULT_HISTORY)]
    pub history: PathBuf,
    /// Where final evidence is written on SIGTERM [default: <history>.evidence.json].
    #[arg(long)]
    pub evidence_out: Option<PathBuf>,
    /// Also serve TCP on this address (requires --token-file; implies --confine).
    #[arg(long, requires = "token_file")]
    pub listen: Option<SocketAddr>,
    /// File holding the bearer token clients must send over TCP.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Serve TCP over TLS with this certificate chain (PEM).
    #[arg(long, requires_all = ["tls_key", "listen"])]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest request body in bytes; larger requests get 413.
    #[arg(long, default_value_t = dst::daemon::listener::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Longest a request may take to answer (e.g. 30s); then 503.
    #[arg(long, value_parser = super::inject::syscall::parse_duration, default_value = "30s")]
    pub request_timeout: Duration,
    /// Refuse targets outside this node: other network namespaces than the daemon's own and
    /// its containers', cgroups outside --cgroup-root. Always on with --listen.
    #[arg(long)]
    pub confine: bool,
    /// Cgroup subtree a confined daemon may target (repeatable; default: all of cgroup2).
    #[arg(long)]
    pub cgroup_root: Vec<PathBuf>,
}

pub fn run(args: Args, _json: bool) -> anyhow::Result<ExitCode> {
    dst::daemon::run(dst::daemon::Config {
        socket: args.socket,
        history: args.history,
        evidence_out: args.evidence_out,
        listen: args.listen,
        token_file: args.token_file,
        tls: args.tls_cert.zip(args.tls_key),
        body_limit: args.body_limit,
        request_timeout: args.request_timeout,
        confine: args.confine,
        cgroup_roots: args.cgroup_root,
    })?;
    Ok(ExitCode::SUCCESS)
}
