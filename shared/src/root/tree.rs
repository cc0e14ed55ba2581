//! Whole trees through an [`ImageRoot`]: removal that never crosses a mount point, and
//! copies that keep modes, owners, times and holes.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::{ImageRoot, NodeKind};

/// Copies the node `sname` of directory `sdir` to `dname` in `ddir`, recursively, without
/// following symlinks; regular files, directories, symlinks, FIFOs and device nodes, with
/// their modes, owners and modification times.
pub(super) fn copy_node(
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

impl ImageRoot {
    /// Removes a file, symlink or directory tree (see [`ImageRoot::remove_tree`]); `Ok(false)`
    /// when nothing is there.
    pub fn remove_any(&self, path: &Path) -> io::Result<bool> {
        match self.lstat(path)? {
            None => Ok(false),
            Some(_) => self.remove_tree(path).map(|()| true),
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
}
