//! The first half of an attach: everything read from the host and the images, as plain facts
//! ([`Facts`]) for the pure [`super::plan::plan`] to decide on. Nothing is changed here.

use std::collections::BTreeMap;
use std::path::Path;

use crate::compliance::{self, Request};
use crate::confine::{self, Widening};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::os_release::{extension_mismatch, read_os_release, OsRelease};
use crate::parse::names;
use crate::profile::{profile_name_is_valid, Profile, RequiredPath};
use crate::units::{find_units_within, Budget, UnitFile};
use crate::Host;

use super::metadata::extension_release;
use crate::policy::Policy;
use crate::version::Version;

use super::{image_link, AttachOptions, CopyMode, ServiceManager};

/// An extension image as attach sees it.
#[derive(Debug, Clone)]
pub struct Extension {
    pub image: Image,
    /// Why its extension-release does not match the root's, if it does not.
    pub mismatch: Option<String>,
    /// Its `PORTABLE_PREFIXES=`.
    pub prefixes: Vec<String>,
    /// Its extension-release, parsed, and whether it is a confext's.
    pub release: OsRelease,
    pub confext: bool,
    /// What it admits, for a raw image.
    pub policy: Option<Policy>,
}

/// What the profile named by the attach is on this host.
#[derive(Debug, Clone)]
pub enum ProfileFacts {
    /// No profile (the empty name).
    None,
    /// Not a valid profile name.
    BadName,
    /// No profile directory of that name; the names of those there are.
    Missing { available: Vec<String> },
    /// Its drop-in for each unit type the attach brings (`None`: the profile has none for
    /// that type, as v252's profiles have only `service.conf`).
    Found {
        name: String,
        by_type: BTreeMap<String, Option<Profile>>,
    },
}

impl ProfileFacts {
    /// The profile's `service` drop-in.
    pub fn service(&self) -> Option<&Profile> {
        match self {
            Self::Found { by_type, .. } => by_type.get("service").and_then(Option::as_ref),
            _ => None,
        }
    }
}

/// What the image requirements say about the root image (for the chosen profile).
#[derive(Debug, Clone, Default)]
pub struct Compliance {
    /// Paths the profile mounts over that the image lacks.
    pub missing: Vec<RequiredPath>,
    /// Paths that are there, but of the wrong kind (a file where a directory must be).
    pub wrong_kind: Vec<String>,
}

/// Everything an attach decides on, read from the host and the images.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The root image (for `--copy=mixed` by name: the image the copy is made of).
    pub image: Image,
    /// Whether the root image can be written to (a repair is possible).
    pub writable: bool,
    /// Whether the root image has an os-release file, and whether it names an `ID=`.
    pub has_os_release: bool,
    pub has_id: bool,
    /// Its `PORTABLE_PREFIXES=`.
    pub prefixes: Vec<String>,
    pub extensions: Vec<Extension>,
    /// The matching unit files of every layer, each with the extension it came from
    /// (`None`: the root), an earlier layer winning.
    pub units: Vec<(UnitFile, Option<usize>)>,
    pub profile: ProfileFacts,
    /// `None` when there is no profile.
    pub compliance: Option<Compliance>,
    /// The units' settings that widen the profile.
    pub widenings: Vec<Widening>,
    /// The host's os-release file, which 20-portable.conf binds in (up to 253).
    pub host_os_release: &'static str,
    /// The systemd version the attach writes for (docs/compatibility.md).
    pub version: Version,
    /// The root image's os-release, parsed.
    pub release: Option<OsRelease>,
    /// What the root image admits, for a raw image.
    pub policy: Option<Policy>,
}

impl Host {
    /// Reads what an attach of `arg` with `o` needs to know.
    pub(crate) fn inspect_attach(
        &self,
        pid1: &dyn ServiceManager,
        arg: &str,
        o: &AttachOptions,
    ) -> Result<Facts> {
        let version = super::behave_as(pid1);
        let mut image = self.find_image(arg)?;
        if o.copy == CopyMode::Mixed
            && image.path == image_link(&image.path.display().to_string(), o.runtime)
        {
            // By name, our own copy from an earlier --copy=mixed attach is found first: copy
            // from the image it was made of, further down the search path. An image that
            // only lives there is its own copy.
            let rest: Vec<&str> = crate::host::IMAGE_SEARCH_PATH
                .iter()
                .copied()
                .filter(|d| !image.path.starts_with(d))
                .collect();
            match self.find_image_by_name_in(&image.name, &rest) {
                Ok(original) => image = original,
                Err(Error::NoSuchImage(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let opened = self.open_image_with(&image, false)?;
        let release = read_os_release(&opened.root).map_err(|source| Error::OsRelease {
            image: image.name.clone(),
            source,
        })?;
        let mut budget = Budget::default();
        let unit_error = |image: &Image| {
            let name = image.name.clone();
            move |source| Error::Unit {
                image: name.clone(),
                source,
            }
        };
        let root_units =
            find_units_within(&opened.root, &o.matches, &mut budget).map_err(unit_error(&image))?;
        let mut units: Vec<(UnitFile, Option<usize>)> =
            root_units.into_iter().map(|u| (u, None)).collect();
        let mut extensions = Vec::new();
        for (i, arg) in o.extensions.iter().enumerate() {
            let ext = self.find_image(arg)?;
            let ext_opened = self.open_image_with(&ext, false)?;
            let ext_release =
                extension_release(&ext_opened.root, &ext, o.relax_extension_check, version)?;
            let mismatch = release.as_ref().and_then(|r| {
                let id_like = version.has(crate::version::Behaviour::ExtensionIdLike);
                extension_mismatch(&ext_release, &r.parsed, id_like)
            });
            let found = find_units_within(&ext_opened.root, &o.matches, &mut budget)
                .map_err(unit_error(&ext))?;
            for u in found {
                if !units.iter().any(|(have, _)| have.name == u.name) {
                    units.push((u, Some(i)));
                }
            }
            extensions.push(Extension {
                image: ext,
                mismatch,
                prefixes: ext_release.file.parsed.portable_prefixes(),
                confext: ext_release.confext,
                release: ext_release.file.parsed,
                policy: ext_opened.dissected.as_ref().map(Policy::of),
            });
        }
        // By name (v252's order is its hash tables').
        units.sort_by(|a, b| a.0.name.cmp(&b.0.name));

        let profile = if o.profile.is_empty() {
            ProfileFacts::None
        } else if !profile_name_is_valid(&o.profile) {
            ProfileFacts::BadName
        } else {
            let mut by_type = BTreeMap::new();
            by_type.insert(
                "service".to_string(),
                self.find_profile(&o.profile, "service")?,
            );
            for (u, _) in &units {
                let suffix = names::unit_suffix(&u.name).unwrap_or("service");
                if !by_type.contains_key(suffix) {
                    by_type.insert(suffix.to_string(), self.find_profile(&o.profile, suffix)?);
                }
            }
            if by_type["service"].is_none() && !self.profile_exists(&o.profile) {
                ProfileFacts::Missing {
                    available: self.list_profiles(),
                }
            } else {
                ProfileFacts::Found {
                    name: o.profile.clone(),
                    by_type,
                }
            }
        };
        let (compliance, widenings) = match profile.service() {
            Some(p) => {
                let report = compliance::check_image(&Request {
                    host: self,
                    image: &image,
                    root: &opened.root,
                    profile: p,
                    matches: Some(&o.matches),
                    writable: opened.can_write,
                    layout: &opened.layout,
                    version,
                });
                let all: Vec<&UnitFile> = units.iter().map(|(u, _)| u).collect();
                let names: std::collections::BTreeSet<&str> =
                    all.iter().map(|u| u.name.as_str()).collect();
                let widenings = confine::widenings(self, p, &all, &names);
                (
                    Some(Compliance {
                        missing: report.missing,
                        wrong_kind: report.wrong_kind,
                    }),
                    widenings,
                )
            }
            None => (None, Vec::new()),
        };
        let host_os_release =
            if matches!(self.fs().lstat(Path::new("/etc/os-release")), Ok(Some(_))) {
                "/etc/os-release"
            } else {
                "/usr/lib/os-release"
            };
        Ok(Facts {
            writable: opened.can_write,
            has_os_release: release.is_some(),
            has_id: release
                .as_ref()
                .is_some_and(|r| r.parsed.non_empty("ID").is_some()),
            prefixes: release
                .as_ref()
                .map(|r| r.parsed.portable_prefixes())
                .unwrap_or_default(),
            image,
            extensions,
            units,
            profile,
            compliance,
            widenings,
            host_os_release,
            version,
            release: release.map(|r| r.parsed),
            policy: opened.dissected.as_ref().map(Policy::of),
        })
    }

    /// Whether a profile directory of that name exists (it may lack a file for some type).
    fn profile_exists(&self, name: &str) -> bool {
        crate::host::PROFILE_SEARCH_PATH
            .iter()
            .any(|d| matches!(self.fs().stat(&Path::new(d).join(name)), Ok(Some(_))))
    }
}
