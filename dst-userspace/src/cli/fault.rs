//! `dst fault apply|list|show|clear|evidence`: manage faults held by a running daemon.

use std::{io::Read as _, path::PathBuf, process::ExitCode};

use dst::client::{Client, Response};
use hyper::Method;
use serde_json::Value;

/// Arguments of `dst fault`.
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
    /// Apply a fault file (TOML or JSON; `-` reads stdin): all faults or none.
    Apply {
        /// The fault file, or `-`.
        file: String,
    },
    /// List active faults (with --all also cleared and expired ones).
    List {
        /// Include ended faults.
        #[arg(long)]
        all: bool,
    },
    /// Show one fault with live evidence.
    Show {
        /// Fault id.
        id: String,
    },
    /// Clear one fault, or every fault with --all.
    Clear {
        /// Fault id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Clear every active fault.
        #[arg(long)]
        all: bool,
    },
    /// Print a fault's landing evidence (counters, first/last applied, landed).
    Evidence {
        /// Fault id.
        id: String,
    },
}

/// Reads a file argument (`-` = stdin).
pub fn read_input(file: &str) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    if file == "-" {
        std::io::stdin().read_to_end(&mut data)?;
    } else {
        data = std::fs::read(file).map_err(|e| anyhow::anyhow!("reading {file}: {e}"))?;
    }
    Ok(data)
}

/// Prints a daemon response (raw JSON with `--json`, else through `human`) and maps its status
/// to an exit code: 2xx → 0, client errors → 64, refusals and daemon trouble → 6.
pub fn finish(resp: &Response, json: bool, human: impl Fn(&Value)) -> ExitCode {
    let v = resp.json();
    if !resp.ok() {
        if json {
            println!("{v}");
        } else {
            let field = v["field"]
                .as_str()
                .map(|f| format!(" [{f}]"))
                .unwrap_or_default();
            eprintln!(
                "dst: daemon answered {}{field}: {}",
                resp.status,
                v["error"].as_str().unwrap_or("(no message)")
            );
        }
        return match resp.status {
            400 | 404 | 409 => ExitCode::from(super::EXIT_USAGE),
            _ => ExitCode::from(super::EXIT_ENVIRONMENT),
        };
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        human(&v);
    }
    ExitCode::SUCCESS
}

fn line(f: &Value) {
    let ev = &f["evidence"];
    // Network faults count packets `applied`; syscall faults count calls `injected`.
    let (what, applied) = if f["kind"] == "sys" {
        (
            format!(
                "{}:{}",
                f["spec"]["syscall"].as_str().unwrap_or("?"),
                f["spec"]["errno"].as_str().unwrap_or("?")
            ),
            format!("injected={}", ev["injected"]),
        )
    } else {
        (
            f["spec"]["action"]["kind"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
            format!("applied={}", ev["applied"]),
        )
    };
    println!(
        "{:<16} {:<8} {:<10} {:<8} matched={} {applied} passed={} landed={}",
        f["id"].as_str().unwrap_or("?"),
        f["state"].as_str().unwrap_or("?"),
        what,
        f["backend"].as_str().unwrap_or("?"),
        ev["matched"],
        ev["passed"],
        f["landed"]
    );
}

fn lines(v: &Value) {
    let faults = v["faults"].as_array().cloned().unwrap_or_default();
    if faults.is_empty() {
        println!("no faults");
    }
    faults.iter().for_each(line);
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let mut c = Client::new(&args.socket);
    let resp = match &args.command {
        Verb::Apply { file } => {
            let body = read_input(file)?;
            c.request_blocking(Method::POST, "/v1/faults", Some(body))?
        }
        Verb::List { all } => c.request_blocking(
            Method::GET,
            if *all {
                "/v1/faults?all=true"
            } else {
                "/v1/faults"
            },
            None,
        )?,
        Verb::Show { id } | Verb::Evidence { id } => {
            c.request_blocking(Method::GET, &format!("/v1/faults/{id}"), None)?
        }
        Verb::Clear { id: Some(id), .. } => {
            c.request_blocking(Method::DELETE, &format!("/v1/faults/{id}"), None)?
        }
        Verb::Clear { id: None, .. } => c.request_blocking(Method::DELETE, "/v1/faults", None)?,
    };
    Ok(match args.command {
        Verb::Apply { .. } | Verb::List { .. } => finish(&resp, json, lines),
        Verb::Clear { id: None, .. } => finish(&resp, json, lines),
        Verb::Show { .. } | Verb::Clear { .. } => finish(&resp, json, |v| {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default())
        }),
        Verb::Evidence { .. } => {
            let mut resp = resp;
            if resp.ok() {
                let v = resp.json();
                let ev = serde_json::json!({
                    "id": v["id"], "state": v["state"], "backend": v["backend"],
                    "seed": v["seed"], "window": {"applied_at": v["applied_at"],
                    "not_before": v["not_before"], "expires": v["expires"], "ended_at": v["ended_at"]},
                    "evidence": v["evidence"], "landed": v["landed"],
                });
                resp.body = serde_json::to_vec(&ev)?.into();
            }
            finish(&resp, json, |v| {
                println!("{}", serde_json::to_string_pretty(v).unwrap_or_default())
            })
        }
    })
}
