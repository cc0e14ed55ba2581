//! Remove, read-only and limits (sections 7.5 to 7.7).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, IoContext, Result};
use crate::host::POOL_PATH;
use crate::image::{Image, ImageType};
use crate::portable::{ServiceManager, State};
use crate::root::NodeKind;
use crate::sys;
use crate::Host;

/// The largest limit btrfs takes, besides "infinity" (`u64::MAX`).
pub const LIMIT_MAX: u64 = i64::MAX as u64;

fn vendor(image: &Image) -> Result<()> {
    if image.path.starts_with("/usr") {
        return Err(Error::ReadOnly(format!(
            "Image '{}' is a vendor image under /usr and cannot be changed.",
            image.name
        )));
    }
    Ok(())
}

fn check_limit(limit: u64) -> Result<()> {
    if limit > LIMIT_MAX && limit != u64::MAX {
        return Err(Error::InvalidArgs("New limit out of range".into()));
    }
    Ok(())
}

impl Host {
    fn open_rw(&self, image: &Image) -> Result<std::os::fd::OwnedFd> {
        let pfd = self
            .fs()
            .open_path(&image.path)
            .context("Failed to open image", &image.path)?;
        let flags = if image.kind.is_directory() {
            OFlags::RDONLY | OFlags::DIRECTORY
        } else {
            OFlags::RDONLY | OFlags::NONBLOCK
        };
        rustix::fs::open(
            format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&pfd)),
            flags | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .context("Failed to open image", &image.path)
    }

    /// Removes an image: only when it is detached, never a vendor image. A
    /// name that resolves to a symlink loses the symlink only.
    pub fn remove_image(&self, pid1: &dyn ServiceManager, arg: &str) -> Result<()> {
        let image = self.find_image(arg)?;
        let _guard = self.write_guard();
        if self.image_state(pid1, &image.name, &[])? != State::Detached {
            return Err(Error::Busy(format!(
                "Image '{}' is not detached, refusing.",
                image.name
            )));
        }
        if let Some(root) = self.extension_user(&image.name)? {
            return Err(Error::Busy(format!(
                "Image '{}' is attached as an extension of '{root}', refusing.",
                image.name
            )));
        }
        vendor(&image)?;
        let is_link = matches!(self.fs().lstat(&image.path), Ok(Some(st)) if NodeKind::of(&st) == NodeKind::Symlink);
        if image.kind == ImageType::Block && image.path.starts_with("/dev") && !is_link {
            return Err(Error::ReadOnly(format!(
                "Image '{}' is a device node under /dev, not removing it.",
                image.name
            )));
        }
        if image.kind.is_directory() && !is_link {
            // A read-only (immutable) tree cannot be removed before the flag is cleared.
            let fd = self.open_rw(&image)?;
            if let Ok(flags) = sys::inode_flags(fd.as_fd()) {
                if flags & sys::FS_IMMUTABLE_FL != 0 {
                    sys::set_inode_flags(fd.as_fd(), flags & !sys::FS_IMMUTABLE_FL)
                        .context("Failed to clear the immutable flag of", &image.path)?;
                }
            }
        }
        self.fs()
            .remove_tree(&image.path)
            .context("Failed to remove image", &image.path)?;
        // Settings that belong to the image.
        let dir = image.path.parent().unwrap_or(Path::new("/"));
        let extra: Vec<PathBuf> = vec![
            PathBuf::from(format!("/etc/systemd/nspawn/{}.nspawn", image.name)),
            PathBuf::from(format!("/run/systemd/nspawn/{}.nspawn", image.name)),
            dir.join(format!("{}.nspawn", image.name)),
            dir.join(format!("{}.roothash", image.name)),
        ];
        for p in extra {
            let _ = self.fs().unlink(&p);
        }
        Ok(())
    }

    /// Marks an image read-only or writable.
    pub fn mark_read_only(&self, arg: &str, read_only: bool) -> Result<()> {
        let image = self.find_image(arg)?;
        vendor(&image)?;
        let fd = self.open_rw(&image)?;
        let what = "Failed to change the read-only state of";
        match image.kind {
            ImageType::Directory => {
                let flags = sys::inode_flags(fd.as_fd()).context(what, &image.path)?;
                let new = if read_only {
                    flags | sys::FS_IMMUTABLE_FL
                } else {
                    flags & !sys::FS_IMMUTABLE_FL
                };
                sys::set_inode_flags(fd.as_fd(), new).context(what, &image.path)?;
            }
            ImageType::Subvolume => {
                sys::btrfs_subvol_set_read_only(&fd, read_only).context(what, &image.path)?
            }
            ImageType::Raw => {
                let st = rustix::fs::fstat(&fd)
                    .map_err(std::io::Error::from)
                    .context(what, &image.path)?;
                let mode = if read_only {
                    st.st_mode & 0o7555
                } else {
                    (st.st_mode & 0o7444) | 0o200
                };
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777))
                    .map_err(std::io::Error::from)
                    .context(what, &image.path)?;
            }
            ImageType::Block => {
                sys::block_set_read_only(&fd, read_only).context(what, &image.path)?
            }
        }
        Ok(())
    }

    /// Sets the size limit of a btrfs subvolume image.
    pub fn set_image_limit(&self, arg: &str, limit: u64) -> Result<()> {
        check_limit(limit)?;
        let image = self.find_image(arg)?;
        vendor(&image)?;
        if image.kind != ImageType::Subvolume {
            return Err(Error::NotSupported(format!(
                "Image '{}' is not a btrfs subvolume; limits are only supported on btrfs.",
                image.name
            )));
        }
        let fd = self.open_rw(&image)?;
        sys::btrfs_set_qgroup_limit(&fd, limit).context("Failed to set the quota of", &image.path)
    }

    /// Sets the size limit of the image pool, /var/lib/portables.
    /// `PoolUsage` and `PoolLimit`: the referenced bytes and their limit of the qgroup of the
    /// subvolume the pool is in; `u64::MAX` each when the pool is not on btrfs or quotas are
    /// off.
    pub fn pool_usage(&self) -> (u64, u64) {
        let pool = Path::new(POOL_PATH);
        let Ok(fd) = self.fs().open_inspect(pool, true) else {
            return (u64::MAX, u64::MAX);
        };
        let on_btrfs = rustix::fs::fstatfs(&fd)
            .map(|s| (s.f_type as u64 & 0xFFFF_FFFF) == 0x9123_683E)
            .unwrap_or(false);
        if !on_btrfs {
            return (u64::MAX, u64::MAX);
        }
        match sys::btrfs_subvol_id(&fd).and_then(|id| sys::btrfs_qgroup(&fd, id)) {
            Ok(Some(q)) => (q.referenced, q.max_referenced),
            _ => (u64::MAX, u64::MAX),
        }
    }

    pub fn set_pool_limit(&self, limit: u64) -> Result<()> {
        check_limit(limit)?;
        let pool = Path::new(POOL_PATH);
        let fd = self.fs().open_path(pool).context("Failed to open", pool)?;
        let is_subvol = rustix::fs::fstat(&fd)
            .map(|st| st.st_ino == 256)
            .unwrap_or(false)
            && rustix::fs::fstatfs(&fd)
                .map(|s| (s.f_type as u64 & 0xFFFF_FFFF) == 0x9123_683E)
                .unwrap_or(false);
        if !is_subvol {
            return Err(Error::NotSupported(
                "Quota is only supported on btrfs.".into(),
            ));
        }
        let image = Image {
            name: "pool".into(),
            path: pool.to_path_buf(),
            kind: ImageType::Subvolume,
            read_only: false,
            crtime_usec: 0,
            mtime_usec: 0,
            usage: 0,
            usage_exclusive: 0,
            limit: 0,
            limit_exclusive: 0,
        };
        let rw = self.open_rw(&image)?;
        sys::btrfs_set_qgroup_limit(&rw, limit).context("Failed to set the quota of", pool)
    }
}
