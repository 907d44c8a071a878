//! `dst history append|export`: record operations through the daemon and read them back.

use std::{io::Write as _, path::PathBuf, process::ExitCode};

use dst::client::Client;
use hyper::Method;

/// Arguments of `dst history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The daemon's unix socket.
    #[arg(long, env = "DST_SOCKET", default_value = dst::daemon::DEFAULT_SOCKET, global = true)]
    pub socket: PathBuf,
    #[command(subcommand)]
    pub command: Verb,
}

#[derive(Debug, clap::Subcommand)]
pub enum Verb {
    /// Append operations (one JSON object, an array, or JSONL) and wait until they are durable.
    Append {
        /// File to read, or `-` for stdin.
        #[arg(default_value = "-")]
        file: String,
    },
    /// Write the durable history (JSONL) to stdout or a file.
    Export {
        /// Output file (default stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only operations with index >= this.
        #[arg(long)]
        from: Option<u64>,
    },
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let mut c = Client::new(&args.socket);
    match args.command {
        Verb::Append { file } => {
            let body = super::fault::read_input(&file)?;
            let resp = c.request_blocking(Method::POST, "/v1/history", Some(body))?;
            Ok(super::fault::finish(&resp, json, |v| {
                println!(
                    "appended {} operation(s), indices {}.., durable",
                    v["count"], v["first_index"]
                )
            }))
        }
        Verb::Export { out, from } => {
            let path = match from {
                Some(i) => format!("/v1/history?from={i}"),
                None => "/v1/history".to_string(),
            };
            let resp = c.request_blocking(Method::GET, &path, None)?;
            if !resp.ok() {
                return Ok(super::fault::finish(&resp, json, |_| {}));
            }
            match out {
                Some(p) => {
                    std::fs::write(&p, &resp.body)
                        .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
                    let n = resp.body.iter().filter(|&&b| b == b'\n').count();
                    if json {
                        println!("{}", serde_json::json!({"out": p, "ops": n}));
                    } else {
                        println!("wrote {n} operation(s) to {}", p.display());
                    }
                }
                None => std::io::stdout().write_all(&resp.body)?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
