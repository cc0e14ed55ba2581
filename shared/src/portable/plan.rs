//! The middle of an attach: a pure function of the [`Facts`] an inspection gathered and the
//! options, which makes every decision (the refusals of v252 and ours, in v252's order) and
//! describes the files to write, the links to make and the repairs of a writable image. No I/O:
//! tested with tables, without a file system (`tests` below).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::Image;
use crate::limits::UNITS_MAX;
use crate::os_release::ReleaseClass;
use crate::parse::marker;
use crate::parse::text::specifier_escape;
use crate::profile::{PathKind, RequiredPath};
use crate::root::Content;
use crate::units::UnitFile;
use crate::version::{Behaviour, Version};

use super::inspect::{Facts, ProfileFacts};
use super::metadata::no_matching_units;
use super::{attached_dir, image_link, AttachOptions, CopyMode, NAME_MAX};

/// A unit as it will be attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedUnit {
    pub name: String,
    /// 20-portable.conf.
    pub dropin: Vec<u8>,
    /// 10-profile.conf (a link to the profile, or a copy) and the profile's path.
    pub profile: Option<(Content, String)>,
    pub unit: Content,
    /// The change source of the unit: its host path inside a directory image, or "".
    pub unit_source: String,
    /// The names enabling it links (`[Install]` `Alias=`, `Also=`, `DefaultInstance=`).
    pub install_names: Vec<(&'static str, String)>,
}

/// What an attach will do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub image: Image,
    /// The extension images, in order, and their links (`/etc|run/portables/<basename>`).
    pub extensions: Vec<(Image, PathBuf)>,
    /// `--copy=mixed`: the image is copied to `link` instead of linked there.
    pub copy_image: bool,
    /// The attached directory.
    pub dir: PathBuf,
    pub units: Vec<PlannedUnit>,
    pub link: PathBuf,
    /// What a writable image lacks and the attach creates in it (after the checks against
    /// the host, with the files).
    pub repairs: Vec<RequiredPath>,
}

/// Decides the attach of `arg` (as given) from what was found.
pub fn plan(arg: &str, f: &Facts, o: &AttachOptions) -> Result<Plan> {
    let image = &f.image;
    if o.copy == CopyMode::Mixed && !f.version.has(Behaviour::CopyMixed) {
        return Err(Error::InvalidArgs("Unknown copy mode 'mixed'".into()));
    }
    if !f.has_os_release {
        return Err(Error::NoOsRelease(arg.to_string()));
    }
    if !f.has_id {
        return Err(Error::Stale(format!(
            "Image {} os-release metadata lacks the ID field",
            image.name
        )));
    }
    for e in &f.extensions {
        if let Some(why) = &e.mismatch {
            return Err(Error::Stale(format!(
                "Image {} extension-release metadata does not match the root's: {why}",
                e.image.name
            )));
        }
    }
    if f.units.len() > UNITS_MAX {
        return Err(Error::InvalidArgs(format!(
            "Image '{}' with its extensions has more than {UNITS_MAX} matching unit files, refusing",
            image.name
        )));
    }
    let mut allow = f.prefixes.clone();
    for e in &f.extensions {
        allow.extend(e.prefixes.iter().cloned());
    }
    allow.sort();
    if !allow.is_empty() && !o.matches.iter().all(|m| allow.contains(m)) {
        return Err(Error::InvalidArgs(format!(
            "Selected matches '{}' are not compatible with portable service image '{}', refusing. (Acceptable prefix matches are: {})",
            o.matches.join("', '"),
            image.path.display(),
            allow.join(", ")
        )));
    }
    if f.units.is_empty() {
        return Err(no_matching_units(
            &image.path.display().to_string(),
            &o.extensions,
        ));
    }
    // A unit name may be 255 bytes long, its drop-in directory (NAME.d) may not.
    if let Some((u, _)) = f.units.iter().find(|(u, _)| u.name.len() + 2 > NAME_MAX) {
        return Err(Error::InvalidArgs(format!(
            "Unit file name '{}' of image '{}' is too long to attach: its drop-in directory name would exceed {NAME_MAX} bytes, refusing.",
            u.name,
            image.path.display()
        )));
    }
    // The profile: v252 to v261 silently attach without one when it does not exist, we
    // refuse (docs/compatibility.md); v262 refuses too, in its words, and also the empty
    // name, which before means no profile.
    let refusals = f.version.has(Behaviour::ProfileRefusals);
    match &f.profile {
        ProfileFacts::None if refusals => {
            return Err(Error::InvalidArgs("Profile name '' is not valid.".into()))
        }
        ProfileFacts::BadName if refusals => {
            return Err(Error::InvalidArgs(format!(
                "Profile name '{}' is not valid.",
                o.profile
            )))
        }
        ProfileFacts::Missing { available } if refusals => {
            return Err(Error::InvalidArgs(format!(
                "Profile '{}' does not exist, refusing. (Available profiles are: {})",
                o.profile,
                available.join(", ")
            )))
        }
        ProfileFacts::BadName => return Err(Error::BadProfileName(o.profile.clone())),
        ProfileFacts::Missing { .. } => return Err(Error::NoSuchProfile(o.profile.clone())),
        ProfileFacts::None | ProfileFacts::Found { .. } => {}
    }
    // Our addition: the image's units stay within the profile (docs/security.md).
    if let (Some(p), false) = (f.profile.service(), o.force) {
        if !f.widenings.is_empty() {
            return Err(Error::WidensProfile {
                image: image.path.display().to_string(),
                profile: p.name.clone(),
                findings: f.widenings.iter().map(ToString::to_string).collect(),
            });
        }
    }
    // Our addition: what the profile mounts over must exist in the image.
    let mut repairs = Vec::new();
    if let (Some(c), Some(p)) = (&f.compliance, f.profile.service()) {
        if !c.wrong_kind.is_empty() && !o.force {
            return Err(Error::InvalidArgs(format!(
                "Image '{}': {}",
                image.name,
                c.wrong_kind.join("; ")
            )));
        }
        if !c.missing.is_empty() {
            if f.writable {
                repairs = c.missing.clone();
            } else if !o.force {
                return Err(Error::MissingMountPoints {
                    image: image.path.display().to_string(),
                    profile: p.name.clone(),
                    paths: c
                        .missing
                        .iter()
                        .map(|m| match m.kind {
                            PathKind::Directory => format!("{}/", m.path),
                            PathKind::File => m.path.clone(),
                        })
                        .collect(),
                });
            }
        }
    }

    let dir = attached_dir(o.runtime).to_path_buf();
    let link = image_link(&image.path.display().to_string(), o.runtime);
    // With --copy=mixed the image and its extensions are copied to their links' places, and
    // the drop-ins still name the originals, as systemd-portabled writes them.
    let copy_image = o.copy == CopyMode::Mixed;
    let root = image.path.clone();
    let extensions: Vec<(Image, PathBuf)> = f
        .extensions
        .iter()
        .map(|e| {
            let link = image_link(&e.image.path.display().to_string(), o.runtime);
            (e.image.clone(), link)
        })
        .collect();
    let v = f.version;
    let layers = Layers {
        root_image: image,
        root: &root,
        extensions: &extensions,
        relax: o.relax_extension_check,
        os_release: f.host_os_release,
        version: v,
        root_policy: f.policy.as_ref().map(ToString::to_string),
        extension_policy: f
            .extensions
            .iter()
            .filter_map(|e| e.policy.clone())
            .reduce(|a, b| a.union(&b))
            .map(|p| p.to_string()),
        root_release: f
            .release
            .as_ref()
            .and_then(|r| r.name_and_version(ReleaseClass::Portable)),
        extension_releases: f
            .extensions
            .iter()
            .map(|e| {
                let classes: &[ReleaseClass] = if v.has(Behaviour::ConfextLogFields) {
                    &[ReleaseClass::Sysext, ReleaseClass::Confext]
                } else {
                    &[ReleaseClass::Sysext]
                };
                classes
                    .iter()
                    .filter_map(|c| e.release.name_and_version(*c))
                    .collect()
            })
            .collect(),
    };
    let units = f
        .units
        .iter()
        .map(|(u, from)| {
            let source = from.map_or(image, |i| &extensions[i].0);
            plan_unit(&layers, source, from.is_some(), u, &f.profile, o.copy)
        })
        .collect();
    Ok(Plan {
        image: image.clone(),
        extensions,
        copy_image,
        dir,
        units,
        link,
        repairs,
    })
}

/// What a drop-in says about the layers: the root's path (as the units will see it), the
/// extensions in order, and the host's os-release.
struct Layers<'a> {
    root_image: &'a Image,
    root: &'a Path,
    extensions: &'a [(Image, PathBuf)],
    relax: bool,
    os_release: &'a str,
    version: Version,
    /// `RootImagePolicy=` of a raw root image, and the one `ExtensionImagePolicy=` of the
    /// raw extension images.
    root_policy: Option<String>,
    extension_policy: Option<String>,
    /// `PORTABLE_NAME_AND_VERSION=` of the root image.
    root_release: Option<String>,
    /// `PORTABLE_EXTENSION_NAME_AND_VERSION=` values of each extension.
    extension_releases: Vec<Vec<String>>,
}

fn plan_unit(
    layers: &Layers<'_>,
    image: &Image,
    from_extension: bool,
    u: &UnitFile,
    profile: &ProfileFacts,
    copy: CopyMode,
) -> PlannedUnit {
    let host_source = image
        .kind
        .is_directory()
        .then(|| image.path.join(u.path.strip_prefix("/").unwrap_or(&u.path)));
    let unit = match (&host_source, copy) {
        (Some(src), CopyMode::Symlink) => Content::Symlink(src.clone()),
        _ => Content::File {
            data: u.content.clone(),
            mode: 0o644,
        },
    };
    let profile = match profile {
        ProfileFacts::Found { by_type, .. } => {
            let suffix = crate::parse::names::unit_suffix(&u.name).unwrap_or("service");
            by_type.get(suffix).cloned().flatten().map(|p| {
                let path = p.path.expect("a profile of the host");
                let content = if copy == CopyMode::Copy {
                    Content::File {
                        data: p.content.into_bytes(),
                        mode: 0o644,
                    }
                } else {
                    Content::Symlink(path.clone())
                };
                (content, path.display().to_string())
            })
        }
        _ => None,
    };
    PlannedUnit {
        install_names: crate::parse::unit_file::install_names(
            &u.name,
            &String::from_utf8_lossy(&u.content),
        ),
        name: u.name.clone(),
        dropin: dropin_text(layers, image, from_extension, &u.name),
        profile,
        unit,
        unit_source: host_source
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    }
}

/// The 20-portable.conf of `unit`, which came from `source` (the root, or an extension when
/// `from_extension`), as the systemd of `layers.version` writes it.
fn dropin_text(layers: &Layers<'_>, source: &Image, from_extension: bool, unit: &str) -> Vec<u8> {
    let v = layers.version;
    let path = layers.root.display().to_string();
    let ext_paths: Vec<String> = layers
        .extensions
        .iter()
        .map(|(e, _)| e.path.display().to_string())
        .collect();
    let mut text = marker::marker_line(&path, &ext_paths);
    text.push('\n');
    if !unit.ends_with(".service") {
        return text.into_bytes();
    }
    // Paths and names go into settings: '%' would start a specifier there.
    let path = specifier_escape(&path);
    let base = specifier_escape(&source.file_name());
    let root = if layers.root_image.kind.is_directory() {
        "RootDirectory="
    } else {
        "RootImage="
    };
    text.push_str(&format!(
        "\n[Service]\n{root}{path}\nEnvironment=PORTABLE={base}\n"
    ));
    if v.has(Behaviour::OsReleaseBind) {
        let os_release = layers.os_release;
        text.push_str(&format!(
            "BindReadOnlyPaths={os_release}:/run/host/os-release\n"
        ));
    }
    text.push_str(&format!("LogExtraFields=PORTABLE={base}\n"));
    if let (true, Some(p)) = (v.has(Behaviour::ImagePolicy), &layers.root_policy) {
        text.push_str(&format!("RootImagePolicy={p}\n"));
    }
    if v.has(Behaviour::ReleaseLogFields) {
        if layers.extensions.is_empty() {
            if let Some(nv) = &layers.root_release {
                text.push_str(&format!("LogExtraFields=PORTABLE_NAME_AND_VERSION={nv}\n"));
            }
        } else {
            let root_base = specifier_escape(&layers.root_image.file_name());
            text.push_str(&format!(
                "Environment=PORTABLE_ROOT={root_base}\nLogExtraFields=PORTABLE_ROOT={root_base}\n"
            ));
            if let Some(nv) = &layers.root_release {
                text.push_str(&format!(
                    "LogExtraFields=PORTABLE_ROOT_NAME_AND_VERSION={nv}\n"
                ));
            }
        }
    }
    // Up to 257 only a unit that came from an extension is told about the extensions.
    if !from_extension && !v.has(Behaviour::ExtensionsForRootUnits) {
        return text.into_bytes();
    }
    for (i, (e, _)) in layers.extensions.iter().enumerate() {
        let key = if e.kind.is_directory() {
            "ExtensionDirectories="
        } else {
            "ExtensionImages="
        };
        // Up to 256 the check looked at the root image's type, not the extension's.
        let relaxable = if v.has(Behaviour::RelaxByExtensionType) {
            !e.kind.is_directory()
        } else {
            !layers.root_image.kind.is_directory()
        };
        let relax = if layers.relax && relaxable {
            ":x-systemd.relax-extension-release-check"
        } else {
            ""
        };
        let e_path = specifier_escape(&e.path.display().to_string());
        if v.has(Behaviour::ReleaseLogFields) {
            let e_base = specifier_escape(&e.file_name());
            text.push_str(&format!(
                "\n{key}{e_path}{relax}\nLogExtraFields=PORTABLE_EXTENSION={e_base}\n"
            ));
            if let (true, false, Some(p)) = (
                v.has(Behaviour::ImagePolicy),
                e.kind.is_directory(),
                &layers.extension_policy,
            ) {
                text.push_str(&format!("ExtensionImagePolicy={p}\n"));
            }
            for nv in &layers.extension_releases[i] {
                text.push_str(&format!(
                    "LogExtraFields=PORTABLE_EXTENSION_NAME_AND_VERSION={nv}\n"
                ));
            }
        } else {
            text.push_str(&format!("{key}{e_path}{relax}\n"));
        }
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::image::ImageType;
    use crate::os_release::OsRelease;
    use crate::portable::inspect::{Compliance, Extension};
    use crate::profile::Profile;

    fn image(path: &str, kind: ImageType) -> Image {
        let name = Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".raw")
            .to_string();
        Image {
            name,
            path: path.into(),
            kind,
            read_only: false,
            crtime_usec: 0,
            mtime_usec: 0,
            usage: 0,
            usage_exclusive: 0,
            limit: 0,
            limit_exclusive: 0,
        }
    }

    fn unit(name: &str) -> UnitFile {
        UnitFile {
            name: name.into(),
            path: format!("/usr/lib/systemd/system/{name}").into(),
            content: b"[Service]\nExecStart=/usr/bin/app\n".to_vec(),
        }
    }

    fn profile() -> ProfileFacts {
        let p = Profile {
            name: "default".into(),
            path: Some("/usr/lib/systemd/portable/profile/default/service.conf".into()),
            content: "[Service]\nDynamicUser=yes\n".into(),
        };
        ProfileFacts::Found {
            name: "default".into(),
            by_type: BTreeMap::from([
                ("service".to_string(), Some(p)),
                ("socket".to_string(), None),
            ]),
        }
    }

    /// An image with `app.service`, an os-release with ID=, the default profile, compliant.
    fn facts() -> Facts {
        Facts {
            image: image("/var/lib/portables/app_1", ImageType::Directory),
            writable: true,
            has_os_release: true,
            has_id: true,
            prefixes: Vec::new(),
            extensions: Vec::new(),
            units: vec![(unit("app.service"), None)],
            profile: profile(),
            compliance: Some(Compliance::default()),
            widenings: Vec::new(),
            host_os_release: "/etc/os-release",
            version: Version(252),
            release: Some(OsRelease::parse(b"ID=app\nVERSION_ID=1\n")),
            policy: None,
        }
    }

    fn opts() -> AttachOptions {
        AttachOptions {
            matches: vec!["app".into()],
            profile: "default".into(),
            runtime: false,
            copy: CopyMode::Auto,
            force: false,
            extensions: Vec::new(),
            relax_extension_check: false,
        }
    }

    fn missing(path: &str) -> RequiredPath {
        RequiredPath {
            path: path.into(),
            kind: PathKind::Directory,
            mode: 0o755,
            reason: "MountAPIVFS=yes".into(),
        }
    }

    /// Each row: what changes from the compliant image and options, and the start of the
    /// error (or "ok").
    #[test]
    fn decisions() {
        type Change = fn(&mut Facts, &mut AttachOptions);
        let table: &[(&str, Change, &str)] = &[
            ("compliant", |_, _| {}, "ok"),
            ("no os-release", |f, _| f.has_os_release = false, "Image 'app_1' lacks os-release data"),
            ("no ID=", |f, _| f.has_id = false, "Image app_1 os-release metadata lacks the ID field"),
            ("no units", |f, _| f.units.clear(), "Couldn't find any matching unit files in image '/var/lib/portables/app_1', refusing."),
            ("prefix not allowed", |f, _| f.prefixes = vec!["other".into()], "Selected matches 'app' are not compatible"),
            ("prefix allowed", |f, _| f.prefixes = vec!["app".into()], "ok"),
            ("bad profile name", |f, _| f.profile = ProfileFacts::BadName, "Unit profile name not valid"),
            ("no such profile", |f, _| f.profile = ProfileFacts::Missing { available: vec!["strict".into()] }, "Unit profile 'default' not found"),
            ("no such profile at 262", |f, _| {
                f.profile = ProfileFacts::Missing { available: vec!["nonetwork".into(), "strict".into()] };
                f.version = Version(262);
            }, "Profile 'default' does not exist, refusing. (Available profiles are: nonetwork, strict)"),
            ("bad profile name at 262", |f, _| {
                f.profile = ProfileFacts::BadName;
                f.version = Version(262);
            }, "Profile name 'default' is not valid."),
            ("no profile at 262", |f, _| {
                f.profile = ProfileFacts::None;
                f.version = Version(262);
            }, "Profile name '' is not valid."),
            ("mixed before 256", |f, o| {
                o.copy = CopyMode::Mixed;
                f.version = Version(255);
            }, "Unknown copy mode 'mixed'"),
            ("mixed from 256", |f, o| {
                o.copy = CopyMode::Mixed;
                f.version = Version(256);
            }, "ok"),
            ("extension mismatch", |f, _| f.extensions.push(Extension {
                image: image("/var/lib/portables/ext_1", ImageType::Directory),
                mismatch: Some("ID differs".into()),
                prefixes: Vec::new(),
                release: OsRelease::default(),
                confext: false,
                policy: None,
            }), "Image ext_1 extension-release metadata does not match the root's: ID differs"),
            ("missing mount point, writable", |f, _| f.compliance = Some(Compliance {
                missing: vec![missing("/proc")],
                wrong_kind: Vec::new(),
            }), "ok"),
            ("missing mount point, read-only", |f, _| {
                f.writable = false;
                f.compliance = Some(Compliance { missing: vec![missing("/proc")], wrong_kind: Vec::new() });
            }, "Image '/var/lib/portables/app_1' is read-only and lacks what profile 'default' mounts over: /proc/."),
            ("missing mount point, read-only, forced", |f, o| {
                f.writable = false;
                o.force = true;
                f.compliance = Some(Compliance { missing: vec![missing("/proc")], wrong_kind: Vec::new() });
            }, "ok"),
            ("wrong kind", |f, _| f.compliance = Some(Compliance {
                missing: Vec::new(),
                wrong_kind: vec!["/proc is a regular file, but MountAPIVFS=yes needs a directory".into()],
            }), "Image 'app_1': /proc is a regular file"),
            ("too long a name", |f, _| f.units = vec![(unit(&format!("{}.service", "a".repeat(247))), None)], "Unit file name"),
        ];
        for (what, change, want) in table {
            let (mut f, mut o) = (facts(), opts());
            change(&mut f, &mut o);
            let got = match plan("app_1", &f, &o) {
                Ok(_) => "ok".to_string(),
                Err(e) => e.to_string(),
            };
            assert!(got.starts_with(want), "{what}: {got}");
        }
    }

    #[test]
    fn files_links_and_repairs() {
        let mut f = facts();
        f.units.push((unit("app.socket"), None));
        f.compliance = Some(Compliance {
            missing: vec![missing("/proc")],
            wrong_kind: Vec::new(),
        });
        let p = plan("app_1", &f, &opts()).unwrap();
        assert_eq!(p.dir, Path::new("/etc/systemd/system.attached"));
        assert_eq!(p.link, Path::new("/etc/portables/app_1"));
        assert_eq!(p.repairs, vec![missing("/proc")]);
        let svc = &p.units[0];
        assert_eq!(
            String::from_utf8_lossy(&svc.dropin),
            "# Drop-in created for image '/var/lib/portables/app_1', do not edit.\n\n[Service]\nRootDirectory=/var/lib/portables/app_1\nEnvironment=PORTABLE=app_1\nBindReadOnlyPaths=/etc/os-release:/run/host/os-release\nLogExtraFields=PORTABLE=app_1\n"
        );
        assert_eq!(
            svc.profile,
            Some((
                Content::Symlink("/usr/lib/systemd/portable/profile/default/service.conf".into()),
                "/usr/lib/systemd/portable/profile/default/service.conf".into()
            ))
        );
        assert_eq!(
            svc.unit_source,
            "/var/lib/portables/app_1/usr/lib/systemd/system/app.service"
        );
        // A socket gets the marker only, and no profile (there is none for sockets).
        let sock = &p.units[1];
        assert_eq!(
            String::from_utf8_lossy(&sock.dropin),
            "# Drop-in created for image '/var/lib/portables/app_1', do not edit.\n"
        );
        assert_eq!(sock.profile, None);
        // Runtime, copy mode, a raw image.
        let mut f = facts();
        f.image = image("/srv/app_1.raw", ImageType::Raw);
        let o = AttachOptions {
            runtime: true,
            copy: CopyMode::Copy,
            ..opts()
        };
        let p = plan("/srv/app_1.raw", &f, &o).unwrap();
        assert_eq!(p.dir, Path::new("/run/systemd/system.attached"));
        assert_eq!(p.link, Path::new("/run/portables/app_1.raw"));
        assert!(
            String::from_utf8_lossy(&p.units[0].dropin).contains("\nRootImage=/srv/app_1.raw\n")
        );
        assert!(matches!(
            p.units[0].profile,
            Some((Content::File { .. }, _))
        ));
        assert_eq!(p.units[0].unit_source, "");
    }

    /// 20-portable.conf of a squashfs root with a squashfs extension, as systemd 252, 257
    /// and 262 write it (the box tier's refdiff compares the same texts with each version's
    /// portabled).
    #[test]
    fn dropins_by_version() {
        use crate::parse::fsdetect::FsType;
        use crate::policy::{Designator, Dissected, Found, Policy};
        let squashfs = Policy::of(&Dissected {
            single_file_system: true,
            partitions: vec![Found {
                designator: Designator::Root,
                fs: Some(FsType::Squashfs),
                protection: None,
                read_only: false,
                growfs: false,
            }],
        });
        let mut f = facts();
        f.image = image("/srv/app_1.raw", ImageType::Raw);
        f.policy = Some(squashfs.clone());
        f.units.push((unit("app-ext.service"), Some(0)));
        f.extensions.push(Extension {
            image: image("/srv/ext_1.raw", ImageType::Raw),
            mismatch: None,
            prefixes: Vec::new(),
            release: OsRelease::parse(b"ID=app\nSYSEXT_ID=ext\nSYSEXT_VERSION_ID=2\n"),
            confext: false,
            policy: Some(squashfs),
        });
        let o = AttachOptions {
            extensions: vec!["/srv/ext_1.raw".into()],
            ..opts()
        };
        let head = "# Drop-in created for image '/srv/app_1.raw:/srv/ext_1.raw', do not edit.\n\n[Service]\nRootImage=/srv/app_1.raw\n";
        for (v, root_unit, ext_unit) in [
            (
                252,
                "Environment=PORTABLE=app_1.raw\nBindReadOnlyPaths=/etc/os-release:/run/host/os-release\nLogExtraFields=PORTABLE=app_1.raw\n",
                "Environment=PORTABLE=ext_1.raw\nBindReadOnlyPaths=/etc/os-release:/run/host/os-release\nLogExtraFields=PORTABLE=ext_1.raw\nExtensionImages=/srv/ext_1.raw\n",
            ),
            (
                257,
                "Environment=PORTABLE=app_1.raw\nLogExtraFields=PORTABLE=app_1.raw\nEnvironment=PORTABLE_ROOT=app_1.raw\nLogExtraFields=PORTABLE_ROOT=app_1.raw\nLogExtraFields=PORTABLE_ROOT_NAME_AND_VERSION=app_1\n",
                "Environment=PORTABLE=ext_1.raw\nLogExtraFields=PORTABLE=ext_1.raw\nEnvironment=PORTABLE_ROOT=app_1.raw\nLogExtraFields=PORTABLE_ROOT=app_1.raw\nLogExtraFields=PORTABLE_ROOT_NAME_AND_VERSION=app_1\n\nExtensionImages=/srv/ext_1.raw\nLogExtraFields=PORTABLE_EXTENSION=ext_1.raw\nLogExtraFields=PORTABLE_EXTENSION_NAME_AND_VERSION=ext_2\n",
            ),
            (
                262,
                "Environment=PORTABLE=app_1.raw\nLogExtraFields=PORTABLE=app_1.raw\nRootImagePolicy=root=squashfs:=absent\nEnvironment=PORTABLE_ROOT=app_1.raw\nLogExtraFields=PORTABLE_ROOT=app_1.raw\nLogExtraFields=PORTABLE_ROOT_NAME_AND_VERSION=app_1\n\nExtensionImages=/srv/ext_1.raw\nLogExtraFields=PORTABLE_EXTENSION=ext_1.raw\nExtensionImagePolicy=root=squashfs:=absent\nLogExtraFields=PORTABLE_EXTENSION_NAME_AND_VERSION=ext_2\n",
                "Environment=PORTABLE=ext_1.raw\nLogExtraFields=PORTABLE=ext_1.raw\nRootImagePolicy=root=squashfs:=absent\nEnvironment=PORTABLE_ROOT=app_1.raw\nLogExtraFields=PORTABLE_ROOT=app_1.raw\nLogExtraFields=PORTABLE_ROOT_NAME_AND_VERSION=app_1\n\nExtensionImages=/srv/ext_1.raw\nLogExtraFields=PORTABLE_EXTENSION=ext_1.raw\nExtensionImagePolicy=root=squashfs:=absent\nLogExtraFields=PORTABLE_EXTENSION_NAME_AND_VERSION=ext_2\n",
            ),
        ] {
            f.version = Version(v);
            let p = plan("/srv/app_1.raw", &f, &o).unwrap();
            let text = |i: usize| String::from_utf8_lossy(&p.units[i].dropin).into_owned();
            let (root, ext) = (text(0), text(1));
            assert_eq!(p.units[0].name, "app.service");
            assert_eq!(root, format!("{head}{root_unit}"), "{v}: root unit");
            assert_eq!(ext, format!("{head}{ext_unit}"), "{v}: extension unit");
        }
    }
}
