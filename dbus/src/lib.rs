//! The `org.freedesktop.portable1` interface as both sides see it: bus and object names, the
//! object-path escaping of image names, and the error names of systemd 252.

pub mod error;
pub mod path;
pub mod proxy;
pub mod systemd1;

pub use error::PortableError;

/// The well-known bus name.
pub const BUS_NAME: &str = "org.freedesktop.portable1";
/// The Manager object.
pub const MANAGER_PATH: &str = "/org/freedesktop/portable1";
/// The parent of the Image objects.
pub const IMAGE_PATH_PREFIX: &str = "/org/freedesktop/portable1/image";
