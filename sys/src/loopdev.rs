//! Loop devices through `LOOP_CTL_GET_FREE` + one atomic `LOOP_CONFIGURE` (with a fallback
//! to `LOOP_SET_FD` + `LOOP_SET_STATUS64` on kernels older than 5.8), always with
//! `LO_FLAGS_AUTOCLEAR`: the device lives as long as its fd (and any mount of it).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use linux_raw_sys::loop_device as ld;
use rustix::fs::{Mode, OFlags};

/// How to set a loop device up.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopOptions {
    /// Byte offset into the backing file.
    pub offset: u64,
    /// Bytes to expose from `offset` (0: up to the end).
    pub size_limit: u64,
    /// Read-write instead of read-only.
    pub writable: bool,
    /// Logical block size (512 or 4096; 0 for the kernel's default).
    pub block_size: u32,
}

/// An attached loop device. Dropping it closes the fd, and the kernel detaches the device
/// once nothing (no mount) uses it any more.
#[derive(Debug)]
pub struct LoopDevice {
    fd: OwnedFd,
    number: u32,
}

fn ioctl_int(fd: BorrowedFd<'_>, req: u32, arg: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: the requests used with this helper take an integer argument, not a pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn ioctl_ptr<T>(fd: BorrowedFd<'_>, req: u32, arg: &T) -> io::Result<()> {
    // SAFETY: `arg` points to a live, initialised value of the type the request reads.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *const T) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn info(opts: &LoopOptions, direct_io: bool) -> ld::loop_info64 {
    // SAFETY: loop_info64 is plain old data; all zeroes is a valid value.
    let mut info: ld::loop_info64 = unsafe { std::mem::zeroed() };
    info.lo_offset = opts.offset;
    info.lo_sizelimit = opts.size_limit;
    info.lo_flags = ld::LO_FLAGS_AUTOCLEAR as u32;
    if !opts.writable {
        info.lo_flags |= ld::LO_FLAGS_READ_ONLY as u32;
    }
    if direct_io {
        info.lo_flags |= ld::LO_FLAGS_DIRECT_IO as u32;
    }
    info
}

/// How often to ask for another free device when others keep taking ours.
const ATTEMPTS: usize = 64;

impl LoopDevice {
    /// Attaches `backing` (a regular file or block device opened read-only, or read-write when
    /// `opts.writable`) to a free loop device. Direct I/O is used where the backing file allows.
    pub fn attach(backing: BorrowedFd<'_>, opts: LoopOptions) -> io::Result<Self> {
        let ctl = rustix::fs::open(
            "/dev/loop-control",
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut last_err = io::Error::from_raw_os_error(libc::EBUSY);
        for _ in 0..ATTEMPTS {
            let number = ioctl_int(ctl.as_fd(), ld::LOOP_CTL_GET_FREE, 0)? as u32;
            // The node may be missing or vanish: another program may remove the device.
            let fd = match rustix::fs::open(
                format!("/dev/loop{number}"),
                OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(e) => {
                    last_err = e.into();
                    std::thread::yield_now();
                    continue;
                }
            };
            match configure(fd.as_fd(), backing, &opts) {
                Ok(()) => return Ok(Self { fd, number }),
                // Somebody else configured it between GET_FREE and our call: take another.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last_err = e,
                Err(e) => return Err(e),
            }
        }
        Err(last_err)
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/loop{}", self.number))
    }

    /// A path through which the kernel reaches this very device, whatever happens to the
    /// /dev node: `/proc/self/fd/N`.
    pub fn fd_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }
}

impl AsFd for LoopDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn configure(dev: BorrowedFd<'_>, backing: BorrowedFd<'_>, opts: &LoopOptions) -> io::Result<()> {
    let mut direct_io = true;
    loop {
        let cfg = ld::loop_config {
            fd: backing.as_raw_fd() as u32,
            block_size: opts.block_size,
            info: info(opts, direct_io),
            __reserved: [0; 8],
        };
        match ioctl_ptr(dev, ld::LOOP_CONFIGURE, &cfg) {
            Ok(()) => return Ok(()),
            // The backing file does not do O_DIRECT (or not with this block size).
            Err(e) if direct_io && e.raw_os_error() == Some(libc::EINVAL) => direct_io = false,
            // No LOOP_CONFIGURE before Linux 5.8.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTTY) | Some(libc::EINVAL)) => {
                return configure_two_step(dev, backing, opts)
            }
            Err(e) => return Err(e),
        }
    }
}

fn configure_two_step(
    dev: BorrowedFd<'_>,
    backing: BorrowedFd<'_>,
    opts: &LoopOptions,
) -> io::Result<()> {
    ioctl_int(dev, ld::LOOP_SET_FD, backing.as_raw_fd() as libc::c_ulong)?;
    let status = ioctl_ptr(dev, ld::LOOP_SET_STATUS64, &info(opts, false));
    if let Err(e) = status {
        let _ = ioctl_int(dev, ld::LOOP_CLR_FD, 0);
        return Err(e);
    }
    if opts.block_size != 0 {
        if let Err(e) = ioctl_int(dev, ld::LOOP_SET_BLOCK_SIZE, opts.block_size.into()) {
            let _ = ioctl_int(dev, ld::LOOP_CLR_FD, 0);
            return Err(e);
        }
    }
    Ok(())
}
