//! Raw and privileged system calls the engine needs, with safe wrappers and guards: inode and
//! block-device ioctls here, loop devices in [`loopdev`], detached mounts in [`mount`].
//!
//! This is the only module of the engine that contains `unsafe` code: ioctls on files and block
//! devices. Everything else goes through `rustix`'s safe API.
#![allow(unsafe_code)]

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
