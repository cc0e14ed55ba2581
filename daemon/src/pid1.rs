//! The engine's questions to PID 1, over `org.freedesktop.systemd1`: whether a
//! unit (or, for a template, any instance) is activating, active, reloading or deactivating.
//! Without a service manager on the bus no unit can be active: that is logged once. Its
//! version decides which systemd's files an attach writes.

use std::sync::atomic::{AtomicBool, Ordering};

use portctl_dbus::systemd1;
use portctl_engine::portable::ServiceManager;
use portctl_engine::version::Version;
use zbus::Connection;

const ACTIVE_STATES: [&str; 4] = ["activating", "active", "reloading", "deactivating"];

/// Whether a call failed because no service manager is on the bus.
pub fn service_manager_absent(e: &zbus::Error) -> bool {
    portctl_dbus::error::destination_absent(e)
}

fn no_such_unit(e: &zbus::Error) -> bool {
    portctl_dbus::error::name_of(e).as_deref() == Some(portctl_dbus::error::NO_SUCH_UNIT)
}

pub struct SystemdManager {
    conn: Connection,
    handle: tokio::runtime::Handle,
    offline_logged: AtomicBool,
    /// `--systemd-version=`: behave as this version whatever PID 1 says.
    pinned: Option<Version>,
}

impl SystemdManager {
    pub fn new(conn: Connection, handle: tokio::runtime::Handle, pinned: Option<Version>) -> Self {
        Self {
            conn,
            handle,
            offline_logged: AtomicBool::new(false),
            pinned,
        }
    }

    async fn query_version(&self) -> zbus::Result<String> {
        systemd1::ManagerProxy::builder(&self.conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?
            .version()
            .await
    }

    /// The version behaved as, asked from async code (the `ServiceManager` one blocks).
    pub async fn behave_as(&self) -> Version {
        let asked = match self.pinned {
            Some(v) => Some(v),
            None => self
                .query_version()
                .await
                .ok()
                .and_then(|v| Version::parse(&v)),
        };
        asked.unwrap_or(Version::NEWEST).behave_as()
    }

    fn offline(&self, e: &zbus::Error) -> bool {
        let absent = service_manager_absent(e);
        if absent && !self.offline_logged.swap(true, Ordering::Relaxed) {
            tracing::info!("no service manager on the bus: no unit can be active");
        }
        absent
    }

    async fn query(&self, unit: &str) -> zbus::Result<bool> {
        let m = systemd1::ManagerProxy::new(&self.conn).await?;
        if let Some((prefix, suffix)) = unit.split_once("@.") {
            // A template: is any instance active?
            let pattern = format!("{prefix}@*.{suffix}");
            let rows = m
                .list_units_by_patterns(&ACTIVE_STATES, &[pattern.as_str()])
                .await?;
            return Ok(!rows.is_empty());
        }
        // GetUnit first: a unit PID 1 has not loaded cannot be active, and asking for the
        // properties of its object path would make PID 1 load it (as v252 does).
        let path = match m.get_unit(unit).await {
            Ok(path) => path,
            Err(e) if no_such_unit(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        let u = systemd1::UnitProxy::builder(&self.conn)
            .path(path)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        match u.active_state().await {
            Ok(state) => Ok(ACTIVE_STATES.contains(&state.as_str())),
            Err(e) if no_such_unit(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl ServiceManager for SystemdManager {
    /// PID 1's `Version`, read at each operation (a package upgrade re-executes PID 1).
    fn version(&self) -> Option<Version> {
        if self.pinned.is_some() {
            return self.pinned;
        }
        match self.handle.block_on(self.query_version()) {
            Ok(v) => {
                let parsed = Version::parse(&v);
                if parsed.is_none() {
                    tracing::warn!("cannot tell the version of the service manager from {v:?}");
                }
                parsed
            }
            Err(e) => {
                if !self.offline(&e) {
                    tracing::warn!("cannot read the version of the service manager: {e}");
                }
                None
            }
        }
    }

    fn is_active(&self, unit: &str) -> Result<bool, String> {
        // Called from blocking threads (spawn_blocking), never from the runtime's own.
        match self.handle.block_on(self.query(unit)) {
            Ok(active) => Ok(active),
            Err(e) if self.offline(&e) => Ok(false),
            Err(e) => Err(format!(
                "Failed to ask the service manager whether {unit} is active: {e}"
            )),
        }
    }
}
