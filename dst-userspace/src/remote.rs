//! HTTP/1.1 client over TCP, optionally TLS, with a bearer token: how the cluster coordinator
//! talks to node daemons and how dst talks to the Kubernetes API. One request per connection
//! (no pooling: the callers make a handful of requests), each bounded by a timeout.

use std::{sync::Arc, time::Duration};

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, client::conn::http1};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::client::Response;

/// Errors of a remote request.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}; is the daemon running and listening there?")]
    Connect {
        /// host:port.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (wrong CA, wrong server name, plain HTTP server).
    #[error("TLS handshake with {addr} failed: {source}; check the CA file and the server name")]
    Tls {
        /// host:port.
        addr: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The server name is not a valid DNS name or IP.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    /// The HTTP exchange failed.
    #[error("HTTP exchange with {addr} failed: {source}")]
    Http {
        /// host:port.
        addr: String,
        /// The error.
        #[source]
        source: hyper::Error,
    },
    /// The request could not be built.
    #[error("invalid request: {0}")]
    Request(#[from] hyper::http::Error),
    /// No answer in time.
    #[error("{addr} did not answer within {timeout:?}")]
    Timeout {
        /// host:port.
        addr: String,
        /// The limit.
        timeout: Duration,
    },
}

/// A remote HTTP endpoint.
#[derive(Clone)]
pub struct Remote {
    /// `host:port`.
    pub addr: String,
    /// Bearer token sent with every request.
    pub token: Option<String>,
    /// TLS client configuration; `None` = plain HTTP.
    pub tls: Option<Arc<ClientConfig>>,
    /// Name checked against the server certificate (default: the host part of `addr`).
    pub server_name: Option<String>,
    /// Whole-request limit.
    pub timeout: Duration,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

impl Remote {
    /// Plain HTTP to `addr` with an optional token, 10 s timeout.
    pub fn new(addr: impl Into<String>, token: Option<String>) -> Self {
        Self {
            addr: addr.into(),
            token,
            tls: None,
            server_name: None,
            timeout: Duration::from_secs(10),
        }
    }

    fn host(&self) -> String {
        let a = self.addr.as_str();
        match a.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
            None => a.to_string(),
        }
    }

    async fn exchange(&self, req: Request<Full<Bytes>>) -> Result<Response, RemoteError> {
        let stream = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|source| RemoteError::Connect {
                addr: self.addr.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let io: Box<dyn Io> = match &self.tls {
            Some(cfg) => {
                let name = self.server_name.clone().unwrap_or_else(|| self.host());
                let sn = ServerName::try_from(name.clone())
                    .map_err(|_| RemoteError::ServerName(name))?;
                let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(sn, stream)
                    .await
                    .map_err(|source| RemoteError::Tls {
                        addr: self.addr.clone(),
                        source,
                    })?;
                Box::new(tls)
            }
            None => Box::new(stream),
        };
        let http = |source| RemoteError::Http {
            addr: self.addr.clone(),
            source,
        };
        let (mut send, conn) = http1::handshake(TokioIo::new(io)).await.map_err(http)?;
        tokio::spawn(conn);
        let resp = send.send_request(req).await.map_err(http)?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(http)?.to_bytes();
        Ok(Response { status, body })
    }

    /// Sends one request and reads the whole response.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, RemoteError> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.host())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json");
        if let Some(t) = &self.token {
            b = b.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = b.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        tokio::time::timeout(self.timeout, self.exchange(req))
            .await
            .map_err(|_| RemoteError::Timeout {
                addr: self.addr.clone(),
                timeout: self.timeout,
            })?
    }
}
