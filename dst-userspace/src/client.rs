//! A small HTTP/1.1 client over the daemon's unix socket (hyper), used by the CLI verbs and
//! tests. One connection per client, reused across requests.

use std::path::{Path, PathBuf};

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, client::conn::http1};
use hyper_util::rt::TokioIo;

/// Errors talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error(
        "cannot reach the dst daemon at {socket}: {source}; start it with `dst daemon` (as \
         root) or pass --socket"
    )]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed (the daemon went away mid-request).
    #[error("HTTP exchange with the dst daemon failed: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built (a bad path).
    #[error("invalid request: {0}")]
    Request(#[from] hyper::http::Error),
    /// A blocking call could not start its runtime.
    #[error("starting the client runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A daemon response.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A connection to the daemon.
pub struct Client {
    socket: PathBuf,
    conn: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Client {
    /// A client for `socket` (connects lazily).
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_path_buf(),
            conn: None,
        }
    }

    async fn connection(&mut self) -> Result<&mut http1::SendRequest<Full<Bytes>>, ClientError> {
        let alive = self.conn.as_ref().is_some_and(|c| !c.is_closed());
        if !alive {
            let stream = tokio::net::UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
            let (send, conn) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            self.conn = Some(send);
        }
        Ok(self.conn.as_mut().expect("connection just set"))
    }

    /// Sends one request and reads the whole response.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, ClientError> {
        let has_body = body.is_some();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "dst")
            .header(
                hyper::header::CONTENT_TYPE,
                if has_body {
                    "application/json"
                } else {
                    "text/plain"
                },
            )
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let conn = self.connection().await?;
        conn.ready().await?;
        let resp = conn.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Response { status, body })
    }

    /// [`Client::request`] for callers without a runtime (the CLI).
    pub fn request_blocking(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, ClientError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?
            .block_on(async {
                // Connections belong to the runtime that made them: always start fresh here.
                self.conn = None;
                let r = self.request(method, path, body).await;
                self.conn = None;
                r
            })
    }
}
