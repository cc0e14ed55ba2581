//! The engine's questions to PID 1, over `org.freedesktop.systemd1` (section 1.9): whether a
//! unit (or, for a template, any instance) is activating, active, reloading or deactivating.
//! Without a service manager on the bus no unit can be active: that is logged once.

use std::sync::atomic::{AtomicBool, Ordering};

use portctl_engine::portable::ServiceManager;
use zbus::Connection;

const ACTIVE_STATES: [&str; 4] = ["activating", "active", "reloading", "deactivating"];

/// The D-Bus error name of a failed call, however zbus wrapped it.
fn error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, ..) => Some(name.to_string()),
        zbus::Error::FDO(e) => Some(zbus::DBusError::name(e.as_ref()).to_string()),
        _ => None,
    }
}

/// Whether a call failed because no service manager is on the bus.
pub fn service_manager_absent(e: &zbus::Error) -> bool {
    matches!(
        error_name(e).as_deref(),
        Some(
            "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner"
        )
    )
}

pub struct SystemdManager {
    conn: Connection,
    handle: tokio::runtime::Handle,
    offline_logged: AtomicBool,
}

impl SystemdManager {
    pub fn new(conn: Connection, handle: tokio::runtime::Handle) -> Self {
        Self {
            conn,
            handle,
            offline_logged: AtomicBool::new(false),
        }
    }

    fn offline(&self, e: &zbus::Error) -> bool {
        let absent = service_manager_absent(e);
        if absent && !self.offline_logged.swap(true, Ordering::Relaxed) {
            tracing::info!("no service manager on the bus: no unit can be active");
        }
        absent
    }

    async fn query(&self, unit: &str) -> zbus::Result<bool> {
        if let Some((prefix, suffix)) = unit.split_once("@.") {
            // A template: is any instance active?
            let pattern = format!("{prefix}@*.{suffix}");
            let reply = self
                .conn
                .call_method(
                    Some("org.freedesktop.systemd1"),
                    "/org/freedesktop/systemd1",
                    Some("org.freedesktop.systemd1.Manager"),
                    "ListUnitsByPatterns",
                    &(ACTIVE_STATES.as_slice(), [pattern.as_str()].as_slice()),
                )
                .await?;
            type Row = (
                String,
                String,
                String,
                String,
                String,
                String,
                zbus::OwnedObjectPath,
                u32,
                String,
                zbus::OwnedObjectPath,
            );
            let rows: Vec<Row> = reply.body().deserialize()?;
            return Ok(!rows.is_empty());
        }
        // GetUnit first: a unit PID 1 has not loaded cannot be active, and asking for the
        // properties of its object path would make PID 1 load it (as v252 does).
        let loaded = self
            .conn
            .call_method(
                Some("org.freedesktop.systemd1"),
                "/org/freedesktop/systemd1",
                Some("org.freedesktop.systemd1.Manager"),
                "GetUnit",
                &(unit,),
            )
            .await;
        let path: zbus::OwnedObjectPath = match loaded {
            Ok(reply) => reply.body().deserialize()?,
            Err(e) if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.NoSuchUnit") => {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        let reply = self
            .conn
            .call_method(
                Some("org.freedesktop.systemd1"),
                path.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.freedesktop.systemd1.Unit", "ActiveState"),
            )
            .await;
        match reply {
            Ok(reply) => {
                let v: zbus::OwnedVariant = reply.body().deserialize()?;
                let state: String = v.try_into()?;
                Ok(ACTIVE_STATES.contains(&state.as_str()))
            }
            Err(e) if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.NoSuchUnit") => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

impl ServiceManager for SystemdManager {
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
