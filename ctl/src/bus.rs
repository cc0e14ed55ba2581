//! The connection to portctld (or systemd-portabled) and to PID 1.

use anyhow::anyhow;
use portctl_dbus::error::PortableError;
use zbus::Connection;

use crate::Cli;

/// Connects to the bus the options name: `--bus-address`, or the system bus
/// (`$DBUS_SYSTEM_BUS_ADDRESS` honoured).
pub async fn connect(cli: &Cli) -> anyhow::Result<Connection> {
    let builder = match (&cli.host, &cli.machine, &cli.bus_address) {
        (Some(host), _, _) => zbus::connection::Builder::address(remote_address(host)?.as_str()),
        (None, Some(machine), _) => zbus::connection::Builder::address(
            format!(
                "unixexec:path=systemd-stdio-bridge,argv0=systemd-stdio-bridge,argv1=--machine={}",
                address_value(machine)?
            )
            .as_str(),
        ),
        (None, None, Some(a)) => zbus::connection::Builder::address(a.as_str()),
        (None, None, None) => zbus::connection::Builder::system(),
    };
    builder.build().await.map_err(|e| {
        let hint = match &e {
            zbus::Error::Connection(io, _)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                "\nHint: no D-Bus daemon listens there; is the dbus package installed and running?"
            }
            _ => "",
        };
        anyhow!("Failed to connect to the system bus: {e}{hint}")
    })
}

/// A value for a `unixexec:` address. zbus passes these on without percent-decoding, so
/// they go in as they are; the characters that would break the address are refused.
fn address_value(s: &str) -> anyhow::Result<&str> {
    if s.is_empty() || s.contains([',', ';', '=', '%']) {
        return Err(anyhow!("Invalid host or container name '{s}'."));
    }
    Ok(s)
}

/// `-H [USER@]HOST[:PORT]`: the remote system bus through `ssh HOST systemd-stdio-bridge`, as
/// systemctl does.
fn remote_address(host: &str) -> anyhow::Result<String> {
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (host, None),
    };
    let mut args = vec!["-xT".to_string()];
    if let Some(p) = port {
        args.push("-p".into());
        args.push(p.into());
    }
    args.extend(["--".into(), host.to_string(), "systemd-stdio-bridge".into()]);
    let mut addr = "unixexec:path=ssh,argv0=ssh".to_string();
    for (i, a) in args.iter().enumerate() {
        addr.push_str(&format!(",argv{}={}", i + 1, address_value(a)?));
    }
    Ok(addr)
}

/// Whether the connection goes to another system, where local image paths mean nothing.
pub fn is_remote(cli: &Cli) -> bool {
    cli.host.is_some() || cli.machine.is_some()
}

/// The message of a failed call, as portablectl prints it, with a hint when nothing serves
/// the portable1 name on the bus.
pub fn message(e: zbus::Error) -> String {
    let e = PortableError::from(e);
    let missing_service = matches!(
        e.name.as_str(),
        portctl_dbus::error::SERVICE_UNKNOWN | portctl_dbus::error::NAME_HAS_NO_OWNER
    ) && e.message.contains(portctl_dbus::BUS_NAME);
    let text = if e.message.is_empty() {
        e.name
    } else {
        e.message
    };
    if missing_service {
        format!("{text}\nHint: neither portctld nor systemd-portabled runs or can be activated on this bus; install portctl with 'make install' (README).")
    } else {
        text
    }
}

/// Reloads PID 1 (`Manager.Reload`), warning instead of failing when there is no service
/// manager on the bus (a container, a chroot, an image build).
pub async fn reload(conn: &Connection) {
    let r = match portctl_dbus::systemd1::ManagerProxy::new(conn).await {
        Ok(m) => m.reload().await,
        Err(e) => Err(e),
    };
    if let Err(e) = r {
        if portctl_dbus::error::destination_absent(&e) {
            eprintln!("No service manager on the bus, not reloading.")
        } else {
            eprintln!("Failed to reload daemon: {}", message(e))
        }
    }
}
