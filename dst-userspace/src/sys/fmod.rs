//! fmod_ret programs (`BPF_MODIFY_RETURN` on `security_*` functions), which aya 0.14 has no
//! program type for: the `fentry/security_*` programs of the `dst-sys` object are relocated
//! against the maps aya already created for that object (so they share the rule table,
//! targets and counters), then loaded with the fmod_ret attach type and attached through a
//! raw-tracepoint link that this process owns. The engine attaches each program twice (see
//! `DST_SYS_FMOD_SEEN` in the eBPF crate): tracing programs have a per-CPU recursion guard that
//! skips them while a task is preempted inside, and the second copy catches those calls.

use std::{
    collections::HashSet,
    ffi::CStr,
    mem,
    os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd},
};

use aya::{Btf, Ebpf, maps::Map};
use aya_obj::{
    Object,
    btf::BtfKind,
    generated::{bpf_attach_type, bpf_attr, bpf_cmd, bpf_prog_type},
};

use crate::bpf_sys::sys_bpf;

/// Errors loading an fmod_ret program.
#[derive(Debug, thiserror::Error)]
pub enum FmodError {
    /// The embedded object could not be parsed or relocated.
    #[error("preparing fmod_ret program {prog}: {detail}; rebuild dst")]
    Object {
        /// The program.
        prog: String,
        /// What failed.
        detail: String,
    },
    /// The kernel function is not in BTF.
    #[error("{func} is not in the kernel BTF, so fmod_ret cannot attach to it: {detail}")]
    NoFunction {
        /// The security_* function.
        func: String,
        /// BTF's answer.
        detail: String,
    },
    /// The kernel refused the program.
    #[error(
        "loading fmod_ret/{func}: {source}; run `dst probe` (fmod_ret needs BPF trampolines)\n{log}"
    )]
    Load {
        /// The security_* function.
        func: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
        /// The verifier log (tail).
        log: String,
    },
    /// Attaching failed.
    #[error("attaching fmod_ret/{func}: {source}; run `dst probe` to see what this kernel allows")]
    Attach {
        /// The security_* function.
        func: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn map_fd(map: &Map) -> Option<i32> {
    let data = match map {
        Map::Array(m)
        | Map::HashMap(m)
        | Map::PerCpuArray(m)
        | Map::PerCpuHashMap(m)
        | Map::LruHashMap(m)
        | Map::RingBuf(m) => m,
        _ => return None,
    };
    Some(data.fd().as_fd().as_raw_fd())
}

/// An attached fmod_ret program: the program and link fds (closing them detaches).
pub struct FmodLink {
    prog: OwnedFd,
    _link: OwnedFd,
}

impl FmodLink {
    /// The attached program (for its run statistics).
    pub fn prog_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.prog.as_fd()
    }
}

/// Loads program `prog` of `object` (whose maps `bpf` created) as fmod_ret on `func` and
/// attaches it.
pub fn load_and_attach(
    object: &[u8],
    bpf: &Ebpf,
    prog: &str,
    func: &str,
    btf: &Btf,
) -> Result<FmodLink, FmodError> {
    let obj_err = |detail: String| FmodError::Object {
        prog: prog.to_string(),
        detail,
    };
    let mut obj = Object::parse(object).map_err(|e| obj_err(e.to_string()))?;
    let program = obj
        .programs
        .get(prog)
        .ok_or_else(|| obj_err("program missing from the object".into()))?;
    let key = program.function_key();
    let own_section = program.section_index;
    let program_sections: HashSet<usize> = obj.programs.values().map(|p| p.section_index).collect();
    // Keep this program and the shared .text functions; the other programs reference maps
    // (the event ring buffer) that the engine has taken out of `bpf`.
    obj.programs.retain(|name, _| name == prog);
    obj.functions
        .retain(|(section, _), _| *section == own_section || !program_sections.contains(section));
    let text_sections: HashSet<usize> = obj.functions.keys().map(|(s, _)| *s).collect();
    let maps: Vec<(String, i32, aya_obj::Map)> = obj
        .maps
        .iter()
        .filter_map(|(name, m)| {
            let fd = map_fd(bpf.map(name)?)?;
            Some((name.clone(), fd, m.clone()))
        })
        .collect();
    obj.relocate_maps(
        maps.iter().map(|(n, fd, m)| (n.as_str(), *fd, m)),
        &text_sections,
    )
    .map_err(|e| obj_err(e.to_string()))?;
    obj.relocate_calls(&text_sections)
        .map_err(|e| obj_err(e.to_string()))?;
    let insns = &obj
        .functions
        .get(&key)
        .ok_or_else(|| obj_err("function missing after relocation".into()))?
        .instructions;
    let btf_id =
        btf.id_by_type_name_kind(func, BtfKind::Func)
            .map_err(|e| FmodError::NoFunction {
                func: func.to_string(),
                detail: e.to_string(),
            })?;
    let license = c"GPL";
    let mut log = vec![0u8; 1024 * 1024];
    let load = |log: Option<&mut Vec<u8>>| {
        // SAFETY: an all-zero bpf_attr is the documented way to start a request.
        let mut attr: bpf_attr = unsafe { mem::zeroed() };
        // SAFETY: writing the PROG_LOAD member of the union; the buffers outlive the call.
        unsafe {
            let u = &mut attr.__bindgen_anon_3;
            u.prog_type = bpf_prog_type::BPF_PROG_TYPE_TRACING as u32;
            u.expected_attach_type = bpf_attach_type::BPF_MODIFY_RETURN as u32;
            u.insn_cnt = insns.len() as u32;
            u.insns = insns.as_ptr() as u64;
            u.license = license.as_ptr() as u64;
            u.attach_btf_id = btf_id;
            if let Some(log) = log {
                u.log_level = 1;
                u.log_buf = log.as_mut_ptr() as u64;
                u.log_size = log.len() as u32;
            }
        }
        // SAFETY: a valid PROG_LOAD request.
        let fd = unsafe { sys_bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr) };
        (fd, std::io::Error::last_os_error())
    };
    let (mut fd, mut source) = load(None);
    if fd < 0 {
        // Load again with the verifier log, to say why.
        let (fd2, source2) = load(Some(&mut log));
        (fd, source) = if fd2 >= 0 {
            (fd2, source2)
        } else {
            (fd, source)
        };
    }
    if fd < 0 {
        let text = CStr::from_bytes_until_nul(&log)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tail: String = text
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(FmodError::Load {
            func: func.to_string(),
            source,
            log: tail,
        });
    }
    // SAFETY: the kernel just returned this fd to us.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: an all-zero bpf_attr is valid; then the RAW_TRACEPOINT_OPEN member.
    let mut attr: bpf_attr = unsafe { mem::zeroed() };
    attr.raw_tracepoint.name = 0;
    attr.raw_tracepoint.prog_fd = prog_fd.as_raw_fd() as u32;
    // SAFETY: a valid RAW_TRACEPOINT_OPEN request.
    let link = unsafe { sys_bpf(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut attr) };
    if link < 0 {
        return Err(FmodError::Attach {
            func: func.to_string(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(FmodLink {
        prog: prog_fd,
        // SAFETY: the kernel just returned this fd to us.
        _link: unsafe { OwnedFd::from_raw_fd(link as i32) },
    })
}
