//! Engine errors to the D-Bus errors v252 answers with (portctl_dbus::error).

use portctl_dbus::error::{self as names, PortableError};
use portctl_engine::version::{Behaviour, Version};
use portctl_engine::Error;

/// The error as the portabled of `version` names it.
pub fn to_wire(e: Error, version: Version) -> PortableError {
    let message = e.to_string();
    match e {
        // The cause names the error; the message tells both.
        Error::RollbackFailed { cause, .. } => PortableError {
            message,
            ..to_wire(*cause, version)
        },
        Error::NoMatchingUnits(_) if version.has(Behaviour::NoMatchingUnitFilesError) => {
            PortableError::new(names::NO_MATCHING_UNIT_FILES, message)
        }
        Error::NoMatchingUnits(_) => PortableError::new(names::INVALID_ARGS, message),
        Error::NoSuchImage(_) => PortableError::new(names::NO_SUCH_IMAGE, message),
        Error::BadImageType(_) => PortableError::new(names::BAD_IMAGE_TYPE, message),
        Error::BadImageRef(_)
        | Error::InvalidArgs(_)
        | Error::BadProfileName(_)
        | Error::NoSuchProfile(_)
        | Error::MissingMountPoints { .. }
        | Error::WidensProfile { .. }
        | Error::NoOsRelease(_)
        | Error::Raw(_)
        | Error::Unit { .. }
        | Error::OsRelease { .. } => PortableError::new(names::INVALID_ARGS, message),
        Error::UnitExists(_) => PortableError::new(names::UNIT_EXISTS, message),
        Error::NoSuchUnit(_) => PortableError::new(names::NO_SUCH_UNIT, message),
        Error::Stale(_) => PortableError::errno("ESTALE", message),
        Error::NotEmpty(_) => PortableError::errno("ENOTEMPTY", message),
        Error::Busy(_) => PortableError::errno("EBUSY", message),
        Error::ReadOnly(_) => PortableError::errno("EROFS", message),
        Error::NotSupported(_) => PortableError::new(names::NOT_SUPPORTED, message),
        Error::ServiceManager(_) => PortableError::new(names::FAILED, message),
        Error::Io { ref source, .. } => {
            let errno = source.raw_os_error().map(errno_name).unwrap_or("EIO");
            match errno {
                "EACCES" | "EPERM" => PortableError::new(names::ACCESS_DENIED, message),
                "EINVAL" => PortableError::new(names::INVALID_ARGS, message),
                "EOPNOTSUPP" => PortableError::new(names::NOT_SUPPORTED, message),
                e => PortableError::errno(e, message),
            }
        }
    }
}

fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ELOOP => "ELOOP",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ESTALE => "ESTALE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EMEDIUMTYPE => "EMEDIUMTYPE",
        libc::EDQUOT => "EDQUOT",
        libc::ENOTCONN => "ENOTCONN",
        _ => "EIO",
    }
}
