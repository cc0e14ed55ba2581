//! The system calls portctl needs that `rustix` has no safe wrapper for, behind safe
//! functions that take plain data and know no type of the engine: inode, block-device and
//! btrfs ioctls here, loop devices in [`loopdev`], detached mounts in [`mount`], the
//! namespaces and credentials of `portctl run` in [`sandbox`]. Each resource lives in a guard
//! (the fd is the lifetime). This is the only crate of the workspace allowed `unsafe` code,
//! and every `unsafe` block says why it is sound (`clippy::undocumented_unsafe_blocks`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// `FS_IMMUTABLE_FL` of `FS_IOC_GETFLAGS` (chattr +i).
pub const FS_IMMUTABLE_FL: libc::c_long = 0x0000_0010;
/// `BTRFS_SUBVOL_RDONLY` in the flags of `BTRFS_IOC_SUBVOL_GETFLAGS`.
const BTRFS_SUBVOL_RDONLY: u64 = 1 << 1;
// _IOR(BTRFS_IOCTL_MAGIC = 0x94, 25, __u64)
const BTRFS_IOC_SUBVOL_GETFLAGS: libc::c_ulong = 0x8008_9419;
// _IOW(BTRFS_IOCTL_MAGIC, 26, __u64)
const BTRFS_IOC_SUBVOL_SETFLAGS: libc::c_ulong = 0x4008_941A;
// _IOR(BTRFS_IOCTL_MAGIC, 43, struct btrfs_ioctl_qgroup_limit_args) (48 bytes)
const BTRFS_IOC_QGROUP_LIMIT: libc::c_ulong = 0x8030_942B;
const BTRFS_QGROUP_LIMIT_MAX_RFER: u64 = 1 << 0;
// _IO(0x12, 93)
const BLKROSET: libc::c_ulong = 0x125d;
// _IO(0x12, 94)
const BLKROGET: libc::c_ulong = 0x125e;
// _IOR(0x12, 114, size_t)
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The inode flags (`FS_IOC_GETFLAGS`) of an open file or directory (not an `O_PATH` fd).
pub fn inode_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_long> {
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one `long` to the pointer, which points to a live local.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) })?;
    Ok(flags)
}

/// Whether a block device is read-only (`BLKROGET`).
pub fn block_read_only(fd: impl AsFd) -> io::Result<bool> {
    let mut ro: libc::c_int = 0;
    // SAFETY: BLKROGET writes one `int` to the pointer, which points to a live local.
    check(unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), BLKROGET as _, &mut ro) })?;
    Ok(ro != 0)
}

/// The size in bytes of a block device (`BLKGETSIZE64`).
pub fn block_size(fd: impl AsFd) -> io::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one `u64` to the pointer, which points to a live local.
    check(unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), BLKGETSIZE64 as _, &mut size) })?;
    Ok(size)
}

/// Whether a btrfs subvolume has its read-only flag set.
pub fn btrfs_subvol_read_only(fd: impl AsFd) -> io::Result<bool> {
    let mut flags: u64 = 0;
    // SAFETY: BTRFS_IOC_SUBVOL_GETFLAGS writes one `u64` to the pointer, a live local.
    check(unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            BTRFS_IOC_SUBVOL_GETFLAGS as _,
            &mut flags,
        )
    })?;
    Ok(flags & BTRFS_SUBVOL_RDONLY != 0)
}

pub mod loopdev;
pub mod mount;
pub mod sandbox;

/// Gives SIGPIPE its default action back (Rust's runtime ignores it), so that a command line
/// tool whose reader went away (`portctl list | head -1`) ends quietly as C tools do, instead
/// of failing on every write.
pub fn default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler; signal() only changes this process's disposition
    // of SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Sets the inode flags (`FS_IOC_SETFLAGS`) of an open file or directory.
pub fn set_inode_flags(fd: BorrowedFd<'_>, flags: libc::c_long) -> io::Result<()> {
    // SAFETY: FS_IOC_SETFLAGS reads one `long` from the pointer, a live local.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) })
}

/// Marks a block device read-only or read-write (`BLKROSET`).
pub fn block_set_read_only(fd: impl AsFd, ro: bool) -> io::Result<()> {
    let v: libc::c_int = ro.into();
    // SAFETY: BLKROSET reads one `int` from the pointer, a live local.
    check(unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), BLKROSET as _, &v) })
}

/// Sets or clears the read-only flag of a btrfs subvolume.
pub fn btrfs_subvol_set_read_only(fd: impl AsFd, ro: bool) -> io::Result<()> {
    let mut flags: u64 = 0;
    // SAFETY: BTRFS_IOC_SUBVOL_GETFLAGS writes one `u64` to the pointer, a live local.
    check(unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            BTRFS_IOC_SUBVOL_GETFLAGS as _,
            &mut flags,
        )
    })?;
    if ro {
        flags |= BTRFS_SUBVOL_RDONLY;
    } else {
        flags &= !BTRFS_SUBVOL_RDONLY;
    }
    // SAFETY: BTRFS_IOC_SUBVOL_SETFLAGS reads one `u64` from the pointer, a live local.
    check(unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            BTRFS_IOC_SUBVOL_SETFLAGS as _,
            &flags,
        )
    })
}

// _IOWR(BTRFS_IOCTL_MAGIC, 18, struct btrfs_ioctl_ino_lookup_args) (4096 bytes)
const BTRFS_IOC_INO_LOOKUP: libc::c_ulong = 0xD000_9412;
// _IOWR(BTRFS_IOCTL_MAGIC, 17, struct btrfs_ioctl_search_args) (4096 bytes)
const BTRFS_IOC_TREE_SEARCH: libc::c_ulong = 0xD000_9411;
const BTRFS_QUOTA_TREE_OBJECTID: u64 = 8;
const BTRFS_QGROUP_INFO_KEY: u32 = 242;
const BTRFS_QGROUP_LIMIT_KEY: u32 = 244;
const BTRFS_QGROUP_LIMIT_MAX_EXCL: u64 = 1 << 1;

/// The id of the btrfs subvolume that `fd` is in.
pub fn btrfs_subvol_id(fd: impl AsFd) -> io::Result<u64> {
    // struct btrfs_ioctl_ino_lookup_args { u64 treeid; u64 objectid; char name[4080]; }:
    // treeid 0 and objectid BTRFS_FIRST_FREE_OBJECTID (256) ask for the subvolume of `fd`.
    let mut args = [0u64; 512];
    args[1] = 256;
    // SAFETY: the ioctl reads and writes 4096 bytes at the pointer, a live [u64; 512].
    check(unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            BTRFS_IOC_INO_LOOKUP as _,
            args.as_mut_ptr(),
        )
    })?;
    Ok(args[0])
}

/// What btrfs accounts to one qgroup: referenced and exclusive bytes and their limits
/// (`u64::MAX` when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qgroup {
    pub referenced: u64,
    pub exclusive: u64,
    pub max_referenced: u64,
    pub max_exclusive: u64,
}

/// The figures of qgroup `qgroupid` of the btrfs file system `fd` is on, from its quota tree
/// (`BTRFS_IOC_TREE_SEARCH`); `None` when quotas are off or the qgroup does not exist.
pub fn btrfs_qgroup(fd: impl AsFd, qgroupid: u64) -> io::Result<Option<Qgroup>> {
    // struct btrfs_ioctl_search_args { struct btrfs_ioctl_search_key key (104 bytes);
    // char buf[3992]; }, the key: tree_id, min_objectid, max_objectid, min_offset, max_offset,
    // min_transid, max_transid (u64), min_type, max_type, nr_items, unused (u32), 4 × u64.
    let mut args = [0u64; 512];
    args[0] = BTRFS_QUOTA_TREE_OBJECTID;
    args[3] = qgroupid;
    args[4] = qgroupid;
    args[6] = u64::MAX;
    args[7] = u64::from(BTRFS_QGROUP_INFO_KEY) | (u64::from(BTRFS_QGROUP_LIMIT_KEY) << 32);
    args[8] = 16; // nr_items (and unused = 0)
                  // SAFETY: the ioctl reads and writes 4096 bytes at the pointer, a live [u64; 512].
    let r = check(unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            BTRFS_IOC_TREE_SEARCH as _,
            args.as_mut_ptr(),
        )
    });
    match r {
        // No quota tree: quotas are off.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    let items = (args[8] & 0xFFFF_FFFF) as usize;
    let bytes: Vec<u8> = args[13..].iter().flat_map(|w| w.to_ne_bytes()).collect();
    let le =
        |b: &[u8], i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let ne64 = |b: &[u8], o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let ne32 = |b: &[u8], o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let (mut info, mut limit) = (None, None);
    let mut off = 0usize;
    for _ in 0..items {
        // struct btrfs_ioctl_search_header { u64 transid, objectid, offset; u32 type, len; }
        if off + 32 > bytes.len() {
            break;
        }
        let (offset, kind, len) = (
            ne64(&bytes, off + 16),
            ne32(&bytes, off + 24),
            ne32(&bytes, off + 28) as usize,
        );
        let item = bytes.get(off + 32..off + 32 + len).unwrap_or_default();
        off += 32 + len;
        if offset != qgroupid || item.len() < 40 {
            continue;
        }
        match kind {
            // btrfs_qgroup_info_item { generation, rfer, rfer_cmpr, excl, excl_cmpr } (LE)
            BTRFS_QGROUP_INFO_KEY => info = Some((le(item, 1), le(item, 3))),
            // btrfs_qgroup_limit_item { flags, max_rfer, max_excl, rsv_rfer, rsv_excl } (LE)
            BTRFS_QGROUP_LIMIT_KEY => limit = Some((le(item, 0), le(item, 1), le(item, 2))),
            _ => {}
        }
    }
    Ok(info.map(|(referenced, exclusive)| {
        let (flags, max_rfer, max_excl) = limit.unwrap_or((0, 0, 0));
        Qgroup {
            referenced,
            exclusive,
            max_referenced: if flags & BTRFS_QGROUP_LIMIT_MAX_RFER != 0 {
                max_rfer
            } else {
                u64::MAX
            },
            max_exclusive: if flags & BTRFS_QGROUP_LIMIT_MAX_EXCL != 0 {
                max_excl
            } else {
                u64::MAX
            },
        }
    }))
}

/// Sets the "referenced" limit of the qgroup of the btrfs subvolume `fd` is in.
pub fn btrfs_set_qgroup_limit(fd: impl AsFd, bytes: u64) -> io::Result<()> {
    // struct btrfs_ioctl_qgroup_limit_args { u64 qgroupid; struct btrfs_qgroup_limit { u64 flags,
    // max_rfer, max_excl, rsv_rfer, rsv_excl } }; qgroupid 0 means the subvolume of `fd`.
    let args: [u64; 6] = [0, BTRFS_QGROUP_LIMIT_MAX_RFER, bytes, 0, 0, 0];
    // SAFETY: the ioctl reads 48 bytes from the pointer, which is a live [u64; 6].
    check(unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            BTRFS_IOC_QGROUP_LIMIT as _,
            args.as_ptr(),
        )
    })
}
