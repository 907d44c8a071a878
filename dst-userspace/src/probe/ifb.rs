//! `ifb_edt`: does ingress EDT through an ifb deliver on this kernel? Tried for real: two
//! throwaway namespaces joined by a veth, an ifb with fq in the receiver, a tc ingress program
//! that stamps IPv4 packets delivery-mono 1 ms ahead and redirects them to the ifb, and three
//! UDP datagrams that must come out the other side (on 6.1 every one of them is dropped).

use std::time::Duration;

use aya::{
    EbpfLoader,
    maps::Array,
    programs::{
        LinkOrder, SchedClassifier, TcAttachType,
        tc::{NlOptions, TcAttachOptions},
    },
};

use super::Capability;
use crate::{
    ebpf::PROBE_OBJ,
    net::ifb::IfbGuard,
    testing::{Topology, udp_socket},
};

const PORT: u16 = 9;

/// Runs the check; `fq` is whether the fq check passed (without it there is nothing to try).
pub(super) fn ifb_edt(fq: bool) -> Capability {
    if !fq {
        return Capability::no("needs fq (sch_fq), which is missing");
    }
    match try_it() {
        Ok(0) => Capability::no(
            "3 UDP datagrams redirected from tc ingress to an ifb with fq (delivery-mono \
             tstamp) never came out: this kernel drops packets redirected to an ifb",
        ),
        Ok(n) => Capability::yes(format!(
            "{n}/3 UDP datagrams delayed through an ifb with fq were delivered"
        )),
        Err(e) => Capability::no(e),
    }
}

fn try_it() -> Result<usize, String> {
    let prefix = format!("dstpifb{}-", std::process::id() % 100_000);
    let topo = Topology::new(&prefix, 2, 251).map_err(|e| format!("test namespaces: {e}"))?;
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let mut bpf = EbpfLoader::new()
        .load(PROBE_OBJ)
        .map_err(|e| format!("loading the probe object: {e}"))?;
    let (ifb, _link) =
        b.ns.run(|| -> Result<_, String> {
            let ifb = IfbGuard::create("dstpifb0").map_err(|e| e.to_string())?;
            let mut map: Array<_, u32> = Array::try_from(
                bpf.map_mut("DST_PROBE_IFB")
                    .ok_or("DST_PROBE_IFB missing from the probe object")?,
            )
            .map_err(|e| e.to_string())?;
            map.set(0, ifb.ifindex, 0).map_err(|e| e.to_string())?;
            let p: &mut SchedClassifier = bpf
                .program_mut("probe_ifb_edt")
                .ok_or("probe_ifb_edt missing from the probe object")?
                .try_into()
                .map_err(|e: aya::programs::ProgramError| e.to_string())?;
            p.load()
                .map_err(|e| format!("loading probe_ifb_edt: {e}"))?;
            let link = p
                .attach_with_options(
                    "eth0",
                    TcAttachType::Ingress,
                    TcAttachOptions::TcxOrder(LinkOrder::default()),
                )
                .or_else(|_| {
                    let _ = aya::programs::tc::qdisc_add_clsact("eth0");
                    p.attach_with_options(
                        "eth0",
                        TcAttachType::Ingress,
                        TcAttachOptions::Netlink(NlOptions::default()),
                    )
                })
                .map_err(|e| format!("attaching probe_ifb_edt: {e}"))?;
            Ok((ifb, link))
        })
        .map_err(|e| e.to_string())??;
    let rx = udp_socket(b, PORT).map_err(|e| e.to_string())?;
    rx.set_read_timeout(Some(Duration::from_millis(700))).ok();
    let tx = udp_socket(a, 0).map_err(|e| e.to_string())?;
    for _ in 0..3 {
        let _ = tx.send_to(b"dst", (b.addr, PORT));
    }
    let mut got = 0;
    let mut buf = [0u8; 8];
    while got < 3 && rx.recv(&mut buf).is_ok() {
        got += 1;
    }
    drop(ifb);
    Ok(got)
}
