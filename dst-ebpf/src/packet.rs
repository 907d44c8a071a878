//! Bounded, verifier-friendly parsing of the IPv4 5-tuple from an skb at a given L3 offset.

use aya_ebpf::programs::TcContext;

/// Ethernet header length; tc programs see the L2 header, cgroup_skb programs do not.
pub const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;

/// The fields of a packet that rules match on. Addresses in network order, ports in host order.
#[derive(Clone, Copy)]
pub struct Flow {
    /// IP protocol number.
    pub proto: u8,
    /// Source address as in the packet (network order).
    pub src: u32,
    /// Destination address as in the packet (network order).
    pub dst: u32,
    /// Source port (host order); 0 for protocols without ports.
    pub sport: u16,
    /// Destination port (host order); 0 for protocols without ports.
    pub dport: u16,
}

/// Anything that can copy bytes out of a packet (tc and cgroup_skb contexts).
pub trait PacketBytes {
    /// Reads a `T` at `offset` bytes from the start of the packet data.
    fn read<T>(&self, offset: usize) -> Option<T>;
}

impl PacketBytes for TcContext {
    #[inline(always)]
    fn read<T>(&self, offset: usize) -> Option<T> {
        self.load::<T>(offset).ok()
    }
}

impl PacketBytes for aya_ebpf::programs::SkBuffContext {
    #[inline(always)]
    fn read<T>(&self, offset: usize) -> Option<T> {
        self.load::<T>(offset).ok()
    }
}

/// Returns true when the Ethernet frame carries IPv4.
#[inline(always)]
pub fn is_ipv4_frame<P: PacketBytes>(p: &P) -> bool {
    matches!(p.read::<u16>(12), Some(proto) if u16::from_be(proto) == ETH_P_IP)
}

/// Parses the IPv4 header at `l3` and, for TCP/UDP, the ports after it.
#[inline(always)]
pub fn parse_ipv4<P: PacketBytes>(p: &P, l3: usize) -> Option<Flow> {
    let vihl: u8 = p.read(l3)?;
    if vihl >> 4 != 4 {
        return None;
    }
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if ihl < 20 {
        return None;
    }
    let proto: u8 = p.read(l3 + 9)?;
    let src: u32 = p.read(l3 + 12)?;
    let dst: u32 = p.read(l3 + 16)?;
    let (sport, dport) = if proto == 6 || proto == 17 {
        // ihl is at most 60, so the offset stays bounded for the verifier.
        let l4 = l3 + (ihl & 0x3c);
        let ports: u32 = p.read(l4)?;
        let ports = u32::from_be(ports);
        ((ports >> 16) as u16, ports as u16)
    } else {
        (0, 0)
    };
    Some(Flow {
        proto,
        src,
        dst,
        sport,
        dport,
    })
}
