//! Changing a tree through an [`ImageRoot`]: directories, staged files renamed into place,
//! links aside for backups, removals, and the fsync()s that make them durable.

use std::io;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use super::tree::copy_node;
use super::{is_missing, parent_or_root, split_parent, ImageRoot, NodeKind, ReadError};

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

    /// Flushes a directory's entries to disk (`fsync()` of the directory).
    pub fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let fd = self.resolve(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        rustix::fs::fsync(&fd)?;
        Ok(())
    }
}
