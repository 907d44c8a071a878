//! `dst-example-kv`: a primary/backup replicated service whose keys hold grow-only sets.
//!
//! Client protocol (one line each way): `ADD key elem` → `OK` | `ERR unavailable` | `ERR timeout`,
//! `READ key` → `OK e1,e2,..` | `ERR ...`. Any node accepts client requests and forwards them to
//! the primary it believes in. `ERR unavailable` means the request certainly did not apply;
//! `ERR timeout` means it may have.
//!
//! Replication: node 1 starts as primary (epoch 1) and heartbeats the others. A follower that
//! misses heartbeats for the election timeout and is the lowest-id node it can reach together
//! with a majority promotes itself (epoch + 1) and unions the reachable replicas' state. A
//! primary that sees a higher epoch steps down and replaces its state with the new primary's.
//!
//! Safe mode: an ADD is acknowledged only after a majority stored it, and a READ is answered
//! only after a majority confirmed the primary's epoch. `--unsafe`: ADD is acknowledged as soon
//! as the primary stored it locally and replicated in the background, READ is answered locally —
//! so a primary cut off by a partition keeps acknowledging writes that its step-down discards.

mod node;
mod wire;

use clap::Parser;

/// Command line of one node.
#[derive(Debug, Parser)]
#[command(
    name = "dst-example-kv",
    about = "replicated set service for dst's demo"
)]
pub struct Opts {
    /// This node's id (1-based; node 1 is the initial primary).
    #[arg(long)]
    pub id: u32,
    /// Address to listen on (clients and peers).
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// Every node's address, in id order (including this one), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<std::net::SocketAddr>,
    /// Acknowledge writes before replicating them (loses acknowledged writes under partition).
    #[arg(long)]
    pub r#unsafe: bool,
    /// Heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// Election timeout in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub election_ms: u64,
    /// Timeout of one peer request in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub rpc_ms: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    anyhow::ensure!(
        opts.id >= 1 && (opts.id as usize) <= opts.peers.len(),
        "--id {} must be within 1..={} (one entry of --peers per node)",
        opts.id,
        opts.peers.len()
    );
    node::run(opts).await
}
