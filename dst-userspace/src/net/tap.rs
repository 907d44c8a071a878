//! TAP devices for the delay line: created through `/dev/net/tun` in the calling thread's
//! network namespace, non-persistent, so the kernel removes them when the last fd closes.

use std::{
    fs::{File, OpenOptions},
    io,
    os::{fd::AsRawFd as _, unix::fs::OpenOptionsExt as _},
};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open TAP device (frames without packet-information header).
#[derive(Debug)]
pub struct Tap {
    /// The queue fd: read frames the kernel sent to the TAP, write frames it should receive.
    pub file: File,
    /// Interface name.
    pub name: String,
    /// Interface index in its namespace.
    pub ifindex: u32,
}

impl Tap {
    /// Creates TAP `name` (at most 15 bytes) in the calling thread's network namespace, with a
    /// non-blocking fd.
    pub fn create(name: &str) -> io::Result<Self> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TAP name {name:?} must have 1 to 15 bytes"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes an ifreq-sized struct we own.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let ifindex = nix::net::if_::if_nametoindex(name).map_err(io::Error::from)?;
        Ok(Self {
            file,
            name: name.to_string(),
            ifindex,
        })
    }
}
