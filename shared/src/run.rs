//! `portctl run`: what to run from an image, worked out before anything runs. The
//! namespaces, mounts and credentials are set up by [`crate::sys::sandbox`] in a helper
//! process; this module checks the image and resolves the command, the environment, the user
//! and the profile's restrictions into a [`RunSpec`].

use std::path::{Path, PathBuf};

use crate::compliance::{self, Request};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::limits::UNIT_FILE_MAX;
use crate::os_release::read_os_release;
use crate::parse::unit_file;
use crate::profile::PathKind;
use crate::root::ImageRoot;
use crate::units::find_units;
use crate::Host;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The profile whose restrictions apply (`default` by default).
    pub profile: String,
    /// A writable overlay (in memory) over the image.
    pub writable: bool,
    /// Run as a dynamic user even when the profile does not ask for one.
    pub dynamic_user: bool,
}

/// Everything the helper needs, resolved and checked (plain data, defined where the helper's
/// system calls are).
pub use crate::sys::sandbox::Spec as RunSpec;

/// The first dynamic user id systemd hands out (`DynamicUser=`), and the last.
const DYNAMIC_UID_MIN: u32 = 61184;
const DYNAMIC_UID_MAX: u32 = 65519;

impl Host {
    /// Checks the image and resolves what `run` executes: `unit`'s `ExecStart=` (with its
    /// `Environment=`, `WorkingDirectory=` and `User=`), or `command`.
    pub fn prepare_run(
        &self,
        arg: &str,
        unit: Option<&str>,
        command: &[String],
        o: &RunOptions,
    ) -> Result<RunSpec> {
        let image = self.find_image(arg)?;
        let root = self.open_image(&image)?;
        if read_os_release(&root).ok().flatten().is_none() {
            return Err(Error::NoOsRelease(arg.to_string()));
        }
        let profile_name = if o.profile.is_empty() {
            "default"
        } else {
            &o.profile
        };
        let profile = self
            .find_profile(profile_name, "service")?
            .ok_or_else(|| Error::NoSuchProfile(profile_name.to_string()))?;
        // The mount points and host files the run mounts over must be there.
        let report = compliance::check_image(&Request {
            host: self,
            image: &image,
            root: &root,
            profile: &profile,
            matches: None,
            writable: false,
            layout: "",
            // Our own namespaces bind no os-release of the host.
            version: crate::version::Version::NEWEST,
        });
        let mut missing: Vec<String> = report
            .missing
            .iter()
            .map(|m| match m.kind {
                PathKind::Directory => format!("{}/", m.path),
                PathKind::File => m.path.clone(),
            })
            .collect();
        for must in ["/proc/", "/sys/", "/dev/", "/run/", "/tmp/", "/var/tmp/"] {
            let there = matches!(root.stat(Path::new(must.trim_end_matches('/'))), Ok(Some(st)) if st.st_mode & 0o170000 == 0o040000);
            if !there && !missing.iter().any(|m| m == must) {
                missing.push(must.to_string());
            }
        }
        if !missing.is_empty() {
            missing.sort();
            return Err(Error::MissingMountPoints {
                image: image.path.display().to_string(),
                profile: profile.name.clone(),
                paths: missing,
            });
        }
        let profile_settings = unit_file::parse(&profile.content);
        let setting = |key: &str| {
            profile_settings
                .iter()
                .rev()
                .find(|a| a.key == key)
                .map(|a| a.value.clone())
        };
        let (mut argv, mut env, mut workdir, mut user) = (
            command.to_vec(),
            Vec::new(),
            "/".to_string(),
            None::<String>,
        );
        if let Some(unit) = unit {
            let units = find_units(&root, &[]).map_err(|source| Error::Unit {
                image: image.name.clone(),
                source,
            })?;
            let u = units.iter().find(|u| u.name == unit).ok_or_else(|| {
                Error::InvalidArgs(format!("Image '{}' has no unit '{unit}'.", image.name))
            })?;
            if u.content.len() as u64 > UNIT_FILE_MAX {
                return Err(Error::InvalidArgs(format!("Unit '{unit}' is too large.")));
            }
            let text = String::from_utf8_lossy(&u.content);
            let settings = unit_file::parse(&text);
            let exec = settings
                .iter()
                .find(|a| a.section == "Service" && a.key == "ExecStart" && !a.value.is_empty())
                .ok_or_else(|| Error::InvalidArgs(format!("Unit '{unit}' has no ExecStart=.")))?;
            argv = unit_file::split_words(exec.value.trim_start_matches(['@', '-', ':', '+', '!']))
                .filter(|w| !w.is_empty())
                .ok_or_else(|| {
                    Error::InvalidArgs(format!(
                        "Unit '{unit}': cannot parse ExecStart={}",
                        exec.value
                    ))
                })?;
            for a in settings.iter().filter(|a| a.section == "Service") {
                match a.key.as_str() {
                    "Environment" => {
                        for w in unit_file::split_words(&a.value).unwrap_or_default() {
                            if let Some((k, v)) = w.split_once('=') {
                                env.push((k.to_string(), v.to_string()));
                            }
                        }
                    }
                    "WorkingDirectory" if !a.value.is_empty() => {
                        workdir = a.value.trim_start_matches('-').to_string();
                        if workdir == "~" {
                            workdir = "/".into();
                        }
                    }
                    "User" if !a.value.is_empty() => user = Some(a.value.clone()),
                    _ => {}
                }
            }
        }
        if argv.is_empty() {
            return Err(Error::InvalidArgs(
                "Nothing to run: give a unit or a command.".into(),
            ));
        }
        check_program(&root, &image, &argv[0])?;
        let dynamic = o.dynamic_user
            || setting("DynamicUser").is_some_and(|v| unit_file::parse_bool(&v) == Some(true));
        let (uid, gid) = if dynamic {
            let uid = dynamic_uid(&image.name);
            (uid, uid)
        } else {
            match &user {
                None => (0, 0),
                Some(u) => lookup_user(&root, u).ok_or_else(|| {
                    Error::InvalidArgs(format!(
                        "User '{u}' of the unit is not in the image's /etc/passwd."
                    ))
                })?,
            }
        };
        let capabilities = setting("CapabilityBoundingSet").map(|v| {
            v.split_whitespace()
                .filter_map(capability_number)
                .collect::<Vec<u32>>()
        });
        let no_new_privileges =
            setting("NoNewPrivileges").is_some_and(|v| unit_file::parse_bool(&v) == Some(true));
        let private_network =
            setting("PrivateNetwork").is_some_and(|v| unit_file::parse_bool(&v) == Some(true));
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.insert(
                0,
                (
                    "PATH".into(),
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ),
            );
        }
        env.push(("PORTABLE".into(), image.file_name()));
        Ok(RunSpec {
            host_root: self.root().to_path_buf(),
            image: image.path.clone(),
            image_name: image.name.clone(),
            argv,
            env,
            workdir,
            uid,
            gid,
            capabilities,
            no_new_privileges,
            writable: o.writable,
            private_network,
        })
    }
}

/// The program must be in the image, and so must its loader (a dynamically linked binary
/// whose loader is missing fails with a bare "No such file or directory" otherwise).
fn check_program(root: &ImageRoot, image: &Image, program: &str) -> Result<()> {
    let path = if program.starts_with('/') {
        PathBuf::from(program)
    } else {
        let found = compliance::EXEC_SEARCH_PATH
            .iter()
            .map(|d| Path::new(d).join(program))
            .find(|p| matches!(root.stat(p), Ok(Some(_))));
        match found {
            Some(p) => p,
            None => {
                return Err(Error::InvalidArgs(format!(
                    "Image '{}' has no program '{program}' in its PATH.",
                    image.name
                )))
            }
        }
    };
    let fd = root.open_regular(&path).map_err(|e| {
        Error::InvalidArgs(format!(
            "Image '{}' has no program {}: {e}",
            image.name,
            path.display()
        ))
    })?;
    let file = std::fs::File::from(fd);
    if let Ok(info) = crate::parse::elf::parse(&file) {
        if let Some(interp) = info.interpreter {
            if !matches!(root.stat(Path::new(&interp)), Ok(Some(_))) {
                return Err(Error::InvalidArgs(format!(
                    "Image '{}': {} needs the loader {interp}, which the image lacks.",
                    image.name,
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// A dynamic user id for a run of `name`, from systemd's range, varying with the process.
fn dynamic_uid(name: &str) -> u32 {
    let seed = name.bytes().fold(std::process::id(), |h, b| {
        h.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    DYNAMIC_UID_MIN + seed % (DYNAMIC_UID_MAX - DYNAMIC_UID_MIN + 1)
}

/// `user` (a name or a number) in the image's /etc/passwd: uid and gid.
fn lookup_user(root: &ImageRoot, user: &str) -> Option<(u32, u32)> {
    if let Ok(uid) = user.parse::<u32>() {
        return Some((uid, uid));
    }
    let passwd = root
        .read_file(Path::new("/etc/passwd"), 4 << 20)
        .ok()
        .flatten()?;
    String::from_utf8_lossy(&passwd).lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// `CAP_NAME` as its number (linux/capability.h).
pub fn capability_number(name: &str) -> Option<u32> {
    const NAMES: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// Stage 1 of a run, in a fresh helper process (`portctld --run-stage1`): new namespaces,
/// stage 2 as their first process, its host PID written to `pid_out` (for the daemon to send
/// it signals), and its exit status returned (128 + signal when killed).
pub fn run_stage1(spec_json: &str, pid_out: Option<std::fs::File>) -> i32 {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    let fail = |what: &str, e: std::io::Error| {
        eprintln!("portctl run: {what}: {e}");
        127
    };
    if let Err(e) = crate::sys::sandbox::die_with_parent() {
        return fail("cannot follow the daemon", e);
    }
    let private_network =
        serde_json::from_str::<RunSpec>(spec_json).is_ok_and(|s| s.private_network);
    if let Err(e) = crate::sys::sandbox::stage1_unshare(private_network) {
        return fail("cannot create the namespaces", e);
    }
    let child = std::process::Command::new("/proc/self/exe")
        .arg("--run-stage2")
        .arg(spec_json)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail("cannot start the run", e),
    };
    if let Some(mut out) = pid_out {
        let _ = writeln!(out, "{}", child.id());
    }
    // Interrupts meant for the command (sent to the whole unit of a run that PID 1 started)
    // leave this process waiting for it.
    crate::sys::sandbox::ignore_interrupts();
    match child.wait() {
        Ok(status) => status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        Err(e) => fail("cannot wait for the run", e),
    }
}

/// Stage 2 (`portctld --run-stage2`), PID 1 of the new namespaces: opens the image, builds its
/// tree, enters it and executes the command. Returns only on failure, with what failed.
pub fn run_stage2(spec_json: &str) -> String {
    let spec: RunSpec = match serde_json::from_str(spec_json) {
        Ok(s) => s,
        Err(e) => return format!("bad run specification: {e}"),
    };
    if let Err(e) = crate::sys::sandbox::die_with_parent() {
        return format!("cannot follow stage 1: {e}");
    }
    let host = match Host::new(&spec.host_root) {
        Ok(h) => h,
        Err(e) => return format!("cannot open {}: {e}", spec.host_root.display()),
    };
    let image = match host.image_from_path(&spec.image) {
        Ok(i) => i,
        Err(e) => return e.to_string(),
    };
    let root = match host.open_image(&image) {
        Ok(r) => r,
        Err(e) => return e.to_string(),
    };
    let fd = match root.as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => return e.to_string(),
    };
    let e = crate::sys::sandbox::enter_and_exec(&spec, &fd);
    drop(root);
    format!("cannot run {}: {e}", spec.argv[0])
}

/// The descriptor `n` the daemon left open for a helper (see [`run_stage1`]).
pub fn inherited_fd(n: i32) -> Option<std::fs::File> {
    crate::sys::sandbox::inherited_fd(n)
}
