//! What `GetImageMetadata` and `GetImageOSRelease` return: an image's os-release, its
//! extensions' extension-release files and its matching unit files, within one budget.

use crate::error::{Error, Result};
use crate::image::Image;
use crate::os_release::{find_extension_release, read_os_release};
use crate::units::{find_units_within, Budget};
use crate::version::{Behaviour, Version};
use crate::Host;

/// The extension-release of the extension image `ext` (opened at `root`), which it must have.
pub(super) fn extension_release(
    root: &crate::ImageRoot,
    ext: &Image,
    relax: bool,
    version: Version,
) -> Result<crate::os_release::ExtensionRelease> {
    let versioned = version.has(Behaviour::VersionedImageNames);
    find_extension_release(root, &ext.name, relax, versioned)
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
pub(super) fn no_matching_units(image: &str, extensions: &[String]) -> Error {
    let also = if extensions.is_empty() {
        String::new()
    } else {
        format!("' or any of its extensions '{}", extensions.join(", "))
    };
    Error::NoMatchingUnits(format!(
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
            .ok_or_else(|| Error::NoOsRelease(arg.to_string()))?;
        Ok((image, root, release))
    }

    /// The root image's os-release, each extension's extension-release (path, raw bytes, in
    /// order) and the unit files of all layers matching `matches` (an earlier layer wins).
    pub fn image_metadata(
        &self,
        pid1: &dyn super::ServiceManager,
        arg: &str,
        extensions: &[String],
        matches: &[String],
        relax: bool,
    ) -> Result<(Metadata, Vec<ExtensionReleaseBytes>)> {
        // One budget for every layer: the whole reply must fit into one D-Bus message.
        let (arg, extensions) = &self.reported(pid1, arg, extensions)?;
        let mut budget = Budget::default();
        let mut meta = self.image_metadata_within(arg, matches, &mut budget)?;
        let mut releases = Vec::new();
        for e in extensions {
            let ext = self.find_image(e)?;
            let root = self.open_image(&ext)?;
            let release = extension_release(&root, &ext, relax, super::behave_as(pid1))?;
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
