//! The compliance report: an image checked, rule by rule, against the portable-image
//! requirements (docs image-requirements), for the chosen profile.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::host::Host;
use crate::image::Image;
use crate::os_release::{read_os_release, ReleaseFile};
use crate::parse::elf::{self, Executable};
use crate::parse::names;
use crate::parse::unit_file;
use crate::profile::{required_paths, PathKind, Profile, RequiredPath};
use crate::root::{ImageRoot, NodeKind};
use crate::units::{find_units, UnitFile};
use crate::version::Version;

/// The `Exec*=` settings whose programs must exist in the image.
const EXEC_KEYS: [&str; 7] = [
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
];

/// Where a program named without a path is looked for (systemd's default `PATH`, split /usr).
pub const EXEC_SEARCH_PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The rule holds.
    Ok,
    /// Something is missing that attach creates, because the image is writable.
    Repairable,
    /// The image breaks the rule.
    Failed,
    /// Something will fail later than the start (a reload, a stop): the service runs.
    Warning,
}

/// How bad a finding is, as what would happen at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing fails.
    Note,
    /// A secondary command (reload, stop) or a later step fails; the service starts.
    Warning,
    /// The service cannot start (or is skipped at start).
    Error,
}

/// One thing found about an image: how bad, about which unit and which directive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub unit: Option<String>,
    /// The setting it is about, `ExecReload=` say.
    pub directive: Option<String>,
    pub message: String,
}

/// One rule of the requirements and how the image fares.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// A stable identifier, e.g. `mount-points`.
    pub rule: &'static str,
    /// The rule's number in the requirements document.
    pub number: u8,
    pub title: &'static str,
    pub status: Status,
    /// What was found, or each problem, one per line.
    pub details: Vec<String>,
    /// The problems, with their severity (every `failed` check has an error among them).
    pub findings: Vec<Finding>,
}

/// The whole report for one image.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub image: Image,
    /// Whether attach may create what is missing (a writable image).
    pub writable: bool,
    pub profile: Profile,
    pub matches: Vec<String>,
    pub os_release: Option<String>,
    pub units: Vec<String>,
    pub checks: Vec<Check>,
    /// Every path the profile mounts over that the image lacks.
    pub missing: Vec<RequiredPath>,
    /// The paths it mounts over that are there, but of the wrong kind (each as a sentence).
    pub wrong_kind: Vec<String>,
}

impl Report {
    /// True when attaching the image would work (what is missing can be created).
    pub fn compliant(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Failed)
    }
}

/// What to check.
pub struct Request<'a> {
    pub host: &'a Host,
    pub image: &'a Image,
    pub root: &'a ImageRoot,
    pub profile: &'a Profile,
    /// Unit prefixes given by the user; `None` derives them as attach would.
    pub matches: Option<&'a [String]>,
    /// Whether the tree can be written to (repair possible).
    pub writable: bool,
    /// What the image holds (e.g. `squashfs`, `GPT partition 1 (ext4)`).
    pub layout: &'a str,
    /// The systemd that will run the units (what it mounts itself differs by version).
    pub version: Version,
}

fn check(rule: &'static str, number: u8, title: &'static str) -> Check {
    Check {
        rule,
        number,
        title,
        status: Status::Ok,
        details: Vec::new(),
        findings: Vec::new(),
    }
}

impl Check {
    fn fail(&mut self, detail: String) {
        self.found(Severity::Error, None, None, detail);
    }

    /// Records a finding: an error fails the check, a warning makes it a warning.
    fn found(
        &mut self,
        severity: Severity,
        unit: Option<&str>,
        directive: Option<&str>,
        message: String,
    ) {
        match severity {
            Severity::Error => self.status = Status::Failed,
            Severity::Warning if self.status == Status::Ok => self.status = Status::Warning,
            _ => {}
        }
        self.details.push(match severity {
            Severity::Error => message.clone(),
            Severity::Warning => format!("warning: {message}"),
            Severity::Note => format!("note: {message}"),
        });
        self.findings.push(Finding {
            severity,
            unit: unit.map(str::to_string),
            directive: directive.map(str::to_string),
            message,
        });
    }
}

/// Checks an image. Errors are reserved for failures to read the image at all; everything the
/// image lacks is reported in the returned [`Report`].
pub fn check_image(req: &Request<'_>) -> Report {
    let mut tree = check("os-tree", 2, "a directory tree or a raw disk image");
    tree.details.push(format!(
        "{} image {}: {}{}",
        req.image.kind,
        req.image.path.display(),
        req.layout,
        if req.writable { "" } else { " (read-only)" }
    ));

    // Rule 3: os-release with ID=.
    let mut osr = check("os-release", 3, "an os-release file with ID=");
    let release: Option<ReleaseFile> = match read_os_release(req.root) {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            osr.fail("no /etc/os-release or /usr/lib/os-release in the image".into());
            None
        }
        Err(e) => {
            osr.fail(e.to_string());
            None
        }
    };
    if let Some(r) = &release {
        match r.parsed.non_empty("ID") {
            Some(id) => osr.details.push(format!(
                "{}: {} (ID={id})",
                r.path,
                r.parsed.non_empty("PRETTY_NAME").unwrap_or("n/a")
            )),
            None => osr.fail(format!("{} has no ID= field", r.path)),
        }
        for w in &r.parsed.warnings {
            osr.details
                .push(format!("{} line {}: {}", r.path, w.line, w.message));
        }
    }

    // Rule 4: unit files matching the prefixes (and the PORTABLE_PREFIXES allow-list).
    let mut unitc = check("unit-files", 4, "unit files named with the image's prefix");
    let allow = release
        .as_ref()
        .map(|r| r.parsed.portable_prefixes())
        .unwrap_or_default();
    let matches: Vec<String> = match req.matches {
        Some(m) => {
            let bad: Vec<&String> = m
                .iter()
                .filter(|x| !allow.is_empty() && !allow.contains(x))
                .collect();
            if !bad.is_empty() {
                let mut sorted = allow.clone();
                sorted.sort();
                unitc.fail(format!(
                    "Selected matches '{}' are not compatible with portable service image '{}', refusing. (Acceptable prefix matches are: {})",
                    m.join("', '"),
                    req.image.name,
                    sorted.join(", ")
                ));
            }
            m.to_vec()
        }
        None if !allow.is_empty() => allow.clone(),
        None => match names::default_prefix(&req.image.file_name()) {
            Some(p) => vec![p],
            None => {
                unitc.fail(format!(
                    "cannot derive a unit prefix from the image name '{}'; name the prefixes",
                    req.image.file_name()
                ));
                Vec::new()
            }
        },
    };
    let units: Vec<UnitFile> = if unitc.status == Status::Failed {
        Vec::new()
    } else {
        match find_units(req.root, &matches) {
            Ok(u) => u,
            Err(e) => {
                unitc.fail(e.to_string());
                Vec::new()
            }
        }
    };
    if unitc.status == Status::Ok {
        if units.is_empty() {
            let all = find_units(req.root, &[]).unwrap_or_default();
            let what = if all.is_empty() {
                "the image has no unit files of these types".to_string()
            } else {
                let names: Vec<&str> = all.iter().map(|u| u.name.as_str()).collect();
                let mut prefixes: Vec<&str> = names
                    .iter()
                    .map(|n| &n[..n.find(['-', '@', '.']).unwrap_or(n.len())])
                    .collect();
                prefixes.dedup();
                prefixes.sort();
                prefixes.dedup();
                format!(
                    "the image has {}; name the prefix{} to attach {} (portctl attach IMAGE PREFIX...)",
                    names.join(", "),
                    if prefixes.len() == 1 { "" } else { "es" },
                    prefixes
                        .iter()
                        .map(|p| format!("'{p}'"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )
            };
            unitc.fail(format!(
                "no unit files matching '{}' in {} (looked for .service, .socket, .target, .timer and .path files): {what}",
                matches.join("', '"),
                "/etc/systemd/system, /usr/lib/systemd/system, /lib/systemd/system and the rest of the unit search path",
            ));
        } else {
            for u in &units {
                unitc
                    .details
                    .push(format!("{} ({})", u.name, u.path.display()));
            }
            for (alias, unit) in crate::units::find_aliases(req.root, &matches) {
                unitc.details.push(format!(
                    "{alias} is an alias of {unit} (a link in the image), not attached as a unit"
                ));
            }
        }
    }

    // Rules 1 and 7: executables, their architecture, their loaders.
    let mut exec = check(
        "executables",
        1,
        "the units' programs exist, are executable and run on this host",
    );
    let mut loader = check(
        "loader",
        7,
        "the ELF interpreter (or #! interpreter) each program needs",
    );
    check_programs(req.root, &units, &mut exec, &mut loader);

    // Rules 5 and 6: what the profile mounts over.
    let mut files = check(
        "host-files",
        5,
        "the files the host's versions are mounted over",
    );
    let mut dirs = check(
        "mount-points",
        6,
        "the mount points of the API and temporary file systems",
    );
    let mut missing = Vec::new();
    let mut wrong_kind = Vec::new();
    for r in required_paths(req.host, &req.profile.content, req.version) {
        let target = match r.kind {
            PathKind::File => &mut files,
            PathKind::Directory => &mut dirs,
        };
        let path = Path::new(&r.path);
        // A symbolic link is there, even when it dangles inside the image (the usual
        // `/etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf`): systemd mounts
        // over what it leads to, creating that when it is missing, as for a bind mount target
        // of the host.
        let is_link =
            matches!(req.root.lstat(path), Ok(Some(st)) if NodeKind::of(&st) == NodeKind::Symlink);
        if is_link && matches!(req.root.stat(path), Ok(None)) {
            target.details.push(format!(
                "{} present (a symbolic link to {}, created when the service starts)",
                r.path,
                req.root
                    .read_link(path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default()
            ));
            continue;
        }
        match req.root.stat(path) {
            Ok(Some(st)) => {
                let is_dir = NodeKind::of(&st) == NodeKind::Directory;
                if is_dir != (r.kind == PathKind::Directory) {
                    wrong_kind.push(format!(
                        "{} is a {}, but {} needs a {}",
                        r.path,
                        NodeKind::of(&st),
                        r.reason,
                        if r.kind == PathKind::Directory {
                            "directory"
                        } else {
                            "file"
                        }
                    ));
                    target.fail(format!(
                        "{} is a {}, but {} needs a {}",
                        r.path,
                        NodeKind::of(&st),
                        r.reason,
                        if r.kind == PathKind::Directory {
                            "directory"
                        } else {
                            "file"
                        }
                    ));
                } else {
                    target.details.push(format!("{} present", r.path));
                }
            }
            Ok(None) => {
                target
                    .details
                    .push(format!("{} missing (for {})", r.path, r.reason));
                if target.status == Status::Ok {
                    target.status = if req.writable {
                        Status::Repairable
                    } else {
                        Status::Failed
                    };
                }
                missing.push(r);
            }
            Err(e) => target.fail(format!("{}: {e}", r.path)),
        }
    }

    // Rule 8 (ours): the units stay within what the profile allows, and enabling them links
    // no unit of the host (docs/security.md, "What a profile promises").
    let mut conf = check(
        "confinement",
        8,
        "the units stay within what the profile allows",
    );
    let unit_refs: Vec<&UnitFile> = units.iter().collect();
    let unit_names: BTreeSet<&str> = units.iter().map(|u| u.name.as_str()).collect();
    for w in crate::confine::widenings(req.host, req.profile, &unit_refs, &unit_names) {
        conf.fail(w.to_string());
    }
    for u in &units {
        let text = String::from_utf8_lossy(&u.content);
        for (key, name) in crate::parse::unit_file::install_names(&u.name, &text) {
            if !unit_names.contains(name.as_str()) && req.host.has_unit(&name) {
                conf.fail(format!(
                    "{}: {key}={name} names a unit of the host (enabling it would link that unit)",
                    u.name
                ));
            }
        }
    }
    if conf.status == Status::Ok && !units.is_empty() {
        conf.details.push(format!(
            "nothing in the units widens profile '{}'",
            req.profile.name
        ));
    }

    let start = check_start(req, &units);

    Report {
        image: req.image.clone(),
        writable: req.writable,
        profile: req.profile.clone(),
        matches,
        os_release: release.map(|r| r.path),
        units: units.iter().map(|u| u.name.clone()).collect(),
        checks: vec![exec, tree, osr, unitc, files, dirs, loader, conf, start],
        missing,
        wrong_kind,
    }
}

/// The program paths of a service's `Exec*=` lines, in order, without duplicates.
/// The program paths of a service's `Exec*=` lines, in order, without duplicates: the setting,
/// the program, and whether a failure of it is ignored (`-` prefix).
fn exec_programs(unit: &UnitFile) -> Vec<(String, String, bool)> {
    let text = String::from_utf8_lossy(&unit.content);
    let mut out: Vec<(String, String, bool)> = Vec::new();
    for a in unit_file::parse(&text) {
        if a.section != "Service" || !EXEC_KEYS.contains(&a.key.as_str()) {
            continue;
        }
        if a.value.is_empty() {
            out.retain(|(k, _, _)| *k != a.key);
            continue;
        }
        let prefixes: String = a
            .value
            .chars()
            .take_while(|c| "@-:+!|".contains(*c))
            .collect();
        if let Some(p) = unit_file::exec_program(&a.value) {
            if !p.contains('%') && !out.iter().any(|(_, q, _)| *q == p) {
                out.push((a.key, p, prefixes.contains('-')));
            }
        }
    }
    out
}

/// What a failing program of `key` costs: the start (an error), or a later step.
fn exec_severity(key: &str, ignored: bool) -> (Severity, &'static str) {
    match (key, ignored) {
        (_, true) => (Severity::Note, "its failure is ignored (the '-' prefix)"),
        ("ExecReload", _) => (
            Severity::Warning,
            "the service starts, but reloading it fails",
        ),
        ("ExecStop" | "ExecStopPost", _) => (
            Severity::Warning,
            "the service starts, but stopping it runs no command of its own",
        ),
        _ => (Severity::Error, "the service cannot start"),
    }
}

/// Resolves a program name inside the image as systemd would: absolute as is, otherwise the
/// first executable match in the default `PATH`.
fn resolve_program(root: &ImageRoot, program: &str) -> PathBuf {
    if program.starts_with('/') {
        return PathBuf::from(program);
    }
    for dir in EXEC_SEARCH_PATH {
        let p = Path::new(dir).join(program);
        if matches!(root.stat(&p), Ok(Some(_))) {
            return p;
        }
    }
    Path::new("/usr/bin").join(program)
}

fn check_executable_file(root: &ImageRoot, path: &Path) -> Result<(), String> {
    match root.stat(path) {
        Ok(Some(st)) => {
            let kind = NodeKind::of(&st);
            if kind != NodeKind::File {
                return Err(format!(
                    "{} is a {kind}, not an executable file",
                    path.display()
                ));
            }
            if st.st_mode & 0o111 == 0 {
                return Err(format!(
                    "{} is not executable (mode {:04o})",
                    path.display(),
                    st.st_mode & 0o7777
                ));
            }
            Ok(())
        }
        Ok(None) => Err(format!("{} is missing in the image", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn check_programs(root: &ImageRoot, units: &[UnitFile], exec: &mut Check, loader: &mut Check) {
    let mut done = BTreeSet::new();
    for unit in units.iter().filter(|u| u.name.ends_with(".service")) {
        for (key, program, ignored) in exec_programs(unit) {
            let path = resolve_program(root, &program);
            if !done.insert(path.clone()) {
                continue;
            }
            let who = format!("{}: {key}={}", unit.name, path.display());
            if let Err(e) = check_executable_file(root, &path) {
                let (severity, what) = exec_severity(&key, ignored);
                exec.found(
                    severity,
                    Some(&unit.name),
                    Some(&format!("{key}=")),
                    format!("{}: {key}={}: {e}; {what}", unit.name, path.display()),
                );
                continue;
            }
            let file = match root.open_regular(&path) {
                Ok(fd) => std::fs::File::from(fd),
                Err(e) => {
                    exec.fail(format!("{who}: {e}"));
                    continue;
                }
            };
            match elf::identify(&file) {
                Ok(Executable::Elf(info)) => {
                    if !elf::runs_on_host(&info) {
                        exec.fail(format!(
                            "{who}: built for {}, this host runs {}",
                            elf::machine_name(info.machine),
                            elf::host_machine_name()
                        ));
                        continue;
                    }
                    exec.details
                        .push(format!("{who} ({} ELF)", elf::machine_name(info.machine)));
                    match info.interpreter {
                        Some(interp) => {
                            check_interpreter(root, &who, &interp, "ELF interpreter", loader)
                        }
                        None => loader.details.push(format!("{who}: statically linked")),
                    }
                }
                Ok(Executable::Script(interp)) => {
                    exec.details.push(format!("{who} (script)"));
                    check_interpreter(root, &who, &interp, "#! interpreter", loader);
                }
                Ok(Executable::Unknown) => {
                    exec.fail(format!("{who}: neither an ELF binary nor a #! script"));
                }
                Err(e) => exec.fail(format!("{who}: {e}")),
            }
        }
    }
}

fn check_interpreter(root: &ImageRoot, who: &str, interp: &str, what: &str, loader: &mut Check) {
    if !interp.starts_with('/') {
        loader.fail(format!("{who}: {what} '{interp}' is not an absolute path"));
        return;
    }
    match check_executable_file(root, Path::new(interp)) {
        Ok(()) => loader
            .details
            .push(format!("{who}: {what} {interp} present")),
        Err(e) => loader.fail(format!("{who} needs its {what} {interp}: {e}")),
    }
}

/// What [`repair`] did to one path inside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RepairKind {
    /// A directory was made.
    Mkdir,
    /// An empty file was made.
    Write,
}

impl std::fmt::Display for RepairKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mkdir => "mkdir",
            Self::Write => "write",
        })
    }
}

/// One path [`repair`] created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Created {
    #[serde(rename = "type")]
    pub kind: RepairKind,
    pub path: PathBuf,
}

/// Removes what [`repair`] created, the last first (best effort: what cannot be removed
/// stays, an empty directory or file).
pub fn undo_repair(root: &ImageRoot, created: &[Created]) {
    for c in created.iter().rev() {
        let _ = match c.kind {
            RepairKind::Mkdir => root.rmdir(&c.path),
            RepairKind::Write => root.unlink(&c.path),
        };
    }
}

/// Creates the missing paths of a writable image: directories (0755, the temporary ones
/// 1777) with their parents, and empty files (0644).
pub fn repair(root: &ImageRoot, missing: &[RequiredPath]) -> io::Result<Vec<Created>> {
    let mut created = Vec::new();
    let made = repair_into(root, missing, &mut created);
    if let Err(e) = made {
        // Nothing half-done: what this call created goes again.
        undo_repair(root, &created);
        return Err(e);
    }
    Ok(created)
}

fn repair_into(
    root: &ImageRoot,
    missing: &[RequiredPath],
    created: &mut Vec<Created>,
) -> io::Result<()> {
    let mkdir = |p: PathBuf| Created {
        kind: RepairKind::Mkdir,
        path: p,
    };
    for r in missing {
        let path = Path::new(&r.path);
        if let Some(parent) = path.parent() {
            created.extend(root.mkdir_p(parent, 0o755)?.into_iter().map(mkdir));
        }
        match r.kind {
            PathKind::Directory => {
                created.extend(root.mkdir_p(path, r.mode)?.into_iter().map(mkdir))
            }
            PathKind::File => {
                root.create_empty_file(path, r.mode)?;
                created.push(Created {
                    kind: RepairKind::Write,
                    path: path.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

/// The conditions systemd checks on the host, not in the service's root: a path the image
/// has and the host lacks makes the unit skipped (Condition) or failed (Assert) at start.
const HOST_CONDITIONS: [&str; 9] = [
    "PathExists",
    "PathIsDirectory",
    "PathIsSymbolicLink",
    "PathIsMountPoint",
    "PathIsReadWrite",
    "DirectoryNotEmpty",
    "FileNotEmpty",
    "FileIsExecutable",
    "PathExistsGlob",
];

/// Whether `path` passes the test of `kind` under `root` (`None`: not evaluated here).
fn condition_holds(root: &ImageRoot, kind: &str, path: &Path) -> Option<bool> {
    let st = root.stat(path).ok()?;
    let is = |k: NodeKind| st.as_ref().is_some_and(|s| NodeKind::of(s) == k);
    Some(match kind {
        "PathExists" => st.is_some(),
        "PathIsDirectory" => is(NodeKind::Directory),
        "FileIsExecutable" => {
            is(NodeKind::File) && st.as_ref().is_some_and(|s| s.st_mode & 0o111 != 0)
        }
        "FileNotEmpty" => is(NodeKind::File) && st.as_ref().is_some_and(|s| s.st_size > 0),
        "DirectoryNotEmpty" => {
            is(NodeKind::Directory)
                && root
                    .read_dir(path)
                    .ok()
                    .flatten()
                    .is_some_and(|e| !e.is_empty())
        }
        _ => return None,
    })
}

/// Whether a user who is neither the owner nor in the group of anything (a dynamic user) can
/// read `path` of the image: every directory on the way searchable by others, the file
/// readable by others. Returns the first obstacle.
fn unreadable_by_others(root: &ImageRoot, path: &Path) -> Option<String> {
    let mut at = std::path::PathBuf::from("/");
    for c in path.components().skip(1) {
        let st = root.stat(&at).ok()??;
        if st.st_mode & 0o001 == 0 {
            return Some(format!("{} is {:04o}", at.display(), st.st_mode & 0o7777));
        }
        at.push(c);
    }
    let st = root.stat(path).ok()??;
    (st.st_mode & 0o004 == 0).then(|| format!("{} is {:04o}", path.display(), st.st_mode & 0o7777))
}

/// Rule 9 (ours): what systemd will do at start, predicted: conditions it checks on the host,
/// files named by the commands that the profile's dynamic user cannot read, network the
/// profile takes away.
fn check_start(req: &Request<'_>, units: &[UnitFile]) -> Check {
    let mut c = check(
        "start",
        9,
        "the units can start under the profile (host-checked conditions, readable files, network)",
    );
    let r = crate::confine::Restrictions::of(req.profile);
    let host = req.host.fs();
    for u in units {
        let text = String::from_utf8_lossy(&u.content);
        for a in unit_file::parse(&text) {
            // Conditions and assertions (checked by PID 1, on the host).
            if a.section == "Unit" {
                let (assert, kind) = match (
                    a.key.strip_prefix("Condition"),
                    a.key.strip_prefix("Assert"),
                ) {
                    (Some(k), _) => (false, k),
                    (_, Some(k)) => (true, k),
                    _ => continue,
                };
                if !HOST_CONDITIONS.contains(&kind) {
                    continue;
                }
                let v = a.value.trim();
                let trigger = v.starts_with('|');
                let v = v.trim_start_matches('|');
                let negate = v.starts_with('!');
                let path = Path::new(v.trim_start_matches('!'));
                if !path.is_absolute() || v.contains('%') {
                    continue;
                }
                let directive = format!("{}=", a.key);
                let on_host = condition_holds(host, kind, path).map(|h| h != negate);
                let in_image = condition_holds(req.root, kind, path).map(|h| h != negate);
                match (on_host, in_image) {
                    (Some(false), _) => {
                        let (severity, what) = match (assert, trigger) {
                            (_, true) => (Severity::Warning, "one of its triggering conditions fails"),
                            (false, false) => (Severity::Error, "the unit is skipped at start and never runs"),
                            (true, false) => (Severity::Error, "the unit fails to start"),
                        };
                        c.found(
                            severity,
                            Some(&u.name),
                            Some(&directive),
                            format!(
                                "{}: {}={} is checked on the host, not in the image, and fails there: {what}",
                                u.name, a.key, a.value
                            ),
                        );
                    }
                    (Some(true), Some(false)) => c.found(
                        Severity::Note,
                        Some(&u.name),
                        Some(&directive),
                        format!(
                            "{}: {}={} is checked on the host (where it holds), not in the image (where it would not)",
                            u.name, a.key, a.value
                        ),
                    ),
                    _ => {}
                }
            }
            if a.section != "Service" || !u.name.ends_with(".service") {
                continue;
            }
            // Files named by the commands, for a dynamic user.
            if r.dynamic_user && EXEC_KEYS.contains(&a.key.as_str()) {
                let words =
                    unit_file::split_words(a.value.trim_start_matches(['@', '-', ':', '+', '!']))
                        .unwrap_or_default();
                for w in words
                    .iter()
                    .skip(1)
                    .filter(|w| w.starts_with('/') && !w.contains('%'))
                {
                    let p = Path::new(w.as_str());
                    let regular = matches!(req.root.stat(p), Ok(Some(st)) if NodeKind::of(&st) == NodeKind::File);
                    if !regular {
                        continue;
                    }
                    if let Some(why) = unreadable_by_others(req.root, p) {
                        let (severity, what) = exec_severity(&a.key, false);
                        c.found(
                            severity,
                            Some(&u.name),
                            Some(&format!("{}=", a.key)),
                            format!(
                                "{}: {}= names {w}, which the dynamic user of profile '{}' cannot read ({why}); {what}",
                                u.name, a.key, req.profile.name
                            ),
                        );
                    }
                }
            }
            // Network the unit says it uses, and the profile takes away.
            if a.key == "RestrictAddressFamilies" {
                if let Some((false, families)) = crate::confine::list(&a.value) {
                    let inet: Vec<&String> = families
                        .iter()
                        .filter(|f| f.starts_with("AF_INET"))
                        .collect();
                    if inet.is_empty() {
                        continue;
                    }
                    let denied = r
                        .families
                        .as_ref()
                        .is_some_and(|allowed| inet.iter().all(|f| !allowed.contains(*f)));
                    if denied {
                        c.found(
                            Severity::Error,
                            Some(&u.name),
                            Some("RestrictAddressFamilies="),
                            format!(
                                "{}: it uses {} (RestrictAddressFamilies={}), which profile '{}' does not allow: its sockets cannot be opened",
                                u.name,
                                inet.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                                a.value,
                                req.profile.name
                            ),
                        );
                    } else if r.private_network {
                        c.found(
                            Severity::Warning,
                            Some(&u.name),
                            Some("RestrictAddressFamilies="),
                            format!(
                                "{}: it uses {}, and profile '{}' gives it a network of its own (PrivateNetwork=yes): nobody outside can reach it",
                                u.name,
                                inet.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                                req.profile.name
                            ),
                        );
                    }
                }
            }
        }
    }
    if c.status == Status::Ok && !units.is_empty() {
        c.details.push(format!(
            "nothing predicts a failed start under profile '{}'",
            req.profile.name
        ));
    }
    c
}
