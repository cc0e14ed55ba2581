//! Image discovery: what counts as an image, where images are looked for, their
//! names, types, read-only state, timestamps and disk usage.

use std::collections::HashSet;
use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Statx, StatxAttributes, StatxFlags};
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::host::{Host, IMAGE_SEARCH_PATH};
use crate::parse::names::{self, ImageRef};
use crate::root::{ImageRoot, NodeKind};
use crate::sys;
use crate::version::{Behaviour, Version};

/// Sentinel for "unknown" sizes (`UINT64_MAX`).
pub const UNKNOWN: u64 = u64::MAX;

const BTRFS_SUPER_MAGIC: u64 = 0x9123_683E;
const BTRFS_FIRST_FREE_OBJECTID: u64 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageType {
    Directory,
    Subvolume,
    Raw,
    Block,
}

impl ImageType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Subvolume => "subvolume",
            Self::Raw => "raw",
            Self::Block => "block",
        }
    }

    /// Directory-like images are used with `RootDirectory=`, the others with `RootImage=`.
    pub fn is_directory(self) -> bool {
        matches!(self, Self::Directory | Self::Subvolume)
    }
}

impl fmt::Display for ImageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A discovered image, with the properties of the reference's Image object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    pub name: String,
    /// The path as found (a symlink in /etc/portables stays the symlink path), on the host.
    pub path: PathBuf,
    #[serde(rename = "type")]
    pub kind: ImageType,
    pub read_only: bool,
    /// Birth time in µs since the epoch, 0 when unknown.
    pub crtime_usec: u64,
    /// Modification time in µs; 0 for directories and block devices, as the reference.
    pub mtime_usec: u64,
    pub usage: u64,
    pub usage_exclusive: u64,
    pub limit: u64,
    pub limit_exclusive: u64,
}

impl Image {
    /// The file name of the image path (with `.raw` for raw images).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

fn classify(file_type: FileType, file_name: &[u8]) -> Option<(ImageType, bool)> {
    match file_type {
        FileType::Directory => Some((ImageType::Directory, false)),
        FileType::RegularFile if file_name.ends_with(b".raw") => Some((ImageType::Raw, true)),
        FileType::BlockDevice => Some((ImageType::Block, false)),
        _ => None,
    }
}

fn usec(sec: i64, nsec: u32) -> u64 {
    if sec <= 0 {
        return 0;
    }
    (sec as u64).saturating_mul(1_000_000) + u64::from(nsec) / 1000
}

/// Birth time from statx, else systemd's `user.crtime_usec` xattr; 0 when unknown.
fn crtime(stx: &Statx, fd: Option<&OwnedFd>) -> u64 {
    if stx.stx_mask & StatxFlags::BTIME.bits() != 0 {
        return usec(stx.stx_btime.tv_sec, stx.stx_btime.tv_nsec);
    }
    let mut buf = [0u8; 8];
    match fd.map(|fd| rustix::fs::fgetxattr(fd, "user.crtime_usec", &mut buf)) {
        Some(Ok(8)) => u64::from_le_bytes(buf),
        _ => 0,
    }
}

/// Builds the [`Image`] for `path` (a logical host path), which `stat()` says is of `kind`.
fn make_image(host: &Host, name: String, path: PathBuf, kind: ImageType) -> Result<Image> {
    make_image_cached(host, name, path, kind, None, &mut FsCache::default())
}

/// What `fstatfs()` says of the mounts seen so far (read-only, btrfs), by mount id and
/// device (a read-only bind mount shares the device, not the mount): a listing asks once per
/// mount, not once per image.
#[derive(Default)]
struct FsCache(Vec<(MountKey, Option<FsInfo>)>);

/// Mount id, device major and minor.
type MountKey = (u64, u32, u32);
/// Read-only, btrfs.
type FsInfo = (bool, bool);

impl FsCache {
    fn key(stx: &Statx) -> Option<MountKey> {
        (stx.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some((
            stx.stx_mnt_id,
            stx.stx_dev_major,
            stx.stx_dev_minor,
        ))
    }

    /// What is known of the mount of the node `stx` describes (`None`: ask with an fd).
    fn known(&self, stx: &Statx) -> Option<Option<FsInfo>> {
        let key = Self::key(stx)?;
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, info)| *info)
    }

    fn get(&mut self, fd: &OwnedFd, stx: &Statx) -> Option<FsInfo> {
        if let Some(info) = self.known(stx) {
            return info;
        }
        let info = Self::ask(fd);
        if let Some(key) = Self::key(stx) {
            self.0.push((key, info));
        }
        info
    }

    fn ask(fd: &OwnedFd) -> Option<FsInfo> {
        rustix::fs::fstatfs(fd).ok().map(|s| {
            // ST_RDONLY in f_flags (Linux 2.6.36 and later); f_type is signed on some
            // architectures and unsigned on others.
            (
                s.f_flags as u64 & 1 != 0,
                (s.f_type as u64 & 0xFFFF_FFFF) == BTRFS_SUPER_MAGIC,
            )
        })
    }
}

const STATX_MASK: StatxFlags = StatxFlags::BASIC_STATS
    .union(StatxFlags::BTIME)
    .union(StatxFlags::MNT_ID);

/// [`make_image`] for a listing: `at` is the open directory and the entry's name, `fs_cache`
/// what is known of the mounts. `ListImages` does this for every image, so an image is
/// opened only when `statx()` of its entry cannot tell everything (the first image of a
/// mount, block devices, btrfs subvolumes, file systems without birth times or the
/// immutable attribute).
fn make_image_cached(
    host: &Host,
    name: String,
    path: PathBuf,
    kind: ImageType,
    at: Option<(&OwnedFd, &std::ffi::OsStr)>,
    fs_cache: &mut FsCache,
) -> Result<Image> {
    let directory = matches!(kind, ImageType::Directory | ImageType::Subvolume);
    let open = || -> Result<OwnedFd> {
        at.and_then(|(dir, entry)| crate::root::open_entry(dir, entry, directory).ok())
            .map_or_else(|| host.fs().open_inspect(&path, directory), Ok)
            .context("Failed to open image", &path)
    };
    let mut fd: Option<OwnedFd> = None;
    let listed = at.and_then(|(dir, entry)| {
        rustix::fs::statx(dir, entry, AtFlags::SYMLINK_NOFOLLOW, STATX_MASK).ok()
    });
    let stx = match listed {
        Some(stx) => stx,
        None => {
            let f = open()?;
            let stx = rustix::fs::statx(&f, "", AtFlags::EMPTY_PATH, STATX_MASK)
                .map_err(std::io::Error::from)
                .context("Failed to stat image", &path)?;
            fd = Some(f);
            stx
        }
    };
    // The node may have been replaced since the listing: it must still be of its kind.
    let same_kind = match FileType::from_raw_mode(u32::from(stx.stx_mode)) {
        FileType::Directory => directory,
        FileType::RegularFile => kind == ImageType::Raw,
        FileType::BlockDevice => kind == ImageType::Block,
        _ => false,
    };
    if !same_kind {
        return Err(Error::Io {
            what: "Image changed while it was inspected",
            path,
            source: std::io::Error::from_raw_os_error(libc::ESTALE),
        });
    }
    let (fs_read_only, is_btrfs) = match fs_cache.known(&stx) {
        Some(info) => info,
        None => {
            if fd.is_none() {
                fd = Some(open()?);
            }
            fs_cache.get(fd.as_ref().expect("opened"), &stx)
        }
    }
    .unwrap_or((false, false));
    let btrfs_subvolume = directory && is_btrfs && stx.stx_ino == BTRFS_FIRST_FREE_OBJECTID;
    let immutable_known = stx.stx_attributes_mask.contains(StatxAttributes::IMMUTABLE);
    let needs_fd = kind == ImageType::Block
        || btrfs_subvolume
        || (directory && !immutable_known)
        || stx.stx_mask & StatxFlags::BTIME.bits() == 0;
    if needs_fd && fd.is_none() {
        fd = Some(open()?);
    }
    let mut image = Image {
        read_only: path.starts_with("/usr") || fs_read_only,
        crtime_usec: crtime(&stx, fd.as_ref()),
        name,
        path,
        kind,
        mtime_usec: 0,
        usage: UNKNOWN,
        usage_exclusive: UNKNOWN,
        limit: UNKNOWN,
        limit_exclusive: UNKNOWN,
    };
    match kind {
        ImageType::Directory | ImageType::Subvolume => {
            if let (true, Some(fd)) = (btrfs_subvolume, &fd) {
                image.kind = ImageType::Subvolume;
                image.read_only |= sys::btrfs_subvol_read_only(fd).unwrap_or(false);
                // The subvolume's level-0 qgroup, when quotas are on.
                if let Some(q) = sys::btrfs_subvol_id(fd)
                    .and_then(|id| sys::btrfs_qgroup(fd, id))
                    .ok()
                    .flatten()
                {
                    image.usage = q.referenced;
                    image.usage_exclusive = q.exclusive;
                    image.limit = q.max_referenced;
                    image.limit_exclusive = q.max_exclusive;
                }
            }
            let immutable = if immutable_known {
                stx.stx_attributes.contains(StatxAttributes::IMMUTABLE)
            } else {
                fd.as_ref()
                    .and_then(|fd| sys::inode_flags(std::os::fd::AsFd::as_fd(fd)).ok())
                    .is_some_and(|f| f & sys::FS_IMMUTABLE_FL != 0)
            };
            image.read_only |= immutable;
        }
        ImageType::Raw => {
            image.read_only |= stx.stx_mode & 0o222 == 0;
            image.mtime_usec = usec(stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec);
            image.usage = stx.stx_blocks.saturating_mul(512);
            image.usage_exclusive = image.usage;
            image.limit = stx.stx_size;
            image.limit_exclusive = image.limit;
        }
        ImageType::Block => {
            if let Some(fd) = &fd {
                image.read_only |= sys::block_read_only(fd).unwrap_or(false);
                if let Ok(size) = sys::block_size(fd) {
                    image.usage = size;
                    image.usage_exclusive = size;
                    image.limit = size;
                    image.limit_exclusive = size;
                }
            }
        }
    }
    Ok(image)
}

/// Images per inspecting thread of a listing (below that, one thread does it all).
const LIST_CHUNK: usize = 256;

/// An image found in a listing.
struct Found {
    name: String,
    path: PathBuf,
    kind: ImageType,
    /// The listed directory and the entry's name in it (not for symlinks).
    at: Option<(std::sync::Arc<OwnedFd>, std::ffi::OsString)>,
}

fn missing(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

impl Host {
    /// Every image in the search path, sorted by name. When two directories hold an image of
    /// the same name, the earlier directory wins.
    pub fn list_images(&self) -> Result<Vec<Image>> {
        let found = self.scan_images();
        // Large pools are inspected by a few threads (the time goes into statx()).
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
            .min(found.len().div_ceil(LIST_CHUNK));
        let inspect = |chunk: &[Found]| -> Vec<Image> {
            let mut fs_cache = FsCache::default();
            chunk
                .iter()
                .filter_map(|f| {
                    let at =
                        f.at.as_ref()
                            .map(|(dir, entry)| (&**dir, entry.as_os_str()));
                    make_image_cached(
                        self,
                        f.name.clone(),
                        f.path.clone(),
                        f.kind,
                        at,
                        &mut fs_cache,
                    )
                    .map_err(|e| tracing::warn!("skipping image: {e}"))
                    .ok()
                })
                .collect()
        };
        let mut images: Vec<Image> = if threads <= 1 {
            inspect(&found)
        } else {
            let per_thread = found.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let workers: Vec<_> = found
                    .chunks(per_thread)
                    .map(|chunk| scope.spawn(move || inspect(chunk)))
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| w.join().expect("image inspection panicked"))
                    .collect()
            })
        };
        images.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(images)
    }

    /// The names of the images in the search path, from the directory listings alone (no
    /// image is opened): what portctld exports as objects when it starts.
    pub fn image_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.scan_images().into_iter().map(|f| f.name).collect();
        names.sort();
        names
    }

    /// Every image in the search path; the earlier directory wins.
    fn scan_images(&self) -> Vec<Found> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for dir in IMAGE_SEARCH_PATH {
            let (dir_fd, entries) = match self.fs().read_dir_open(Path::new(dir)) {
                Ok(Some((fd, e))) => (std::sync::Arc::new(fd), e),
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(dir, "cannot list image directory: {e}");
                    continue;
                }
            };
            // Directories and block devices before raw files, as a lookup by name would.
            let mut found = Vec::new();
            for entry in entries {
                let file_name = entry.name.as_bytes();
                let path = Path::new(dir).join(&entry.name);
                // The listing's type, unless a symlink (or a file system without d_type)
                // needs a stat; make_image checks it again on the opened node.
                let file_type = match entry.kind {
                    NodeKind::Directory => FileType::Directory,
                    NodeKind::File => FileType::RegularFile,
                    NodeKind::BlockDevice => FileType::BlockDevice,
                    NodeKind::Symlink | NodeKind::Unknown => match self.fs().stat(&path) {
                        Ok(Some(st)) => FileType::from_raw_mode(st.st_mode),
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(path = %path.display(), "cannot stat image: {e}");
                            continue;
                        }
                    },
                    _ => continue,
                };
                let Some((kind, raw)) = classify(file_type, file_name) else {
                    continue;
                };
                let Some(name) = names::image_name_from_file_name(file_name, raw) else {
                    continue;
                };
                let at = (entry.kind != NodeKind::Symlink)
                    .then(|| (std::sync::Arc::clone(&dir_fd), entry.name.clone()));
                found.push((
                    raw,
                    Found {
                        name,
                        path,
                        kind,
                        at,
                    },
                ));
            }
            found.sort_by_key(|(raw, _)| *raw);
            for (_, f) in found {
                if seen.insert(f.name.clone()) {
                    out.push(f);
                }
            }
        }
        out
    }

    /// Looks an image up by name in the search path.
    pub fn find_image_by_name(&self, name: &str) -> Result<Image> {
        self.find_image_by_name_in(name, &IMAGE_SEARCH_PATH)
    }

    /// Looks an image up by name in `dirs` (a part of the search path, in its order).
    pub fn find_image_by_name_in(&self, name: &str, dirs: &[&str]) -> Result<Image> {
        if !names::image_name_is_valid(name.as_bytes()) {
            return Err(names::ImageRefError::Invalid(name.to_string()).into());
        }
        for &dir in dirs {
            // `<name>`: a directory or a block device.
            let path = Path::new(dir).join(name);
            match self.fs().stat(&path) {
                Ok(Some(st)) => match FileType::from_raw_mode(st.st_mode) {
                    FileType::Directory => {
                        return make_image(self, name.to_string(), path, ImageType::Directory)
                    }
                    FileType::BlockDevice => {
                        return make_image(self, name.to_string(), path, ImageType::Block)
                    }
                    _ => {}
                },
                Ok(None) => {}
                Err(e) => return Err(e).context("Failed to look up image", path),
            }
            // `<name>.raw`: a regular file.
            let path = Path::new(dir).join(format!("{name}.raw"));
            match self.fs().stat(&path) {
                Ok(Some(st)) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                    return make_image(self, name.to_string(), path, ImageType::Raw)
                }
                Ok(_) => {}
                Err(e) if missing(&e) => {}
                Err(e) => return Err(e).context("Failed to look up image", path),
            }
        }
        Err(Error::NoSuchImage(name.to_string()))
    }

    /// The image at an absolute, normalized path (anywhere, not only in the search path).
    pub fn image_from_path(&self, path: &Path) -> Result<Image> {
        let shown = path.display().to_string();
        let st = match self.fs().stat(path) {
            Ok(Some(st)) => st,
            Ok(None) => return Err(Error::NoSuchImage(shown)),
            Err(e) => return Err(e).context("Failed to look up image", path),
        };
        let file_name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
        let (kind, raw) = classify(FileType::from_raw_mode(st.st_mode), file_name)
            .ok_or_else(|| Error::BadImageType(shown.clone()))?;
        let name = names::image_name_from_file_name(file_name, raw)
            .ok_or_else(|| names::ImageRefError::Invalid(shown.clone()))?;
        make_image(self, name, path.to_path_buf(), kind)
    }

    /// Resolves an image argument: a name (searched in the search path) or an absolute,
    /// normalized path.
    pub fn find_image(&self, arg: &str) -> Result<Image> {
        match names::parse_image_ref(arg)? {
            ImageRef::Name(name) => self.find_image_by_name(name),
            ImageRef::Path(path) => self.image_from_path(path),
        }
    }

    /// Opens a directory image's tree for reading. (Raw and block images are opened through
    /// the mount module.)
    pub fn open_directory_image(&self, image: &Image) -> Result<ImageRoot> {
        let fd = self
            .fs()
            .open_path(&image.path)
            .context("Failed to open image", &image.path)?;
        Ok(ImageRoot::from_fd(fd, None))
    }
}

impl Host {
    /// The image as systemd `version` reports it: from 262 on, an image found through a
    /// symlink in the search path (`/run/portables/NAME.raw` → `/srv/NAME.raw`) is the
    /// symlink's final target, its `Path`, what the drop-ins name and where its own link
    /// goes (Behaviour::SearchPathLinksResolved). A link that cannot be followed is left as
    /// it is, for the error of whatever opens it.
    pub fn as_version_reports(&self, version: Version, mut image: Image) -> Image {
        if !version.has(Behaviour::SearchPathLinksResolved) {
            return image;
        }
        if let Some(target) = self.link_target(&image.path) {
            image.path = target;
        }
        image
    }

    /// The final target of `path` when it is a symlink (absolute, normalized; at most 40
    /// links deep, as the kernel follows them).
    fn link_target(&self, path: &Path) -> Option<PathBuf> {
        let mut at = path.to_path_buf();
        let mut followed = false;
        for _ in 0..40 {
            match self.fs().lstat(&at) {
                Ok(Some(st)) if NodeKind::of(&st) == NodeKind::Symlink => {}
                Ok(Some(_)) => return followed.then_some(at),
                _ => return None,
            }
            let target = self.fs().read_link(&at).ok()?;
            let joined = at.parent().unwrap_or(Path::new("/")).join(target);
            let mut normal = PathBuf::from("/");
            for c in joined.components() {
                match c {
                    std::path::Component::ParentDir => {
                        normal.pop();
                    }
                    std::path::Component::Normal(n) => normal.push(n),
                    _ => {}
                }
            }
            at = normal;
            followed = true;
        }
        None
    }

    /// An image argument as systemd `version` resolves it before anything else: a name found
    /// through a search-path symlink becomes the link's target when the version has `links`
    /// (attach from 257 on, Behaviour::AttachResolvesLinks; inspect and the state from 262 on,
    /// Behaviour::SearchPathLinksResolved), and a `.v/` directory the newest version inside
    /// ([`Host::vpick`]).
    pub fn resolve_arg(&self, version: Version, links: Behaviour, arg: &str) -> Result<String> {
        if version.has(links) {
            if let Ok(ImageRef::Name(name)) = names::parse_image_ref(arg) {
                let found = self.find_image_by_name(name);
                if let Some(target) = found.ok().and_then(|i| self.link_target(&i.path)) {
                    return self.vpick(version, &target.display().to_string());
                }
            }
        }
        self.vpick(version, arg)
    }

    /// An image argument with a `.v/` directory resolved to the newest version inside
    /// (`/tmp/app1.v/` → `/tmp/app1.v/app1_2.0.raw`), as systemd 256 and later resolve it
    /// wherever an image is named: attach, reattach, detach, inspect and the state. Anything
    /// else is returned as it is.
    pub fn vpick(&self, version: Version, arg: &str) -> Result<String> {
        use crate::parse::vpick;
        let Some(name) = vpick::versioned_dir_name(arg) else {
            return Ok(arg.to_string());
        };
        if !version.has(Behaviour::Vpick) || !arg.starts_with('/') {
            return Ok(arg.to_string());
        }
        let dir = Path::new(arg.trim_end_matches('/'));
        let entries = match self.fs().read_dir(dir) {
            Ok(Some(entries)) => entries,
            Ok(None) => return Err(Error::NoSuchImage(arg.to_string())),
            Err(e) => return Err(e).context("Failed to read .v/ directory", dir),
        };
        let named: Vec<(&str, bool)> = entries
            .iter()
            .filter_map(|e| Some((e.name.to_str()?, e.kind == NodeKind::Directory)))
            .collect();
        match vpick::newest(name, &named) {
            Some(entry) => Ok(dir.join(entry).display().to_string()),
            None => Err(Error::NoSuchImage(arg.to_string())),
        }
    }

    /// [`Host::resolve_arg`] of an image and its extensions.
    pub fn resolve_all(
        &self,
        version: Version,
        links: Behaviour,
        arg: &str,
        extensions: &[String],
    ) -> Result<(String, Vec<String>)> {
        Ok((
            self.resolve_arg(version, links, arg)?,
            extensions
                .iter()
                .map(|e| self.resolve_arg(version, links, e))
                .collect::<Result<_>>()?,
        ))
    }

    /// [`Host::vpick`] of an image and its extensions: what detach resolves (it names the
    /// image as given, also at 262).
    pub fn vpick_all(
        &self,
        version: Version,
        arg: &str,
        extensions: &[String],
    ) -> Result<(String, Vec<String>)> {
        Ok((
            self.vpick(version, arg)?,
            extensions
                .iter()
                .map(|e| self.vpick(version, e))
                .collect::<Result<_>>()?,
        ))
    }
}
