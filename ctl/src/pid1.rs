//! What portablectl asks of PID 1 after attaching, detaching or reattaching (`--enable`, `--now`):
//! enable and disable unit files, start, stop and restart units, and wait for their jobs.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use portctl_dbus::proxy::ChangeEntry;
use portctl_dbus::systemd1;
use portctl_engine::version::Behaviour;
use zbus::{Connection, OwnedObjectPath};

use crate::{bus, speak};

const UNIT_SUFFIXES: [&str; 5] = [".service", ".target", ".socket", ".path", ".timer"];

/// Whether a change path names a unit file (not a drop-in or an image).
pub fn is_unit_change(kind: &str, path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    matches!(kind, "symlink" | "copy" | "unlink")
        && !path.contains(".d/")
        && UNIT_SUFFIXES.iter().any(|s| base.ends_with(s))
        && !path.starts_with("/etc/portables")
        && !path.starts_with("/run/portables")
}

/// The units to start after an attach, in order: sockets, paths and timers first (so they
/// listen before anything can be started), then the other units, leaving out a service whose
/// same-named socket is started: the socket activates it.
pub fn start_order(units: &[&str]) -> Vec<String> {
    fn triggers(u: &str) -> bool {
        u.ends_with(".socket") || u.ends_with(".path") || u.ends_with(".timer")
    }
    let sockets: Vec<&str> = units
        .iter()
        .filter(|u| u.ends_with(".socket"))
        .copied()
        .collect();
    let mut out: Vec<String> = units
        .iter()
        .filter(|u| triggers(u))
        .map(|u| u.to_string())
        .collect();
    for u in units.iter().filter(|u| !triggers(u)) {
        let activated = u
            .strip_suffix(".service")
            .is_some_and(|stem| sockets.contains(&format!("{stem}.socket").as_str()));
        if !activated {
            out.push(u.to_string());
        }
    }
    out
}

/// The units to stop before a detach, in order: sockets, paths and timers first, so that
/// nothing they trigger is started again behind the stop of a service.
pub fn stop_order<'a>(units: &[&'a str]) -> Vec<&'a str> {
    let triggers =
        |u: &str| u.ends_with(".socket") || u.ends_with(".path") || u.ends_with(".timer");
    let mut out: Vec<&str> = units.iter().copied().filter(|u| triggers(u)).collect();
    out.extend(units.iter().copied().filter(|u| !triggers(u)));
    out
}

pub fn unit_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Collects the jobs PID 1 reports as finished.
pub struct Jobs {
    conn: Connection,
    removed: systemd1::JobRemovedStream,
    pending: BTreeSet<String>,
}

impl Jobs {
    /// Subscribes before any job is queued, so that no `JobRemoved` is missed.
    pub async fn subscribe(conn: &Connection) -> anyhow::Result<Self> {
        let m = manager(conn).await?;
        let removed = m.receive_job_removed().await?;
        m.subscribe().await?;
        Ok(Self {
            conn: conn.clone(),
            removed,
            pending: BTreeSet::new(),
        })
    }

    pub fn add(&mut self, job: OwnedObjectPath) {
        self.pending.insert(job.to_string());
    }

    /// Waits for every job added; reports the ones that did not end in "done".
    pub async fn wait(mut self) {
        while !self.pending.is_empty() {
            let Some(signal) = self.removed.next().await else {
                break;
            };
            let Ok(args) = signal.args() else {
                continue;
            };
            if self.pending.remove(args.job().as_str()) {
                report_job_result(&self.conn, args.unit(), args.result()).await;
            }
        }
    }
}

async fn manager(conn: &Connection) -> zbus::Result<systemd1::ManagerProxy<'static>> {
    systemd1::ManagerProxy::new(conn).await
}

/// systemctl's explanations of a service's `Result` (systemd's `bus-wait-for-jobs.c`).
const RESULT_EXPLANATIONS: [(&str, &str); 9] = [
    (
        "resources",
        "of unavailable resources or another system error",
    ),
    (
        "protocol",
        "the service did not take the steps required by its unit configuration",
    ),
    ("timeout", "a timeout was exceeded"),
    ("exit-code", "the control process exited with error code"),
    (
        "signal",
        "a fatal signal was delivered to the control process",
    ),
    (
        "core-dump",
        "a fatal signal was delivered causing the control process to dump core",
    ),
    ("watchdog", "the service failed to send watchdog ping"),
    (
        "start-limit-hit",
        "start of the service was attempted too often",
    ),
    ("oom-kill", "of an out-of-memory (OOM) siutation"),
];

/// Prints what systemctl (and so portablectl) prints for a job that did not end well.
async fn report_job_result(conn: &Connection, unit: &str, result: &str) {
    let text = match result {
        "done" | "skipped" => return,
        "canceled" => format!("Job for {unit} canceled."),
        "timeout" => format!("Job for {unit} timed out."),
        "dependency" => {
            format!("A dependency job for {unit} failed. See 'journalctl -xe' for details.")
        }
        "invalid" => format!("{unit} is not active, cannot reload."),
        "assert" => format!("Assertion failed on job for {unit}."),
        "unsupported" => {
            format!("Operation on or unit type of {unit} not supported on this system.")
        }
        "collected" => format!("Queued job for {unit} was garbage collected."),
        "once" => format!("Unit {unit} was started already once and can't be started again."),
        _ if unit.ends_with(".service") => {
            let service_result = service_result(conn, unit).await.unwrap_or_default();
            let because = RESULT_EXPLANATIONS
                .iter()
                .find(|(r, _)| *r == service_result)
                .map(|(_, why)| format!(" because {why}"))
                .unwrap_or_default();
            let mut t = format!(
                "Job for {unit} failed{because}.\nSee \"systemctl status {unit}\" and \"journalctl -xeu {unit}\" for details.\n"
            );
            if service_result == "start-limit-hit" {
                t.push_str(&format!("To force a start use \"systemctl reset-failed {unit}\"\nfollowed by \"systemctl start {unit}\" again."));
            }
            t
        }
        _ => "Job failed. See \"journalctl -xe\" for details.".to_string(),
    };
    eprintln!("{text}");
}

/// The proxies of a unit's object (fresh values, no cache).
async fn unit(
    conn: &Connection,
    name: &str,
) -> Option<(
    systemd1::UnitProxy<'static>,
    systemd1::ServiceProxy<'static>,
)> {
    let path = systemd1::unit_path(name);
    let u = systemd1::UnitProxy::builder(conn)
        .path(path.clone())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .ok()?;
    let s = systemd1::ServiceProxy::builder(conn)
        .path(path)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .ok()?;
    Some((u, s))
}

/// After `attach --now`: says so for each started unit that is not running where nothing
/// else would (a start condition that failed skips a unit without an error; a service that
/// exits at once falls into its restart loop after its start job succeeded).
pub async fn report_not_running(conn: &Connection, units: &[&str]) {
    for path in units {
        let unit = unit_name(path);
        if portctl_engine::parse::names::is_template(unit) {
            continue;
        }
        let Some((u, svc)) = self::unit(conn, unit).await else {
            continue;
        };
        let Ok(state) = u.active_state().await else {
            continue;
        };
        let sub = u.sub_state().await.unwrap_or_default();
        let condition = u.condition_result().await.unwrap_or(true);
        let result = if unit.ends_with(".service") {
            svc.result().await.unwrap_or_default()
        } else {
            String::new()
        };
        let see = format!("see \"systemctl status {unit}\" and \"journalctl -u {unit}\"");
        match (state.as_str(), sub.as_str()) {
            ("active" | "activating" | "reloading", "auto-restart") => {
                eprintln!("Unit {unit} failed ({result}) and is restarting; {see}.")
            }
            ("active" | "activating" | "reloading", _) => {}
            ("inactive", _) if !condition => {
                eprintln!("Unit {unit} was skipped: a start condition failed; {see}.")
            }
            // A failed start job was reported already, with systemctl's words.
            _ => {}
        }
    }
}

/// The `Result` property of a service unit.
async fn service_result(conn: &Connection, unit: &str) -> Option<String> {
    self::unit(conn, unit).await?.1.result().await.ok()
}

fn unit_file_flags(runtime: bool) -> u64 {
    systemd1::UNIT_FILE_PORTABLE
        | if runtime {
            systemd1::UNIT_FILE_RUNTIME
        } else {
            0
        }
}

/// `EnableUnitFilesWithFlags([path], PORTABLE|RUNTIME)`, printing what it changed.
pub async fn enable(conn: &Connection, path: &str, runtime: bool, quiet: bool) {
    let r = match manager(conn).await {
        Ok(m) => {
            m.enable_unit_files_with_flags(&[path], unit_file_flags(runtime))
                .await
        }
        Err(e) => Err(e),
    };
    match r {
        Ok((_, changes)) => print_unit_file_changes(&changes, quiet),
        Err(e) => eprintln!(
            "Failed to enable portable service {}: {}",
            unit_name(path),
            bus::message(e)
        ),
    }
}

/// PID 1's unit-file changes, as systemctl (and portablectl) print them: its own wording,
/// which differs from portabled's change messages (`Removed "PATH".`).
fn print_unit_file_changes(changes: &[ChangeEntry], quiet: bool) {
    let quoted = speak::has(Behaviour::QuotedUnitFileChanges);
    for (kind, path, source) in changes {
        match kind.as_str() {
            "symlink" if !quiet && quoted => {
                eprintln!("Created symlink '{path}' \u{2192} '{source}'.")
            }
            "symlink" if !quiet => eprintln!("Created symlink {path} \u{2192} {source}."),
            "unlink" if !quiet && quoted => eprintln!("Removed '{path}'."),
            "unlink" if !quiet => eprintln!("Removed \"{path}\"."),
            "is-masked" if !quiet => eprintln!("Unit {path} is masked, ignoring."),
            "is-dangling" if !quiet => {
                eprintln!("Unit {path} is an alias to a unit that is not present, ignoring.")
            }
            "destination-not-present" => {
                eprintln!("Unit {source} is added as a dependency to a non-existent unit {path}.")
            }
            "auxiliary-failed" => eprintln!("Failed to enable auxiliary unit {source}, ignoring."),
            _ => {}
        }
    }
}

/// `DisableUnitFilesWithFlags([name], PORTABLE|RUNTIME)`, printing what it changed.
pub async fn disable(conn: &Connection, name: &str, runtime: bool, quiet: bool) {
    let r = match manager(conn).await {
        Ok(m) => {
            m.disable_unit_files_with_flags(&[name], unit_file_flags(runtime))
                .await
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(changes) => print_unit_file_changes(&changes, quiet),
        Err(e) => eprintln!(
            "Failed to disable portable service {name}: {}",
            bus::message(e)
        ),
    }
}

/// The jobs portablectl queues.
#[derive(Clone, Copy, Debug)]
pub enum JobKind {
    Start,
    Stop,
    Restart,
}

impl JobKind {
    /// The method's name, as portablectl's messages say it.
    fn method(self) -> &'static str {
        match self {
            Self::Start => "StartUnit",
            Self::Stop => "StopUnit",
            Self::Restart => "RestartUnit",
        }
    }
}

/// `StartUnit`/`StopUnit`/`RestartUnit(name, "replace")` of the unit `what` names (a unit
/// file's path after an attach, as portablectl passes it, or a unit name); the job is added
/// to `jobs`. A template is skipped: it cannot be started or stopped, only its instances.
pub async fn job(conn: &Connection, kind: JobKind, what: &str, jobs: &mut Jobs, quiet: bool) {
    let name = unit_name(what);
    if portctl_engine::parse::names::is_template(name) {
        return;
    }
    let r = match manager(conn).await {
        Ok(m) => match kind {
            JobKind::Start => m.start_unit(name, "replace").await,
            JobKind::Stop => m.stop_unit(name, "replace").await,
            JobKind::Restart => m.restart_unit(name, "replace").await,
        },
        Err(e) => Err(e),
    };
    let method = kind.method();
    match r {
        Ok(job) => {
            if !quiet {
                eprintln!(
                    "Queued {} to call {method} on portable service {name}.",
                    job.as_str()
                );
            }
            jobs.add(job);
        }
        Err(e) => eprintln!(
            "Failed to call {method} on the portable service {what}: {}",
            bus::message(e)
        ),
    }
}

/// `CleanUnit(name, ["all"])`: the unit's state, cache, logs and runtime directories.
pub async fn clean(conn: &Connection, name: &str) {
    let r = match manager(conn).await {
        Ok(m) => m.clean_unit(name, &["all"]).await,
        Err(e) => Err(e),
    };
    if let Err(e) = r {
        eprintln!(
            "Failed to clean portable service {name}: {}",
            bus::message(e)
        );
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_start_first_and_activate_their_service() {
        assert_eq!(
            start_order(&["a.service", "a.socket", "b.service", "c.timer"]),
            ["a.socket", "c.timer", "b.service"]
        );
        assert!(is_unit_change(
            "copy",
            "/etc/systemd/system.attached/a.socket"
        ));
        assert!(!is_unit_change(
            "write",
            "/etc/systemd/system.attached/a.service.d/20-portable.conf"
        ));
        assert!(!is_unit_change("symlink", "/etc/portables/a.service"));
    }
}
