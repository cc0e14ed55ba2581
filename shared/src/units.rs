//! Unit discovery inside an image root.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::limits::{METADATA_MAX, UNITS_MAX, UNIT_DIR_ENTRIES_MAX, UNIT_FILE_MAX};
use crate::parse::names::{unit_is_portable_type, unit_matches, unit_name_is_valid};
use crate::root::{ImageRoot, NodeKind, ReadError};

/// The system unit search path, relative to the image root, in priority order, with split
/// /usr forced (so `/lib/systemd/system` is searched too).
pub const UNIT_SEARCH_PATH: [&str; 13] = [
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// A unit file taken out of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    pub name: String,
    /// Where it was found inside the image (the directory entry, not a symlink's target).
    pub path: PathBuf,
    pub content: Vec<u8>,
}

/// A unit file that matched but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("unit file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: ReadError,
    },
    #[error("unit file {} is a {kind}, not a regular file or symlink", path.display())]
    BadKind { path: PathBuf, kind: NodeKind },
    #[error("cannot list unit directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unit directory {} has more than {max} entries, refusing", path.display())]
    TooManyEntries { path: PathBuf, max: usize },
    #[error("more than {max} matching unit files, refusing")]
    TooMany { max: usize },
    #[error("its unit and release files exceed {max} bytes in all, refusing")]
    OverBudget { max: u64 },
}

/// What one call may still read out of an image and its extensions, of
/// [`METADATA_MAX`] (docs/security.md, "Limits").
#[derive(Debug)]
pub struct Budget {
    left: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self { left: METADATA_MAX }
    }
}

impl Budget {
    /// The most a file may have now: the per-file `limit`, or less when the budget is low.
    fn limit(&self, limit: u64) -> u64 {
        limit.min(self.left)
    }

    /// Takes `n` bytes that were read; fails when that is more than what is left.
    pub fn charge(&mut self, n: u64) -> Result<(), UnitError> {
        self.left = self
            .left
            .checked_sub(n)
            .ok_or(UnitError::OverBudget { max: METADATA_MAX })?;
        Ok(())
    }
}

/// The unit an alias link at `path` (named `name`) of the image stands for: a symlink whose
/// target, resolved inside the image, is a regular file with another valid unit name.
/// systemd-portabled 252 and 257 skip such links too (they follow them on the host, where
/// the target is missing), 262 skips every link out of the image.
pub fn alias_target(root: &ImageRoot, path: &Path, name: &str) -> Option<String> {
    let target = root.read_link(path).ok()?;
    let target_name = target.file_name()?.to_str()?;
    if target_name == name || !unit_name_is_valid(target_name) {
        return None;
    }
    // Relative targets are relative to the link's directory.
    let resolved = match target.is_absolute() {
        true => target.clone(),
        false => path.parent().unwrap_or(Path::new("/")).join(&target),
    };
    match root.stat(&resolved) {
        Ok(Some(st)) if NodeKind::of(&st) == NodeKind::File => Some(target_name.to_string()),
        _ => None,
    }
}

/// The alias links among the unit files of the image that match `matches`: (alias, unit).
pub fn find_aliases(root: &ImageRoot, matches: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in UNIT_SEARCH_PATH {
        let Ok(Some(entries)) = root.read_dir(Path::new(dir)) else {
            continue;
        };
        for e in entries.iter().take(UNIT_DIR_ENTRIES_MAX) {
            let Some(name) = e.name.to_str() else {
                continue;
            };
            if e.kind != NodeKind::Symlink
                || !unit_name_is_valid(name)
                || !unit_matches(name, matches)
                || out.iter().any(|(a, _)| a == name)
            {
                continue;
            }
            if let Some(t) = alias_target(root, &Path::new(dir).join(name), name) {
                out.push((name.to_string(), t));
            }
        }
    }
    out
}

/// Finds the unit files of the five portable types that match `matches` (all of them when
/// empty), the first of each name in [`UNIT_SEARCH_PATH`] order winning. Symlinks are
/// resolved inside the image; empty files and subdirectories are skipped. Sorted by name.
pub fn find_units(root: &ImageRoot, matches: &[String]) -> Result<Vec<UnitFile>, UnitError> {
    find_units_within(root, matches, &mut Budget::default())
}

/// [`find_units`], reading no more than what is left of `budget` (shared by the layers of
/// one call).
pub fn find_units_within(
    root: &ImageRoot,
    matches: &[String],
    budget: &mut Budget,
) -> Result<Vec<UnitFile>, UnitError> {
    let mut units: Vec<UnitFile> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for dir in UNIT_SEARCH_PATH {
        let dir = Path::new(dir);
        let entries = match root.read_dir(dir) {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(source) => {
                return Err(UnitError::Dir {
                    path: dir.into(),
                    source,
                })
            }
        };
        if entries.len() > UNIT_DIR_ENTRIES_MAX {
            return Err(UnitError::TooManyEntries {
                path: dir.into(),
                max: UNIT_DIR_ENTRIES_MAX,
            });
        }
        for entry in entries {
            // Names that are not UTF-8 cannot be valid unit names.
            let Ok(name) = std::str::from_utf8(entry.name.as_bytes()) else {
                continue;
            };
            if !unit_name_is_valid(name)
                || !unit_is_portable_type(name)
                || !unit_matches(name, matches)
                || seen.contains(name)
            {
                continue;
            }
            let path = dir.join(name);
            match entry.kind {
                NodeKind::File => {}
                NodeKind::Symlink => {
                    // A link to /dev/null masks the unit, as on a host.
                    if root
                        .read_link(&path)
                        .is_ok_and(|t| t == Path::new("/dev/null"))
                    {
                        seen.insert(name.to_string());
                        continue;
                    }
                    // A link to another unit file of the image is an alias of that unit
                    // (Debian's postinst leaves `redis.service -> redis-server.service`):
                    // not a unit of its own.
                    if alias_target(root, &path, name).is_some() {
                        seen.insert(name.to_string());
                        continue;
                    }
                }
                NodeKind::Directory => continue,
                kind => return Err(UnitError::BadKind { path, kind }),
            }
            let limit = budget.limit(UNIT_FILE_MAX);
            let content = match root.read_file(&path, limit) {
                Ok(Some(c)) => c,
                Err(ReadError::TooLarge { .. }) if limit < UNIT_FILE_MAX => {
                    return Err(UnitError::OverBudget { max: METADATA_MAX })
                }
                Ok(None) => {
                    return Err(UnitError::Read {
                        path,
                        source: ReadError::Io(std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "dangling symbolic link (resolved inside the image)",
                        )),
                    })
                }
                // A symlink to a directory is skipped like a directory.
                Err(ReadError::NotRegular(NodeKind::Directory)) => continue,
                Err(source) => return Err(UnitError::Read { path, source }),
            };
            seen.insert(name.to_string());
            if content.is_empty() {
                continue;
            }
            budget.charge(content.len() as u64)?;
            if units.len() == UNITS_MAX {
                return Err(UnitError::TooMany { max: UNITS_MAX });
            }
            units.push(UnitFile {
                name: name.to_string(),
                path,
                content,
            });
        }
    }
    units.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(units)
}
