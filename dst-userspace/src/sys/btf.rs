//! Struct member offsets from the running kernel's BTF (`/sys/kernel/btf/vmlinux`), for the
//! kernel programs that walk `struct file` / `dentry` / `mount` (aya-ebpf has no CO-RE, and
//! aya's BTF type keeps members private). A small reader of the BTF type section: enough to
//! find a struct by name and a member by name, through anonymous struct/union members.

use std::{collections::HashMap, path::Path};

/// Errors reading kernel BTF.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The BTF file could not be read.
    #[error(
        "reading kernel BTF {path}: {source}; the kernel needs CONFIG_DEBUG_INFO_BTF for the \
         LSM and fmod_ret backends"
    )]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The data is not BTF dst can read.
    #[error("kernel BTF is malformed at byte {0}; report this kernel to dst")]
    Malformed(usize),
    /// A struct is missing.
    #[error("struct {0} is not in the kernel BTF; this kernel cannot run dst's path matching")]
    NoStruct(String),
    /// A member is missing.
    #[error("struct {ty} has no member {member} in the kernel BTF")]
    NoMember {
        /// The struct.
        ty: String,
        /// The member path.
        member: String,
    },
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Clone, Debug)]
struct Member {
    name: String,
    ty: u32,
    bit_offset: u32,
}

#[derive(Clone, Debug)]
enum Ty {
    /// struct or union.
    Composite(Vec<Member>),
    /// typedef, const, volatile, restrict, type tag: refers to another type.
    Alias(u32),
    Other,
}

/// The kernel's types, by id, and struct ids by name.
pub struct KernelBtf {
    types: Vec<Ty>,
    structs: HashMap<String, u32>,
}

fn u32_at(d: &[u8], off: usize) -> Result<u32, BtfError> {
    d.get(off..off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(BtfError::Malformed(off))
}

fn str_at(strings: &[u8], off: u32) -> String {
    let s = strings.get(off as usize..).unwrap_or_default();
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).into_owned()
}

impl KernelBtf {
    /// Reads the running kernel's BTF.
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_file(Path::new("/sys/kernel/btf/vmlinux"))
    }

    /// Reads BTF from a file.
    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&data)
    }

    /// Parses raw (little-endian) BTF.
    pub fn parse(d: &[u8]) -> Result<Self, BtfError> {
        if d.len() < 24 || d[0] != 0x9f || d[1] != 0xeb {
            return Err(BtfError::Malformed(0));
        }
        let hdr_len = u32_at(d, 4)? as usize;
        let type_off = u32_at(d, 8)? as usize;
        let type_len = u32_at(d, 12)? as usize;
        let str_off = u32_at(d, 16)? as usize;
        let str_len = u32_at(d, 20)? as usize;
        let ts = hdr_len + type_off;
        let types_data = d.get(ts..ts + type_len).ok_or(BtfError::Malformed(ts))?;
        let ss = hdr_len + str_off;
        let strings = d.get(ss..ss + str_len).ok_or(BtfError::Malformed(ss))?;
        // Type id 0 is void.
        let mut types = vec![Ty::Other];
        let mut structs = HashMap::new();
        let mut p = 0usize;
        while p < types_data.len() {
            let name_off = u32_at(types_data, p)?;
            let info = u32_at(types_data, p + 4)?;
            let size_or_type = u32_at(types_data, p + 8)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31;
            p += 12;
            let ty = match kind {
                KIND_STRUCT | KIND_UNION => {
                    let mut members = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let off = u32_at(types_data, p + 8)?;
                        members.push(Member {
                            name: str_at(strings, u32_at(types_data, p)?),
                            ty: u32_at(types_data, p + 4)?,
                            bit_offset: if kind_flag == 1 { off & 0xff_ffff } else { off },
                        });
                        p += 12;
                    }
                    if kind == KIND_STRUCT && name_off != 0 {
                        structs
                            .entry(str_at(strings, name_off))
                            .or_insert(types.len() as u32);
                    }
                    Ty::Composite(members)
                }
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    Ty::Alias(size_or_type)
                }
                KIND_INT | KIND_VAR | KIND_DECL_TAG => {
                    p += 4;
                    Ty::Other
                }
                KIND_ARRAY => {
                    p += 12;
                    Ty::Other
                }
                KIND_ENUM | KIND_FUNC_PROTO => {
                    p += 8 * vlen;
                    Ty::Other
                }
                KIND_DATASEC | KIND_ENUM64 => {
                    p += 12 * vlen;
                    Ty::Other
                }
                // PTR, FWD, FUNC, FLOAT: nothing follows.
                _ => {
                    let _ = KIND_PTR;
                    Ty::Other
                }
            };
            types.push(ty);
        }
        Ok(Self { types, structs })
    }

    fn resolve(&self, mut id: u32) -> &Ty {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(Ty::Alias(next)) => id = *next,
                Some(t) => return t,
                None => break,
            }
        }
        &Ty::Other
    }

    /// Bit offset of `name` inside composite `id`, looking through anonymous members.
    fn find(&self, id: u32, name: &str, depth: u32) -> Option<(u32, u32)> {
        let Ty::Composite(members) = self.resolve(id) else {
            return None;
        };
        if let Some(m) = members.iter().find(|m| m.name == name) {
            return Some((m.bit_offset, m.ty));
        }
        if depth == 0 {
            return None;
        }
        members.iter().filter(|m| m.name.is_empty()).find_map(|m| {
            self.find(m.ty, name, depth - 1)
                .map(|(off, ty)| (m.bit_offset + off, ty))
        })
    }

    /// Byte offset of `member` (dotted for nested members: `d_name.name`) in `struct ty`.
    pub fn offset_of(&self, ty: &str, member: &str) -> Result<u32, BtfError> {
        let mut id = *self
            .structs
            .get(ty)
            .ok_or_else(|| BtfError::NoStruct(ty.to_string()))?;
        let mut bits = 0;
        for part in member.split('.') {
            let (off, next) = self.find(id, part, 4).ok_or_else(|| BtfError::NoMember {
                ty: ty.to_string(),
                member: member.to_string(),
            })?;
            bits += off;
            id = next;
        }
        Ok(bits / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BTF with `struct qstr { u64 hash_len; const char *name; }` and
    /// `struct dentry { u32 flags; union { struct qstr __d_name; struct qstr d_name; }; }`.
    fn sample() -> Vec<u8> {
        let strings = b"\0qstr\0hash_len\0name\0dentry\0flags\0__d_name\0d_name\0u64\0".to_vec();
        let s = |n: &str| -> u32 {
            let pos = strings
                .windows(n.len() + 2)
                .position(|w| w[0] == 0 && &w[1..=n.len()] == n.as_bytes() && w[n.len() + 1] == 0)
                .unwrap();
            pos as u32 + 1
        };
        let mut t = Vec::new();
        let mut push = |v: &[u32]| {
            for x in v {
                t.extend_from_slice(&x.to_le_bytes());
            }
        };
        let info = |kind: u32, vlen: u32| (kind << 24) | vlen;
        // 1: int u64
        push(&[s("u64"), info(KIND_INT, 0), 8, 64]);
        // 2: ptr to 1
        push(&[0, info(KIND_PTR, 0), 1]);
        // 3: struct qstr
        push(&[s("qstr"), info(KIND_STRUCT, 2), 16]);
        push(&[s("hash_len"), 1, 0]);
        push(&[s("name"), 2, 64]);
        // 4: anonymous union of two qstr
        push(&[0, info(KIND_UNION, 2), 16]);
        push(&[s("__d_name"), 3, 0]);
        push(&[s("d_name"), 3, 0]);
        // 5: struct dentry
        push(&[s("dentry"), info(KIND_STRUCT, 2), 24]);
        push(&[s("flags"), 1, 0]);
        push(&[0, 4, 64]);
        let mut d = vec![0x9f, 0xeb, 1, 0];
        for v in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        d.extend_from_slice(&t);
        d.extend_from_slice(&strings);
        d
    }

    #[test]
    fn members_are_found_through_anonymous_unions() {
        let btf = KernelBtf::parse(&sample()).unwrap();
        assert_eq!(btf.offset_of("qstr", "name").unwrap(), 8);
        assert_eq!(btf.offset_of("dentry", "d_name").unwrap(), 8);
        assert_eq!(btf.offset_of("dentry", "d_name.name").unwrap(), 16);
        assert!(matches!(
            btf.offset_of("dentry", "d_inode"),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.offset_of("inode", "i_ino"),
            Err(BtfError::NoStruct(_))
        ));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(KernelBtf::parse(b"not btf at all, not at all....").is_err());
    }
}
