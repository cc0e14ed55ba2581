//! Attach, detach, reattach and state: the on-disk contract with systemd
//! (docs/compatibility.md). An attach goes in three steps: [`inspect`] reads the host and the
//! images into plain facts, [`plan`] decides on them without any I/O, and [`apply`] checks
//! the plan against the host under the write lock and writes it in one transaction.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::version::Version;

mod apply;
pub mod changes;
mod detach;
pub mod inspect;
mod metadata;
pub mod plan;
mod reattach;
mod state;

pub use changes::{Change, ChangeType};
pub use detach::DetachOptions;
pub use metadata::{ExtensionReleaseBytes, Metadata};
pub use state::State;

pub const PERSISTENT_ATTACHED: &str = "/etc/systemd/system.attached";
pub const RUNTIME_ATTACHED: &str = "/run/systemd/system.attached";

/// The longest file name (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// The directory attached units go to.
pub fn attached_dir(runtime: bool) -> &'static Path {
    Path::new(if runtime {
        RUNTIME_ATTACHED
    } else {
        PERSISTENT_ATTACHED
    })
}

/// Where the link to an image goes: `/etc/portables/<basename>` or `/run/portables/...`.
pub fn image_link(image_path: &str, runtime: bool) -> PathBuf {
    let base = image_path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(image_path);
    Path::new(if runtime {
        "/run/portables"
    } else {
        "/etc/portables"
    })
    .join(base)
}

/// How unit files and profiles get into the attached directory (`portablectl --copy=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyMode {
    /// Units copied, profiles symlinked (`""` on the wire).
    Auto,
    /// Units and profiles copied.
    Copy,
    /// Units symlinked (directory images only), profiles symlinked.
    Symlink,
    /// Like auto (units copied, profiles symlinked); the image itself is not copied.
    Mixed,
}

impl CopyMode {
    /// Parses the wire value.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "auto" => Ok(Self::Auto),
            "copy" => Ok(Self::Copy),
            "symlink" => Ok(Self::Symlink),
            "mixed" => Ok(Self::Mixed),
            _ => Err(Error::InvalidArgs(format!("Unknown copy mode '{s}'"))),
        }
    }
}

/// What the engine asks of the service manager (PID 1). The daemon implements it over
/// `org.freedesktop.systemd1`; [`Offline`] is for hosts without one.
pub trait ServiceManager: Sync {
    /// Whether the unit (for a template: any of its instances) is activating, active,
    /// reloading or deactivating. The error is a message for the caller.
    fn is_active(&self, unit: &str) -> std::result::Result<bool, String>;

    /// The version of systemd that runs the units, `None` when it cannot be told.
    fn version(&self) -> Option<Version> {
        None
    }
}

/// No service manager: no unit can be active, and attach writes what the newest systemd
/// portctl knows expects (an image builder's case).
pub struct Offline;

impl ServiceManager for Offline {
    fn is_active(&self, _unit: &str) -> std::result::Result<bool, String> {
        Ok(false)
    }
}

/// No service manager, and the files written for the systemd of this version (what
/// `--systemd-version=` asks for, and what tests compare with that version's portabled).
pub struct OfflineAs(pub Version);

impl ServiceManager for OfflineAs {
    fn is_active(&self, _unit: &str) -> std::result::Result<bool, String> {
        Ok(false)
    }

    fn version(&self) -> Option<Version> {
        Some(self.0)
    }
}

impl crate::Host {
    /// The image and extensions of an attach with their `.v/` directories resolved
    /// ([`Host::resolve_all`]).
    pub(crate) fn picked(
        &self,
        pid1: &dyn ServiceManager,
        arg: &str,
        o: &AttachOptions,
    ) -> crate::error::Result<(String, AttachOptions)> {
        let (arg, extensions) = self.resolve_all(
            behave_as(pid1),
            crate::version::Behaviour::AttachResolvesLinks,
            arg,
            &o.extensions,
        )?;
        Ok((
            arg,
            AttachOptions {
                extensions,
                ..o.clone()
            },
        ))
    }
}

impl crate::Host {
    /// The image and extensions as inspect and the state name them: search-path symlinks
    /// resolved from 262 on, `.v/` directories picked ([`Host::resolve_all`]).
    pub(crate) fn reported(
        &self,
        pid1: &dyn ServiceManager,
        arg: &str,
        extensions: &[String],
    ) -> crate::error::Result<(String, Vec<String>)> {
        let links = crate::version::Behaviour::SearchPathLinksResolved;
        self.resolve_all(behave_as(pid1), links, arg, extensions)
    }
}

/// The version portctl behaves as under `pid1` (docs/compatibility.md, "By systemd version").
pub fn behave_as(pid1: &dyn ServiceManager) -> Version {
    pid1.version().unwrap_or(Version::NEWEST).behave_as()
}

fn active(pid1: &dyn ServiceManager, unit: &str) -> Result<bool> {
    pid1.is_active(unit).map_err(Error::ServiceManager)
}

/// Attach options (the arguments of `AttachImage`).
#[derive(Debug, Clone)]
pub struct AttachOptions {
    pub matches: Vec<String>,
    pub profile: String,
    pub runtime: bool,
    pub copy: CopyMode,
    /// `FORCE_ATTACH`: skip the exists/active checks and replace existing files; also attach
    /// read-only images that lack mount points.
    pub force: bool,
    /// Extension images (names or paths), in overlay order.
    pub extensions: Vec<String>,
    /// `FORCE_EXTENSION`: take an extension's single extension-release file whatever its
    /// name, and let systemd relax its own check (`x-systemd.relax-extension-release-check`).
    pub relax_extension_check: bool,
}
