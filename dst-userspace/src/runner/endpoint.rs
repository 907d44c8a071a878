//! Where the runner's clients reach a host: its service address, and the network namespace
//! they connect from — the host's own (local runs: hosts are namespaces) or the runner's
//! (cluster runs: the system under test already runs on the inventory's nodes).

use std::net::Ipv4Addr;

use crate::{
    netns::{NetNs, NetnsError},
    testing::Host,
};

/// One host as the clients see it.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint<'a> {
    /// The host's address (the service listens on it).
    pub addr: Ipv4Addr,
    /// Namespace to connect from; `None` = the runner's own.
    pub ns: Option<&'a NetNs>,
}

impl<'a> Endpoint<'a> {
    /// A namespace host: clients connect from inside it.
    pub fn local(h: &'a Host) -> Self {
        Self {
            addr: h.addr,
            ns: Some(&h.ns),
        }
    }

    /// A remote host reached from the runner's own namespace.
    pub fn remote(addr: Ipv4Addr) -> Self {
        Self { addr, ns: None }
    }

    /// Runs `f` where this host's clients connect from (a socket keeps the namespace it was
    /// made in): on a thread inside the host's namespace, or right here.
    pub fn run<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        match self.ns {
            Some(ns) => ns.run(f),
            None => Ok(f()),
        }
    }
}

/// The endpoints of namespace hosts.
pub fn of_hosts(hosts: &[Host]) -> Vec<Endpoint<'_>> {
    hosts.iter().map(Endpoint::local).collect()
}
