//! Attach, detach, reattach and state: the on-disk contract with systemd (sections 6 and 7).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::compliance::{self, Request};
use crate::error::{Error, IoContext, Result};
use crate::fault;
use crate::image::Image;
use crate::marker;
use crate::names::{self, unit_name_is_valid};
use crate::os_release::{extension_mismatch, find_extension_release, read_os_release};
use crate::profile::{PathKind, Profile};
use crate::root::{Content, NodeKind};
use crate::text::specifier_escape;
use crate::txn::Txn;
use crate::units::{find_units_within, Budget, UnitFile, UNIT_SEARCH_PATH};
use crate::Host;

pub const PERSISTENT_ATTACHED: &str = "/etc/systemd/system.attached";
pub const RUNTIME_ATTACHED: &str = "/run/systemd/system.attached";

/// The longest file name (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// The directory attached units go to.
pub fn attached_dir(runtime: bool) -> &'static Path {
    Path::new(if runtime {
        RUNTIME_ATTACHED
    } else {
        PERSISTENT_ATTACHED
    })
}

/// Where the link to an image goes: `/etc/portables/<basename>` or `/run/portables/...`.
pub fn image_link(image_path: &str, runtime: bool) -> PathBuf {
    let base = image_path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(image_path);
    Path::new(if runtime {
        "/run/portables"
    } else {
        "/etc/portables"
    })
    .join(base)
}

/// How unit files and profiles get into the attached directory (section 1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyMode {
    /// Units copied, profiles symlinked (`""` on the wire).
    Auto,
    /// Units and profiles copied.
    Copy,
    /// Units symlinked (directory images only), profiles symlinked.
    Symlink,
    /// Like auto (units copied, profiles symlinked); the image itself is not copied.
    Mixed,
}

impl CopyMode {
    /// Parses the wire value.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "auto" => Ok(Self::Auto),
            "copy" => Ok(Self::Copy),
            "symlink" => Ok(Self::Symlink),
            "mixed" => Ok(Self::Mixed),
            _ => Err(Error::InvalidArgs(format!("Unknown copy mode '{s}'"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    Copy,
    Mkdir,
    Symlink,
    Unlink,
    Write,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Copy => "copy",
            Self::Mkdir => "mkdir",
            Self::Symlink => "symlink",
            Self::Unlink => "unlink",
            Self::Write => "write",
        }
    }
}

/// One `(type, path, source)` entry of a change list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    #[serde(rename = "type")]
    pub kind: ChangeType,
    pub path: String,
    pub source: String,
}

impl Change {
    fn new(kind: ChangeType, path: &Path, source: &str) -> Self {
        Self {
            kind,
            path: path.display().to_string(),
            source: source.to_string(),
        }
    }
}

/// What the engine asks of the service manager (PID 1). The daemon implements it over
/// `org.freedesktop.systemd1`; [`Offline`] is for hosts without one.
pub trait ServiceManager: Sync {
    /// Whether the unit (for a template: any of its instances) is activating, active,
    /// reloading or deactivating. The error is a message for the caller.
    fn is_active(&self, unit: &str) -> std::result::Result<bool, String>;
}

/// No service manager: no unit can be active.
pub struct Offline;

impl ServiceManager for Offline {
    fn is_active(&self, _unit: &str) -> std::result::Result<bool, String> {
        Ok(false)
    }
}

fn active(pid1: &dyn ServiceManager, unit: &str) -> Result<bool> {
    pid1.is_active(unit).map_err(Error::ServiceManager)
}

/// The `t flags` argument of the `*WithExtensions` methods (section 1.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `SD_SYSTEMD_PORTABLE_RUNTIME`
    pub runtime: bool,
    /// `SD_SYSTEMD_PORTABLE_FORCE_ATTACH`
    pub force_attach: bool,
    /// `SD_SYSTEMD_PORTABLE_FORCE_EXTENSION` (v252: `FORCE_SYSEXT`)
    pub force_extension: bool,
}

impl Flags {
    pub const RUNTIME: u64 = 1 << 0;
    pub const FORCE_ATTACH: u64 = 1 << 1;
    pub const FORCE_EXTENSION: u64 = 1 << 2;

    /// Parses the wire value; any bit outside 0x7 is refused as v252 does.
    pub fn from_bits(bits: u64) -> Result<Self> {
        if bits & !(Self::RUNTIME | Self::FORCE_ATTACH | Self::FORCE_EXTENSION) != 0 {
            return Err(Error::InvalidArgs(format!(
                "Invalid 'flags' parameter '{bits}'"
            )));
        }
        Ok(Self {
            runtime: bits & Self::RUNTIME != 0,
            force_attach: bits & Self::FORCE_ATTACH != 0,
            force_extension: bits & Self::FORCE_EXTENSION != 0,
        })
    }
}

/// Attach options (the arguments of `AttachImage`).
#[derive(Debug, Clone)]
pub struct AttachOptions {
    pub matches: Vec<String>,
    pub profile: String,
    pub runtime: bool,
    pub copy: CopyMode,
    /// `FORCE_ATTACH`: skip the exists/active checks and replace existing files; also attach
    /// read-only images that lack mount points.
    pub force: bool,
    /// Extension images (names or paths), in overlay order.
    pub extensions: Vec<String>,
    /// `FORCE_EXTENSION`: take an extension's single extension-release file whatever its
    /// name, and let systemd relax its own check (`x-systemd.relax-extension-release-check`).
    pub relax_extension_check: bool,
}

/// A unit as it will be attached.
struct PlannedUnit {
    name: String,
    dropin: Vec<u8>,
    profile: Option<(Content, String)>,
    unit: Content,
    /// The change source of the unit: its host path inside a directory image, or "".
    unit_source: String,
    /// The names enabling it links (`[Install]` `Alias=`, `Also=`, `DefaultInstance=`).
    install_names: Vec<(&'static str, String)>,
}

struct Plan {
    image: Image,
    /// The extension images, in order, and their links (`/etc|run/portables/<basename>`).
    extensions: Vec<(Image, PathBuf)>,
    /// `--copy=mixed`: the image is copied to `link` instead of linked there.
    copy_image: bool,
    dir: PathBuf,
    units: Vec<PlannedUnit>,
    link: PathBuf,
    repairs: Vec<compliance::Created>,
}

/// What a drop-in says about the layers: the root's path (as the units will see it) and the
/// extensions in order.
struct Layers<'a> {
    root_image: &'a Image,
    root: &'a Path,
    extensions: &'a [(Image, PathBuf)],
    relax: bool,
}

/// The 20-portable.conf of `unit`, which came from `source` (the root, or an extension when
/// `from_extension`).
fn dropin_text(
    layers: &Layers<'_>,
    source: &Image,
    from_extension: bool,
    unit: &str,
    host: &Host,
) -> Vec<u8> {
    let path = layers.root.display().to_string();
    let ext_paths: Vec<String> = layers
        .extensions
        .iter()
        .map(|(e, _)| e.path.display().to_string())
        .collect();
    let mut text = marker::marker_line(&path, &ext_paths);
    text.push('\n');
    // Paths and names go into settings: '%' would start a specifier there.
    let path = specifier_escape(&path);
    if unit.ends_with(".service") {
        let os_release = if matches!(host.fs().lstat(Path::new("/etc/os-release")), Ok(Some(_))) {
            "/etc/os-release"
        } else {
            "/usr/lib/os-release"
        };
        let base = specifier_escape(&source.file_name());
        let root = if layers.root_image.kind.is_directory() {
            "RootDirectory="
        } else {
            "RootImage="
        };
        text.push_str(&format!(
            "\n[Service]\n{root}{path}\nEnvironment=PORTABLE={base}\nBindReadOnlyPaths={os_release}:/run/host/os-release\nLogExtraFields=PORTABLE={base}\n"
        ));
        // Only a unit that came from an extension is told about the extensions.
        if from_extension {
            for (e, _) in layers.extensions {
                let (key, relax) = if e.kind.is_directory() {
                    ("ExtensionDirectories=", "")
                } else if layers.relax {
                    (
                        "ExtensionImages=",
                        ":x-systemd.relax-extension-release-check",
                    )
                } else {
                    ("ExtensionImages=", "")
                };
                let e = specifier_escape(&e.path.display().to_string());
                text.push_str(&format!("{key}{e}{relax}\n"));
            }
        }
    }
    text.into_bytes()
}

fn unit_file_on_host(host: &Host, unit: &str) -> bool {
    UNIT_SEARCH_PATH
        .iter()
        .any(|d| matches!(host.fs().lstat(&Path::new(d).join(unit)), Ok(Some(_))))
}

/// Whether the host has a unit of that name: its own file, or for an instance its template
/// (`user@0.service` is the host's `user@.service`).
pub(crate) fn unit_exists_on_host(host: &Host, unit: &str) -> bool {
    unit_file_on_host(host, unit)
        || names::template_of(unit).is_some_and(|t| unit_file_on_host(host, &t))
}

impl Host {
    /// Reads the image, runs the checks of section 6.5 that concern the image (plus
    /// compliance), repairs a writable image, and plans the files. The checks against the host
    /// ([`Host::check_host_units`]) come later, under the write lock.
    fn plan_attach(&self, arg: &str, o: &AttachOptions) -> Result<Plan> {
        let mut image = self.find_image(arg)?;
        if o.copy == CopyMode::Mixed
            && image.path == image_link(&image.path.display().to_string(), o.runtime)
        {
            // By name, our own copy from an earlier --copy=mixed attach is found first: copy
            // from the image it was made of, further down the search path.
            let rest: Vec<&str> = crate::host::IMAGE_SEARCH_PATH
                .iter()
                .copied()
                .filter(|d| !image.path.starts_with(d))
                .collect();
            image = self.find_image_by_name_in(&image.name, &rest)?;
        }
        let opened = self.open_image_with(&image, false)?;
        let release = read_os_release(&opened.root)
            .map_err(|source| Error::OsRelease {
                image: image.name.clone(),
                source,
            })?
            .ok_or_else(|| {
                Error::InvalidArgs(format!("Image '{arg}' lacks os-release data, refusing."))
            })?;
        let mut budget = Budget::default();
        let root_units =
            find_units_within(&opened.root, &o.matches, &mut budget).map_err(|source| {
                Error::Unit {
                    image: image.name.clone(),
                    source,
                }
            })?;
        if release.parsed.non_empty("ID").is_none() {
            return Err(Error::Stale(format!(
                "Image {} os-release metadata lacks the ID field",
                image.name
            )));
        }
        if !o.extensions.is_empty() && o.copy == CopyMode::Mixed {
            return Err(Error::NotSupported(
                "Copying the image (--copy=mixed) is not supported with extension images.".into(),
            ));
        }
        let mut allow = release.parsed.portable_prefixes();
        // Units from the root first, then from each extension: an earlier layer wins.
        let mut units: Vec<(UnitFile, Option<usize>)> =
            root_units.into_iter().map(|u| (u, None)).collect();
        let mut extensions = Vec::new();
        for (i, arg) in o.extensions.iter().enumerate() {
            let ext = self.find_image(arg)?;
            let ext_opened = self.open_image_with(&ext, false)?;
            let ext_release = extension_release(&ext_opened.root, &ext, o.relax_extension_check)?;
            if let Some(why) = extension_mismatch(&ext_release, &release.parsed) {
                return Err(Error::Stale(format!(
                    "Image {} extension-release metadata does not match the root's: {why}",
                    ext.name
                )));
            }
            allow.extend(ext_release.file.parsed.portable_prefixes());
            let found =
                find_units_within(&ext_opened.root, &o.matches, &mut budget).map_err(|source| {
                    Error::Unit {
                        image: ext.name.clone(),
                        source,
                    }
                })?;
            for u in found {
                if !units.iter().any(|(have, _)| have.name == u.name) {
                    units.push((u, Some(i)));
                }
            }
            if units.len() > crate::limits::UNITS_MAX {
                return Err(Error::InvalidArgs(format!(
                    "Image '{}' with its extensions has more than {} matching unit files, refusing",
                    image.name,
                    crate::limits::UNITS_MAX
                )));
            }
            let link = image_link(&ext.path.display().to_string(), o.runtime);
            extensions.push((ext, link));
        }
        // By name (v252's order is its hash tables').
        units.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        allow.sort();
        if !allow.is_empty() && !o.matches.iter().all(|m| allow.contains(m)) {
            return Err(Error::InvalidArgs(format!(
                "Selected matches '{}' are not compatible with portable service image '{}', refusing. (Acceptable prefix matches are: {})",
                o.matches.join("', '"),
                image.path.display(),
                allow.join(", ")
            )));
        }
        if units.is_empty() {
            return Err(no_matching_units(
                &image.path.display().to_string(),
                &o.extensions,
            ));
        }
        // A unit name may be 255 bytes long, its drop-in directory (NAME.d) may not.
        if let Some((u, _)) = units.iter().find(|(u, _)| u.name.len() + 2 > NAME_MAX) {
            return Err(Error::InvalidArgs(format!(
                "Unit file name '{}' of image '{}' is too long to attach: its drop-in directory name would exceed {NAME_MAX} bytes, refusing.",
                u.name,
                image.path.display()
            )));
        }
        // The profile: v252 silently attaches without one when it does not exist; we refuse
        // (docs/compatibility.md). The empty name means no profile.
        let profile: Option<Profile> = if o.profile.is_empty() {
            None
        } else {
            if !crate::profile::profile_name_is_valid(&o.profile) {
                return Err(Error::BadProfileName(o.profile.clone()));
            }
            let p = self.find_profile(&o.profile, "service")?;
            if p.is_none() && !self.profile_exists(&o.profile) {
                return Err(Error::NoSuchProfile(o.profile.clone()));
            }
            p
        };

        // Our addition: the image's units stay within the profile (docs/security.md).
        if let (Some(p), false) = (&profile, o.force) {
            let all: Vec<&UnitFile> = units.iter().map(|(u, _)| u).collect();
            let names: BTreeSet<&str> = all.iter().map(|u| u.name.as_str()).collect();
            let found = crate::confine::widenings(self, p, &all, &names);
            if !found.is_empty() {
                return Err(Error::WidensProfile {
                    image: image.path.display().to_string(),
                    profile: p.name.clone(),
                    findings: found.iter().map(ToString::to_string).collect(),
                });
            }
        }

        // Our addition: what the profile mounts over must exist in the image.
        let mut repairs = Vec::new();
        if let Some(p) = &profile {
            let report = compliance::check_image(&Request {
                host: self,
                image: &image,
                root: &opened.root,
                profile: p,
                matches: Some(&o.matches),
                writable: opened.can_write,
                layout: &opened.layout,
            });
            let wrong_kind: Vec<String> = report
                .checks
                .iter()
                .filter(|c| matches!(c.rule, "host-files" | "mount-points"))
                .flat_map(|c| {
                    c.details
                        .iter()
                        .filter(|d| d.contains(" needs a "))
                        .cloned()
                })
                .collect();
            if !wrong_kind.is_empty() && !o.force {
                return Err(Error::InvalidArgs(format!(
                    "Image '{}': {}",
                    image.name,
                    wrong_kind.join("; ")
                )));
            }
            if !report.missing.is_empty() {
                if opened.can_write {
                    let list: Vec<String> = report.missing.iter().map(|m| m.path.clone()).collect();
                    drop(opened);
                    let rw = self.open_image_with(&image, true)?;
                    repairs = compliance::repair(&rw.root, &report.missing).context(
                        "Failed to create missing mount points in image",
                        &image.path,
                    )?;
                    tracing::info!(image = %image.name, paths = ?list, "created missing paths in writable image");
                } else if !o.force {
                    return Err(Error::MissingMountPoints {
                        image: image.path.display().to_string(),
                        profile: p.name.clone(),
                        paths: report
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
        let copy_image = o.copy == CopyMode::Mixed;
        let root = if copy_image {
            link.clone()
        } else {
            image.path.clone()
        };
        let layers = Layers {
            root_image: &image,
            root: &root,
            extensions: &extensions,
            relax: o.relax_extension_check,
        };
        let planned = units
            .iter()
            .map(|(u, from)| {
                let source = from.map_or(&image, |i| &extensions[i].0);
                self.plan_unit(&layers, source, from.is_some(), u, profile.as_ref(), o.copy)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Plan {
            link,
            copy_image,
            extensions,
            image,
            dir,
            units: planned,
            repairs,
        })
    }

    fn plan_unit(
        &self,
        layers: &Layers<'_>,
        image: &Image,
        from_extension: bool,
        u: &UnitFile,
        profile: Option<&Profile>,
        copy: CopyMode,
    ) -> Result<PlannedUnit> {
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
            None => None,
            Some(_) => {
                let suffix = names::unit_suffix(&u.name).unwrap_or("service");
                self.find_profile(&profile.expect("some").name, suffix)?
                    .map(|p| {
                        let path = p.path.expect("host profile");
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
        };
        Ok(PlannedUnit {
            install_names: crate::unit_file::install_names(
                &u.name,
                &String::from_utf8_lossy(&u.content),
            ),
            name: u.name.clone(),
            dropin: dropin_text(layers, image, from_extension, &u.name, self),
            profile,
            unit,
            unit_source: host_source
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        })
    }

    /// No unit of the plan may exist on the host (an instance: nor its template) or be
    /// active, and enabling one must not link a host unit (the names of its `[Install]`
    /// section); see docs/security.md.
    fn check_host_units(&self, pid1: &dyn ServiceManager, plan: &Plan) -> Result<()> {
        let planned: BTreeSet<&str> = plan.units.iter().map(|u| u.name.as_str()).collect();
        for u in &plan.units {
            if unit_exists_on_host(self, &u.name) {
                return Err(Error::UnitExists(format!(
                    "Unit file '{}' exists on the host already, refusing.",
                    u.name
                )));
            }
            for (key, name) in &u.install_names {
                if !planned.contains(name.as_str()) && unit_exists_on_host(self, name) {
                    return Err(Error::UnitExists(format!(
                        "Unit file '{}' names '{name}' in {key}=, which exists on the host already, refusing.",
                        u.name
                    )));
                }
            }
            if active(pid1, &u.name)? {
                return Err(Error::UnitExists(format!(
                    "Unit file '{}' is active already, refusing.",
                    u.name
                )));
            }
        }
        Ok(())
    }

    /// Whether a profile directory of that name exists (it may lack a file for some type).
    fn profile_exists(&self, name: &str) -> bool {
        crate::host::PROFILE_SEARCH_PATH
            .iter()
            .any(|d| matches!(self.fs().stat(&Path::new(d).join(name)), Ok(Some(_))))
    }

    /// The attach change list of a plan, as the reference reports it; `mkdir` entries only for
    /// the directories in `created`.
    fn attach_changes(
        plan: &Plan,
        created: &BTreeSet<PathBuf>,
        link_created: bool,
        ext_links: &[PathBuf],
    ) -> Vec<Change> {
        let mut out = Vec::new();
        if created.contains(&plan.dir) {
            out.push(Change::new(ChangeType::Mkdir, &plan.dir, ""));
        }
        for u in &plan.units {
            let unit_path = plan.dir.join(&u.name);
            let ddir = plan.dir.join(format!("{}.d", u.name));
            if created.contains(&ddir) {
                out.push(Change::new(ChangeType::Mkdir, &ddir, ""));
            }
            out.push(Change::new(
                ChangeType::Write,
                &ddir.join("20-portable.conf"),
                "",
            ));
            if let Some((content, src)) = &u.profile {
                let kind = match content {
                    Content::Symlink(_) => ChangeType::Symlink,
                    Content::File { .. } | Content::CopyOf(_) => ChangeType::Copy,
                };
                out.push(Change::new(kind, &ddir.join("10-profile.conf"), src));
            }
            let kind = match u.unit {
                Content::Symlink(_) => ChangeType::Symlink,
                Content::File { .. } | Content::CopyOf(_) => ChangeType::Copy,
            };
            out.push(Change::new(kind, &unit_path, &u.unit_source));
        }
        // The extensions' links first, then the root's, as v252 creates them.
        for (ext, link) in &plan.extensions {
            if ext_links.contains(link) {
                out.push(Change::new(
                    ChangeType::Symlink,
                    link,
                    &ext.path.display().to_string(),
                ));
            }
        }
        if link_created {
            let kind = if plan.copy_image {
                ChangeType::Copy
            } else {
                ChangeType::Symlink
            };
            out.push(Change::new(
                kind,
                &plan.link,
                &plan.image.path.display().to_string(),
            ));
        }
        out
    }

    /// Adds the plan's files to a transaction: per unit the drop-ins first, the unit last.
    fn stage_plan(plan: &Plan, txn: &mut Txn<'_>) {
        for u in &plan.units {
            let ddir = plan.dir.join(format!("{}.d", u.name));
            txn.place(
                ddir.join("20-portable.conf"),
                Content::File {
                    data: u.dropin.clone(),
                    mode: 0o644,
                },
            );
            if let Some((content, _)) = &u.profile {
                txn.place(ddir.join("10-profile.conf"), content.clone());
            }
            txn.place(plan.dir.join(&u.name), u.unit.clone());
        }
    }

    /// The directories the plan's files go into (with the links' directory when `links`).
    fn plan_dirs(plan: &Plan, links: bool) -> Vec<PathBuf> {
        let mut dirs = vec![plan.dir.clone()];
        dirs.extend(
            plan.units
                .iter()
                .map(|u| plan.dir.join(format!("{}.d", u.name))),
        );
        if links {
            dirs.extend(plan.link.parent().map(Path::to_path_buf));
        }
        dirs
    }

    /// Whether `e` is about an image link (or its directory): the links in
    /// `/etc|run/portables` are a convenience that lets images be found by name, and, as in
    /// v252, failing to make them fails no attach (`stage_links` says whether to try).
    fn is_link_error(plan: &Plan, e: &Error) -> bool {
        let Error::Io { path, .. } = e else {
            return false;
        };
        !plan.copy_image
            && std::iter::once(&plan.link)
                .chain(plan.extensions.iter().map(|(_, l)| l))
                .any(|l| l == path || l.parent() == Some(path.as_path()))
    }

    /// Adds the image link to the transaction unless something is there already (the
    /// reference leaves an existing one alone). Returns whether it will be created.
    /// With `--copy=mixed` the image is copied there, replacing what was there.
    /// The links of the extension images that do not exist yet, staged; returns them.
    fn stage_extension_links(&self, plan: &Plan, txn: &mut Txn<'_>) -> Vec<PathBuf> {
        let mut made = Vec::new();
        for (ext, link) in &plan.extensions {
            if *link == plan.link || made.contains(link) {
                continue;
            }
            if matches!(self.fs().lstat(link), Ok(Some(_))) {
                continue;
            }
            txn.place(link.clone(), Content::Symlink(ext.path.clone()));
            made.push(link.clone());
        }
        made
    }

    /// `--copy=mixed` never replaces what is at the copy's place (`/etc/portables/<name>`),
    /// unless it is the copy an attachment being replaced made (its marker names it).
    fn check_copy_target(&self, plan: &Plan, replaced: &[Attached]) -> Result<()> {
        if !plan.copy_image || !matches!(self.fs().lstat(&plan.link), Ok(Some(_))) {
            return Ok(());
        }
        let ours = replaced.iter().any(|a| {
            marker::tokens(&a.marker)
                .iter()
                .any(|t| Path::new(&marker::unescape(t)) == plan.link)
        });
        if ours {
            return Ok(());
        }
        Err(Error::Io {
            what: "Refusing to replace what is there with a copy of the image (--copy=mixed)",
            path: plan.link.clone(),
            source: std::io::Error::from_raw_os_error(libc::EEXIST),
        })
    }

    fn stage_image_link(&self, plan: &Plan, txn: &mut Txn<'_>) -> bool {
        if plan.copy_image {
            txn.place_tree(plan.link.clone(), Content::CopyOf(plan.image.path.clone()));
            return true;
        }
        if matches!(self.fs().lstat(&plan.link), Ok(Some(_))) {
            return false;
        }
        txn.place(plan.link.clone(), Content::Symlink(plan.image.path.clone()));
        true
    }

    /// Stages and commits the files of an attach, with the image's links when `links`.
    /// Returns the directories created and which links were made.
    fn commit_attach(
        &self,
        plan: &Plan,
        runtime: bool,
        links: bool,
    ) -> Result<(BTreeSet<PathBuf>, bool, Vec<PathBuf>)> {
        let mut txn = Txn::new(self, "attach", runtime, true);
        Self::stage_plan(plan, &mut txn);
        let (link, ext_links) = if links || plan.copy_image {
            (
                self.stage_image_link(plan, &mut txn),
                self.stage_extension_links(plan, &mut txn),
            )
        } else {
            (false, Vec::new())
        };
        let dirs = Self::plan_dirs(plan, links || plan.copy_image);
        let created = txn.stage(&dirs)?.into_iter().collect();
        txn.commit()?;
        Ok((created, link, ext_links))
    }

    /// Attaches an image (section 6). Returns the change list.
    pub fn attach(
        &self,
        pid1: &dyn ServiceManager,
        arg: &str,
        o: &AttachOptions,
    ) -> Result<Vec<Change>> {
        let plan = self.plan_attach(arg, o)?;
        let _guard = self.write_guard();
        if !o.force {
            self.check_host_units(pid1, &plan)?;
        }
        self.check_copy_target(&plan, &[])?;
        let (created, link, ext_links) = match self.commit_attach(&plan, o.runtime, true) {
            Err(e) if Self::is_link_error(&plan, &e) => {
                tracing::warn!(image = %plan.image.path.display(), "attached without a link to the image: {e}");
                self.commit_attach(&plan, o.runtime, false)?
            }
            r => r?,
        };
        fault::point("attach: committed");
        let mut changes: Vec<Change> = plan
            .repairs
            .iter()
            .map(|c| {
                let kind = if c.kind == "mkdir" {
                    ChangeType::Mkdir
                } else {
                    ChangeType::Write
                };
                let shown = match plan.image.kind.is_directory() {
                    true => plan
                        .image
                        .path
                        .join(c.path.strip_prefix("/").unwrap_or(&c.path)),
                    false => c.path.clone(),
                };
                Change::new(kind, &shown, "")
            })
            .collect();
        changes.extend(Self::attach_changes(&plan, &created, link, &ext_links));
        Ok(changes)
    }
}

/// An attached unit found in an attached directory.
#[derive(Debug, Clone)]
struct Attached {
    unit: String,
    /// Whether the unit file itself is there (not only its drop-in directory).
    has_file: bool,
    marker: String,
}

impl Host {
    /// Every unit in `dir` whose 20-portable.conf marker matches `arg`, sorted by name.
    /// The units in `dir` attached from exactly the layers `arg` and `extensions`.
    fn attached_units(
        &self,
        dir: &Path,
        arg: &str,
        extensions: &[String],
    ) -> Result<Vec<Attached>> {
        let all = self.all_attached_units(dir)?;
        Ok(marker::best(
            all.into_iter()
                .filter_map(|a| Some((marker::matches_every_layer(&a.marker, arg, extensions)?, a)))
                .collect(),
        ))
    }

    /// Every unit in `dir` with a portable marker, sorted by name.
    fn all_attached_units(&self, dir: &Path) -> Result<Vec<Attached>> {
        let Some(entries) = self.fs().read_dir(dir).context("Failed to list", dir)? else {
            return Ok(Vec::new());
        };
        let files: BTreeSet<&std::ffi::OsStr> = entries
            .iter()
            .filter(|x| x.kind != NodeKind::Directory)
            .map(|x| x.name.as_os_str())
            .collect();
        let mut out = Vec::new();
        for e in &entries {
            let Some(unit) = e
                .name
                .to_str()
                .and_then(|n| n.strip_suffix(".d"))
                .filter(|_| e.kind == NodeKind::Directory)
            else {
                continue;
            };
            if !unit_name_is_valid(unit) {
                continue;
            }
            let dropin = dir.join(format!("{unit}.d/20-portable.conf"));
            let Ok(Some(data)) = self.fs().read_file(&dropin, 64 * 1024) else {
                continue;
            };
            let first =
                String::from_utf8_lossy(data.split(|&c| c == b'\n').next().unwrap_or_default())
                    .into_owned();
            let Some(m) = marker::parse_marker_line(&first) else {
                continue;
            };
            out.push(Attached {
                unit: unit.to_string(),
                has_file: files.contains(std::ffi::OsStr::new(unit)),
                marker: m.to_string(),
            });
        }
        out.sort_by(|a, b| a.unit.cmp(&b.unit));
        Ok(out)
    }

    /// The detach steps and change list (reference order) for `found` in `dir`.
    fn plan_detach(dir: &Path, found: &[Attached], txn: &mut Txn<'_>) -> Vec<(Change, usize)> {
        let mut out = Vec::new();
        for a in found {
            let unit = dir.join(&a.unit);
            let ddir = dir.join(format!("{}.d", a.unit));
            out.push((
                Change::new(ChangeType::Unlink, &unit, ""),
                txn.remove(unit.clone()),
            ));
            for f in ["10-profile.conf", "20-portable.conf"] {
                let p = ddir.join(f);
                out.push((
                    Change::new(ChangeType::Unlink, &p, ""),
                    txn.remove(p.clone()),
                ));
            }
            out.push((
                Change::new(ChangeType::Unlink, &ddir, ""),
                txn.rmdir(ddir.clone()),
            ));
        }
        out
    }

    /// The image links detach removes: `/etc|run/portables/<basename>` of every image in
    /// the markers, when it is a symlink, or when it is the image itself (a `--copy=mixed`
    /// copy, which the marker names).
    fn removable_image_links(&self, found: &[Attached], runtime: bool) -> Vec<PathBuf> {
        let tokens: BTreeSet<PathBuf> = found
            .iter()
            .flat_map(|a| marker::tokens(&a.marker))
            .map(|t| PathBuf::from(marker::unescape(&t)))
            .filter(|t| t.is_absolute())
            .collect();
        let mut links: Vec<PathBuf> = tokens
            .iter()
            .map(|t| image_link(&t.display().to_string(), runtime))
            .filter(|l| {
                self.is_symlink(l)
                    || (tokens.contains(l) && matches!(self.fs().lstat(l), Ok(Some(_))))
            })
            .collect();
        links.sort();
        links.dedup();
        // A link that units attached from other layers still name stays (a base image
        // shared by two services).
        let dir = attached_dir(runtime);
        if let Ok(all) = self.all_attached_units(dir) {
            let still: BTreeSet<PathBuf> = all
                .iter()
                .filter(|a| !found.iter().any(|f| f.unit == a.unit))
                .flat_map(|a| marker::tokens(&a.marker))
                .map(|t| image_link(&marker::unescape(&t), runtime))
                .collect();
            links.retain(|l| !still.contains(l));
        }
        links
    }

    fn is_symlink(&self, p: &Path) -> bool {
        matches!(self.fs().lstat(p), Ok(Some(st)) if NodeKind::of(&st) == NodeKind::Symlink)
    }

    /// Detaches the units attached from an image (section 7.1). The image need not exist.
    pub fn detach(
        &self,
        pid1: &dyn ServiceManager,
        arg: &str,
        runtime: bool,
        force: bool,
    ) -> Result<Vec<Change>> {
        self.detach_layers(pid1, arg, &[], runtime, force)
    }

    /// Detaches what was attached from the root `arg` with exactly these `extensions`.
    pub fn detach_layers(
        &self,
        pid1: &dyn ServiceManager,
        arg: &str,
        extensions: &[String],
        runtime: bool,
        force: bool,
    ) -> Result<Vec<Change>> {
        let dir = attached_dir(runtime);
        let _guard = self.write_guard();
        let found = self.attached_units(dir, arg, extensions)?;
        if found.is_empty() {
            return Err(Error::NoSuchUnit(format!(
                "No unit files associated with '{arg}' found attached to the system. Image not attached?"
            )));
        }
        if !force {
            for a in &found {
                if active(pid1, &a.unit)? {
                    return Err(Error::UnitExists(format!(
                        "Unit file '{}' is active, can't detach.",
                        a.unit
                    )));
                }
            }
        }
        let mut txn = Txn::new(self, "detach", runtime, false);
        let mut planned = Self::plan_detach(dir, &found, &mut txn);
        for link in self.removable_image_links(&found, runtime) {
            let n = txn.remove(link.clone());
            planned.push((Change::new(ChangeType::Unlink, &link, ""), n));
        }
        // Dependency directories that disabling the units left empty (systemd puts the
        // `*.wants/` links of portable units here) go too, so that nothing is left.
        if let Ok(Some(entries)) = self.fs().read_dir(dir) {
            for e in entries {
                let name = e.name.to_string_lossy();
                if e.kind == NodeKind::Directory && is_dependency_dir(&name) {
                    let p = dir.join(&e.name);
                    let n = txn.rmdir(p.clone());
                    planned.push((Change::new(ChangeType::Unlink, &p, ""), n));
                }
            }
        }
        let n = txn.rmdir(dir.to_path_buf());
        planned.push((Change::new(ChangeType::Unlink, dir, ""), n));
        txn.stage(&[])?;
        let done = txn.commit()?;
        fault::point("detach: committed");
        let changes: Vec<Change> = planned
            .into_iter()
            .filter(|(_, n)| done.effective.get(*n).copied().unwrap_or(false))
            .map(|(c, _)| c)
            .collect();
        if let Some((path, e)) = done.rmdir_error {
            if e.raw_os_error() != Some(libc::ENOTEMPTY) || path != dir {
                return Err(Error::NotEmpty(format!(
                    "{e}: '{}' holds files that portctl did not create; everything else was detached.",
                    path.display()
                )));
            }
        }
        Ok(changes)
    }

    /// Reattaches (section 7.2), atomically: the new attachment is staged completely, then
    /// swapped in; on failure the old one is restored byte for byte. Returns the removed and
    /// the updated change lists as the reference does.
    pub fn reattach(
        &self,
        _pid1: &dyn ServiceManager, // reattach checks no unit against PID 1 (REATTACH)
        arg: &str,
        o: &AttachOptions,
    ) -> Result<(Vec<Change>, Vec<Change>)> {
        let plan = self.plan_attach(arg, o)?;
        let _guard = self.write_guard();
        let dir = attached_dir(o.runtime);
        let found = self.attached_units(dir, arg, &o.extensions)?;
        if found.is_empty() {
            return Err(Error::NoSuchUnit(format!(
                "No unit files associated with '{arg}' found attached to the system. Image not attached?"
            )));
        }
        self.check_copy_target(&plan, &found)?;
        let new_paths: BTreeSet<PathBuf> = plan
            .units
            .iter()
            .flat_map(|u| {
                let d = dir.join(format!("{}.d", u.name));
                let mut paths = vec![dir.join(&u.name), d.join("20-portable.conf"), d.clone()];
                if u.profile.is_some() {
                    paths.push(d.join("10-profile.conf"));
                }
                paths
            })
            .collect();
        // The reference's detach removes the attached directory only when nothing else is in
        // it (another image's units, the `*.wants/` links of enabled units); only then does
        // its attach report creating it again.
        let dir_stays = match self.fs().read_dir(dir) {
            Ok(Some(entries)) => entries.iter().any(|e| {
                let n = e.name.to_string_lossy();
                !found
                    .iter()
                    .any(|a| n == a.unit.as_str() || n == format!("{}.d", a.unit))
            }),
            _ => false,
        };
        let mut txn = Txn::new(self, "reattach", o.runtime, true);
        // Old files that the new attachment does not replace go first, then the new files.
        let mut removed = Vec::new();
        for a in &found {
            let unit = dir.join(&a.unit);
            let ddir = dir.join(format!("{}.d", a.unit));
            removed.push(Change::new(ChangeType::Unlink, &unit, ""));
            let profile = ddir.join("10-profile.conf");
            let profile_there = matches!(self.fs().lstat(&profile), Ok(Some(_)));
            if profile_there {
                removed.push(Change::new(ChangeType::Unlink, &profile, ""));
            }
            removed.push(Change::new(
                ChangeType::Unlink,
                &ddir.join("20-portable.conf"),
                "",
            ));
            removed.push(Change::new(ChangeType::Unlink, &ddir, ""));
            for p in [unit.clone(), profile, ddir.join("20-portable.conf")] {
                if !new_paths.contains(&p) {
                    txn.remove(p);
                }
            }
            if !new_paths.contains(&ddir) {
                txn.rmdir(ddir);
            }
        }
        Self::stage_plan(&plan, &mut txn);
        let old_links = self.removable_image_links(&found, o.runtime);
        let new_links: Vec<&PathBuf> = std::iter::once(&plan.link)
            .chain(plan.extensions.iter().map(|(_, l)| l))
            .collect();
        for l in &old_links {
            removed.push(Change::new(ChangeType::Unlink, l, ""));
            if !new_links.contains(&l) {
                txn.remove(l.clone());
            }
        }
        // The links of the new images (old ones of the same names are kept).
        self.stage_image_link(&plan, &mut txn);
        self.stage_extension_links(&plan, &mut txn);
        txn.stage(&Self::plan_dirs(&plan, true))?;
        txn.commit()?;
        fault::point("reattach: committed");
        // Reported as the reference reports a detach followed by an attach.
        let mut all_dirs: BTreeSet<PathBuf> = Self::plan_dirs(&plan, true).into_iter().collect();
        if dir_stays {
            all_dirs.remove(dir);
        } else {
            all_dirs.insert(dir.to_path_buf());
        }
        let all_ext_links: Vec<PathBuf> = plan.extensions.iter().map(|(_, l)| l.clone()).collect();
        let updated = Self::attach_changes(&plan, &all_dirs, true, &all_ext_links);
        let basenames: BTreeSet<String> = updated
            .iter()
            .map(|c| c.path.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        let removed = removed
            .into_iter()
            .filter(|c| !basenames.contains(c.path.rsplit('/').next().unwrap_or_default()))
            .collect();
        Ok((removed, updated))
    }
}

/// The states of section 7.4.
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
fn is_dependency_dir(name: &str) -> bool {
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

    /// The state of an image, by name or path (the image need not exist).
    pub fn image_state(&self, pid1: &dyn ServiceManager, arg: &str) -> Result<State> {
        self.image_state_layers(pid1, arg, &[])
    }

    /// The state of what was attached from `arg` with (at least) these `extensions`.
    pub fn image_state_layers(
        &self,
        pid1: &dyn ServiceManager,
        arg: &str,
        extensions: &[String],
    ) -> Result<State> {
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
        let found = marker::best(
            [(false, &attached.persistent), (true, &attached.runtime)]
                .into_iter()
                .flat_map(|(runtime, all)| all.iter().map(move |a| (runtime, a)))
                .filter_map(|(runtime, a)| {
                    Some((marker::matches(&a.marker, arg, extensions)?, (runtime, a)))
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

/// The extension-release of the extension image `ext` (opened at `root`), which it must have.
fn extension_release(
    root: &crate::ImageRoot,
    ext: &Image,
    relax: bool,
) -> Result<crate::os_release::ExtensionRelease> {
    find_extension_release(root, &ext.name, relax)
        .map_err(|source| Error::OsRelease {
            image: ext.name.clone(),
            source,
        })?
        .ok_or_else(|| {
            Error::InvalidArgs(format!(
                "Image {} lacks extension-release data, refusing.",
                ext.name
            ))
        })
}

/// v252's refusal of an image (and extensions) without matching unit files.
fn no_matching_units(image: &str, extensions: &[String]) -> Error {
    let also = if extensions.is_empty() {
        String::new()
    } else {
        format!("' or any of its extensions '{}", extensions.join(", "))
    };
    Error::InvalidArgs(format!(
        "Couldn't find any matching unit files in image '{image}{also}', refusing."
    ))
}

/// An extension image's path and the raw bytes of its extension-release file.
pub type ExtensionReleaseBytes = (String, Vec<u8>);

/// What `GetImageMetadata` returns.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The image's path (for a name found through `/etc/portables`, the link's path).
    pub path: String,
    /// The raw bytes of the image's os-release.
    pub os_release: Vec<u8>,
    /// Unit name and raw contents, sorted by name.
    pub units: Vec<(String, Vec<u8>)>,
}

impl Host {
    /// Opens an image and reads its os-release (which it must have).
    fn open_with_release(
        &self,
        arg: &str,
    ) -> Result<(Image, crate::ImageRoot, crate::os_release::ReleaseFile)> {
        let image = self.find_image(arg)?;
        let root = self.open_image(&image)?;
        let release = read_os_release(&root)
            .map_err(|source| Error::OsRelease {
                image: image.name.clone(),
                source,
            })?
            .ok_or_else(|| {
                Error::InvalidArgs(format!("Image '{arg}' lacks os-release data, refusing."))
            })?;
        Ok((image, root, release))
    }

    /// The root image's os-release, each extension's extension-release (path, raw bytes, in
    /// order) and the unit files of all layers matching `matches` (an earlier layer wins).
    pub fn image_metadata_layers(
        &self,
        arg: &str,
        extensions: &[String],
        matches: &[String],
        relax: bool,
    ) -> Result<(Metadata, Vec<ExtensionReleaseBytes>)> {
        // One budget for every layer: the whole reply must fit into one D-Bus message.
        let mut budget = Budget::default();
        let mut meta = self.image_metadata_within(arg, matches, &mut budget)?;
        let mut releases = Vec::new();
        for e in extensions {
            let ext = self.find_image(e)?;
            let root = self.open_image(&ext)?;
            let release = extension_release(&root, &ext, relax)?;
            let over = |source| Error::Unit {
                image: ext.name.clone(),
                source,
            };
            budget.charge(release.file.raw.len() as u64).map_err(over)?;
            releases.push((ext.path.display().to_string(), release.file.raw));
            let units = find_units_within(&root, matches, &mut budget).map_err(over)?;
            for u in units {
                if !meta.units.iter().any(|(n, _)| *n == u.name) {
                    meta.units.push((u.name, u.content));
                }
            }
        }
        meta.units.sort_by(|a, b| a.0.cmp(&b.0));
        if meta.units.is_empty() {
            return Err(no_matching_units(&meta.path, extensions));
        }
        Ok((meta, releases))
    }

    /// The image's os-release and its unit files matching `matches` (all when empty); an
    /// image without any is refused, as v252's `portable_extract()` refuses it.
    pub fn image_metadata(&self, arg: &str, matches: &[String]) -> Result<Metadata> {
        let meta = self.image_metadata_within(arg, matches, &mut Budget::default())?;
        if meta.units.is_empty() {
            return Err(no_matching_units(&meta.path, &[]));
        }
        Ok(meta)
    }

    fn image_metadata_within(
        &self,
        arg: &str,
        matches: &[String],
        budget: &mut Budget,
    ) -> Result<Metadata> {
        let (image, root, release) = self.open_with_release(arg)?;
        let over = |source| Error::Unit {
            image: image.name.clone(),
            source,
        };
        budget.charge(release.raw.len() as u64).map_err(over)?;
        let units = find_units_within(&root, matches, budget).map_err(over)?;
        Ok(Metadata {
            path: image.path.display().to_string(),
            os_release: release.raw,
            units: units.into_iter().map(|u| (u.name, u.content)).collect(),
        })
    }

    /// The key/value pairs of the image's os-release.
    pub fn image_os_release(&self, arg: &str) -> Result<Vec<(String, String)>> {
        Ok(self.open_with_release(arg)?.2.parsed.pairs)
    }
}
