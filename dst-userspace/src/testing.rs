//! Building blocks for privileged tests: throwaway topologies of network namespaces joined by
//! veth pairs or a bridge, with addresses only inside them, removed on drop and on panic.

use std::net::{IpAddr, Ipv4Addr};

use crate::{netlink::Netlink, netns::NetNs};

/// Errors while building a test topology.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A namespace operation failed.
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    /// A netlink operation failed.
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    /// The test receiver's socket overflowed, so losses cannot be attributed to a fault.
    #[error(
        "the receiver dropped {0} datagrams for lack of buffer space; the machine is overloaded, retry"
    )]
    ReceiverOverflow(u64),
}

/// One host: a network namespace with `eth0` carrying `addr`/24.
#[derive(Debug)]
pub struct Host {
    /// The namespace (deleted on drop).
    pub ns: NetNs,
    /// Its address on `eth0`.
    pub addr: Ipv4Addr,
}

/// N hosts on a shared bridge in its own namespace (the bridge namespace is deleted last).
/// Deleting the namespaces removes the veths and everything attached to them.
#[derive(Debug)]
pub struct Topology {
    /// The hosts, in order.
    pub hosts: Vec<Host>,
    /// Namespace holding the bridge (for two hosts: `None`, they are wired point to point).
    pub switch: Option<NetNs>,
}

impl Topology {
    /// `n` hosts named `{prefix}{i}` (i from 1) with addresses `10.{subnet}.0.{i}`/24.
    /// Two hosts are connected by one veth pair; more share a bridge in `{prefix}br`.
    pub fn new(prefix: &str, n: usize, subnet: u8) -> Result<Self, TopologyError> {
        let mut hosts = Vec::new();
        for i in 1..=n {
            hosts.push(Host {
                ns: NetNs::create(&format!("{prefix}{i}"))?,
                addr: Ipv4Addr::new(10, subnet, 0, i as u8),
            });
        }
        let switch = if n == 2 {
            let (a, b) = (&hosts[0], &hosts[1]);
            a.ns.run(|| -> Result<(), TopologyError> {
                let nl = Netlink::new()?;
                nl.add_veth("eth0", "peer0")?;
                let peer = nl.link_index("peer0")?;
                nl.move_to_netns(peer, std::os::fd::AsRawFd::as_raw_fd(b.ns.file()), "eth0")?;
                Ok(())
            })??;
            None
        } else {
            let sw = NetNs::create(&format!("{prefix}br"))?;
            sw.run(|| -> Result<(), TopologyError> {
                let nl = Netlink::new()?;
                nl.add_bridge("br0")?;
                let br = nl.link_index("br0")?;
                nl.link_up(br)?;
                for (i, h) in hosts.iter().enumerate() {
                    let port = format!("p{}", i + 1);
                    nl.add_veth(&port, "tmp0")?;
                    let tmp = nl.link_index("tmp0")?;
                    nl.move_to_netns(tmp, std::os::fd::AsRawFd::as_raw_fd(h.ns.file()), "eth0")?;
                    let p = nl.link_index(&port)?;
                    nl.set_master(p, br)?;
                    nl.link_up(p)?;
                }
                Ok(())
            })??;
            Some(sw)
        };
        for h in &hosts {
            let addr = h.addr;
            h.ns.run(|| -> Result<(), TopologyError> {
                let nl = Netlink::new()?;
                let lo = nl.link_index("lo")?;
                nl.link_up(lo)?;
                let eth = nl.link_index("eth0")?;
                nl.add_addr(eth, IpAddr::V4(addr), 24)?;
                nl.link_up(eth)?;
                Ok(())
            })??;
        }
        Ok(Self { hosts, switch })
    }
}

/// A UDP socket created inside a host's namespace (a socket keeps the namespace it was made in,
/// so it can be used from any thread afterwards).
pub fn udp_socket(host: &Host, port: u16) -> Result<std::net::UdpSocket, TopologyError> {
    let addr = host.addr;
    let sock = host
        .ns
        .run(move || std::net::UdpSocket::bind((addr, port)))?;
    sock.map_err(|e| TopologyError::Netlink(crate::netlink::NetlinkError::Open(e)))
}

/// UDP datagrams the host's kernel dropped for lack of receive-buffer space (`RcvbufErrors` in
/// the namespace's /proc/net/snmp): losses that are not a fault's doing.
pub fn udp_rcvbuf_errors(host: &Host) -> Result<u64, TopologyError> {
    let snmp = host
        .ns
        .run(|| std::fs::read_to_string("/proc/thread-self/net/snmp"))?;
    let snmp = snmp.map_err(|e| TopologyError::Netlink(crate::netlink::NetlinkError::Open(e)))?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(head), Some(vals)) = (udp.next(), udp.next()) else {
        return Ok(0);
    };
    let col = head.split_whitespace().position(|h| h == "RcvbufErrors");
    Ok(col
        .and_then(|c| vals.split_whitespace().nth(c)?.parse().ok())
        .unwrap_or(0))
}

/// Sends `n` datagrams carrying sequence numbers 0..n from `from` to `to:port` and returns, per
/// sequence number, whether it arrived. Waits until the receiver has been idle for 300 ms.
///
/// The receiver gets a 16 MiB buffer so a busy machine cannot turn scheduling delays into
/// losses; if the kernel still reports receive-buffer drops the call fails rather than let them
/// pass for a fault's work.
pub fn udp_sequence(from: &Host, to: &Host, port: u16, n: u32) -> Result<Vec<bool>, TopologyError> {
    use std::time::Duration;
    let rx = udp_socket(to, port)?;
    let _ = nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::RcvBufForce, &(16 << 20));
    let overflow_before = udp_rcvbuf_errors(to)?;
    rx.set_read_timeout(Some(Duration::from_millis(300))).ok();
    let tx = udp_socket(from, 0)?;
    let dst = std::net::SocketAddr::from((to.addr, port));
    let mut got = vec![false; n as usize];
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut buf = [0u8; 64];
            while let Ok(len) = rx.recv(&mut buf) {
                if len >= 4 {
                    let seq = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    if let Some(slot) = got.get_mut(seq as usize) {
                        *slot = true;
                    }
                }
            }
            got
        });
        for seq in 0..n {
            let mut payload = [0u8; 32];
            payload[..4].copy_from_slice(&seq.to_be_bytes());
            let _ = tx.send_to(&payload, dst);
            if seq % 256 == 255 {
                // Let the receiver drain so socket buffers never overflow (a loss that would
                // otherwise be confused with the fault).
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(receiver.join().expect("receiver thread"))
    })
    .and_then(|got| {
        let overflow = udp_rcvbuf_errors(to)? - overflow_before;
        if overflow > 0 {
            return Err(TopologyError::ReceiverOverflow(overflow));
        }
        Ok(got)
    })
}

/// One datagram as the receiver of [`udp_timed`] saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// Sequence number the sender put in it.
    pub seq: u32,
    /// CLOCK_MONOTONIC at receipt minus the sender's timestamp in the payload (both ends run on
    /// this machine, so this is the one-way delay).
    pub one_way_ns: u64,
}

/// Sends `n` datagrams carrying a sequence number and a CLOCK_MONOTONIC send time, spaced by
/// `interval`, and returns what the receiver got in the order it got it. The receiver stops
/// after `idle` without traffic. Fails on receive-buffer overflow like [`udp_sequence`].
pub fn udp_timed(
    from: &Host,
    to: &Host,
    port: u16,
    n: u32,
    interval: std::time::Duration,
    idle: std::time::Duration,
) -> Result<Vec<Arrival>, TopologyError> {
    use crate::net::spec::monotonic_ns;
    let rx = udp_socket(to, port)?;
    let _ = nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::RcvBufForce, &(16 << 20));
    let overflow_before = udp_rcvbuf_errors(to)?;
    rx.set_read_timeout(Some(idle)).ok();
    let tx = udp_socket(from, 0)?;
    let dst = std::net::SocketAddr::from((to.addr, port));
    let got = std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut out = Vec::new();
            let mut buf = [0u8; 64];
            while let Ok(len) = rx.recv(&mut buf) {
                let now = monotonic_ns();
                if len >= 12 {
                    let seq = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    let sent = u64::from_be_bytes(buf[4..12].try_into().expect("8 bytes"));
                    out.push(Arrival {
                        seq,
                        one_way_ns: now.saturating_sub(sent),
                    });
                }
            }
            out
        });
        for seq in 0..n {
            let mut payload = [0u8; 32];
            payload[..4].copy_from_slice(&seq.to_be_bytes());
            payload[4..12].copy_from_slice(&monotonic_ns().to_be_bytes());
            let _ = tx.send_to(&payload, dst);
            if !interval.is_zero() {
                std::thread::sleep(interval);
            }
        }
        receiver.join().expect("receiver thread")
    });
    let overflow = udp_rcvbuf_errors(to)? - overflow_before;
    if overflow > 0 {
        return Err(TopologyError::ReceiverOverflow(overflow));
    }
    Ok(got)
}

/// Datagrams that arrived after one with a higher sequence number (seen out of order).
pub fn late_arrivals(arrivals: &[Arrival]) -> usize {
    let mut max = None;
    let mut late = 0;
    for a in arrivals {
        match max {
            Some(m) if a.seq < m => late += 1,
            _ => max = Some(a.seq),
        }
    }
    late
}
