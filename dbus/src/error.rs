//! The D-Bus errors of `org.freedesktop.portable1` (section 1.7 of the reference), one enum
//! used by the daemon to reply and by the client to understand replies.

/// Every error name portabled 252 sends, with the message as its payload.
#[derive(Debug, Clone, PartialEq, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.portable1")]
pub enum PortableError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// `org.freedesktop.portable1.NoSuchImage`
    NoSuchImage(String),
    /// `org.freedesktop.portable1.BadImageType`
    BadImageType(String),
}
