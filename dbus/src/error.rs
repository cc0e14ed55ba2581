//! The D-Bus errors of `org.freedesktop.portable1` (as systemd 252 names them): one type
//! used by the daemon to reply and by the client to read replies. The names are the reference's:
//! two in the portable1 namespace, systemd1's unit errors, the standard DBus errors and
//! `System.Error.E*` for plain errnos.

use std::fmt;

use zbus::message::Header;
use zbus::names::ErrorName;
use zbus::{DBusError, Message};

pub const NO_SUCH_IMAGE: &str = "org.freedesktop.portable1.NoSuchImage";
pub const BAD_IMAGE_TYPE: &str = "org.freedesktop.portable1.BadImageType";
/// From systemd 262 on (before: `InvalidArgs`).
pub const NO_MATCHING_UNIT_FILES: &str = "org.freedesktop.portable1.NoMatchingUnitFiles";
pub const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
pub const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
pub const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
pub const NOT_SUPPORTED: &str = "org.freedesktop.DBus.Error.NotSupported";
pub const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
pub const INTERACTIVE_AUTHORIZATION_REQUIRED: &str =
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired";
pub const LIMITS_EXCEEDED: &str = "org.freedesktop.DBus.Error.LimitsExceeded";
pub const FAILED: &str = "org.freedesktop.DBus.Error.Failed";
pub const SERVICE_UNKNOWN: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
pub const NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";

/// The D-Bus error name of a failed call, however zbus wrapped it.
pub fn name_of(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, ..) => Some(name.to_string()),
        zbus::Error::FDO(e) => Some(zbus::DBusError::name(e.as_ref()).to_string()),
        _ => None,
    }
}

/// Whether a call failed because nothing owns (or can be activated for) its destination.
pub fn destination_absent(e: &zbus::Error) -> bool {
    matches!(
        name_of(e).as_deref(),
        Some(SERVICE_UNKNOWN | NAME_HAS_NO_OWNER)
    )
}

/// An error reply: its name and its message (clients print the message verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortableError {
    pub name: String,
    pub message: String,
}

impl PortableError {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// `System.Error.<ERRNO>` (e.g. `System.Error.EBUSY`).
    pub fn errno(errno: &str, message: impl Into<String>) -> Self {
        Self::new(&format!("System.Error.{errno}"), message)
    }
}

impl fmt::Display for PortableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PortableError {}

impl DBusError for PortableError {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        Message::error(call, self.name()).build(&(self.message.as_str(),))
    }

    fn name(&self) -> ErrorName<'_> {
        ErrorName::try_from(self.name.as_str())
            .unwrap_or_else(|_| ErrorName::from_static_str_unchecked(FAILED))
    }

    fn description(&self) -> Option<&str> {
        Some(&self.message)
    }
}

impl From<zbus::Error> for PortableError {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, message, _) => Self {
                name: name.to_string(),
                message: message.unwrap_or_default(),
            },
            // Standard names come back as fdo errors: keep the name and the bare message.
            zbus::Error::FDO(e) => Self::from(*e),
            e => Self::new(FAILED, e.to_string()),
        }
    }
}

impl From<zbus::fdo::Error> for PortableError {
    fn from(e: zbus::fdo::Error) -> Self {
        Self::new(
            &DBusError::name(&e).to_string(),
            DBusError::description(&e).unwrap_or_default(),
        )
    }
}
