//! Synchronous rtnetlink operations (links, addresses, root qdiscs) on the network namespace of
//! the thread that opened the connection. Built on the `rtnetlink` crate; no `ip`/`tc` binaries.

use std::net::IpAddr;

use futures::{StreamExt as _, TryStreamExt as _};
use netlink_packet_core::{
    DefaultNla, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::LinkAttribute,
    tc::{TcAttribute, TcHandle, TcMessage, TcOption},
};
use rtnetlink::{Handle, LinkBridge, LinkIfb, LinkUnspec, LinkVeth};

/// `fq` options (include/uapi/linux/pkt_sched.h, `TCA_FQ_*`); netlink-packet-route has no typed
/// fq options, so they are emitted as raw attributes.
const TCA_FQ_PLIMIT: u16 = 1;
const TCA_FQ_FLOW_PLIMIT: u16 = 2;
const TCA_FQ_ORPHAN_MASK: u16 = 10;
const TCA_FQ_HORIZON: u16 = 14;
const TCA_FQ_HORIZON_DROP: u16 = 15;

/// Settings of an `fq` qdisc dst installs for EDT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FqOptions {
    /// Packets queued at most (all flows).
    pub limit: u32,
    /// Packets queued at most per flow.
    pub flow_limit: u32,
    /// Departure times further ahead than this are dropped (`drop`) or capped to it.
    pub horizon_us: u32,
    /// Drop (true) or cap (false) beyond the horizon.
    pub horizon_drop: bool,
    /// Mask applied to the flow hash of packets fq classifies by hash (more bits: fewer
    /// unrelated packets share a flow).
    pub orphan_mask: u32,
}

/// The root qdisc of an interface as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootQdisc {
    /// Qdisc kind (`noqueue`, `pfifo_fast`, `mq`, `fq`, ...).
    pub kind: String,
    /// Its handle; major 0 means the kernel attached it by default (nobody configured it).
    pub handle: TcHandle,
}

/// Errors of netlink operations.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Opening the netlink socket or its runtime failed.
    #[error("cannot open a netlink socket: {0} (dst needs root / CAP_NET_ADMIN)")]
    Open(#[source] std::io::Error),
    /// The kernel refused a request.
    #[error("{op} failed: {source}")]
    Request {
        /// What was asked.
        op: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// A named interface does not exist in this namespace.
    #[error("interface {0:?} not found in this network namespace; check the name with `ip link`")]
    NoSuchLink(String),
}

/// `TCA_OPTIONS` of a tc message (linux/rtnetlink.h).
const TCA_OPTIONS: u16 = 2;

fn req(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let op = op.into();
    move |source| NetlinkError::Request { op, source }
}

impl NetlinkError {
    /// The errno the kernel answered, if this was a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Request {
                source: rtnetlink::Error::NetlinkError(e),
                ..
            } => e.code.map(|c| -c.get()),
            _ => None,
        }
    }
}

/// A netlink connection bound to the network namespace current at creation.
pub struct Netlink {
    rt: tokio::runtime::Runtime,
    handle: Handle,
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace.
    pub fn new() -> Result<Self, NetlinkError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(NetlinkError::Open)?;
        let handle = rt.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            Ok::<_, std::io::Error>(handle)
        });
        Ok(Self {
            rt,
            handle: handle.map_err(NetlinkError::Open)?,
        })
    }

    /// Index of the interface named `name`.
    pub fn link_index(&self, name: &str) -> Result<u32, NetlinkError> {
        self.rt.block_on(async {
            let mut links = self
                .handle
                .link()
                .get()
                .match_name(name.to_string())
                .execute();
            match links.try_next().await {
                Ok(Some(msg)) => Ok(msg.header.index),
                Ok(None) => Err(NetlinkError::NoSuchLink(name.to_string())),
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {
                    Err(NetlinkError::NoSuchLink(name.to_string()))
                }
                Err(e) => Err(req(format!("looking up {name}"))(e)),
            }
        })
    }

    /// Name of the interface with index `index`.
    pub fn link_name(&self, index: u32) -> Result<String, NetlinkError> {
        self.rt.block_on(async {
            let mut links = self.handle.link().get().match_index(index).execute();
            let msg = links
                .try_next()
                .await
                .map_err(req(format!("looking up ifindex {index}")))?
                .ok_or_else(|| NetlinkError::NoSuchLink(index.to_string()))?;
            Ok(msg
                .attributes
                .iter()
                .find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
                .unwrap_or_default())
        })
    }

    /// Sets the interface up.
    pub fn link_up(&self, index: u32) -> Result<(), NetlinkError> {
        self.rt
            .block_on(
                self.handle
                    .link()
                    .set(LinkUnspec::new_with_index(index).up().build())
                    .execute(),
            )
            .map_err(req(format!("setting ifindex {index} up")))
    }

    /// Creates a veth pair `a` <-> `b` in this namespace.
    pub fn add_veth(&self, a: &str, b: &str) -> Result<(), NetlinkError> {
        self.rt
            .block_on(
                self.handle
                    .link()
                    .add(LinkVeth::new(a, b).build())
                    .execute(),
            )
            .map_err(req(format!("creating veth {a}/{b}")))
    }

    /// Creates an `ifb` device.
    pub fn add_ifb(&self, name: &str) -> Result<(), NetlinkError> {
        self.rt
            .block_on(self.handle.link().add(LinkIfb::new(name).build()).execute())
            .map_err(req(format!("creating ifb device {name} (modprobe ifb)")))
    }

    /// Creates a bridge.
    pub fn add_bridge(&self, name: &str) -> Result<(), NetlinkError> {
        self.rt
            .block_on(
                self.handle
                    .link()
                    .add(LinkBridge::new(name).build())
                    .execute(),
            )
            .map_err(req(format!("creating bridge {name}")))
    }

    /// Enslaves `index` to the bridge `bridge`.
    pub fn set_master(&self, index: u32, bridge: u32) -> Result<(), NetlinkError> {
        self.rt
            .block_on(
                self.handle
                    .link()
                    .set(LinkUnspec::new_with_index(index).controller(bridge).build())
                    .execute(),
            )
            .map_err(req(format!("attaching ifindex {index} to bridge {bridge}")))
    }

    /// Moves the interface into the namespace open at `ns_fd`, renaming it to `new_name`.
    pub fn move_to_netns(
        &self,
        index: u32,
        ns_fd: i32,
        new_name: &str,
    ) -> Result<(), NetlinkError> {
        self.rt
            .block_on(
                self.handle
                    .link()
                    .set(
                        LinkUnspec::new_with_index(index)
                            .setns_by_fd(ns_fd)
                            .name(new_name.to_string())
                            .build(),
                    )
                    .execute(),
            )
            .map_err(req(format!("moving ifindex {index} to another namespace")))
    }

    /// Deletes the interface.
    pub fn del_link(&self, index: u32) -> Result<(), NetlinkError> {
        self.rt
            .block_on(self.handle.link().del(index).execute())
            .map_err(req(format!("deleting ifindex {index}")))
    }

    /// Adds an address to the interface.
    pub fn add_addr(&self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), NetlinkError> {
        self.rt
            .block_on(self.handle.address().add(index, addr, prefix).execute())
            .map_err(req(format!("adding {addr}/{prefix} to ifindex {index}")))
    }

    fn tc_request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: String,
    ) -> Result<(), NetlinkError> {
        self.rt.block_on(async {
            let mut nl = NetlinkMessage::from(msg);
            nl.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
            let mut handle = self.handle.clone();
            let mut resp = handle.request(nl).map_err(req(op.clone()))?;
            while let Some(m) = resp.next().await {
                if let NetlinkPayload::Error(e) = m.payload
                    && e.code.is_some()
                {
                    return Err(req(op)(rtnetlink::Error::NetlinkError(e)));
                }
            }
            Ok(())
        })
    }

    /// Adds a root qdisc of `kind` (e.g. "fq", "netem") with its default options; fails if one
    /// exists. netem refuses a request without options (EINVAL), so it gets a `tc_netem_qopt`
    /// with no effect (limit 1000, everything else 0), what `tc qdisc add … netem` sends.
    pub fn add_root_qdisc(&self, index: u32, kind: &str) -> Result<(), NetlinkError> {
        let mut msg = TcMessage::with_index(index as i32);
        msg.header.parent = TcHandle::ROOT;
        msg.header.handle = TcHandle { major: 0, minor: 0 };
        msg.attributes.push(TcAttribute::Kind(kind.to_string()));
        if kind == "netem" {
            // struct tc_netem_qopt { latency, limit, loss, gap, duplicate, jitter: u32 }
            let mut qopt = [0u8; 24];
            qopt[4..8].copy_from_slice(&1000u32.to_ne_bytes());
            msg.attributes.push(TcAttribute::Other(DefaultNla::new(
                TCA_OPTIONS,
                qopt.to_vec(),
            )));
        }
        self.tc_request(
            RouteNetlinkMessage::NewQueueDiscipline(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("adding root qdisc {kind} on ifindex {index}"),
        )
    }

    /// Adds a root `fq` qdisc with `opts`; fails if a root qdisc other than the kernel's default
    /// is present.
    pub fn add_root_fq(&self, index: u32, opts: FqOptions) -> Result<(), NetlinkError> {
        let mut msg = TcMessage::with_index(index as i32);
        msg.header.parent = TcHandle::ROOT;
        msg.header.handle = TcHandle { major: 0, minor: 0 };
        msg.attributes.push(TcAttribute::Kind("fq".to_string()));
        let u32_opt =
            |kind: u16, v: u32| TcOption::Other(DefaultNla::new(kind, v.to_ne_bytes().to_vec()));
        msg.attributes.push(TcAttribute::Options(vec![
            u32_opt(TCA_FQ_PLIMIT, opts.limit),
            u32_opt(TCA_FQ_FLOW_PLIMIT, opts.flow_limit),
            u32_opt(TCA_FQ_ORPHAN_MASK, opts.orphan_mask),
            u32_opt(TCA_FQ_HORIZON, opts.horizon_us),
            TcOption::Other(DefaultNla::new(
                TCA_FQ_HORIZON_DROP,
                vec![u8::from(opts.horizon_drop)],
            )),
        ]));
        self.tc_request(
            RouteNetlinkMessage::NewQueueDiscipline(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("adding root qdisc fq on ifindex {index}"),
        )
    }

    /// The root qdisc of the interface, if the kernel reports one.
    pub fn root_qdisc(&self, index: u32) -> Result<Option<RootQdisc>, NetlinkError> {
        self.rt.block_on(async {
            let handle = self.handle.clone();
            let msgs: Vec<TcMessage> = handle
                .qdisc()
                .get()
                .index(index as i32)
                .execute()
                .try_collect()
                .await
                .map_err(req(format!("listing qdiscs of ifindex {index}")))?;
            Ok(msgs
                .into_iter()
                .filter(|m| m.header.index == index as i32 && m.header.parent == TcHandle::ROOT)
                .find_map(|m| {
                    let handle = m.header.handle;
                    m.attributes.into_iter().find_map(|a| match a {
                        TcAttribute::Kind(kind) => Some(RootQdisc { kind, handle }),
                        _ => None,
                    })
                }))
        })
    }

    /// Deletes the root qdisc of the interface.
    pub fn del_root_qdisc(&self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = TcMessage::with_index(index as i32);
        msg.header.parent = TcHandle::ROOT;
        self.tc_request(
            RouteNetlinkMessage::DelQueueDiscipline(msg),
            0,
            format!("deleting root qdisc on ifindex {index}"),
        )
    }

    /// Deletes the clsact qdisc of the interface (and every tc filter on it).
    pub fn del_clsact(&self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = TcMessage::with_index(index as i32);
        msg.header.parent = TcHandle::INGRESS;
        msg.header.handle = TcHandle {
            major: 0xffff,
            minor: 0,
        };
        msg.attributes.push(TcAttribute::Kind("clsact".to_string()));
        self.tc_request(
            RouteNetlinkMessage::DelQueueDiscipline(msg),
            0,
            format!("deleting clsact on ifindex {index}"),
        )
    }

    /// Kinds of all qdiscs attached to the interface (root first as the kernel lists them).
    pub fn qdisc_kinds(&self, index: u32) -> Result<Vec<(TcHandle, String)>, NetlinkError> {
        self.rt.block_on(async {
            let handle = self.handle.clone();
            let msgs: Vec<TcMessage> = handle
                .qdisc()
                .get()
                .index(index as i32)
                .execute()
                .try_collect()
                .await
                .map_err(req(format!("listing qdiscs of ifindex {index}")))?;
            Ok(msgs
                .into_iter()
                .filter(|m| m.header.index == index as i32)
                .filter_map(|m| {
                    let parent = m.header.parent;
                    m.attributes.into_iter().find_map(|a| match a {
                        TcAttribute::Kind(k) => Some((parent, k)),
                        _ => None,
                    })
                })
                .collect())
        })
    }

    /// Names of the cls_bpf programs in the tc filters on the interface's clsact ingress and
    /// egress hooks (the programs attached without TCX).
    pub fn bpf_filter_names(&self, index: u32) -> Result<Vec<String>, NetlinkError> {
        let mut names = Vec::new();
        for ingress in [true, false] {
            names.extend(
                self.bpf_filters(index, ingress)?
                    .into_iter()
                    .map(|f| f.name),
            );
        }
        Ok(names)
    }

    /// The cls_bpf filters on the interface's clsact ingress (or egress) hook.
    pub fn bpf_filters(&self, index: u32, ingress: bool) -> Result<Vec<BpfFilter>, NetlinkError> {
        use netlink_packet_route::tc::TcFilterBpfOption;
        self.rt.block_on(async {
            let get = self.handle.traffic_filter(index as i32).get();
            let get = if ingress { get.ingress() } else { get.egress() };
            let msgs: Vec<TcMessage> = get
                .execute()
                .try_collect()
                .await
                .map_err(req(format!("listing tc filters of ifindex {index}")))?;
            let mut filters = Vec::new();
            for m in msgs {
                let (mut name, mut prog_id) = (None, None);
                for a in &m.attributes {
                    if let TcAttribute::Options(opts) = a {
                        for o in opts {
                            match o {
                                TcOption::Bpf(TcFilterBpfOption::ProgName(n)) => {
                                    name = Some(n.clone())
                                }
                                TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => prog_id = Some(*id),
                                _ => {}
                            }
                        }
                    }
                }
                // The kernel also lists the filter chain head (no options) per priority.
                if let (Some(name), Some(prog_id)) = (name, prog_id) {
                    filters.push(BpfFilter {
                        ingress,
                        info: m.header.info,
                        handle: m.header.handle,
                        name,
                        prog_id,
                    });
                }
            }
            Ok(filters)
        })
    }

    /// Deletes one tc filter of the interface's clsact hook.
    pub fn del_bpf_filter(&self, index: u32, f: &BpfFilter) -> Result<(), NetlinkError> {
        let mut msg = TcMessage::with_index(index as i32);
        msg.header.parent = TcHandle {
            major: 0xffff,
            minor: if f.ingress {
                TcHandle::MIN_INGRESS
            } else {
                TcHandle::MIN_EGRESS
            },
        };
        msg.header.handle = f.handle;
        msg.header.info = f.info;
        msg.attributes.push(TcAttribute::Kind("bpf".to_string()));
        self.tc_request(
            RouteNetlinkMessage::DelTrafficFilter(msg),
            0,
            format!("deleting tc filter {} on ifindex {index}", f.name),
        )
    }
}

/// A cls_bpf filter on a clsact hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfFilter {
    /// On the ingress hook (else egress).
    pub ingress: bool,
    /// `tcm_info`: priority (high 16 bits) and protocol.
    pub info: u32,
    /// The filter's handle.
    pub handle: TcHandle,
    /// Name of its program.
    pub name: String,
    /// Kernel id of its program.
    pub prog_id: u32,
}
