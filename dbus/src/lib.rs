//! The wire contract of portctl, one place for both sides: the `org.freedesktop.portable1`
//! interfaces (proxies in [`proxy`], the daemon serves the same names and signatures), its
//! flags, `org.portctl.Run1` and `org.portctl.Manager1`, what portctl asks of PID 1
//! ([`systemd1`]) and of polkit ([`polkit`]), the object-path escaping of image names, and the
//! error names of systemd 252 ([`error`]). No D-Bus method is named by a string elsewhere.

pub mod error;
pub mod flags;
pub mod path;
pub mod polkit;
pub mod proxy;
pub mod systemd1;

pub use error::PortableError;

/// The well-known bus name.
pub const BUS_NAME: &str = "org.freedesktop.portable1";
/// The Manager object.
pub const MANAGER_PATH: &str = "/org/freedesktop/portable1";
/// The parent of the Image objects.
pub const IMAGE_PATH_PREFIX: &str = "/org/freedesktop/portable1/image";
