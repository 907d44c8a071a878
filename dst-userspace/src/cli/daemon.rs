//! `dst daemon`: run the long-lived fault owner, history recorder and HTTP API.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

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
    /// Also serve TCP on this address (requires --token-file).
    #[arg(long, requires = "token_file")]
    pub listen: Option<SocketAddr>,
    /// File holding the bearer token clients must send over TCP.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

pub fn run(args: Args, _json: bool) -> anyhow::Result<ExitCode> {
    dst::daemon::run(dst::daemon::Config {
        socket: args.socket,
        history: args.history,
        evidence_out: args.evidence_out,
        listen: args.listen,
        token_file: args.token_file,
    })?;
    Ok(ExitCode::SUCCESS)
}
