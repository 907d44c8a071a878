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

/// What [`parse_tc_direct`] found.
pub enum Direct {
    /// The 5-tuple, read straight from the linear packet data.
    Flow(Flow),
    /// Not an IPv4 packet (or a malformed header): nothing to match.
    NotIpv4,
    /// The headers are not all in the linear part: read them with [`parse_ipv4`] instead.
    Fallback,
}

/// Reads the Ethernet + IPv4 + port headers with direct packet access (plain loads after one
/// bounds check) instead of one `bpf_skb_load_bytes` call per field: the path every packet
/// of an attached device takes, matched by a rule or not.
#[inline(always)]
pub fn parse_tc_direct(ctx: &TcContext) -> Direct {
    let data = ctx.data();
    let end = ctx.data_end();
    // Ethernet, a 20-byte IPv4 header and the 4 port bytes after it.
    if data + ETH_HLEN + 24 > end {
        return Direct::Fallback;
    }
    // SAFETY (every read below): the bounds check above (or the one before the port read)
    // proves the bytes lie inside [data, data_end); unaligned reads are explicit.
    let eth_proto = unsafe { core::ptr::read_unaligned((data + 12) as *const u16) };
    if u16::from_be(eth_proto) != ETH_P_IP {
        return Direct::NotIpv4;
    }
    let ip = data + ETH_HLEN;
    let vihl = unsafe { *(ip as *const u8) };
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Direct::NotIpv4;
    }
    let proto = unsafe { *((ip + 9) as *const u8) };
    let src = unsafe { core::ptr::read_unaligned((ip + 12) as *const u32) };
    let dst = unsafe { core::ptr::read_unaligned((ip + 16) as *const u32) };
    let (sport, dport) = if proto == 6 || proto == 17 {
        let l4 = ip + (ihl & 0x3c);
        if l4 + 4 > end {
            return Direct::Fallback;
        }
        let ports = u32::from_be(unsafe { core::ptr::read_unaligned(l4 as *const u32) });
        ((ports >> 16) as u16, ports as u16)
    } else {
        (0, 0)
    };
    Direct::Flow(Flow {
        proto,
        src,
        dst,
        sport,
        dport,
    })
}
