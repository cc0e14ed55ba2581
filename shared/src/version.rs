//! Which systemd portctl behaves as: the version of the host's PID 1, and the one table that
//! says, behaviour by behaviour, from which systemd version on it applies
//! (docs/compatibility.md, "By systemd version").
//!
//! Each boundary was found in systemd's sources (252, 254, 257 and the newest) and checked
//! against the real portabled of a version on each side where Debian ships one (252, 254,
//! 257, 262). A host older than the oldest known version behaves as the oldest, one newer
//! than the newest as the newest; without a PID 1 to ask, the newest.

use std::fmt;

/// A systemd version, by its major number (`252` of "252.39-1~deb12u2").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32);

impl Version {
    /// The oldest systemd portctl knows: Debian 12's.
    pub const OLDEST: Self = Self(252);
    /// The newest systemd portctl knows.
    pub const NEWEST: Self = Self(262);

    /// The major number at the start of a version string as systemd reports it
    /// (`org.freedesktop.systemd1.Manager.Version`, `systemctl --version`): "252.39-1~deb12u2",
    /// "257.13-1~deb13u1", "262.1-1", "v262", "263~rc1". `None` when it has none.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s.strip_prefix("systemd ").unwrap_or(s);
        let s = s.strip_prefix('v').unwrap_or(s);
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok().filter(|&n| n > 0).map(Self)
    }

    /// The version portctl behaves as for a host of this version: the nearest known one.
    pub fn behave_as(self) -> Self {
        self.clamp(Self::OLDEST, Self::NEWEST)
    }

    /// Whether `behaviour` applies to this version.
    pub fn has(self, behaviour: Behaviour) -> bool {
        let b = TABLE
            .iter()
            .find(|row| row.behaviour == behaviour)
            .expect("every behaviour has a row");
        self >= b.since && b.until.is_none_or(|until| self <= until)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The behaviours that differ between systemd versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// 20-portable.conf binds the host's os-release to /run/host/os-release. From 254 on PID 1
    /// mounts it there itself, and a unit that also binds it fails to start
    /// (`status=226/NAMESPACE`, "File exists").
    OsReleaseBind,
    /// `LogExtraFields=PORTABLE_NAME_AND_VERSION=` (or, with extensions, `PORTABLE_ROOT=`,
    /// `PORTABLE_ROOT_NAME_AND_VERSION=`, `PORTABLE_EXTENSION=`,
    /// `PORTABLE_EXTENSION_NAME_AND_VERSION=`) and `Environment=PORTABLE_ROOT=`.
    ReleaseLogFields,
    /// `PORTABLE_EXTENSION_NAME_AND_VERSION=` also from a confext's `CONFEXT_*` fields.
    ConfextLogFields,
    /// `x-systemd.relax-extension-release-check` is added for extensions that are images
    /// (before: whenever the root image is not a directory, also to `ExtensionDirectories=`).
    RelaxByExtensionType,
    /// `RootImagePolicy=`/`ExtensionImagePolicy=` pin what attach found in a raw image.
    ImagePolicy,
    /// Units that come from the root image also get the `Extension*=` lines.
    ExtensionsForRootUnits,
    /// An image found by name through a symlink in the search path (`/etc/portables/NAME`)
    /// is the symlink's target: its `Path`, the drop-ins, inspect's `Image:`.
    SearchPathLinksResolved,
    /// Attach and reattach of an image found by name through a symlink in the search path
    /// work on the symlink's final target: the drop-ins name it, the image's own link points
    /// to it (before: to the search-path symlink).
    AttachResolvesLinks,
    /// Image names compared without their version: an extension `app_1.0.raw` may carry
    /// `extension-release.app`, and the state of an image counts every attachment it is a
    /// layer of (`list` shows an extension `attached` while its attachment is).
    VersionedImageNames,
    /// `.v/` directories (vpick) as images and extensions: the newest version inside is used,
    /// again on each reattach.
    Vpick,
    /// `--copy=mixed`: the image files and unit files copied, the profile linked; also with
    /// extensions.
    CopyMixed,
    /// The client: PID 1's unit-file changes quoted, as systemctl prints them
    /// (`Created symlink 'A' → 'B'.`, `Removed 'A'.`; before: `Removed "A".`).
    QuotedUnitFileChanges,
    /// The client: sizes without a zero decimal (`300K`; before: `300.0K`).
    SizesWithoutZeroDecimal,
    /// The client: "(Matching unit files with prefix 'a'.)" for one prefix given, "prefixes"
    /// only for several (before: "prefixes" whenever prefixes are given).
    OnePrefixSingular,
    /// The client: inspect and attach without prefixes that match nothing by the image's name
    /// try again with the image's `PORTABLE_PREFIXES=` (GetImageOSRelease).
    PortablePrefixesRetry,
    /// No matching unit file is `org.freedesktop.portable1.NoMatchingUnitFiles` (before:
    /// `org.freedesktop.DBus.Error.InvalidArgs`); 262's portablectl retries on it.
    NoMatchingUnitFilesError,
    /// The client: `remove` makes a relative image path absolute, as attach and inspect do
    /// (before: "Image name './x' is not valid or not a valid path.").
    RemoveRelativePaths,
    /// A profile that does not exist is refused ("Profile 'x' does not exist, refusing.
    /// (Available profiles are: …)"), and so is an invalid or empty profile name ("Profile
    /// name 'x' is not valid.", by the daemon and the client); before, the daemon attaches
    /// without a profile and the client says "Unit profile name not valid: x".
    ProfileRefusals,
    /// The profiles systemd ships bind the log sockets with `BindLogSockets=yes` and leave
    /// `PrivateTmp=yes` to `DynamicUser=yes`; portctl's shipped profiles likewise.
    ProfileBindLogSockets,
    /// The profiles systemd ships (but `trusted`) say `DelegateNamespaces=no`.
    ProfileDelegateNamespaces,
    /// The client: `--help` in the newer layout (`> portablectl [OPTION…] COMMAND …`, a
    /// verb's arguments on a second line, `[list]`).
    NewHelpLayout,
    /// An extension's `ID=` may also match one of the root image's `ID_LIKE=`.
    ExtensionIdLike,
    /// The image object introspects `ReattachWithExtensions` (before: the misspelled
    /// `ReattacheWithExtensions`); portctld serves both spellings at every version.
    ReattachSpelledRight,
}

/// One row of the table: a behaviour and the versions that have it.
pub struct Row {
    pub behaviour: Behaviour,
    /// The first version that has it.
    pub since: Version,
    /// The last version that has it, for behaviours that were dropped.
    pub until: Option<Version>,
    /// Where the boundary comes from.
    pub evidence: &'static str,
}

/// Behaviour by version. Keep in step with docs/compatibility.md.
pub const TABLE: &[Row] = &[
    Row {
        behaviour: Behaviour::OsReleaseBind,
        since: Version(1),
        until: Some(Version(253)),
        evidence: "254's NEWS: every service with RootDirectory=/RootImage= gets /run/host/os-release from PID 1; 254's install_chroot_dropin() writes no bind; 253's NEWS says nothing of it",
    },
    Row {
        behaviour: Behaviour::ReleaseLogFields,
        since: Version(254),
        until: None,
        evidence: "append_release_log_fields() in 254's portable.c, absent from 252's",
    },
    Row {
        behaviour: Behaviour::ConfextLogFields,
        since: Version(255),
        until: None,
        evidence: "absent from 254, present in 257; 255 brought confext extensions (its NEWS): 255 assumed",
    },
    Row {
        behaviour: Behaviour::RelaxByExtensionType,
        since: Version(255),
        until: None,
        evidence: "254 tests the root's type, 257 the extension's (the flag renamed FORCE_EXTENSION with confexts): 255 assumed",
    },
    Row {
        behaviour: Behaviour::ImagePolicy,
        since: Version(260),
        until: None,
        evidence: "systemd PR #40152 (January 2026), in the 260 sources; absent from 257",
    },
    Row {
        behaviour: Behaviour::ExtensionsForRootUnits,
        since: Version(262),
        until: None,
        evidence: "the 260 sources write Extension*= only for units from an extension; 262.1 for every unit: 261 unknown, 262 assumed",
    },
    Row {
        behaviour: Behaviour::SearchPathLinksResolved,
        since: Version(262),
        until: None,
        evidence: "observed: 257's portabled reports /run/portables/NAME.raw, 262.1's the link's target; 258 to 261 not checked, 262 assumed",
    },
    Row {
        behaviour: Behaviour::VersionedImageNames,
        since: Version(256),
        until: None,
        evidence: "systemd PR #31435 'portable: assorted bug fixes' (merged February 2024, between 255 and 256): path_extract_image_name() in open_extension_release() and marker_matches_images(); observed: 252 refuses app0_1.0.raw, 257 and 262 attach it",
    },
    Row {
        behaviour: Behaviour::Vpick,
        since: Version(256),
        until: None,
        evidence: "256's NEWS: systemd-vpick, and portabled resolving .v/ directories; observed in 257 and 262",
    },
    Row {
        behaviour: Behaviour::CopyMixed,
        since: Version(256),
        until: None,
        evidence: "256's NEWS: portablectl --copy= gained 'mixed'; observed in 257 and 262",
    },
    Row {
        behaviour: Behaviour::QuotedUnitFileChanges,
        since: Version(257),
        until: None,
        evidence: "install_changes_dump() in 254's install.c: unquoted; in 257's: quoted; the golden test sees 254's portablectl print them unquoted; 255 and 256 not checked, 257 assumed",
    },
    Row {
        behaviour: Behaviour::SizesWithoutZeroDecimal,
        since: Version(257),
        until: None,
        evidence: "format_bytes_full() in 254's format-util.c always prints the decimal, 257's only when it is not zero; the golden test sees it in 254's portablectl; 255 and 256 not checked, 257 assumed",
    },
    Row {
        behaviour: Behaviour::OnePrefixSingular,
        since: Version(262),
        until: None,
        evidence: "determine_matches() in 257's portablectl.c says 'prefixes' for any list; 262.1 observed saying 'prefix' for one; 258 to 261 not checked, 262 assumed",
    },
    Row {
        behaviour: Behaviour::NoMatchingUnitFilesError,
        since: Version(262),
        until: None,
        evidence: "observed: 262.1's portabled answers GetImageMetadata without a matching unit with NoMatchingUnitFiles, 252's with InvalidArgs; 257 not checked, 262 assumed with the retry that needs it",
    },
    Row {
        behaviour: Behaviour::PortablePrefixesRetry,
        since: Version(262),
        until: None,
        evidence: "observed (busctl monitor): 262.1's portablectl calls GetImageOSRelease and GetImageMetadata again after 'Couldn't find any matching unit files'; 257's does not (upstream's TEST-29 of 257 has no such step); 258 to 261 not checked, 262 assumed",
    },
    Row {
        behaviour: Behaviour::RemoveRelativePaths,
        since: Version(262),
        until: None,
        evidence: "observed: 257's `portablectl remove ./x` in /tmp refuses the name, 262.1's removes /tmp/x (upstream's TEST-29 of 262, directory); 258 to 261 not checked, 262 assumed",
    },
    Row {
        behaviour: Behaviour::ProfileRefusals,
        since: Version(262),
        until: None,
        evidence: "observed: 257's portabled attaches with --profile=nonexistent, '../x' and '' (AttachImage over D-Bus), 262.1's answers InvalidArgs 'Profile 'nonexistent' does not exist, refusing. (Available profiles are: default, nonetwork, strict, trusted)' and 'Profile name '../x' is not valid.'; 257's portablectl says 'Unit profile name not valid: ../x', 262.1's 'Profile name '../x' is not valid.'; 258 to 261 not checked, 262 assumed",
    },
    Row {
        behaviour: Behaviour::ProfileBindLogSockets,
        since: Version(257),
        until: None,
        evidence: "observed: the profiles of 252 (Debian 12) and 254 (its backport) bind /dev/log and the journal's sockets and say PrivateTmp=yes, those of 257 (Debian 13) and 262.1 say BindLogSockets=yes (a setting new in 257's NEWS) and no PrivateTmp=",
    },
    Row {
        behaviour: Behaviour::ProfileDelegateNamespaces,
        since: Version(258),
        until: None,
        evidence: "observed: 262.1's default, nonetwork and strict profiles say DelegateNamespaces=no, 257's do not; DelegateNamespaces= is new in 258's NEWS, so 258 on",
    },
    Row {
        behaviour: Behaviour::AttachResolvesLinks,
        since: Version(257),
        until: None,
        evidence: "observed (daemon/tests/box/refdiff.rs, attach of minimal_lnk through /run/portables/minimal_lnk.raw): 252 and 254 write RootImage=/run/portables/minimal_lnk.raw and link /etc/portables/minimal_lnk.raw to it, 257 and 262.1 write and link the target; 255 and 256 not checked, 257 assumed",
    },
    Row {
        behaviour: Behaviour::NewHelpLayout,
        since: Version(262),
        until: None,
        evidence: "observed: portablectl --help of 252, 254 and 257 in the old layout (254's is 252's: --clean and mixed came with 256, its NEWS), of 262.1 in the new one; 258 to 261 not checked, 262 assumed",
    },
    Row {
        behaviour: Behaviour::ExtensionIdLike,
        since: Version(258),
        until: None,
        evidence: "258's NEWS: 'systemd-sysext (and portable services with sysexts applied) will now take the os-release ID_LIKE= field into account'",
    },
    Row {
        behaviour: Behaviour::ReattachSpelledRight,
        since: Version(254),
        until: None,
        evidence: "observed (busctl introspect of an image object): 252 lists ReattacheWithExtensions only, 254, 257 and 262.1 ReattachWithExtensions only",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_systemd_reports_them() {
        for (s, v) in [
            ("252.39-1~deb12u2", Some(252)),
            ("257.13-1~deb13u1", Some(257)),
            ("262.1-1", Some(262)),
            ("v262", Some(262)),
            ("systemd 254 (254.26-1~bpo12+1)", Some(254)),
            ("263~rc1", Some(263)),
            ("", None),
            ("unknown", None),
        ] {
            assert_eq!(Version::parse(s), v.map(Version), "{s}");
        }
    }

    #[test]
    fn unknown_versions_behave_as_the_nearest_known_one() {
        assert_eq!(Version(219).behave_as(), Version::OLDEST);
        assert_eq!(Version(255).behave_as(), Version(255));
        assert_eq!(Version(300).behave_as(), Version::NEWEST);
    }

    #[test]
    fn boundaries() {
        use Behaviour::*;
        let has = |v: u32, b| Version(v).has(b);
        assert!(has(252, OsReleaseBind) && has(253, OsReleaseBind));
        assert!(!has(254, OsReleaseBind) && !has(262, OsReleaseBind));
        assert!(!has(253, ReleaseLogFields) && has(254, ReleaseLogFields));
        assert!(!has(259, ImagePolicy) && has(260, ImagePolicy));
        for row in TABLE {
            assert!(row.until.is_none_or(|u| u >= row.since));
        }
    }
}
