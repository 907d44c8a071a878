//! The inventory (TOML): one `[[node]]` per daemon with its API address, bearer token file,
//! optional CA (then HTTPS), and where its faults act (data-plane IPv4, interface, netns).
//!
//! ```toml
//! [[node]]
//! name = "n1"
//! address = "10.233.0.1:7070"   # the daemon's --listen
//! token_file = "n1.token"       # relative to this file
//! ca = "ca.pem"                 # optional: HTTPS, trusting this CA
//! server_name = "n1"            # optional: name in the certificate (default: address host)
//! ip = "10.233.0.1"             # optional: the node's data-plane address (default: address host)
//! dev = "eth0"                  # optional: interface the rules attach to (default eth0)
//! ```

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::ClusterError;
use crate::remote::Remote;

/// One node.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Unique name used in groups.
    pub name: String,
    /// `host:port` of the daemon's TCP API.
    pub address: String,
    /// File with the bearer token.
    pub token_file: PathBuf,
    /// CA certificate (PEM) for HTTPS.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Name checked against the daemon's certificate.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Data-plane IPv4 of the node (default: the address's host).
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// Interface the node's rules attach to.
    #[serde(default = "default_dev")]
    pub dev: String,
    /// Named network namespace on the node holding `dev` (default: the daemon's own).
    #[serde(default)]
    pub netns: Option<String>,
}

fn default_dev() -> String {
    "eth0".into()
}

/// The inventory.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// The nodes.
    #[serde(rename = "node")]
    pub nodes: Vec<Node>,
}

impl Node {
    /// The node's data-plane IPv4.
    pub fn data_ip(&self) -> Option<Ipv4Addr> {
        self.ip.or_else(|| {
            self.address
                .rsplit_once(':')
                .and_then(|(h, _)| h.parse().ok())
        })
    }

    /// A client for the node's daemon.
    pub fn remote(&self, timeout: Duration) -> Result<Remote, ClusterError> {
        let cred = |problem: String| ClusterError::Credentials {
            node: self.name.clone(),
            problem,
        };
        let token = std::fs::read_to_string(&self.token_file)
            .map_err(|e| cred(format!("token file {}: {e}", self.token_file.display())))?;
        let mut r = Remote::new(self.address.clone(), Some(token.trim().to_string()));
        if let Some(ca) = &self.ca {
            r.tls = Some(crate::tls::client_config(ca).map_err(|e| cred(e.to_string()))?);
        }
        r.server_name = self.server_name.clone();
        r.timeout = timeout;
        Ok(r)
    }
}

impl Inventory {
    /// Parses and checks an inventory; relative file paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path, path: &Path) -> Result<Self, ClusterError> {
        let mut inv: Self = toml::from_str(text).map_err(|e| ClusterError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |field: String, problem: String| ClusterError::Invalid { field, problem };
        if inv.nodes.is_empty() {
            return Err(invalid("node".into(), "no [[node]] entry".into()));
        }
        let mut names = std::collections::HashSet::new();
        for (i, n) in inv.nodes.iter_mut().enumerate() {
            if !names.insert(n.name.clone()) {
                return Err(invalid(
                    format!("node[{i}].name"),
                    format!("{} appears twice", n.name),
                ));
            }
            if n.data_ip().is_none() {
                return Err(invalid(
                    format!("node[{i}].ip"),
                    format!(
                        "{}: give ip = \"A.B.C.D\" (the address {} has no IPv4 host)",
                        n.name, n.address
                    ),
                ));
            }
            for p in [Some(&mut n.token_file), n.ca.as_mut()]
                .into_iter()
                .flatten()
            {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        Ok(inv)
    }

    /// Reads an inventory file.
    pub fn load(path: &Path) -> Result<Self, ClusterError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")), path)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves_paths() {
        let inv = Inventory::parse(
            "[[node]]\nname='a'\naddress='10.0.0.1:7070'\ntoken_file='a.tok'\n\
             [[node]]\nname='b'\naddress='node-b:7070'\ntoken_file='/etc/b.tok'\nip='10.0.0.2'\nca='ca.pem'\n",
            Path::new("/inv"),
            Path::new("/inv/cluster.toml"),
        )
        .unwrap();
        assert_eq!(inv.nodes[0].token_file, PathBuf::from("/inv/a.tok"));
        assert_eq!(inv.nodes[0].data_ip(), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inv.nodes[1].ca, Some(PathBuf::from("/inv/ca.pem")));
        assert_eq!(inv.nodes[1].dev, "eth0");
        let e = Inventory::parse(
            "[[node]]\nname='a'\naddress='h:1'\ntoken_file='t'\n",
            Path::new("/"),
            Path::new("/x"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("node[0].ip"), "{e}");
        let e = Inventory::parse(
            "[[node]]\nname='a'\naddress='1.1.1.1:1'\ntoken_file='t'\nport=3\n",
            Path::new("/"),
            Path::new("/x"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
    }
}
