//! Resolving and attaching to a network target (an interface in a named netns or in dst's own
//! namespace), shared by `inject net` and `inject partition`. Failures are environment errors.

use std::net::Ipv4Addr;

use anyhow::{Context as _, anyhow};
use dst::{
    net::{Direction, NetEngine, delayline::DelayLine, engine::TcMechanism},
    netns::NetNs,
};

/// An interface to attach to, with its namespace handle (None = dst's own namespace).
pub struct Dev {
    pub ns: Option<NetNs>,
    pub name: String,
    pub ifindex: u32,
}

impl Dev {
    /// `netns/dev` or just `dev`, for reports.
    pub fn label(&self) -> String {
        match &self.ns {
            Some(ns) => format!("{}/{}", ns.name(), self.name),
            None => self.name.clone(),
        }
    }

    /// Runs `f` inside the interface's namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        match &self.ns {
            Some(ns) => Ok(ns.run(f)?),
            None => Ok(f()),
        }
    }
}

/// Opens the namespace and finds the interface (environment errors name what is missing).
pub fn resolve(netns: Option<&str>, dev: &str) -> anyhow::Result<Dev> {
    let ns = netns.map(NetNs::open).transpose()?;
    let name = dev.to_string();
    let lookup = |ns: &Option<NetNs>| -> anyhow::Result<u32> {
        let find = || nix::net::if_::if_nametoindex(name.as_str()).ok();
        let idx = match ns {
            Some(ns) => ns.run(find)?,
            None => find(),
        };
        idx.ok_or_else(|| match ns {
            Some(ns) => anyhow!(
                "interface {name:?} not found in network namespace {:?} (list with `ip -n {} link`)",
                ns.name(),
                ns.name()
            ),
            None => anyhow!("interface {name:?} not found (list with `ip link`)"),
        })
    };
    let ifindex = lookup(&ns)?;
    Ok(Dev { ns, name, ifindex })
}

/// The first IPv4 address of the interface.
pub fn ipv4_of(dev: &Dev) -> anyhow::Result<Ipv4Addr> {
    let name = dev.name.clone();
    dev.run(move || {
        nix::ifaddrs::getifaddrs().ok().and_then(|mut addrs| {
            addrs.find_map(|a| {
                (a.interface_name == name)
                    .then(|| a.address?.as_sockaddr_in().map(|s| s.ip()))
                    .flatten()
            })
        })
    })?
    .ok_or_else(|| anyhow!("{} has no IPv4 address", dev.label()))
}

/// Attaches the classifiers (and, when asked, a delay line) to the interface.
pub fn attach(
    engine: &mut NetEngine,
    dev: &Dev,
    dir: Direction,
    delay_line: bool,
) -> anyhow::Result<(TcMechanism, Option<DelayLine>)> {
    let name = dev.name.clone();
    dev.run(|| -> anyhow::Result<_> {
        let line = if delay_line {
            Some(engine.attach_delay_line(&name, dir)?)
        } else {
            None
        };
        let mech = engine.attach_tc(&name, dir)?;
        Ok((mech, line))
    })?
    .with_context(|| format!("attaching to {}", dev.label()))
}

/// Human name of a tc mechanism.
pub fn mech_name(m: TcMechanism) -> &'static str {
    match m {
        TcMechanism::Tcx => "tcx",
        TcMechanism::Clsact => "tc clsact",
    }
}
