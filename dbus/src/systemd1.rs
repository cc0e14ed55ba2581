//! The part of `org.freedesktop.systemd1` (PID 1) that portctl uses, as typed proxies: one
//! place for the method names and signatures both the daemon and the client call.

use zbus::proxy;
use zbus::{OwnedObjectPath, Variant};

/// The bus name and object of PID 1.
pub const SERVICE: &str = "org.freedesktop.systemd1";
pub const PATH: &str = "/org/freedesktop/systemd1";

/// One row of `ListUnits*`: name, description, load, active and sub state, followed unit,
/// object path, job id, job type, job path.
pub type UnitStatus = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// One change of `EnableUnitFilesWithFlags`: type, path, source.
pub type UnitFileChange = (String, String, String);

/// `UNIT_FILE_RUNTIME` and `UNIT_FILE_PORTABLE` of the `*UnitFilesWithFlags` calls.
pub const UNIT_FILE_RUNTIME: u64 = 1 << 0;
pub const UNIT_FILE_PORTABLE: u64 = 1 << 2;

/// A property of a transient unit (`StartTransientUnit`).
pub type Property<'a> = (&'a str, Variant<'a>);

#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn list_units_by_patterns(
        &self,
        states: &[&str],
        patterns: &[&str],
    ) -> zbus::Result<Vec<UnitStatus>>;
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[Property<'_>],
        aux: &[(&str, &[Property<'_>])],
    ) -> zbus::Result<OwnedObjectPath>;
    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn clean_unit(&self, name: &str, mask: &[&str]) -> zbus::Result<()>;
    fn reload(&self) -> zbus::Result<()>;
    /// Returns whether an `[Install]` section was found, and the changes.
    fn enable_unit_files_with_flags(
        &self,
        files: &[&str],
        flags: u64,
    ) -> zbus::Result<(bool, Vec<UnitFileChange>)>;
    fn disable_unit_files_with_flags(
        &self,
        files: &[&str],
        flags: u64,
    ) -> zbus::Result<Vec<UnitFileChange>>;
    /// A job ended: its id, path, unit and result (`done`, `failed`, ...).
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
    fn unref_unit(&self, name: &str) -> zbus::Result<()>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    /// Asks PID 1 to send its signals (`JobRemoved`, the units' `PropertiesChanged`).
    fn subscribe(&self) -> zbus::Result<()>;
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Unit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    /// Whether its start conditions held the last time it was started.
    #[zbus(property)]
    fn condition_result(&self) -> zbus::Result<bool>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Service {
    /// `CLD_EXITED` (1), `CLD_KILLED` (2) or `CLD_DUMPED` (3), as waitid() says.
    #[zbus(property)]
    fn exec_main_code(&self) -> zbus::Result<i32>;
    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;
    /// How the service ended: `success`, `exit-code`, `signal`, `timeout`, ...
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
    /// When the main process ended (0 while it has not).
    #[zbus(property)]
    fn exec_main_exit_timestamp_monotonic(&self) -> zbus::Result<u64>;
}

/// The object path of the unit `name` (systemd's `unit_dbus_path_from_name()`).
pub fn unit_path(name: &str) -> String {
    format!("{PATH}/unit/{}", crate::path::escape_label(name))
}

/// `CLD_EXITED` of `ExecMainCode`.
pub const CLD_EXITED: i32 = 1;
