//! A small Kubernetes API client (plain HTTPS GET with the service account token): a pod by
//! namespace/name or the pods matching a label selector → pod UIDs, node names and container
//! ids, which [`super::Resolver`] turns into cgroups on this node.

use std::{path::PathBuf, time::Duration};

use hyper::Method;
use serde::Serialize;
use serde_json::Value;

use crate::remote::{Remote, RemoteError};

/// The in-cluster service-account directory.
pub const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Errors of Kubernetes API lookups.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Not running in a pod (no `KUBERNETES_SERVICE_HOST`) and no API server given.
    #[error(
        "no Kubernetes API: KUBERNETES_SERVICE_HOST is unset; run dst in a pod with a service account (deploy/k8s/rbac.yaml) or target the pod by UID"
    )]
    NotInCluster,
    /// The token or CA file could not be read.
    #[error(
        "reading {path}: {source}; mount the service account token (automountServiceAccountToken: true)"
    )]
    Credentials {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The request failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The API answered with an error status.
    #[error("Kubernetes API {path}: HTTP {status}: {message}{hint}")]
    Status {
        /// The request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The API's message.
        message: String,
        /// What to do.
        hint: &'static str,
    },
    /// The selector matched no pod.
    #[error("no pod in namespace {namespace} matches {selector}")]
    NoMatch {
        /// The namespace.
        namespace: String,
        /// The selector.
        selector: String,
    },
}

/// A pod as dst needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Node it is scheduled on.
    pub node: Option<String>,
    /// Container ids (runtime prefix removed), in status order.
    pub container_ids: Vec<String>,
}

/// Parses one pod object of the API.
pub fn parse_pod(v: &Value) -> Option<PodInfo> {
    let m = &v["metadata"];
    let container_ids = v["status"]["containerStatuses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["containerID"].as_str())
                .filter_map(super::resolve::normalize_container_id)
                .collect()
        })
        .unwrap_or_default();
    Some(PodInfo {
        namespace: m["namespace"].as_str()?.to_string(),
        name: m["name"].as_str()?.to_string(),
        uid: m["uid"].as_str()?.to_string(),
        node: v["spec"]["nodeName"].as_str().map(str::to_string),
        container_ids,
    })
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A client for one API server.
#[derive(Debug)]
pub struct KubeApi {
    remote: Remote,
}

impl KubeApi {
    /// In-cluster configuration: `KUBERNETES_SERVICE_HOST`/`_PORT`, the service account's token
    /// and CA.
    pub fn in_cluster() -> Result<Self, ApiError> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| ApiError::NotInCluster)?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        let dir = PathBuf::from(SERVICE_ACCOUNT);
        Self::new(&host, &port, &dir.join("token"), &dir.join("ca.crt"))
    }

    /// A client for `host:port` with a token file and CA file.
    pub fn new(
        host: &str,
        port: &str,
        token: &std::path::Path,
        ca: &std::path::Path,
    ) -> Result<Self, ApiError> {
        let token = std::fs::read_to_string(token).map_err(|source| ApiError::Credentials {
            path: token.to_path_buf(),
            source,
        })?;
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut remote = Remote::new(addr, Some(token.trim().to_string()));
        remote.tls = Some(crate::tls::client_config(ca)?);
        remote.timeout = Duration::from_secs(10);
        Ok(Self { remote })
    }

    async fn get(&self, path: &str) -> Result<Value, ApiError> {
        let r = self.remote.request(Method::GET, path, None).await?;
        let v = r.json();
        if !r.ok() {
            let hint = match r.status {
                401 => ": the service account token was refused",
                403 => ": grant get/list on pods (deploy/k8s/rbac.yaml)",
                404 => ": check the namespace and pod name",
                _ => "",
            };
            return Err(ApiError::Status {
                path: path.to_string(),
                status: r.status,
                message: v["message"].as_str().unwrap_or("").to_string(),
                hint,
            });
        }
        Ok(v)
    }

    /// One pod by namespace and name.
    pub async fn pod(&self, namespace: &str, name: &str) -> Result<PodInfo, ApiError> {
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}",
            encode(namespace),
            encode(name)
        );
        let v = self.get(&path).await?;
        parse_pod(&v).ok_or(ApiError::Status {
            path,
            status: 200,
            message: "the answer is not a pod".into(),
            hint: "",
        })
    }

    /// The pods of `namespace` matching a label selector (`app=etcd,tier!=cache`).
    pub async fn select(&self, namespace: &str, selector: &str) -> Result<Vec<PodInfo>, ApiError> {
        let path = format!(
            "/api/v1/namespaces/{}/pods?labelSelector={}",
            encode(namespace),
            encode(selector)
        );
        let v = self.get(&path).await?;
        let pods: Vec<PodInfo> = v["items"]
            .as_array()
            .map(|a| a.iter().filter_map(parse_pod).collect())
            .unwrap_or_default();
        if pods.is_empty() {
            return Err(ApiError::NoMatch {
                namespace: namespace.into(),
                selector: selector.into(),
            });
        }
        Ok(pods)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_pod_object() {
        let v: Value = serde_json::from_str(
            r#"{"kind":"Pod","metadata":{"name":"etcd-0","namespace":"db","uid":"0f5a1b2c-3d4e-4f60-8a9b-0c1d2e3f4a5b"},
                "spec":{"nodeName":"node-2"},
                "status":{"qosClass":"Burstable","containerStatuses":[
                  {"name":"etcd","containerID":"containerd://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
                  {"name":"sidecar","containerID":"cri-o://bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
                  {"name":"pending"}]}}"#,
        )
        .unwrap();
        let p = parse_pod(&v).unwrap();
        assert_eq!(p.name, "etcd-0");
        assert_eq!(p.node.as_deref(), Some("node-2"));
        assert_eq!(p.container_ids.len(), 2);
        assert!(p.container_ids[1].starts_with("bbbb"));
        assert_eq!(parse_pod(&serde_json::json!({"metadata": {}})), None);
    }

    #[test]
    fn selector_is_encoded() {
        assert_eq!(
            encode("app=etcd,tier!=cache"),
            "app%3Detcd%2Ctier%21%3Dcache"
        );
    }
}
