//! Line protocol helpers: one request line, one reply line, with a timeout.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
    time::timeout,
};

/// Outcome of one request to a peer.
#[derive(Debug)]
pub enum Reply {
    /// The peer answered this line.
    Line(String),
    /// The connection could not be made: the request certainly did not arrive.
    Unreachable,
    /// Sent (or maybe sent) but no answer in time: it may have been applied.
    Timeout,
}

/// Sends `line` to `addr` on a fresh connection and reads one reply line.
pub async fn request(addr: SocketAddr, line: &str, limit: Duration) -> Reply {
    let stream = match timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        _ => return Reply::Unreachable,
    };
    let (r, mut w) = stream.into_split();
    let exchange = async move {
        w.write_all(format!("{line}\n").as_bytes()).await.ok()?;
        let mut reply = String::new();
        BufReader::new(r).read_line(&mut reply).await.ok()?;
        (!reply.is_empty()).then(|| reply.trim_end().to_string())
    };
    match timeout(limit, exchange).await {
        Ok(Some(l)) => Reply::Line(l),
        _ => Reply::Timeout,
    }
}
