//! What the BPF LSM and fmod_ret programs need beyond the syscall rules: the path prefix of a
//! file rule (resolved to a directory inode plus a name prefix) and the offsets of the kernel
//! structures they walk, read from the running kernel's BTF by userspace (no CO-RE in aya-ebpf).

/// Longest name prefix (the part of `--path` after its last directory) the kernel compares.
pub const PATH_NAME_MAX: usize = 64;

/// How many dentries (plus mount crossings) the kernel climbs looking for the prefix directory.
pub const PATH_DEPTH: u32 = 24;

/// The path prefix of rule slot `i` (slot `i` of the path array map). A file matches when one
/// of its ancestors (or the file itself) is the inode `dev:ino` and, when `name_len > 0`, the
/// name of the path component just below that ancestor starts with `name[..name_len]`. That is
/// exactly "the file's path starts with `--path`" for a prefix `DIR/NAME`, followed through
/// mounts the way `d_path` does.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathRule {
    /// Device of the prefix directory, in the kernel's encoding (`major << 20 | minor`).
    pub dev: u32,
    /// Bytes of `name` in use (0 = every file below the directory, and the directory itself).
    pub name_len: u32,
    /// Inode number of the prefix directory.
    pub ino: u64,
    /// The name prefix of the component below the directory, NUL-padded.
    pub name: [u8; PATH_NAME_MAX],
    /// 0xff for each byte of `name` in use (the kernel compares eight bytes at a time).
    pub mask: [u8; PATH_NAME_MAX],
}
const _: () = assert!(core::mem::size_of::<PathRule>() == 144);

impl Default for PathRule {
    fn default() -> Self {
        Self {
            dev: 0,
            name_len: 0,
            ino: 0,
            name: [0; PATH_NAME_MAX],
            mask: [0; PATH_NAME_MAX],
        }
    }
}

impl PathRule {
    /// Sets the name prefix (at most `PATH_NAME_MAX - 1` bytes are kept) and its mask.
    pub fn set_name(&mut self, name: &[u8]) {
        let n = name.len().min(PATH_NAME_MAX - 1);
        self.name = [0; PATH_NAME_MAX];
        self.mask = [0; PATH_NAME_MAX];
        self.name[..n].copy_from_slice(&name[..n]);
        self.mask[..n].fill(0xff);
        self.name_len = n as u32;
    }
}

/// `KernelOffsets::valid`: userspace filled the offsets from BTF.
pub const OFFSETS_VALID: u32 = 1;

/// Byte offsets of the kernel structure members the path walk reads (from BTF at load time).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `OFFSETS_VALID` once filled.
    pub valid: u32,
    /// `struct file`: `f_path` (a `struct path`).
    pub file_f_path: u32,
    /// `struct path`: `mnt` (`struct vfsmount *`).
    pub path_mnt: u32,
    /// `struct path`: `dentry`.
    pub path_dentry: u32,
    /// `struct dentry`: `d_parent`.
    pub dentry_d_parent: u32,
    /// `struct dentry`: `d_name.name` (the `const unsigned char *` inside the qstr).
    pub dentry_d_name_name: u32,
    /// `struct dentry`: `d_inode`.
    pub dentry_d_inode: u32,
    /// `struct inode`: `i_ino`.
    pub inode_i_ino: u32,
    /// `struct inode`: `i_sb`.
    pub inode_i_sb: u32,
    /// `struct inode`: `i_mode` (u16).
    pub inode_i_mode: u32,
    /// `struct super_block`: `s_dev` (u32 dev_t).
    pub sb_s_dev: u32,
    /// `struct mount`: `mnt` (the embedded `struct vfsmount`; container_of offset).
    pub mount_mnt: u32,
    /// `struct mount`: `mnt_parent`.
    pub mount_mnt_parent: u32,
    /// `struct mount`: `mnt_mountpoint` (dentry).
    pub mount_mnt_mountpoint: u32,
    /// `struct vfsmount`: `mnt_root` (the dentry a mount shows at its mount point).
    pub vfsmount_mnt_root: u32,
    /// Padding.
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<KernelOffsets>() == 64);

/// Kernel encoding of a device number (`MKDEV`: 12-bit major above a 20-bit minor).
#[inline(always)]
pub const fn kernel_dev(major: u32, minor: u32) -> u32 {
    (major << 20) | (minor & 0xf_ffff)
}

/// Whether `name` starts with the rule's name prefix: the comparison the kernel makes, eight
/// bytes at a time and without branches (`(name & mask) ^ prefix` is zero everywhere).
#[inline(always)]
pub fn name_matches(rule: &PathRule, name: &[u8; PATH_NAME_MAX]) -> bool {
    let mut diff = 0u64;
    let mut j = 0;
    while j < PATH_NAME_MAX / 8 {
        let w = |b: &[u8; PATH_NAME_MAX]| {
            u64::from_ne_bytes([
                b[8 * j],
                b[8 * j + 1],
                b[8 * j + 2],
                b[8 * j + 3],
                b[8 * j + 4],
                b[8 * j + 5],
                b[8 * j + 6],
                b[8 * j + 7],
            ])
        };
        diff |= (w(name) & w(&rule.mask)) ^ w(&rule.name);
        j += 1;
    }
    diff == 0
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], Copy, integers and byte arrays only, explicit padding.
    unsafe impl aya::Pod for super::PathRule {}
    unsafe impl aya::Pod for super::KernelOffsets {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &[u8]) -> PathRule {
        let mut r = PathRule::default();
        r.set_name(prefix);
        r
    }

    fn name(s: &[u8]) -> [u8; PATH_NAME_MAX] {
        let mut n = [0; PATH_NAME_MAX];
        n[..s.len()].copy_from_slice(s);
        n
    }

    #[test]
    fn name_prefix_compares_only_the_prefix() {
        assert!(name_matches(&rule(b"data"), &name(b"data-1.log")));
        assert!(name_matches(&rule(b"data"), &name(b"data")));
        assert!(!name_matches(&rule(b"data"), &name(b"dat")));
        assert!(!name_matches(&rule(b"data"), &name(b"other")));
        assert!(name_matches(&rule(b""), &name(b"anything")));
    }

    #[test]
    fn device_numbers_use_the_kernel_encoding() {
        assert_eq!(kernel_dev(8, 1), 0x0080_0001);
        assert_eq!(kernel_dev(0, 23), 23);
    }
}
