//! A handle on an image's root directory, through which every file of the image is read.
//!
//! All paths are resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to
//! the root's file descriptor, so that symbolic links inside the image (absolute or relative,
//! `../../..` included) can never lead out of it: a unit that is a symlink to `/etc/shadow`
//! reads the image's `/etc/shadow`, never the host's. The same handle serves directory images
//! and mounted raw images alike.

mod read;
mod tree;
mod write;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};

pub use read::{open_entry, Entry, ReadError};
pub use write::Content;

/// What a path inside an image turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    File,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl NodeKind {
    pub fn from_file_type(t: FileType) -> Self {
        match t {
            FileType::RegularFile => Self::File,
            FileType::Directory => Self::Directory,
            FileType::Symlink => Self::Symlink,
            FileType::Fifo => Self::Fifo,
            FileType::Socket => Self::Socket,
            FileType::CharacterDevice => Self::CharDevice,
            FileType::BlockDevice => Self::BlockDevice,
            _ => Self::Unknown,
        }
    }

    pub fn of(st: &Stat) -> Self {
        Self::from_file_type(FileType::from_raw_mode(st.st_mode))
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::File => "regular file",
            Self::Directory => "directory",
            Self::Symlink => "symbolic link",
            Self::Fifo => "FIFO",
            Self::Socket => "socket",
            Self::CharDevice => "character device",
            Self::BlockDevice => "block device",
            Self::Unknown => "file of unknown type",
        })
    }
}

/// An open image root. Keeps whatever holds the tree alive (a mount, a loop device) for as long
/// as the handle lives.
pub struct ImageRoot {
    fd: OwnedFd,
    _keep: Option<Box<dyn Send + Sync>>,
}

impl fmt::Debug for ImageRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageRoot").field("fd", &self.fd).finish()
    }
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
/// How often an openat2() that raced with a mount or rename is retried.
const OPENAT2_RETRIES: usize = 64;

pub(super) fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

pub(super) fn parent_or_root(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("/"))
}

/// Splits an image path into its parent and its last component, refusing `..` and empty names.
pub(super) fn split_parent(path: &Path) -> io::Result<(&Path, &std::ffi::OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{}' names no file", path.display()),
        )),
    }
}

impl ImageRoot {
    /// Opens the directory at `path` (a real path on this machine) as an image root.
    pub fn open_dir(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self { fd, _keep: None })
    }

    /// Wraps an already open directory fd (e.g. a detached mount), keeping `keep` alive with it.
    pub fn from_fd(fd: OwnedFd, keep: Option<Box<dyn Send + Sync>>) -> Self {
        Self { fd, _keep: keep }
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(super) fn resolve(&self, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        // openat2() refuses O_PATH with anything but O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC.
        let extra = if flags.contains(OFlags::PATH) {
            OFlags::CLOEXEC
        } else {
            OFlags::CLOEXEC | OFlags::NOCTTY
        };
        // With RESOLVE_IN_ROOT the kernel answers EAGAIN when any mount or rename happened
        // while it resolved a "..": it cannot prove the walk stayed inside. Retry, as
        // openat2(2) says; other threads mounting images make that common.
        let mut attempts = 0;
        loop {
            match rustix::fs::openat2(&self.fd, path, flags | extra, Mode::empty(), RESOLVE) {
                Err(rustix::io::Errno::AGAIN) if attempts < OPENAT2_RETRIES => attempts += 1,
                r => return Ok(r?),
            }
        }
    }

    pub(super) fn parent_dir(&self, path: &Path) -> io::Result<(OwnedFd, std::ffi::OsString)> {
        let (parent, name) = split_parent(path)?;
        let dir = self.resolve(parent, OFlags::RDONLY | OFlags::DIRECTORY)?;
        Ok((dir, name.to_os_string()))
    }
}
