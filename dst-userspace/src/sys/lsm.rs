//! The BPF LSM and fmod_ret backends of the syscall engine: which hook carries which syscall
//! class, the kernel structure offsets the path walk needs (from BTF), and `--path` prefixes
//! resolved to the directory inode plus name prefix the kernel compares.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Component, Path, PathBuf},
};

use dst_common::lsm::{KernelOffsets, OFFSETS_VALID, PATH_NAME_MAX, PathRule, kernel_dev};

use super::{
    SyscallClass,
    btf::{BtfError, KernelBtf},
};

/// Errors of the LSM path support.
#[derive(Debug, thiserror::Error)]
pub enum LsmPathError {
    /// The prefix is not absolute.
    #[error("--path {0} must be an absolute path")]
    NotAbsolute(PathBuf),
    /// The prefix directory does not exist.
    #[error(
        "the directory of --path {path} ({dir}) cannot be inspected: {source}; the kernel \
         backends match the directory by inode, so it must exist before the fault is applied"
    )]
    NoDirectory {
        /// The prefix.
        path: PathBuf,
        /// Its directory part.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The name part is too long for the kernel comparison.
    #[error("the last component of --path {0} is longer than {max} bytes", max = PATH_NAME_MAX - 1)]
    NameTooLong(PathBuf),
}

/// The BPF LSM hooks (program name in `dst-sys`, hook) that carry `class`; empty when no LSM
/// hook can fail that class (fsync has none; bind and socket are the cgroup hooks' job).
pub fn lsm_hooks(class: SyscallClass) -> &'static [(&'static str, &'static str)] {
    match class {
        SyscallClass::Open => &[("dst_lsm_file_open", "file_open")],
        SyscallClass::Read | SyscallClass::Write => {
            &[("dst_lsm_file_permission", "file_permission")]
        }
        SyscallClass::Mmap => &[("dst_lsm_mmap_file", "mmap_file")],
        SyscallClass::Fork => &[("dst_lsm_task_alloc", "task_alloc")],
        SyscallClass::Connect => &[("dst_lsm_socket_connect", "socket_connect")],
        SyscallClass::Send => &[("dst_lsm_socket_sendmsg", "socket_sendmsg")],
        SyscallClass::Recv => &[("dst_lsm_socket_recvmsg", "socket_recvmsg")],
        SyscallClass::Accept => &[("dst_lsm_socket_accept", "socket_accept")],
        SyscallClass::Bind | SyscallClass::Socket | SyscallClass::Fsync | SyscallClass::Getppid => {
            &[]
        }
    }
}

/// The fmod_ret programs (program name in `dst-sys`, `security_*` function) that carry `class`.
pub fn fmod_hooks(class: SyscallClass) -> &'static [(&'static str, &'static str)] {
    match class {
        SyscallClass::Open => &[("dst_fmod_file_open", "security_file_open")],
        SyscallClass::Read | SyscallClass::Write => {
            &[("dst_fmod_file_permission", "security_file_permission")]
        }
        SyscallClass::Mmap => &[("dst_fmod_mmap_file", "security_mmap_file")],
        SyscallClass::Fork => &[("dst_fmod_task_alloc", "security_task_alloc")],
        SyscallClass::Connect => &[("dst_fmod_socket_connect", "security_socket_connect")],
        _ => &[],
    }
}

/// The offsets of the kernel structures the path walk reads, from the running kernel's BTF.
pub fn kernel_offsets(btf: &KernelBtf) -> Result<KernelOffsets, BtfError> {
    Ok(KernelOffsets {
        valid: OFFSETS_VALID,
        file_f_path: btf.offset_of("file", "f_path")?,
        path_mnt: btf.offset_of("path", "mnt")?,
        path_dentry: btf.offset_of("path", "dentry")?,
        dentry_d_parent: btf.offset_of("dentry", "d_parent")?,
        dentry_d_name_name: btf.offset_of("dentry", "d_name.name")?,
        dentry_d_inode: btf.offset_of("dentry", "d_inode")?,
        inode_i_ino: btf.offset_of("inode", "i_ino")?,
        inode_i_sb: btf.offset_of("inode", "i_sb")?,
        inode_i_mode: btf.offset_of("inode", "i_mode")?,
        sb_s_dev: btf.offset_of("super_block", "s_dev")?,
        mount_mnt: btf.offset_of("mount", "mnt")?,
        mount_mnt_parent: btf.offset_of("mount", "mnt_parent")?,
        mount_mnt_mountpoint: btf.offset_of("mount", "mnt_mountpoint")?,
        vfsmount_mnt_root: btf.offset_of("vfsmount", "mnt_root")?,
        _pad: 0,
    })
}

/// Splits a prefix into the directory the kernel finds by inode and the name prefix of the
/// component below it: `/data/wal` → (`/data`, `wal`) unless `/data/wal` is a directory, and
/// `/data/` → (`/data`, ``). Lexical only (`..` is refused by the caller's normalisation).
pub fn split_prefix(prefix: &Path, is_dir: bool) -> (PathBuf, Vec<u8>) {
    let text = prefix.as_os_str().as_encoded_bytes();
    if is_dir || text.ends_with(b"/") {
        return (prefix.to_path_buf(), Vec::new());
    }
    let dir = prefix.parent().unwrap_or(Path::new("/")).to_path_buf();
    let name = prefix
        .file_name()
        .map(|n| n.as_encoded_bytes().to_vec())
        .unwrap_or_default();
    (dir, name)
}

/// Resolves `--path PREFIX` to the rule the kernel evaluates.
pub fn path_rule(prefix: &Path) -> Result<PathRule, LsmPathError> {
    if !prefix.is_absolute() || prefix.components().any(|c| c == Component::ParentDir) {
        return Err(LsmPathError::NotAbsolute(prefix.to_path_buf()));
    }
    let (dir, name) = split_prefix(prefix, prefix.is_dir());
    if name.len() >= PATH_NAME_MAX {
        return Err(LsmPathError::NameTooLong(prefix.to_path_buf()));
    }
    let meta = std::fs::metadata(&dir).map_err(|source| LsmPathError::NoDirectory {
        path: prefix.to_path_buf(),
        dir: dir.clone(),
        source,
    })?;
    let dev = meta.dev();
    let mut rule = PathRule {
        dev: kernel_dev(libc::major(dev), libc::minor(dev)),
        ino: meta.ino(),
        ..Default::default()
    };
    rule.set_name(&name);
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_split_into_directory_and_name() {
        assert_eq!(
            split_prefix(Path::new("/data/wal"), false),
            (PathBuf::from("/data"), b"wal".to_vec())
        );
        assert_eq!(
            split_prefix(Path::new("/data/wal"), true),
            (PathBuf::from("/data/wal"), Vec::new())
        );
        assert_eq!(
            split_prefix(Path::new("/data/"), false),
            (PathBuf::from("/data/"), Vec::new())
        );
        assert_eq!(
            split_prefix(Path::new("/x"), false),
            (PathBuf::from("/"), b"x".to_vec())
        );
    }

    #[test]
    fn path_rules_name_a_real_directory() {
        let dir = std::env::temp_dir();
        let r = path_rule(&dir.join("dst-lsm-prefix")).unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(r.ino, meta.ino());
        assert_eq!(&r.name[..r.name_len as usize], b"dst-lsm-prefix");
        assert!(matches!(
            path_rule(Path::new("relative/x")),
            Err(LsmPathError::NotAbsolute(_))
        ));
        assert!(matches!(
            path_rule(Path::new("/no/such/dir/x")),
            Err(LsmPathError::NoDirectory { .. })
        ));
    }

    #[test]
    fn every_lsm_class_has_an_fmod_or_lsm_hook_and_fsync_has_none() {
        assert!(lsm_hooks(SyscallClass::Fsync).is_empty());
        assert!(fmod_hooks(SyscallClass::Fsync).is_empty());
        for c in [
            SyscallClass::Open,
            SyscallClass::Read,
            SyscallClass::Write,
            SyscallClass::Mmap,
            SyscallClass::Fork,
            SyscallClass::Connect,
        ] {
            assert!(
                !lsm_hooks(c).is_empty() && !fmod_hooks(c).is_empty(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn offsets_come_from_btf() {
        // A real kernel's BTF when this machine has one (CI does); otherwise nothing to read.
        let Ok(btf) = KernelBtf::from_sys_fs() else {
            return;
        };
        let o = kernel_offsets(&btf).unwrap();
        assert_eq!(o.valid, OFFSETS_VALID);
        assert_eq!(o.path_mnt, 0);
        assert_eq!(o.path_dentry, 8);
        assert!(o.file_f_path > 0 && o.dentry_d_inode > 0 && o.mount_mnt > 0);
    }
}
