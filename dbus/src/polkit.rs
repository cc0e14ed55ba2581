//! The part of polkit's `org.freedesktop.PolicyKit1.Authority` portctld asks.

use std::collections::HashMap;

use zbus::proxy;
use zbus::Variant;

/// A subject: its kind (`system-bus-name`) and details (`name`).
pub type Subject<'a> = (&'a str, HashMap<&'a str, Variant<'a>>);

/// The actions of `org.freedesktop.portable1` (systemd-units/org.freedesktop.portable1.policy).
pub const INSPECT_IMAGES: &str = "org.freedesktop.portable1.inspect-images";
pub const ATTACH_IMAGES: &str = "org.freedesktop.portable1.attach-images";
pub const MANAGE_IMAGES: &str = "org.freedesktop.portable1.manage-images";

/// `CheckAuthorization` flags: the user may be asked (through an agent).
pub const ALLOW_USER_INTERACTION: u32 = 1;

#[proxy(
    interface = "org.freedesktop.PolicyKit1.Authority",
    default_service = "org.freedesktop.PolicyKit1",
    default_path = "/org/freedesktop/PolicyKit1/Authority"
)]
pub trait Authority {
    /// Returns (authorized, a challenge would authorize, details).
    fn check_authorization(
        &self,
        subject: &Subject<'_>,
        action_id: &str,
        details: &HashMap<&str, &str>,
        flags: u32,
        cancellation_id: &str,
    ) -> zbus::Result<(bool, bool, HashMap<String, String>)>;
}
