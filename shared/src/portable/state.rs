//! The state of an image (section "state" of docs/compatibility.md): detached, attached,
//! enabled or running, persistent or runtime, worked out from the markers of the attached
//! drop-ins, the enablement links and PID 1.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::parse::marker;
use crate::root::NodeKind;
use crate::version::Behaviour;
use crate::Host;

use super::detach::Attached;
use super::{active, attached_dir, ServiceManager, PERSISTENT_ATTACHED, RUNTIME_ATTACHED};

/// The states `GetImageState` answers, as v252 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Detached,
    Attached,
    AttachedRuntime,
    Enabled,
    EnabledRuntime,
    Running,
    RunningRuntime,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detached => "detached",
            Self::Attached => "attached",
            Self::AttachedRuntime => "attached-runtime",
            Self::Enabled => "enabled",
            Self::EnabledRuntime => "enabled-runtime",
            Self::Running => "running",
            Self::RunningRuntime => "running-runtime",
        }
    }
}

/// Directories whose `*.wants/` (etc.) symlinks make a unit "enabled"; systemd puts those of
/// portable units in the attached directories.
const ENABLE_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    PERSISTENT_ATTACHED,
    RUNTIME_ATTACHED,
];

/// Whether a directory entry is a `*.wants`, `*.requires` or `*.upholds` directory.
pub(super) fn is_dependency_dir(name: &str) -> bool {
    name.ends_with(".wants") || name.ends_with(".requires") || name.ends_with(".upholds")
}

impl Host {
    /// Whether some `*.wants/`, `*.requires/` or `*.upholds/` directory, or an alias, links to
    /// `unit` (systemd's unit file state "enabled" or "enabled-runtime").
    fn unit_enabled(&self, unit: &str) -> bool {
        for base in ENABLE_DIRS {
            let Ok(Some(entries)) = self.fs().read_dir(Path::new(base)) else {
                continue;
            };
            for e in entries {
                let n = e.name.to_string_lossy();
                if e.kind == NodeKind::Directory
                    && (n.ends_with(".wants")
                        || n.ends_with(".requires")
                        || n.ends_with(".upholds"))
                    && matches!(
                        self.fs().lstat(&Path::new(base).join(&e.name).join(unit)),
                        Ok(Some(_))
                    )
                {
                    return true;
                }
            }
        }
        false
    }

    /// The state of what was attached from `arg` (a name or a path; the image need not exist)
    /// with (at least) these `extensions`.
    pub fn image_state(
        &self,
        pid1: &dyn ServiceManager,
        arg: &str,
        extensions: &[String],
    ) -> Result<State> {
        let (arg, extensions) = &self.reported(pid1, arg, extensions)?;
        let attached = AttachedUnits::read(self)?;
        self.state_among(pid1, &attached, arg, extensions)
    }

    /// The states of many images (`ListImages`), reading the attached directories once.
    pub fn image_states(
        &self,
        pid1: &dyn ServiceManager,
        args: &[&str],
    ) -> Result<Vec<Result<State>>> {
        let attached = AttachedUnits::read(self)?;
        Ok(args
            .iter()
            .map(|arg| self.state_among(pid1, &attached, arg, &[]))
            .collect())
    }

    fn state_among(
        &self,
        pid1: &dyn ServiceManager,
        attached: &AttachedUnits,
        arg: &str,
        extensions: &[String],
    ) -> Result<State> {
        let any_layer = super::behave_as(pid1).has(Behaviour::VersionedImageNames);
        let found = marker::best(
            [(false, &attached.persistent), (true, &attached.runtime)]
                .into_iter()
                .flat_map(|(runtime, all)| all.iter().map(move |a| (runtime, a)))
                .filter_map(|(runtime, a)| {
                    let m = if any_layer {
                        marker::matches_any_layer(&a.marker, arg, extensions)
                    } else {
                        marker::matches(&a.marker, arg, extensions)
                    };
                    Some((m?, (runtime, a)))
                })
                .collect(),
        );
        // Persistent attachments first, as v252 looks at them first.
        for runtime in [false, true] {
            let mut found = found
                .iter()
                .filter(|(r, _)| *r == runtime)
                .map(|(_, a)| *a)
                .peekable();
            if found.peek().is_none() {
                continue;
            }
            let mut running = false;
            let mut enabled = false;
            for a in found {
                running |= active(pid1, &a.unit)?;
                enabled |= a.has_file && self.unit_enabled(&a.unit);
            }
            return Ok(match (running, enabled, runtime) {
                (true, _, false) => State::Running,
                (true, _, true) => State::RunningRuntime,
                (false, true, false) => State::Enabled,
                (false, true, true) => State::EnabledRuntime,
                (false, false, false) => State::Attached,
                (false, false, true) => State::AttachedRuntime,
            });
        }
        Ok(State::Detached)
    }
}

impl Host {
    /// The root image of an attachment that uses the image `name` as one of its extensions,
    /// if there is one (such an image is not detached, even though no unit names it first).
    pub(crate) fn extension_user(&self, name: &str) -> Result<Option<String>> {
        let attached = AttachedUnits::read(self)?;
        for a in attached.persistent.iter().chain(&attached.runtime) {
            let toks = marker::tokens(&a.marker);
            if let Some(root) = toks.first() {
                if toks[1..]
                    .iter()
                    .any(|t| marker::match_image(t, name).is_some())
                {
                    return Ok(Some(marker::unescape(root)));
                }
            }
        }
        Ok(None)
    }
}

/// The units of both attached directories, read once.
struct AttachedUnits {
    persistent: Vec<Attached>,
    runtime: Vec<Attached>,
}

impl AttachedUnits {
    fn read(host: &Host) -> Result<Self> {
        Ok(Self {
            persistent: host.all_attached_units(attached_dir(false))?,
            runtime: host.all_attached_units(attached_dir(true))?,
        })
    }
}
