//! Reading through an [`ImageRoot`]: stat, links, files (bounded), directories.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, Stat};

use super::{is_missing, split_parent, ImageRoot, NodeKind};

/// Why a file of the image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("is a {0}, not a regular file")]
    NotRegular(NodeKind),
    #[error("is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Opens the entry `name` (one component, as a listing gives it) of the open directory `dir`
/// read-only without side effects, like [`ImageRoot::open_inspect`]. A symlink is not
/// followed: `ELOOP` (or `ENOTDIR`), and the caller resolves the path instead.
pub fn open_entry(dir: &OwnedFd, name: &std::ffi::OsStr, directory: bool) -> io::Result<OwnedFd> {
    if name.as_bytes().contains(&b'/') || name == ".." || name == "." {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let kind = if directory {
        OFlags::DIRECTORY
    } else {
        OFlags::NONBLOCK
    };
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | kind,
        Mode::empty(),
    )?)
}

/// One entry of a directory inside the image.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: OsString,
    /// The type of the entry itself (a symlink is reported as `Symlink`).
    pub kind: NodeKind,
}

impl ImageRoot {
    /// Opens `path` read-only without side effects (`O_NONBLOCK`, `O_NOCTTY`), following
    /// symlinks inside the image; with `directory`, only a directory.
    pub fn open_inspect(&self, path: &Path, directory: bool) -> io::Result<OwnedFd> {
        let kind = if directory {
            OFlags::DIRECTORY
        } else {
            OFlags::NONBLOCK
        };
        self.resolve(path, OFlags::RDONLY | kind)
    }

    /// Opens `path` as an `O_PATH` fd, following symlinks inside the image.
    pub fn open_path(&self, path: &Path) -> io::Result<OwnedFd> {
        self.resolve(path, OFlags::PATH)
    }

    /// `stat` of `path`, following symlinks inside the image. `None` when it does not exist
    /// (or a symlink on the way dangles).
    pub fn stat(&self, path: &Path) -> io::Result<Option<Stat>> {
        match self.resolve(path, OFlags::PATH) {
            Ok(fd) => Ok(Some(rustix::fs::fstat(&fd)?)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `lstat` of `path`: the parent is resolved inside the image, the last component is not
    /// followed.
    pub fn lstat(&self, path: &Path) -> io::Result<Option<Stat>> {
        let (parent, name) = split_parent(path)?;
        let dir = match self.resolve(parent, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(e) if is_missing(&e.into()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The target of the symlink `path` (the parent is resolved inside the image).
    pub fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        let (parent, name) = split_parent(path)?;
        let dir = self.resolve(parent, OFlags::PATH | OFlags::DIRECTORY)?;
        let target = rustix::fs::readlinkat(&dir, name, Vec::new())?;
        Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
    }

    /// Reads a whole regular file, following symlinks inside the image. `Ok(None)` when it does
    /// not exist. Anything but a regular file is refused before it is opened for reading, so a
    /// FIFO or a device node never blocks or wakes a driver.
    pub fn read_file(&self, path: &Path, limit: u64) -> Result<Option<Vec<u8>>, ReadError> {
        let fd = match self.open_regular(path) {
            Ok(fd) => fd,
            Err(ReadError::Io(e)) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = rustix::fs::fstat(&fd).map_err(io::Error::from)?.st_size as u64;
        if size > limit {
            return Err(ReadError::TooLarge { limit });
        }
        let mut buf = Vec::with_capacity(size as usize);
        let mut file = std::fs::File::from(fd);
        // Read one byte more than the limit, in case the file grows while we read it.
        file.by_ref().take(limit + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(ReadError::TooLarge { limit });
        }
        Ok(Some(buf))
    }

    /// Opens a regular file for reading (following symlinks inside the image).
    pub fn open_regular(&self, path: &Path) -> Result<OwnedFd, ReadError> {
        let pfd = self.resolve(path, OFlags::PATH)?;
        let st = rustix::fs::fstat(&pfd).map_err(io::Error::from)?;
        let kind = NodeKind::of(&st);
        if kind != NodeKind::File {
            return Err(ReadError::NotRegular(kind));
        }
        // Re-open the very inode we checked, for reading.
        let fd = rustix::fs::open(
            format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&pfd)),
            // No O_NONBLOCK: the inode was checked to be a regular file, and squashfs and
            // others answer EAGAIN to non-blocking reads under load.
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        let st2 = rustix::fs::fstat(&fd).map_err(io::Error::from)?;
        if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) {
            return Err(ReadError::Io(io::Error::from_raw_os_error(libc::ESTALE)));
        }
        Ok(fd)
    }

    /// Lists a directory of the image, sorted by name. `Ok(None)` when it does not exist or is
    /// not a directory.
    pub fn read_dir(&self, path: &Path) -> io::Result<Option<Vec<Entry>>> {
        Ok(self.read_dir_open(path)?.map(|(_, entries)| entries))
    }

    /// [`ImageRoot::read_dir`], also returning the open directory, so that its entries can be
    /// opened with [`open_entry`] without walking the path again.
    pub fn read_dir_open(&self, path: &Path) -> io::Result<Option<(OwnedFd, Vec<Entry>)>> {
        let fd = match self.resolve(path, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut dir = rustix::fs::Dir::read_from(&fd)?;
        while let Some(entry) = dir.read() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let mut kind = NodeKind::from_file_type(entry.file_type());
            if kind == NodeKind::Unknown {
                if let Ok(st) = rustix::fs::statat(
                    &fd,
                    entry.file_name(),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                ) {
                    kind = NodeKind::of(&st);
                }
            }
            out.push(Entry {
                name: OsString::from_vec(name.to_vec()),
                kind,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some((fd, out)))
    }
}
