//! Opening raw and block images: partition table (GPT, or an MBR with one Linux partition),
//! file-system detection, a loop device per partition, and detached mounts. What it returns
//! holds every loop device and mount; dropping it releases them all.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use rustix::fs::{FileType, Mode, OFlags};

use crate::error::RawError;
use crate::image::{Image, ImageType};
use crate::parse::fsdetect::{self, FsType};
use crate::parse::gpt;
use crate::policy::{Designator, Dissected, Found, Protection};
use crate::root::ImageRoot;
use crate::sys::loopdev::{LoopDevice, LoopOptions};
use crate::sys::{self, mount};
use crate::Host;

/// An image's tree, opened for reading (and for writing, when asked for and possible).
#[derive(Debug)]
pub struct OpenImage {
    pub root: ImageRoot,
    /// Whether the image could be written to (writable file, writable file system, no GPT
    /// read-only flag, not marked read-only).
    pub can_write: bool,
    /// Whether the tree is mounted (or, for directories, opened) for writing now.
    pub writable: bool,
    /// What was found, e.g. `squashfs` or `GPT partition 2 (ext4), /usr: partition 3 (erofs)`.
    pub layout: String,
    /// How many loop devices hold it (erofs is mounted from the file itself where the kernel
    /// can, Linux 6.12 and later: none then).
    pub loop_devices: usize,
    /// What the dissection of a raw image found (`None` for a directory), for its policy.
    pub dissected: Option<Dissected>,
}

/// Holds loop devices and mounts below the root for as long as the image is open.
struct Holder {
    _mounts: Vec<OwnedFd>,
    _loops: Vec<LoopDevice>,
}

/// One file system to mount: where it lies in the backing file.
struct Volume {
    offset: u64,
    size: u64,
    fs: FsType,
    read_only_flag: bool,
    what: String,
}

fn read_range(f: &std::fs::File, size: u64, off: u64, len: usize) -> io::Result<Vec<u8>> {
    if off.checked_add(len as u64).is_none_or(|end| end > size) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, off)?;
    Ok(buf)
}

fn probe(f: &std::fs::File, off: u64, limit: u64) -> io::Result<Vec<u8>> {
    let len = (fsdetect::PROBE_SIZE as u64).min(limit) as usize;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match f.read_at(&mut buf[done..], off + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// The single Linux (0x83) partition of a classic MBR, as (offset, size) in bytes.
fn mbr_single_linux(head: &[u8]) -> Option<(u64, u64)> {
    if head.get(510..512) != Some(b"\x55\xaa") {
        return None;
    }
    let entries: Vec<&[u8]> = (0..4)
        .map(|i| &head[446 + 16 * i..462 + 16 * i])
        .filter(|e| e[4] != 0)
        .collect();
    match entries.as_slice() {
        [e] if e[4] == 0x83 => {
            let start = u64::from(u32::from_le_bytes(e[8..12].try_into().ok()?));
            let count = u64::from(u32::from_le_bytes(e[12..16].try_into().ok()?));
            (start > 0 && count > 0).then_some((start * 512, count * 512))
        }
        _ => None,
    }
}

impl Host {
    /// Opens a raw or block image. `want_write` mounts it read-write when the image allows it.
    pub fn open_raw_image(&self, image: &Image, want_write: bool) -> Result<OpenImage, RawError> {
        let name = image.path.display().to_string();
        let io_err = |source: io::Error| RawError::Io {
            image: name.clone(),
            source,
        };
        let pfd = self.fs().open_path(&image.path).map_err(io_err)?;
        let st = rustix::fs::fstat(&pfd).map_err(|e| io_err(e.into()))?;
        let is_block = FileType::from_raw_mode(st.st_mode) == FileType::BlockDevice;
        if !is_block && FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(io_err(io::Error::from_raw_os_error(libc::EMEDIUMTYPE)));
        }
        let try_write = want_write && !image.read_only;
        let reopen = |write: bool| {
            rustix::fs::open(
                format!("/proc/self/fd/{}", pfd.as_raw_fd()),
                if write { OFlags::RDWR } else { OFlags::RDONLY }
                    | OFlags::CLOEXEC
                    | OFlags::NOCTTY,
                Mode::empty(),
            )
        };
        let (fd, opened_rw) = match reopen(try_write) {
            Ok(fd) => (fd, try_write),
            Err(_) if try_write => (reopen(false).map_err(|e| io_err(e.into()))?, false),
            Err(e) => return Err(io_err(e.into())),
        };
        let file = std::fs::File::from(fd);
        let size = if is_block {
            sys::block_size(&file).map_err(io_err)?
        } else {
            st.st_size as u64
        };

        let head = probe(&file, 0, size).map_err(io_err)?;
        let (volumes, sector, dissected) = self.layout(&file, size, &head, &name)?;
        let rw_capable = |v: &Volume| !image.read_only && !v.fs.is_read_only() && !v.read_only_flag;
        let can_write = volumes.iter().all(rw_capable);
        let writable = opened_rw && can_write;

        let mut loops = Vec::new();
        let mut mounts: Vec<OwnedFd> = Vec::new();
        let mut layout = Vec::new();
        for v in &volumes {
            let part = if v.what.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.what)
            };
            layout.push(if v.what.is_empty() {
                v.fs.to_string()
            } else {
                format!("{} ({})", v.what, v.fs)
            });
            let whole = v.offset == 0 && v.size == size;
            // erofs mounts straight from a file, without a loop device, on recent kernels.
            if v.fs == FsType::Erofs && whole && !is_block {
                let source = format!("/proc/self/fd/{}", file.as_raw_fd());
                match mount::mount_detached("erofs", &source, &name, false, &[]) {
                    Ok(m) => {
                        tracing::debug!(image = %name, "erofs mounted from the file");
                        mounts.push(m);
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(image = %name, "erofs through a loop device: {e}")
                    }
                }
            }
            let lo = LoopDevice::attach(
                file.as_fd(),
                LoopOptions {
                    offset: v.offset,
                    size_limit: if whole { 0 } else { v.size },
                    writable,
                    block_size: if sector == 4096 { 4096 } else { 0 },
                },
            )
            .map_err(|source| RawError::Loop {
                image: name.clone(),
                source,
            })?;
            tracing::debug!(image = %name, device = %lo.path().display(), offset = v.offset, "loop device attached");
            let m = mount::mount_detached(
                v.fs.kernel_name(),
                &lo.fd_path(),
                &lo.path().display().to_string(),
                writable,
                v.fs.mount_options(writable),
            )
            .map_err(|source| RawError::Mount {
                image: name.clone(),
                part,
                source: Box::new(source),
            })?;
            loops.push(lo);
            mounts.push(m);
        }
        // The first volume is the root; a /usr volume goes beneath it (or beneath an empty
        // tmpfs root when the image has /usr only).
        let mut mounts = mounts.into_iter();
        let first = mounts.next().expect("at least one volume");
        let root_mount = if volumes[0].what.starts_with("/usr") {
            let tmp = mount::tmpfs_detached().map_err(io_err)?;
            rustix::fs::mkdirat(&tmp, "usr", Mode::from_raw_mode(0o755))
                .map_err(|e| io_err(e.into()))?;
            mount::mount_beneath(tmp.as_fd(), "usr", &first).map_err(io_err)?;
            tmp
        } else {
            first
        };
        let mut rest: Vec<OwnedFd> = Vec::new();
        for usr in mounts {
            if let Err(e) = mount::mount_beneath(root_mount.as_fd(), "usr", &usr) {
                return Err(io_err(e));
            }
            rest.push(usr);
        }
        let loop_devices = loops.len();
        let holder = Holder {
            _mounts: rest,
            _loops: loops,
        };
        Ok(OpenImage {
            root: ImageRoot::from_fd(root_mount, Some(Box::new(holder))),
            can_write,
            writable,
            layout: layout.join(", "),
            dissected: Some(dissected),
            loop_devices,
        })
    }

    /// Finds the file systems of a raw image: a GPT (DDI), a bare file system, or an MBR with
    /// a single Linux partition. Returns them (root first) and the sector size.
    fn layout(
        &self,
        file: &std::fs::File,
        size: u64,
        head: &[u8],
        name: &str,
    ) -> Result<(Vec<Volume>, u64, Dissected), RawError> {
        let detect_at =
            |offset: u64, len: u64, what: String, ro: bool| -> Result<Volume, RawError> {
                let b = probe(file, offset, len).map_err(|source| RawError::Io {
                    image: name.to_string(),
                    source,
                })?;
                match fsdetect::detect(&b) {
                    Some(fs) => Ok(Volume {
                        offset,
                        size: len,
                        fs,
                        read_only_flag: ro,
                        what,
                    }),
                    None => Err(RawError::UnsupportedFs {
                        image: name.to_string(),
                        part: if what.is_empty() {
                            String::new()
                        } else {
                            format!(", {what}")
                        },
                        found: fsdetect::describe_unknown(&b),
                    }),
                }
            };
        for sector in [512u64, 4096] {
            if !gpt::has_signature(head, sector) {
                continue;
            }
            let mut read = |off: u64, len: usize| read_range(file, size, off, len);
            let table = gpt::parse(sector, size, &mut read).map_err(|source| RawError::Gpt {
                image: name.to_string(),
                source,
            })?;
            let choice = gpt::choose(&table).map_err(|source| RawError::Choice {
                image: name.to_string(),
                source,
            })?;
            let mut vols = Vec::new();
            if let Some(p) = &choice.root {
                vols.push(detect_at(
                    p.offset(sector),
                    p.size(sector),
                    format!("GPT partition {}", p.number),
                    p.read_only(),
                )?);
            }
            if let Some(p) = &choice.usr {
                vols.push(detect_at(
                    p.offset(sector),
                    p.size(sector),
                    format!("/usr: GPT partition {}", p.number),
                    p.read_only(),
                )?);
            }
            let fs_at = |p: &gpt::Partition| {
                probe(file, p.offset(sector), p.size(sector))
                    .ok()
                    .and_then(|b| fsdetect::detect(&b))
            };
            let dissected = dissect_gpt(&table, &choice, fs_at);
            return Ok((vols, sector, dissected));
        }
        if let Some(fs) = fsdetect::detect(head) {
            let dissected = Dissected {
                single_file_system: true,
                partitions: vec![Found {
                    designator: Designator::Root,
                    fs: Some(fs),
                    protection: None,
                    read_only: false,
                    growfs: false,
                }],
            };
            return Ok((
                vec![Volume {
                    offset: 0,
                    size,
                    fs,
                    read_only_flag: false,
                    what: String::new(),
                }],
                512,
                dissected,
            ));
        }
        if let Some((offset, len)) = mbr_single_linux(head) {
            if offset.saturating_add(len) <= size {
                let v = detect_at(offset, len, "MBR partition 1".into(), false)?;
                // systemd takes the one Linux partition of an MBR as a writable root.
                let dissected = Dissected {
                    single_file_system: false,
                    partitions: vec![Found {
                        designator: Designator::Root,
                        fs: Some(v.fs),
                        protection: None,
                        read_only: false,
                        growfs: false,
                    }],
                };
                return Ok((vec![v], 512, dissected));
            }
        }
        Err(RawError::Unrecognized {
            image: name.to_string(),
            found: fsdetect::describe_unknown(head),
        })
    }
}

impl Host {
    /// Opens an image's tree: read-only, or for writing when `want_write` and the image allows
    /// it (see [`OpenImage::can_write`]).
    pub fn open_image_with(&self, image: &Image, want_write: bool) -> crate::Result<OpenImage> {
        match image.kind {
            ImageType::Directory | ImageType::Subvolume => Ok(OpenImage {
                root: self.open_directory_image(image)?,
                can_write: !image.read_only,
                writable: want_write && !image.read_only,
                layout: image.kind.to_string(),
                loop_devices: 0,
                dissected: None,
            }),
            ImageType::Raw | ImageType::Block => Ok(self.open_raw_image(image, want_write)?),
        }
    }

    /// Opens an image's tree for reading.
    pub fn open_image(&self, image: &Image) -> crate::Result<ImageRoot> {
        Ok(self.open_image_with(image, false)?.root)
    }
}

/// What systemd's dissection finds in a GPT: the root and /usr partitions attach uses, the
/// verity and signature partitions that protect them, and the other partitions of the
/// Discoverable Partitions Specification. `fs_at` tells a partition's file system.
fn dissect_gpt(
    table: &gpt::Table,
    choice: &gpt::Choice,
    fs_at: impl Fn(&gpt::Partition) -> Option<FsType>,
) -> Dissected {
    use gpt::types;
    let auto = |t: gpt::Guid| {
        table
            .partitions
            .iter()
            .find(|p| p.type_guid == t && p.attributes & gpt::FLAG_NO_AUTO == 0)
    };
    let verity = [
        (Designator::RootVerity, types::ROOT_VERITY_X86_64),
        (Designator::UsrVerity, types::USR_VERITY_X86_64),
        (Designator::RootVeritySig, types::ROOT_VERITY_SIG_X86_64),
        (Designator::UsrVeritySig, types::USR_VERITY_SIG_X86_64),
    ];
    let has = |d: Designator| {
        verity
            .iter()
            .any(|(x, t)| *x == d && std::env::consts::ARCH == "x86_64" && auto(*t).is_some())
    };
    let found = |designator: Designator, p: &gpt::Partition, fs: Option<FsType>| Found {
        designator,
        fs,
        protection: None,
        // systemd's dissection counts a file system that cannot be written as read-only,
        // whatever the partition's flag says (seen with systemd 262: a squashfs root without
        // the flag is `read-only-on`).
        read_only: p.read_only() || fs.is_some_and(FsType::is_read_only),
        growfs: p.attributes & gpt::FLAG_GROWFS != 0,
    };
    let mut partitions = Vec::new();
    for (designator, part, sig) in [
        (Designator::Root, &choice.root, Designator::RootVeritySig),
        (Designator::Usr, &choice.usr, Designator::UsrVeritySig),
    ] {
        if let Some(p) = part {
            let mut f = found(designator, p, fs_at(p));
            // Signed: the signature partition carries the root hash; verity needs a hash we
            // do not have without it, so it counts as protected only when signed.
            if has(sig) {
                f.protection = Some(Protection::Signed);
            }
            partitions.push(f);
        }
    }
    if std::env::consts::ARCH == "x86_64" {
        for (designator, t) in verity {
            if let Some(p) = auto(t) {
                partitions.push(found(designator, p, None));
            }
        }
    }
    for (designator, t) in [
        (Designator::Home, types::HOME),
        (Designator::Srv, types::SRV),
        (Designator::Esp, types::ESP),
        (Designator::Xbootldr, types::XBOOTLDR),
        (Designator::Swap, types::SWAP),
        (Designator::Tmp, types::TMP),
        (Designator::Var, types::VAR),
    ] {
        if let Some(p) = auto(t) {
            partitions.push(found(designator, p, fs_at(p)));
        }
    }
    Dissected {
        single_file_system: false,
        partitions,
    }
}
