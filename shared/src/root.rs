//! A handle on an image's root directory, through which every file of the image is read.
//!
//! All paths are resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to
//! the root's file descriptor, so that symbolic links inside the image (absolute or relative,
//! `../../..` included) can never lead out of it: a unit that is a symlink to `/etc/shadow`
//! reads the image's `/etc/shadow`, never the host's. The same handle serves directory images
//! and mounted raw images alike.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};

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

fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
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

    fn resolve(&self, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
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

    /// Creates directory `path` and its missing parents (mode `mode`, exactly, umask aside),
    /// resolving everything inside the image. Returns the directories it created.
    pub fn mkdir_p(&self, path: &Path, mode: u32) -> io::Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        let mut cur = PathBuf::from("/");
        for comp in path.components() {
            let Component::Normal(name) = comp else {
                continue;
            };
            let dir = self.resolve(&cur, OFlags::PATH | OFlags::DIRECTORY)?;
            cur.push(name);
            match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(mode)) {
                Ok(()) => {
                    let fd = self.resolve(&cur, OFlags::RDONLY | OFlags::DIRECTORY)?;
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
                    created.push(cur.clone());
                }
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(created)
    }

    /// Creates an empty file at `path` (its parent must exist); never follows a symlink at the
    /// last component and never replaces an existing file.
    pub fn create_empty_file(&self, path: &Path, mode: u32) -> io::Result<()> {
        let (parent, name) = split_parent(path)?;
        let dir = self.resolve(parent, OFlags::PATH | OFlags::DIRECTORY)?;
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        Ok(())
    }
}

/// What a staged node will become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A regular file with these bytes and this mode.
    File { data: Vec<u8>, mode: u32 },
    /// A symbolic link to this target.
    Symlink(PathBuf),
    /// A copy of another file or directory tree of the same file system view (the image copy
    /// of `--copy=mixed`): modes, owners, symlinks and timestamps are kept.
    CopyOf(PathBuf),
}

impl ImageRoot {
    fn parent_dir(&self, path: &Path) -> io::Result<(OwnedFd, std::ffi::OsString)> {
        let (parent, name) = split_parent(path)?;
        let dir = self.resolve(parent, OFlags::RDONLY | OFlags::DIRECTORY)?;
        Ok((dir, name.to_os_string()))
    }

    /// Creates directory `path` (its parent must exist). `Ok(false)` when it existed already.
    pub fn mkdir(&self, path: &Path, mode: u32) -> io::Result<bool> {
        let (dir, name) = self.parent_dir(path)?;
        match rustix::fs::mkdirat(&dir, &name, Mode::from_raw_mode(mode)) {
            Ok(()) => {
                let fd = rustix::fs::openat(
                    &dir,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
                Ok(true)
            }
            Err(rustix::io::Errno::EXIST) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `content` under the temporary name `temp` next to `path` (same directory), fully
    /// and synced, so that [`ImageRoot::commit`] can put it in place with one `rename()`.
    pub fn stage(&self, path: &Path, temp: &str, content: &Content) -> io::Result<()> {
        self.stage_with(path, temp, content, true)
    }

    /// [`ImageRoot::stage`], leaving a regular file's data to [`ImageRoot::sync_file`]: a
    /// transaction writes all its files first and syncs them then, so that one journal commit
    /// of the file system serves them all.
    pub fn stage_unsynced(&self, path: &Path, temp: &str, content: &Content) -> io::Result<()> {
        self.stage_with(path, temp, content, false)
    }

    /// `fsync()` of the regular file `path`.
    pub fn sync_file(&self, path: &Path) -> io::Result<()> {
        let fd = self.open_regular(path).map_err(|e| match e {
            ReadError::Io(e) => e,
            e => io::Error::other(e.to_string()),
        })?;
        rustix::fs::fsync(&fd)?;
        Ok(())
    }

    fn stage_with(&self, path: &Path, temp: &str, content: &Content, sync: bool) -> io::Result<()> {
        let (dir, _) = self.parent_dir(path)?;
        let _ = rustix::fs::unlinkat(&dir, temp, rustix::fs::AtFlags::empty());
        match content {
            Content::File { data, mode } => {
                let fd = rustix::fs::openat(
                    &dir,
                    temp,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(*mode),
                )?;
                let mut file = std::fs::File::from(fd);
                let written = (|| {
                    io::Write::write_all(&mut file, data)?;
                    rustix::fs::fchmod(&file, Mode::from_raw_mode(*mode))?;
                    if sync {
                        file.sync_all()?;
                    }
                    Ok(())
                })();
                if let Err(e) = written {
                    let _ = rustix::fs::unlinkat(&dir, temp, rustix::fs::AtFlags::empty());
                    return Err(e);
                }
            }
            Content::Symlink(target) => rustix::fs::symlinkat(target.as_path(), &dir, temp)?,
            Content::CopyOf(source) => {
                let (sdir, sname) = self.parent_dir(source)?;
                let copied = copy_node(&sdir, &sname, &dir, std::ffi::OsStr::new(temp));
                if let Err(e) = copied {
                    let _ = self.remove_any(&parent_or_root(path).join(temp));
                    return Err(e);
                }
                rustix::fs::fsync(&dir)?;
            }
        }
        Ok(())
    }

    /// Removes a file, symlink or directory tree (see [`ImageRoot::remove_tree`]); `Ok(false)`
    /// when nothing is there.
    pub fn remove_any(&self, path: &Path) -> io::Result<bool> {
        match self.lstat(path)? {
            None => Ok(false),
            Some(_) => self.remove_tree(path).map(|()| true),
        }
    }

    /// Puts `path` aside as `name` in directory `into` (same file system): a hard link for
    /// files and symlinks (the original stays in place), a rename for directories (which
    /// cannot be linked). `Ok(false)` when `path` does not exist.
    pub fn keep_aside(&self, path: &Path, into: &Path, name: &str) -> io::Result<bool> {
        match self.lstat(path)? {
            None => Ok(false),
            Some(st) if NodeKind::of(&st) == NodeKind::Directory => {
                let (dir, base) = self.parent_dir(path)?;
                let to = self.resolve(into, OFlags::RDONLY | OFlags::DIRECTORY)?;
                rustix::fs::renameat(&dir, &base, &to, name)?;
                Ok(true)
            }
            Some(_) => self.link_aside(path, into, name),
        }
    }

    /// Renames the staged `temp` (next to `path`) over `path`, atomically.
    pub fn commit(&self, path: &Path, temp: &str) -> io::Result<()> {
        let (dir, name) = self.parent_dir(path)?;
        rustix::fs::renameat(&dir, temp, &dir, &name)?;
        Ok(())
    }

    /// Writes a file or symlink atomically (stage next to it, then rename).
    pub fn write_atomic(&self, path: &Path, content: &Content) -> io::Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = format!(".#{name}.{}.tmp", std::process::id());
        self.stage(path, &temp, content)?;
        self.commit(path, &temp).inspect_err(|_| {
            let _ = self.unlink_name(path, &temp);
        })
    }

    /// Removes `temp` from the directory of `path`, if it is there.
    pub fn unlink_name(&self, path: &Path, temp: &str) -> io::Result<bool> {
        let (dir, _) = match self.parent_dir(path) {
            Ok(d) => d,
            // Nothing can be removed from a directory that is gone.
            Err(e) if is_missing(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        match rustix::fs::unlinkat(&dir, temp, rustix::fs::AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Hard-links `path` (the node itself: a symlink stays a symlink) to `temp` in directory
    /// `into` (same file system). `Ok(false)` when `path` does not exist.
    pub fn link_aside(&self, path: &Path, into: &Path, temp: &str) -> io::Result<bool> {
        let (dir, name) = self.parent_dir(path)?;
        let to = self.resolve(into, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let _ = rustix::fs::unlinkat(&to, temp, rustix::fs::AtFlags::empty());
        match rustix::fs::linkat(&dir, &name, &to, temp, rustix::fs::AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Renames `temp` in directory `from` over `path`.
    pub fn rename_from(&self, from: &Path, temp: &str, path: &Path) -> io::Result<()> {
        let (dir, name) = self.parent_dir(path)?;
        let src = self.resolve(from, OFlags::RDONLY | OFlags::DIRECTORY)?;
        rustix::fs::renameat(&src, temp, &dir, &name)?;
        Ok(())
    }

    /// Removes the file or symlink `path`; `Ok(false)` when it did not exist.
    pub fn unlink(&self, path: &Path) -> io::Result<bool> {
        let (dir, name) = match self.parent_dir(path) {
            Ok(d) => d,
            // Nothing can be removed from a directory that is gone.
            Err(e) if is_missing(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        match rustix::fs::unlinkat(&dir, &name, rustix::fs::AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the empty directory `path`; `Ok(false)` when it did not exist.
    pub fn rmdir(&self, path: &Path) -> io::Result<bool> {
        let (dir, name) = match self.parent_dir(path) {
            Ok(d) => d,
            // Nothing can be removed from a directory that is gone.
            Err(e) if is_missing(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        match rustix::fs::unlinkat(&dir, &name, rustix::fs::AtFlags::REMOVEDIR) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes `path` and, for a directory, everything below it, without following symlinks
    /// and without crossing into another file system (a mount point below is an `EBUSY`
    /// error, and nothing of it is touched). A symlink at `path` itself is removed, not its
    /// target.
    pub fn remove_tree(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = self.parent_dir(path)?;
        let st = rustix::fs::statat(&dir, &name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
        if NodeKind::of(&st) != NodeKind::Directory {
            rustix::fs::unlinkat(&dir, &name, rustix::fs::AtFlags::empty())?;
            return Ok(());
        }
        let sub = rustix::fs::openat(
            &dir,
            &name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        remove_contents(&sub, st.st_dev)?;
        rustix::fs::unlinkat(&dir, &name, rustix::fs::AtFlags::REMOVEDIR)?;
        Ok(())
    }

    /// Flushes a directory's entries to disk (`fsync()` of the directory).
    pub fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let fd = self.resolve(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        rustix::fs::fsync(&fd)?;
        Ok(())
    }
}

fn parent_or_root(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("/"))
}

/// Copies the node `sname` of directory `sdir` to `dname` in `ddir`, recursively, without
/// following symlinks; regular files, directories, symlinks, FIFOs and device nodes, with
/// their modes, owners and modification times.
fn copy_node(
    sdir: &OwnedFd,
    sname: &std::ffi::OsStr,
    ddir: &OwnedFd,
    dname: &std::ffi::OsStr,
) -> io::Result<()> {
    use rustix::fs::{AtFlags, Timestamps};
    let st = rustix::fs::statat(sdir, sname, AtFlags::SYMLINK_NOFOLLOW)?;
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    match NodeKind::of(&st) {
        NodeKind::Directory => {
            rustix::fs::mkdirat(ddir, dname, Mode::from_raw_mode(0o700))?;
            let src = rustix::fs::openat(
                sdir,
                sname,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let dst = rustix::fs::openat(
                ddir,
                dname,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            for entry in rustix::fs::Dir::read_from(&src)? {
                let entry = entry?;
                let n = entry.file_name().to_bytes();
                if n == b"." || n == b".." {
                    continue;
                }
                let n = std::ffi::OsStr::from_bytes(n).to_os_string();
                copy_node(&src, &n, &dst, &n)?;
            }
            rustix::fs::fchown(
                &dst,
                Some(rustix::fs::Uid::from_raw(st.st_uid)),
                Some(rustix::fs::Gid::from_raw(st.st_gid)),
            )?;
            rustix::fs::fchmod(&dst, mode)?;
            // Its entries are durable before the copy is named in a commit mark.
            rustix::fs::fsync(&dst)?;
        }
        NodeKind::File => {
            let src = rustix::fs::openat(
                sdir,
                sname,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let dst = rustix::fs::openat(
                ddir,
                dname,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let (from, to) = (std::fs::File::from(src), std::fs::File::from(dst));
            copy_sparse(&from, &to, st.st_size as u64)?;
            rustix::fs::fchown(
                &to,
                Some(rustix::fs::Uid::from_raw(st.st_uid)),
                Some(rustix::fs::Gid::from_raw(st.st_gid)),
            )?;
            rustix::fs::fchmod(&to, mode)?;
            to.sync_all()?;
        }
        NodeKind::Symlink => {
            let target = rustix::fs::readlinkat(sdir, sname, Vec::new())?;
            rustix::fs::symlinkat(target.as_c_str(), ddir, dname)?;
        }
        NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice | NodeKind::Socket => {
            let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
            rustix::fs::mknodat(ddir, dname, kind, mode, st.st_rdev)?;
        }
        NodeKind::Unknown => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
    if NodeKind::of(&st) != NodeKind::Symlink {
        let _ = rustix::fs::chownat(
            ddir,
            dname,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        );
        let times = Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: st.st_atime,
                tv_nsec: st.st_atime_nsec as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: st.st_mtime,
                tv_nsec: st.st_mtime_nsec as _,
            },
        };
        let _ = rustix::fs::utimensat(ddir, dname, &times, AtFlags::SYMLINK_NOFOLLOW);
    }
    Ok(())
}

/// Copies the `size` bytes of `from` to `to`, keeping holes: only the data ranges are copied
/// (with `copy_file_range()`, which may share blocks), and `to` is extended to `size`.
fn copy_sparse(from: &std::fs::File, to: &std::fs::File, size: u64) -> io::Result<()> {
    use rustix::fs::SeekFrom;
    use std::os::unix::fs::FileExt;
    let mut off = 0u64;
    while off < size {
        let data = match rustix::fs::seek(from, SeekFrom::Data(off)) {
            Ok(d) => d,
            // No data after `off`: the rest is a hole.
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let end = rustix::fs::seek(from, SeekFrom::Hole(data))?.min(size);
        let (mut src, mut dst) = (data, data);
        while src < end {
            let len = usize::try_from(end - src)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            match rustix::fs::copy_file_range(from, Some(&mut src), to, Some(&mut dst), len) {
                Ok(0) => break,
                Ok(_) => {}
                // Across file systems (or where the kernel cannot): read and write.
                Err(
                    rustix::io::Errno::XDEV
                    | rustix::io::Errno::INVAL
                    | rustix::io::Errno::NOSYS
                    | rustix::io::Errno::OPNOTSUPP,
                ) => {
                    let mut buf = vec![0u8; 1 << 20];
                    while src < end {
                        let n = buf
                            .len()
                            .min(usize::try_from(end - src).unwrap_or(usize::MAX));
                        from.read_exact_at(&mut buf[..n], src)?;
                        to.write_all_at(&buf[..n], dst)?;
                        src += n as u64;
                        dst += n as u64;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        off = end;
    }
    to.set_len(size)
}

fn remove_contents(dir: &OwnedFd, dev: u64) -> io::Result<()> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            names.push(name);
        }
    }
    for name in names {
        let st = rustix::fs::statat(dir, &name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
        if NodeKind::of(&st) == NodeKind::Directory {
            if st.st_dev != dev {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "{} is a mount point, not removing it",
                        name.to_string_lossy()
                    ),
                ));
            }
            let sub = rustix::fs::openat(
                dir,
                &name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            remove_contents(&sub, dev)?;
            rustix::fs::unlinkat(dir, &name, rustix::fs::AtFlags::REMOVEDIR)?;
        } else {
            rustix::fs::unlinkat(dir, &name, rustix::fs::AtFlags::empty())?;
        }
    }
    Ok(())
}

/// Splits an image path into its parent and its last component, refusing `..` and empty names.
fn split_parent(path: &Path) -> io::Result<(&Path, &std::ffi::OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{}' names no file", path.display()),
        )),
    }
}
