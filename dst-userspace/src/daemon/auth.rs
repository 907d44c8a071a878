//! Bearer-token authentication for the TCP listener (the unix socket relies on its 0600 mode):
//! the token comes from a file, comparison is constant-time.

use std::path::Path;

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse as _, Response},
};

use super::DaemonError;

/// The expected token.
#[derive(Clone)]
pub struct Token(std::sync::Arc<Vec<u8>>);

impl Token {
    /// Reads the token from `path` (surrounding whitespace ignored; at least 16 bytes).
    pub fn from_file(path: &Path) -> Result<Self, DaemonError> {
        let text = std::fs::read_to_string(path).map_err(|source| DaemonError::Token {
            path: path.to_path_buf(),
            problem: source.to_string(),
        })?;
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt as _;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "token file {} is readable by other users; chmod 600 it",
                    path.display()
                );
            }
        }
        let t = text.trim();
        if t.len() < 16 {
            return Err(DaemonError::Token {
                path: path.to_path_buf(),
                problem: format!("the token has {} bytes; use at least 16", t.len()),
            });
        }
        Ok(Self(std::sync::Arc::new(t.as_bytes().to_vec())))
    }

    /// Constant-time comparison (time depends only on the lengths).
    pub fn matches(&self, given: &[u8]) -> bool {
        let want = self.0.as_slice();
        let mut diff = (want.len() ^ given.len()) as u8 | u8::from(want.len() != given.len());
        for (i, w) in want.iter().enumerate() {
            diff |= w ^ given.get(i).copied().unwrap_or(0);
        }
        diff == 0
    }
}

/// Middleware: 401 unless `Authorization: Bearer <token>` matches.
pub async fn require(State(token): State<Token>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|t| token.matches(t));
    if ok {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({
                "error": "missing or wrong bearer token: send `Authorization: Bearer <token>` \
                          with the token from the daemon's --token-file"
            })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare() {
        let t = Token(std::sync::Arc::new(b"0123456789abcdef".to_vec()));
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdeX"));
        assert!(!t.matches(b"0123456789abcde"));
        assert!(!t.matches(b"0123456789abcdef0"));
        assert!(!t.matches(b""));
    }
}
