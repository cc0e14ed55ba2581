//! The host's file system, seen through a root directory that tests can inject.
//!
//! Every host path the engine uses (search path, profile directories, attached-unit
//! directories) is a *logical* absolute path such as `/var/lib/portables`, resolved inside the
//! host root with `openat2(RESOLVE_IN_ROOT)`, so that an absolute symlink like
//! `/etc/portables/foo -> /var/lib/portables/foo` stays inside a test root too.

use std::io;
use std::path::{Path, PathBuf};

use crate::parse::names;
use crate::root::ImageRoot;
use crate::units::UNIT_SEARCH_PATH;
use crate::version::Version;

/// The image search path, in priority order, as v252 searches it.
pub const IMAGE_SEARCH_PATH: [&str; 5] = [
    "/etc/portables",
    "/run/portables",
    "/var/lib/portables",
    "/usr/local/lib/portables",
    "/usr/lib/portables",
];

/// The pool of images (`PoolPath`).
pub const POOL_PATH: &str = "/var/lib/portables";

/// The profile search path, in priority order, as v252 searches it.
pub const PROFILE_SEARCH_PATH: [&str; 4] = [
    "/etc/systemd/portable/profile",
    "/run/systemd/portable/profile",
    "/usr/local/lib/systemd/portable/profile",
    "/usr/lib/systemd/portable/profile",
];

/// The host, under a root directory (`/` on a real system).
#[derive(Debug)]
pub struct Host {
    root: PathBuf,
    fs: ImageRoot,
    /// Serializes the checks and writes of attach, detach and reattach (so two attaches of
    /// units with the same name cannot both pass the "exists" check). Reading images happens
    /// outside of it, in parallel.
    write_lock: std::sync::Mutex<()>,
}

impl Host {
    /// The host under `root`; `/` is the real system.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        let fs = ImageRoot::open_dir(&root)?;
        Ok(Self {
            root,
            fs,
            write_lock: std::sync::Mutex::new(()),
        })
    }

    /// The real system.
    pub fn system() -> io::Result<Self> {
        Self::new("/")
    }

    /// The version of the systemd installed on the host (its `libsystemd-shared-NNN.so`), for
    /// predictions made without a PID 1 to ask (`portctl validate`).
    pub fn installed_systemd(&self) -> Option<Version> {
        let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
        for dir in [
            format!("/usr/lib/{multiarch}/systemd"),
            "/usr/lib/systemd".to_string(),
            "/usr/lib64/systemd".to_string(),
        ] {
            let Ok(Some(entries)) = self.fs.read_dir(Path::new(&dir)) else {
                continue;
            };
            let found = entries.iter().find_map(|e| {
                let name = e.name.to_string_lossy();
                name.strip_prefix("libsystemd-shared-")
                    .and_then(|rest| rest.strip_suffix(".so"))
                    .and_then(Version::parse)
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Whether the host has a unit of that name in its unit search path: its own file, or
    /// for an instance its template (`user@0.service` is the host's `user@.service`).
    pub fn has_unit(&self, unit: &str) -> bool {
        let file = |name: &str| {
            UNIT_SEARCH_PATH
                .iter()
                .any(|d| matches!(self.fs.lstat(&Path::new(d).join(name)), Ok(Some(_))))
        };
        file(unit) || names::template_of(unit).is_some_and(|t| file(&t))
    }

    /// The root directory everything is resolved in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Held while the unit directories are checked and changed.
    pub(crate) fn write_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding it leaves the directories as the journal describes: go on.
        self.write_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The host's file system, to read through.
    pub fn fs(&self) -> &ImageRoot {
        &self.fs
    }
}
