//! The connection to portctld (or systemd-portabled) and to PID 1.

use anyhow::anyhow;
use portctl_dbus::error::PortableError;
use zbus::Connection;

use crate::Cli;

/// Connects to the bus the options name: `--bus-address`, or the system bus
/// (`$DBUS_SYSTEM_BUS_ADDRESS` honoured).
pub async fn connect(cli: &Cli) -> anyhow::Result<Connection> {
    if cli.host.is_some() || cli.machine.is_some() {
        return Err(anyhow!(
            "Remote transports (-H, -M) are not supported by this version of portctl yet."
        ));
    }
    let builder = match &cli.bus_address {
        Some(a) => zbus::connection::Builder::address(a.as_str()),
        None => zbus::connection::Builder::system(),
    };
    builder
        .build()
        .await
        .map_err(|e| anyhow!("Failed to connect to the system bus: {e}"))
}

/// The message of a failed call, as portablectl prints it.
pub fn message(e: zbus::Error) -> String {
    let e = PortableError::from(e);
    if e.message.is_empty() {
        e.name
    } else {
        e.message
    }
}

fn error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, ..) => Some(name.to_string()),
        zbus::Error::FDO(e) => Some(zbus::DBusError::name(e.as_ref()).to_string()),
        _ => None,
    }
}

/// Reloads PID 1 (`Manager.Reload`), warning instead of failing when there is no service
/// manager on the bus (a container, a chroot, an image build).
pub async fn reload(conn: &Connection) {
    let r = conn
        .call_method(
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "Reload",
            &(),
        )
        .await;
    if let Err(e) = r {
        match error_name(&e).as_deref() {
            Some(
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner",
            ) => {
                eprintln!("No service manager on the bus, not reloading.")
            }
            _ => eprintln!("Failed to reload daemon: {}", message(e)),
        }
    }
}
