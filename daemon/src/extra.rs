//! `org.portctl.Manager1` on the manager object: what portctl's own client asks of portctld
//! beyond the v252 interfaces (which stay as they are). Clients of systemd-portabled never
//! see it.

use std::sync::Arc;

use portctl_dbus::error::PortableError;
use zbus::interface;

use crate::state::State;

pub struct Extra {
    pub state: Arc<State>,
}

#[interface(name = "org.portctl.Manager1")]
impl Extra {
    /// The journals of interrupted operations that recovery could neither complete nor roll
    /// back, set aside for the administrator (docs/security.md, "Crashes and faults").
    #[zbus(property(emits_changed_signal = "false"), name = "SetAsideJournals")]
    async fn set_aside_journals(&self) -> Result<Vec<String>, PortableError> {
        self.state
            .blocking(|h, _| {
                Ok(h.set_aside_journals()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect())
            })
            .await
    }
}
