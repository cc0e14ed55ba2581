//! What an image's own units may not do under a profile that confines them: the settings that
//! would take a service out of what its profile promises (docs/security.md, "What a profile
//! promises"). systemd applies a unit's settings *and* the profile's; lists add up and a user
//! of the host stays that user, so an image unit with `User=root` and `BindPaths=/etc:/x`
//! writes the host's /etc under any profile. Attach refuses such units unless the profile is
//! `trusted` or `--force` is given; `portctl validate` reports the same findings.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::host::Host;
use crate::parse::names;
use crate::parse::unit_file::{self, parse_bool, Assignment};
use crate::profile::Profile;
use crate::units::UnitFile;

/// The profile that confines nothing: its units may do as they please.
pub const TRUSTED_PROFILE: &str = "trusted";

/// Settings whose values are paths on the host (systemd reads or mounts them before the
/// service's root is set up).
const HOST_PATH_SETTINGS: [&str; 7] = [
    "BindPaths",
    "BindReadOnlyPaths",
    "MountImages",
    "ExtensionImages",
    "ExtensionDirectories",
    "LoadCredential",
    "LoadCredentialEncrypted",
];

/// The `Exec*=` settings of services and sockets.
const EXEC_SETTINGS: [&str; 8] = [
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPre",
    "ExecStopPost",
];

/// Why a setting widens the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// `User=`, `Group=`, `SupplementaryGroups=`: a user or group that exists on the host.
    HostIdentity,
    /// `DynamicUser=no` where the profile allocates a dynamic user.
    NoDynamicUser,
    /// `PrivateUsers=no` where the profile has a user namespace.
    NoPrivateUsers,
    /// `NoNewPrivileges=no` where the profile sets it.
    NewPrivileges,
    /// Capabilities outside the profile's bounding set.
    Capabilities,
    /// Network access the profile takes away.
    Network,
    /// Device access the profile takes away.
    Devices,
    /// A path of the host mounted into the service or read for it.
    HostPath,
    /// A root of its own instead of the image.
    OwnRoot,
    /// A file of the host opened as the service's input or output.
    HostFile,
    /// A command run without the profile's restrictions (`+`, `!`, `!!`).
    Unrestricted,
    /// A command of a unit that systemd runs on the host, outside the image.
    OnTheHost,
    /// A unit of the host started by this one.
    TriggersHostUnit,
}

impl Reason {
    fn text(self) -> &'static str {
        match self {
            Self::HostIdentity => "runs as a user or group of the host instead of a dynamic one",
            Self::NoDynamicUser => "turns off the profile's dynamic user",
            Self::NoPrivateUsers => "turns off the profile's user namespace",
            Self::NewPrivileges => "lets the service gain privileges the profile forbids",
            Self::Capabilities => "grants capabilities outside the profile's bounding set",
            Self::Network => "opens network access the profile closes",
            Self::Devices => "opens device access the profile closes",
            Self::HostPath => "mounts or reads a path of the host",
            Self::OwnRoot => "chooses a root of its own instead of the image",
            Self::HostFile => "opens a file of the host",
            Self::Unrestricted => "runs a command without the profile's restrictions",
            Self::OnTheHost => "runs a command on the host, outside the image",
            Self::TriggersHostUnit => "starts a unit of the host",
        }
    }
}

/// One setting of an image's unit that widens the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Widening {
    pub unit: String,
    pub line: usize,
    /// The assignment as written, `Key=value`.
    pub setting: String,
    pub reason: Reason,
}

impl fmt::Display for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} line {}: {} ({})",
            self.unit,
            self.line,
            crate::parse::text::cescape(&self.setting),
            self.reason.text()
        )
    }
}

/// What the profile restricts, as far as the checks need it.
#[derive(Debug, Default)]
pub(crate) struct Restrictions {
    pub(crate) dynamic_user: bool,
    private_users: bool,
    no_new_privileges: bool,
    pub(crate) private_network: bool,
    private_devices: bool,
    ip_deny_any: bool,
    /// The bounding set, when the profile has one.
    capabilities: Option<BTreeSet<String>>,
    /// The allowed address families, when the profile has an allow list.
    pub(crate) families: Option<BTreeSet<String>>,
}

fn words(v: &str) -> Vec<String> {
    unit_file::split_words(v).unwrap_or_default()
}

/// A capability or address-family list: `Some(~, names)`; `None` for a reset (empty value).
pub(crate) fn list(v: &str) -> Option<(bool, Vec<String>)> {
    let (inverted, rest) = match v.strip_prefix('~') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let names = words(rest);
    (!names.is_empty() || inverted).then_some((inverted, names))
}

impl Restrictions {
    pub(crate) fn of(profile: &Profile) -> Self {
        let mut r = Self::default();
        let set = |flag: &mut bool, v: &str| {
            if let Some(b) = parse_bool(v) {
                *flag = b;
            }
        };
        for a in unit_file::parse(&profile.content) {
            if a.section != "Service" {
                continue;
            }
            match a.key.as_str() {
                "DynamicUser" => set(&mut r.dynamic_user, &a.value),
                "PrivateUsers" => set(&mut r.private_users, &a.value),
                "NoNewPrivileges" => set(&mut r.no_new_privileges, &a.value),
                "PrivateNetwork" => set(&mut r.private_network, &a.value),
                "PrivateDevices" => set(&mut r.private_devices, &a.value),
                "IPAddressDeny" => r.ip_deny_any |= words(&a.value).iter().any(|w| w == "any"),
                "CapabilityBoundingSet" => {
                    let caps = r.capabilities.get_or_insert_with(BTreeSet::new);
                    match list(&a.value) {
                        None => caps.clear(),
                        Some((false, names)) => caps.extend(names),
                        Some((true, names)) => names.iter().for_each(|n| {
                            caps.remove(n);
                        }),
                    }
                }
                "RestrictAddressFamilies" => match list(&a.value) {
                    None => r.families = None,
                    Some((false, names)) => {
                        r.families.get_or_insert_with(BTreeSet::new).extend(names)
                    }
                    Some((true, _)) => {}
                },
                _ => {}
            }
        }
        r
    }
}

/// The names in the host's `/etc/passwd` or `/etc/group` (the first field of each line).
fn host_names(host: &Host, file: &str) -> BTreeSet<String> {
    let Ok(Some(data)) = host.fs().read_file(Path::new(file), 16 << 20) else {
        return BTreeSet::new();
    };
    String::from_utf8_lossy(&data)
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Whether a `User=`/`Group=` value names an identity of the host rather than a dynamic one:
/// a number, or a name the host has.
fn is_host_identity(value: &str, host_names: &BTreeSet<String>) -> bool {
    value.bytes().all(|b| b.is_ascii_digit()) || host_names.contains(value)
}

/// The settings of `units` that widen `profile` (none for the trusted profile). `attached`
/// names every unit that the attach brings (a timer may start those).
pub fn widenings(
    host: &Host,
    profile: &Profile,
    units: &[&UnitFile],
    attached: &BTreeSet<&str>,
) -> Vec<Widening> {
    if profile.name == TRUSTED_PROFILE {
        return Vec::new();
    }
    let r = Restrictions::of(profile);
    let users = host_names(host, "/etc/passwd");
    let groups = host_names(host, "/etc/group");
    let mut out = Vec::new();
    for u in units {
        let kind = names::unit_suffix(&u.name).unwrap_or_default();
        for a in unit_file::parse(&String::from_utf8_lossy(&u.content)) {
            if let Some(reason) = widening(&a, kind, &r, &users, &groups, attached) {
                out.push(Widening {
                    unit: u.name.clone(),
                    line: a.line,
                    setting: format!("{}={}", a.key, a.value),
                    reason,
                });
            }
        }
    }
    out
}

fn widening(
    a: &Assignment,
    kind: &str,
    r: &Restrictions,
    users: &BTreeSet<String>,
    groups: &BTreeSet<String>,
    attached: &BTreeSet<&str>,
) -> Option<Reason> {
    let v = a.value.as_str();
    let off = parse_bool(v) == Some(false);
    // The commands of sockets run on the host: 20-portable.conf gives only services a root.
    if kind == "socket" && a.section == "Socket" && EXEC_SETTINGS.contains(&a.key.as_str()) {
        return (!v.is_empty()).then_some(Reason::OnTheHost);
    }
    match (kind, a.section.as_str(), a.key.as_str()) {
        ("timer", "Timer", "Unit") | ("path", "Path", "Unit") | ("socket", "Socket", "Service") => {
            return (!attached.contains(v)).then_some(Reason::TriggersHostUnit);
        }
        _ => {}
    }
    if a.section != "Service" {
        return None;
    }
    let key = a.key.as_str();
    let found = match key {
        "User" => is_host_identity(v, users),
        "Group" => is_host_identity(v, groups),
        "SupplementaryGroups" => words(v).iter().any(|g| is_host_identity(g, groups)),
        "DynamicUser" => r.dynamic_user && off,
        "PrivateUsers" => r.private_users && off,
        "NoNewPrivileges" => r.no_new_privileges && off,
        "PrivateNetwork" => r.private_network && off,
        "IPAddressAllow" => r.ip_deny_any && !v.is_empty(),
        "RestrictAddressFamilies" => match (&r.families, list(v)) {
            (Some(allowed), Some((false, names))) => names.iter().any(|n| !allowed.contains(n)),
            // A reset or a deny list where the profile allows only some families.
            (Some(_), None | Some((true, _))) => true,
            (None, _) => false,
        },
        "PrivateDevices" => r.private_devices && off,
        "CapabilityBoundingSet" | "AmbientCapabilities" => match (&r.capabilities, list(v)) {
            (Some(allowed), Some((false, names))) => names.iter().any(|n| !allowed.contains(n)),
            (Some(allowed), Some((true, _))) => key == "AmbientCapabilities" && !allowed.is_empty(),
            _ => false,
        },
        k if HOST_PATH_SETTINGS.contains(&k) => !v.is_empty(),
        "RootDirectory" | "RootImage" => !v.is_empty(),
        "StandardInput" | "StandardOutput" | "StandardError" => ["file:", "append:", "truncate:"]
            .iter()
            .any(|p| v.starts_with(p)),
        k if EXEC_SETTINGS.contains(&k) => {
            // The prefixes before the program: `+` and `!`/`!!` lift the restrictions.
            let prefixes: String = v.chars().take_while(|c| "@-:+!|".contains(*c)).collect();
            prefixes.contains('+') || prefixes.contains('!')
        }
        _ => false,
    };
    found.then(|| match key {
        "User" | "Group" | "SupplementaryGroups" => Reason::HostIdentity,
        "DynamicUser" => Reason::NoDynamicUser,
        "PrivateUsers" => Reason::NoPrivateUsers,
        "NoNewPrivileges" => Reason::NewPrivileges,
        "PrivateNetwork" | "IPAddressAllow" | "RestrictAddressFamilies" => Reason::Network,
        "PrivateDevices" => Reason::Devices,
        "CapabilityBoundingSet" | "AmbientCapabilities" => Reason::Capabilities,
        "RootDirectory" | "RootImage" => Reason::OwnRoot,
        "StandardInput" | "StandardOutput" | "StandardError" => Reason::HostFile,
        k if EXEC_SETTINGS.contains(&k) => Reason::Unrestricted,
        _ => Reason::HostPath,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> (tempfile::TempDir, Host) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nredis-host:x:101:101::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nadm:x:4:\n").unwrap();
        let h = Host::new(d.path()).unwrap();
        (d, h)
    }

    fn unit(name: &str, text: &str) -> UnitFile {
        UnitFile {
            name: name.into(),
            path: format!("/usr/lib/systemd/system/{name}").into(),
            content: text.as_bytes().to_vec(),
        }
    }

    fn found(h: &Host, profile: &str, u: &UnitFile) -> Vec<(String, Reason)> {
        let p = h.service_profile(profile).unwrap();
        let attached: BTreeSet<&str> = [u.name.as_str(), "app.service"].into();
        widenings(h, &p, &[u], &attached)
            .into_iter()
            .map(|w| (w.setting, w.reason))
            .collect()
    }

    #[test]
    fn what_widens_the_default_profile() {
        let (_d, h) = host();
        use Reason::*;
        let table: &[(&str, Option<Reason>)] = &[
            ("User=root", Some(HostIdentity)),
            ("User=0", Some(HostIdentity)),
            ("User=redis-host", Some(HostIdentity)),
            ("User=redis", None),
            ("Group=adm", Some(HostIdentity)),
            ("SupplementaryGroups=video adm", Some(HostIdentity)),
            ("DynamicUser=no", Some(NoDynamicUser)),
            ("DynamicUser=yes", None),
            ("PrivateUsers=no", Some(NoPrivateUsers)),
            // default sets no NoNewPrivileges= (strict does).
            ("NoNewPrivileges=no", None),
            ("BindPaths=/etc:/hostetc", Some(HostPath)),
            ("BindReadOnlyPaths=/", Some(HostPath)),
            ("LoadCredential=key:/etc/shadow", Some(HostPath)),
            ("ExtensionDirectories=/srv/x", Some(HostPath)),
            ("RootDirectory=/", Some(OwnRoot)),
            ("RootImage=/x.raw", Some(OwnRoot)),
            ("CapabilityBoundingSet=CAP_SYS_MODULE", Some(Capabilities)),
            ("CapabilityBoundingSet=CAP_CHOWN", None),
            ("CapabilityBoundingSet=~CAP_SYS_ADMIN", None),
            ("AmbientCapabilities=CAP_SYS_RAWIO", Some(Capabilities)),
            ("PrivateDevices=no", Some(Devices)),
            ("StandardOutput=file:/etc/passwd", Some(HostFile)),
            ("StandardOutput=journal", None),
            ("ExecStart=+/bin/sh -c x", Some(Unrestricted)),
            ("ExecStartPre=!/bin/true", Some(Unrestricted)),
            ("ExecStart=-/usr/bin/app", None),
            ("ReadWritePaths=/var/lib/app", None),
            ("RestrictAddressFamilies=AF_INET", None),
            ("RestrictAddressFamilies=AF_PACKET", Some(Network)),
        ];
        for (setting, want) in table {
            let u = unit("app.service", &format!("[Service]\n{setting}\n"));
            let got = found(&h, "default", &u);
            assert_eq!(got.first().map(|(_, r)| *r), *want, "{setting}: {got:?}");
        }
    }

    #[test]
    fn strict_takes_more_and_trusted_nothing() {
        let (_d, h) = host();
        let u = unit(
            "app.service",
            "[Service]\nNoNewPrivileges=no\nPrivateNetwork=no\nIPAddressAllow=any\nCapabilityBoundingSet=CAP_CHOWN\nUser=root\n",
        );
        assert_eq!(found(&h, "strict", &u).len(), 5);
        assert!(found(&h, "trusted", &u).is_empty());
    }

    #[test]
    fn sockets_timers_and_paths_stay_in_the_image() {
        let (_d, h) = host();
        let s = unit("app.socket", "[Socket]\nListenStream=/run/app.sock\nExecStartPre=/bin/sh -c evil\nService=app.service\n");
        assert_eq!(
            found(&h, "default", &s),
            [(
                "ExecStartPre=/bin/sh -c evil".to_string(),
                Reason::OnTheHost
            )]
        );
        let t = unit(
            "app.timer",
            "[Timer]\nOnCalendar=daily\nUnit=debug-shell.service\n",
        );
        assert_eq!(
            found(&h, "default", &t),
            [(
                "Unit=debug-shell.service".to_string(),
                Reason::TriggersHostUnit
            )]
        );
        let ok = unit("app.timer", "[Timer]\nUnit=app.service\n");
        assert!(found(&h, "default", &ok).is_empty());
    }
}
