//! Security profiles: where they are found, and what they mount into a service's root (which
//! decides the mount points and files an image must carry).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::host::{Host, PROFILE_SEARCH_PATH};
use crate::limits::PROFILE_MAX;
use crate::parse::names::filename_is_valid;
use crate::parse::unit_file::{self, parse_bool};
use crate::version::{Behaviour, Version};

/// The profiles portctl ships, one set per systemd version whose texts they carry
/// (`systemd-units/profile/<set>/`; `make install` installs the host version's set where the
/// host has none of that name). Also what compliance checks use on hosts that have none.
macro_rules! shipped {
    ($set:literal) => {
        [
            (
                "default",
                include_str!(concat!(
                    "../../systemd-units/profile/",
                    $set,
                    "/default/service.conf"
                )),
            ),
            (
                "nonetwork",
                include_str!(concat!(
                    "../../systemd-units/profile/",
                    $set,
                    "/nonetwork/service.conf"
                )),
            ),
            (
                "strict",
                include_str!(concat!(
                    "../../systemd-units/profile/",
                    $set,
                    "/strict/service.conf"
                )),
            ),
            (
                "trusted",
                include_str!(concat!(
                    "../../systemd-units/profile/",
                    $set,
                    "/trusted/service.conf"
                )),
            ),
        ]
    };
}
const SHIPPED_252: [(&str, &str); 4] = shipped!("252");
const SHIPPED_257: [(&str, &str); 4] = shipped!("257");
const SHIPPED_258: [(&str, &str); 4] = shipped!("258");

/// The set of shipped profiles with the texts of systemd `version`: "252" (up to 256),
/// "257" (`BindLogSockets=yes` for the log sockets' binds, no `PrivateTmp=yes` beside
/// `DynamicUser=yes`), "258" (and `DelegateNamespaces=no`). The Makefile picks the same.
pub fn shipped_profile_set(version: Version) -> &'static str {
    if version.has(Behaviour::ProfileDelegateNamespaces) {
        "258"
    } else if version.has(Behaviour::ProfileBindLogSockets) {
        "257"
    } else {
        "252"
    }
}

fn shipped(version: Version) -> &'static [(&'static str, &'static str); 4] {
    match shipped_profile_set(version) {
        "258" => &SHIPPED_258,
        "257" => &SHIPPED_257,
        _ => &SHIPPED_252,
    }
}

/// A profile drop-in for one unit type.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub name: String,
    /// Where it was found on the host; `None` for a built-in copy.
    pub path: Option<PathBuf>,
    #[serde(skip)]
    pub content: String,
}

/// Whether `name` can name a profile (a valid file name).
pub fn profile_name_is_valid(name: &str) -> bool {
    filename_is_valid(name.as_bytes())
}

impl Host {
    /// The first `<dir>/<name>/<unit_type>.conf` of the profile search path, `None` if there is
    /// none.
    pub fn find_profile(&self, name: &str, unit_type: &str) -> Result<Option<Profile>> {
        if !profile_name_is_valid(name) {
            return Err(Error::BadProfileName(name.to_string()));
        }
        for dir in PROFILE_SEARCH_PATH {
            let path = Path::new(dir).join(name).join(format!("{unit_type}.conf"));
            match self.fs().read_file(&path, PROFILE_MAX) {
                Ok(Some(bytes)) => {
                    return Ok(Some(Profile {
                        name: name.to_string(),
                        content: String::from_utf8_lossy(&bytes).into_owned(),
                        path: Some(path),
                    }))
                }
                Ok(None) => {}
                Err(crate::root::ReadError::Io(e)) => {
                    return Err(e).context("Failed to read profile", path)
                }
                Err(e) => {
                    return Err(std::io::Error::other(e.to_string()))
                        .context("Failed to read profile", path)
                }
            }
        }
        Ok(None)
    }

    /// The `service` profile `name` from the host, or else portctl's copy for the newest
    /// systemd ([`Host::service_profile_as`]).
    pub fn service_profile(&self, name: &str) -> Result<Profile> {
        self.service_profile_as(name, Version::NEWEST)
    }

    /// The `service` profile `name` from the host, or else the copy portctl ships for
    /// systemd `version`.
    pub fn service_profile_as(&self, name: &str, version: Version) -> Result<Profile> {
        if let Some(p) = self.find_profile(name, "service")? {
            return Ok(p);
        }
        shipped(version)
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, content)| Profile {
                name: n.to_string(),
                path: None,
                content: content.to_string(),
            })
            .ok_or_else(|| Error::NoSuchProfile(name.to_string()))
    }

    /// The names of the profiles installed on the host, sorted; masked ones (a symlink to
    /// `/dev/null`) left out.
    pub fn list_profiles(&self) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        let mut masked = std::collections::BTreeSet::new();
        for dir in PROFILE_SEARCH_PATH {
            let Ok(Some(entries)) = self.fs().read_dir(Path::new(dir)) else {
                continue;
            };
            for e in entries {
                let name = e.name.to_string_lossy().into_owned();
                if names.contains(&name) || masked.contains(&name) {
                    continue;
                }
                let path = Path::new(dir).join(&e.name);
                let is_masked = self
                    .fs()
                    .read_link(&path)
                    .is_ok_and(|t| t == Path::new("/dev/null"));
                if is_masked {
                    masked.insert(name);
                } else if matches!(self.fs().stat(&path), Ok(Some(st)) if st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                {
                    names.insert(name);
                }
            }
        }
        names.into_iter().collect()
    }
}

/// Whether a path an image must provide is a directory or a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    Directory,
    File,
}

/// A path the service manager mounts something over, so it must exist in the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequiredPath {
    pub path: String,
    pub kind: PathKind,
    /// The mode to create it with (1777 for the temporary directories).
    pub mode: u32,
    /// The setting that mounts over it.
    pub reason: String,
}

/// The bind mount of the host's os-release that `20-portable.conf` adds (up to 253).
pub const OS_RELEASE_BIND_TARGET: &str = "/run/host/os-release";
/// Where PID 1 (254 and later) mounts the directory holding the host's os-release.
pub const OS_RELEASE_STAGE: &str = "/run/host/.os-release-stage";

/// Derives the paths that must exist in an image for `profile_text`'s mounts to succeed:
/// `MountAPIVFS=` (/proc, /sys, /dev, /run), `PrivateDevices=` (/dev), `PrivateTmp=` and
/// `DynamicUser=` (/tmp, /var/tmp), `TemporaryFileSystem=`, and the destinations of `BindPaths=` and
/// `BindReadOnlyPaths=` (plus the host's os-release: bound by 20-portable.conf up to systemd
/// 253, by PID 1 itself from 254 on), except those that land in a
/// file system mounted fresh by one of the former. A bind of a host directory needs a
/// directory, anything else a file.
pub fn required_paths(host: &Host, profile_text: &str, version: Version) -> Vec<RequiredPath> {
    let mut api: Vec<(String, u32, String)> = Vec::new();
    let mut binds: Vec<(String, String, String)> = Vec::new();
    if version.has(Behaviour::OsReleaseBind) {
        binds.push((
            "/etc/os-release".into(),
            OS_RELEASE_BIND_TARGET.into(),
            "20-portable.conf BindReadOnlyPaths=".into(),
        ));
    } else {
        // A directory: what the host's /run/systemd/propagate/.os-release-stage is.
        binds.push((
            "/".into(),
            OS_RELEASE_STAGE.into(),
            format!("systemd {version} mounting the host's os-release"),
        ));
    }
    let add_api = |api: &mut Vec<(String, u32, String)>, p: &str, mode: u32, why: String| {
        if !api.iter().any(|(q, ..)| q == p) {
            api.push((p.to_string(), mode, why));
        }
    };
    let mut dynamic_user = None;
    for a in unit_file::parse(profile_text) {
        if a.section != "Service" {
            continue;
        }
        let why = format!("{}={}", a.key, a.value);
        match a.key.as_str() {
            "MountAPIVFS" if parse_bool(&a.value) == Some(true) => {
                for p in ["/proc", "/sys", "/dev", "/run"] {
                    add_api(&mut api, p, 0o755, why.clone());
                }
            }
            "PrivateDevices" if parse_bool(&a.value) == Some(true) => {
                add_api(&mut api, "/dev", 0o755, why);
            }
            "PrivateTmp" if parse_bool(&a.value) == Some(true) || a.value == "disconnected" => {
                add_api(&mut api, "/tmp", 0o1777, why.clone());
                add_api(&mut api, "/var/tmp", 0o1777, why);
            }
            "DynamicUser" if parse_bool(&a.value) == Some(true) => dynamic_user = Some(why),
            "TemporaryFileSystem" => {
                for w in unit_file::split_words(&a.value).unwrap_or_default() {
                    let dst = w.split(':').next().unwrap_or_default();
                    if dst.starts_with('/') {
                        add_api(&mut api, dst, 0o755, why.clone());
                    }
                }
            }
            "BindPaths" | "BindReadOnlyPaths" => {
                for w in unit_file::split_words(&a.value).unwrap_or_default() {
                    let w = w.strip_prefix('-').unwrap_or(&w);
                    let mut parts = w.split(':');
                    let src = parts.next().unwrap_or_default().to_string();
                    let dst = parts
                        .next()
                        .filter(|d| d.starts_with('/'))
                        .map(str::to_string)
                        .unwrap_or_else(|| src.clone());
                    if dst.starts_with('/') {
                        binds.push((src, dst, why.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    // DynamicUser=yes implies PrivateTmp= (252: yes; 257 and later: a disconnected tmpfs):
    // both mount over /tmp and /var/tmp (named by PrivateTmp= when the profile has it too).
    if let Some(why) = dynamic_user {
        add_api(&mut api, "/tmp", 0o1777, why.clone());
        add_api(&mut api, "/var/tmp", 0o1777, why);
    }
    let under_api = |p: &str| {
        api.iter()
            .any(|(a, ..)| Path::new(p).starts_with(a) && Path::new(p) != Path::new(a))
    };
    let mut out: Vec<RequiredPath> = api
        .iter()
        .map(|(p, mode, why)| RequiredPath {
            path: p.clone(),
            kind: PathKind::Directory,
            mode: *mode,
            reason: why.clone(),
        })
        .collect();
    for (src, dst, why) in binds {
        if under_api(&dst) || out.iter().any(|r| r.path == dst) {
            continue;
        }
        let is_dir = matches!(
            host.fs().stat(Path::new(&src)),
            Ok(Some(st)) if st.st_mode & libc::S_IFMT == libc::S_IFDIR
        );
        out.push(RequiredPath {
            path: dst,
            kind: if is_dir {
                PathKind::Directory
            } else {
                PathKind::File
            },
            mode: if is_dir { 0o755 } else { 0o644 },
            reason: why,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/machine-id"), "x\n").unwrap();
        let host = Host::new(dir.path()).unwrap();
        (dir, host)
    }

    #[test]
    fn shipped_profiles_carry_their_versions_settings() {
        for v in [252, 254, 256, 257, 258, 262, 300] {
            let v = Version(v).behave_as();
            for (name, text) in shipped(v) {
                let has = |line: &str| text.lines().any(|l| l == line);
                let what = format!("systemd {v}, {name}");
                let logs = v.has(Behaviour::ProfileBindLogSockets);
                // `trusted` binds nothing: the host's /run is there.
                let confined = *name != "trusted";
                assert_eq!(has("BindLogSockets=yes"), confined && logs, "{what}");
                assert_eq!(
                    text.contains("BindReadOnlyPaths=/dev/log /run/systemd/journal/socket"),
                    confined && !logs,
                    "{what}"
                );
                assert_eq!(has("PrivateTmp=yes"), !confined || !logs, "{what}");
                assert_eq!(
                    has("DelegateNamespaces=no"),
                    confined && v.has(Behaviour::ProfileDelegateNamespaces),
                    "{what}"
                );
            }
        }
    }

    fn paths(req: &[RequiredPath]) -> Vec<(&str, PathKind)> {
        req.iter().map(|r| (r.path.as_str(), r.kind)).collect()
    }

    #[test]
    fn default_profile_requirements() {
        let (_d, host) = host();
        let p = host.service_profile("default").unwrap();
        assert!(p.path.is_none(), "built-in copy on an empty host");
        let req = required_paths(&host, &p.content, Version(252));
        use PathKind::*;
        assert_eq!(
            paths(&req),
            vec![
                ("/dev", Directory),
                ("/etc/machine-id", File),
                ("/etc/resolv.conf", File),
                ("/proc", Directory),
                ("/run", Directory),
                ("/sys", Directory),
                ("/tmp", Directory),
                ("/var/tmp", Directory),
            ]
        );
        assert_eq!(req.iter().find(|r| r.path == "/tmp").unwrap().mode, 0o1777);
    }

    #[test]
    fn strict_profile_needs_no_resolv_conf_and_trusted_binds_run() {
        let (_d, host) = host();
        let strict = required_paths(
            &host,
            &host.service_profile("strict").unwrap().content,
            Version(252),
        );
        assert!(!strict.iter().any(|r| r.path == "/etc/resolv.conf"));
        assert!(strict.iter().any(|r| r.path == "/etc/machine-id"));
        let text = "[Service]\nBindPaths=/run\nBindReadOnlyPaths=/etc/machine-id\n";
        let req = required_paths(&host, text, Version(252));
        assert_eq!(
            paths(&req),
            vec![
                ("/etc/machine-id", PathKind::File),
                ("/run", PathKind::Directory),
                (OS_RELEASE_BIND_TARGET, PathKind::File)
            ]
        );
    }

    #[test]
    fn host_profiles_win_and_are_listed() {
        let (d, host) = host();
        let dir = d.path().join("etc/systemd/portable/profile/mine");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("service.conf"), "[Service]\nPrivateTmp=yes\n").unwrap();
        let masked = d.path().join("usr/lib/systemd/portable/profile");
        std::fs::create_dir_all(masked.join("default")).unwrap();
        std::fs::create_dir_all(d.path().join("etc/systemd/portable/profile")).unwrap();
        std::os::unix::fs::symlink(
            "/dev/null",
            d.path().join("etc/systemd/portable/profile/default"),
        )
        .unwrap();
        assert_eq!(host.list_profiles(), vec!["mine".to_string()]);
        let p = host.service_profile("mine").unwrap();
        assert_eq!(
            p.path.as_deref(),
            Some(Path::new("/etc/systemd/portable/profile/mine/service.conf"))
        );
        assert!(matches!(
            host.service_profile("nope"),
            Err(Error::NoSuchProfile(_))
        ));
        assert!(matches!(
            host.service_profile("../x"),
            Err(Error::BadProfileName(_))
        ));
    }
}
