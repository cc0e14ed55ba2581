//! Who may call what: uid 0 passes; everybody else is asked about at polkit (subject
//! `system-bus-name`), interactively only when the message allows it. The uid is the one
//! dbus-daemon took from the kernel (`SO_PEERCRED`) when the caller connected; nothing is
//! read from `/proc/<pid>`: the process that connected may have handed the socket to another
//! and exec'd a setuid program since, so its capabilities say nothing about the caller
//! (docs/security.md, "Who and what is trusted"). sd-bus refuses the same shortcut.

use std::collections::HashMap;

use portctl_dbus::error::{self as names, PortableError};
use portctl_dbus::polkit::{self, AuthorityProxy};
use zbus::message::{Flags, Header};
use zbus::Connection;
use zbus::Variant as Value;

/// The polkit actions of `org.freedesktop.portable1`.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    Inspect,
    Attach,
    Manage,
}

impl Action {
    pub fn id(self) -> &'static str {
        match self {
            Self::Inspect => polkit::INSPECT_IMAGES,
            Self::Attach => polkit::ATTACH_IMAGES,
            Self::Manage => polkit::MANAGE_IMAGES,
        }
    }
}

/// Checks that the sender of `hdr` may do `action`.
pub async fn authorize(
    conn: &Connection,
    hdr: &Header<'_>,
    action: Action,
) -> Result<(), PortableError> {
    let sender = hdr
        .sender()
        .ok_or_else(|| {
            PortableError::new(
                names::ACCESS_DENIED,
                "Access denied: the caller has no bus name",
            )
        })?
        .to_owned();
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let creds = dbus
        .get_connection_credentials(sender.clone().into())
        .await?;
    let uid = creds.unix_user_id();
    if uid == Some(0) {
        return Ok(());
    }
    let interactive = hdr
        .primary()
        .flags()
        .contains(Flags::ALLOW_INTERACTIVE_AUTH);
    let mut subject_details: HashMap<&str, Value<'_>> = HashMap::new();
    subject_details.insert("name", Value::from(sender.as_str()));
    let subject = ("system-bus-name", subject_details);
    let flags = if interactive {
        polkit::ALLOW_USER_INTERACTION
    } else {
        0
    };
    let authority = AuthorityProxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await;
    let reply = match authority {
        Ok(authority) => {
            authority
                .check_authorization(&subject, action.id(), &HashMap::new(), flags, "")
                .await
        }
        Err(e) => Err(e),
    };
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(
                action = action.id(),
                uid,
                "polkit unavailable, denying: {e}"
            );
            return Err(PortableError::new(
                names::ACCESS_DENIED,
                format!(
                    "Access denied: {} needs polkit authorization, and polkit is not available.",
                    action.id()
                ),
            ));
        }
    };
    let (authorized, challenge, _details) = reply;
    if authorized {
        Ok(())
    } else if challenge {
        Err(PortableError::new(
            names::INTERACTIVE_AUTHORIZATION_REQUIRED,
            "Interactive authentication required.",
        ))
    } else {
        Err(PortableError::new(names::ACCESS_DENIED, "Access denied"))
    }
}
