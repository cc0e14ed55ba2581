//! Detached mounts with the new mount API (`fsopen`/`fsconfig`/`fsmount`): the mount is in no
//! mount table and lives exactly as long as its fd, so nothing leaks if the process dies.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags,
};

/// A failed mount, with what the file system driver said about it.
#[derive(Debug, thiserror::Error)]
#[error("cannot mount {fstype} from {source_desc}: {error}{}", if log.is_empty() { String::new() } else { format!(" ({})", log.join("; ")) })]
pub struct MountError {
    pub fstype: String,
    pub source_desc: String,
    pub error: io::Error,
    /// The messages of the file system context (`e ext4: ...`).
    pub log: Vec<String>,
}

fn context_log(fs: &OwnedFd) -> Vec<String> {
    let mut out = Vec::new();
    let mut file = match fs.try_clone() {
        Ok(fd) => std::fs::File::from(fd),
        Err(_) => return out,
    };
    let mut buf = [0u8; 1024];
    while out.len() < 16 {
        match file.read(&mut buf) {
            Ok(n) if n > 0 => out.push(String::from_utf8_lossy(&buf[..n]).trim().to_string()),
            _ => break,
        }
    }
    out
}

/// Mounts `source` (a device path, `/proc/self/fd/N`, or a file for file-backed erofs) as
/// `fstype`, detached: read-only unless `writable`, always `nosuid`, `nodev`, `noexec`, with
/// `options` (a flag, or a key and its value). `desc` names the source in errors.
pub fn mount_detached(
    fstype: &str,
    source: &str,
    desc: &str,
    writable: bool,
    options: &[(&str, Option<&str>)],
) -> Result<OwnedFd, MountError> {
    let fail = |error: io::Error, log: Vec<String>| MountError {
        fstype: fstype.to_string(),
        source_desc: desc.to_string(),
        error,
        log,
    };
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| fail(e.into(), Vec::new()))?;
    let configure = || -> rustix::io::Result<OwnedFd> {
        fsconfig_set_string(&fs, "source", source)?;
        if !writable {
            fsconfig_set_flag(&fs, "ro")?;
        }
        for &(key, value) in options {
            match value {
                Some(v) => fsconfig_set_string(&fs, key, v)?,
                None => fsconfig_set_flag(&fs, key)?,
            }
        }
        fsconfig_create(&fs)?;
        let mut attrs = MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC;
        if !writable {
            attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
        }
        fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
    };
    configure().map_err(|e| fail(e.into(), context_log(&fs)))
}

/// An empty, read-only-after-setup tmpfs, detached: the root of images that have only a /usr
/// partition.
pub fn tmpfs_detached() -> io::Result<OwnedFd> {
    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(&fs, "mode", "0755")?;
    fsconfig_set_string(&fs, "size", "1m")?;
    fsconfig_create(&fs)?;
    Ok(fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?)
}

/// Mounts the detached mount `mnt` on directory `dir` (relative) of the detached tree `tree`.
pub fn mount_beneath(tree: BorrowedFd<'_>, dir: &str, mnt: &OwnedFd) -> io::Result<()> {
    Ok(move_mount(
        mnt.as_fd(),
        "",
        tree,
        dir,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?)
}
