//! The engine's error type. Each variant names the image, the path and the step that failed;
//! the D-Bus layer maps them onto the reference's error names.

use std::io;
use std::path::PathBuf;

use crate::os_release::ReleaseReadError;
use crate::parse::names::ImageRefError;
use crate::units::UnitError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No image '{0}' found.")]
    NoSuchImage(String),
    #[error(
        "Type of image '{0}' not recognized; supported image types are directories/btrfs \
         subvolumes, block devices, and raw disk image files with suffix '.raw'."
    )]
    BadImageType(String),
    #[error(transparent)]
    BadImageRef(#[from] ImageRefError),
    #[error("Image '{0}' lacks os-release data, refusing.")]
    NoOsRelease(String),
    #[error("Image '{image}': {source}")]
    OsRelease {
        image: String,
        #[source]
        source: ReleaseReadError,
    },
    #[error("Image '{image}': {source}")]
    Unit {
        image: String,
        #[source]
        source: UnitError,
    },
    #[error(transparent)]
    Raw(Box<RawError>),
    /// `org.freedesktop.DBus.Error.InvalidArgs`
    #[error("{0}")]
    InvalidArgs(String),
    /// No unit file of the image matches: `InvalidArgs`, from 262 on
    /// `org.freedesktop.portable1.NoMatchingUnitFiles`.
    #[error("{0}")]
    NoMatchingUnits(String),
    /// `org.freedesktop.systemd1.UnitExists`
    #[error("{0}")]
    UnitExists(String),
    /// `org.freedesktop.systemd1.NoSuchUnit`
    #[error("{0}")]
    NoSuchUnit(String),
    /// `System.Error.ESTALE`
    #[error("{0}")]
    Stale(String),
    /// `System.Error.ENOTEMPTY`
    #[error("{0}")]
    NotEmpty(String),
    /// A read-only image lacks paths the profile mounts over.
    #[error("Image '{image}' is read-only and lacks what profile '{profile}' mounts over: {}. Add them when building the image, or attach with --force.", paths.join(", "))]
    MissingMountPoints {
        image: String,
        profile: String,
        paths: Vec<String>,
    },
    /// An image's units would widen what the profile allows (docs/security.md).
    #[error("Image '{image}' has units that widen what profile '{profile}' allows: {}. Attach with --profile=trusted, or with --force, to allow it.", findings.join("; "))]
    WidensProfile {
        image: String,
        profile: String,
        findings: Vec<String>,
    },
    /// `System.Error.EBUSY`
    #[error("{0}")]
    Busy(String),
    /// `System.Error.EROFS`
    #[error("{0}")]
    ReadOnly(String),
    /// `org.freedesktop.DBus.Error.NotSupported`
    #[error("{0}")]
    NotSupported(String),
    /// The service manager could not answer.
    #[error("{0}")]
    ServiceManager(String),
    #[error("Unit profile '{0}' not found in any profile directory.")]
    NoSuchProfile(String),
    #[error("Unit profile name not valid: {0}")]
    BadProfileName(String),
    /// An operation failed and undoing it failed too: the cause, and what is left as it is.
    #[error("{cause} Undoing it failed as well, left as it is: {}.", left.join("; "))]
    RollbackFailed {
        cause: Box<Error>,
        left: Vec<String>,
    },
    #[error("{what} '{}': {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl From<RawError> for Error {
    fn from(e: RawError) -> Self {
        Self::Raw(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the step and the path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn context(self, what: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            what,
            path: path.into(),
            source,
        })
    }
}

/// Why a raw image could not be opened. The messages name the image.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("Couldn't identify a suitable partition table or file system in '{image}': {found}.")]
    Unrecognized { image: String, found: String },
    #[error("Unsupported file system in '{image}'{part}: {found}.")]
    UnsupportedFs {
        image: String,
        part: String,
        found: String,
    },
    #[error("Bad partition table in '{image}': {source}.")]
    Gpt {
        image: String,
        #[source]
        source: crate::parse::gpt::GptError,
    },
    #[error("{source} in image '{image}'.")]
    Choice {
        image: String,
        #[source]
        source: crate::parse::gpt::ChoiceError,
    },
    #[error("Cannot set up a loop device for '{image}': {source}")]
    Loop {
        image: String,
        #[source]
        source: io::Error,
    },
    #[error("Cannot mount '{image}'{part}, the image may be corrupted: {source}")]
    Mount {
        image: String,
        part: String,
        #[source]
        source: Box<crate::sys::mount::MountError>,
    },
    #[error("Cannot read '{image}': {source}")]
    Io {
        image: String,
        #[source]
        source: io::Error,
    },
}
