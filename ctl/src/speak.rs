//! Which portablectl portctl speaks as: the one of the systemd on the other end of the bus
//! (its PID 1's `Version`), `--systemd-version=` when given, else the newest
//! (docs/compatibility.md, "By systemd version"). Decided once per run, before the first
//! text that depends on it is printed.

use std::sync::OnceLock;

use portctl_dbus::systemd1;
use portctl_engine::version::{Behaviour, Version};
use zbus::Connection;

static VERSION: OnceLock<Version> = OnceLock::new();

/// Decides the version from `pinned` or, without it, from the service manager on `conn`.
pub async fn decide(conn: &Connection, pinned: Option<Version>) {
    let v = match pinned {
        Some(v) => v,
        None => pid1_version(conn).await.unwrap_or(Version::NEWEST),
    };
    let _ = VERSION.set(v.behave_as());
}

async fn pid1_version(conn: &Connection) -> Option<Version> {
    let m = systemd1::ManagerProxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .ok()?;
    Version::parse(&m.version().await.ok()?)
}

/// The version decided (the newest when nothing was decided: offline verbs).
pub fn version() -> Version {
    *VERSION.get().unwrap_or(&Version::NEWEST)
}

/// Whether the portablectl spoken has `b`.
pub fn has(b: Behaviour) -> bool {
    version().has(b)
}
