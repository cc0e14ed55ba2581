//! Detach, and what both detach and reattach need: the units attached from an image, found
//! by the markers of their drop-ins, and the image links that go with them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fault;
use crate::parse::marker;
use crate::parse::names::unit_name_is_valid;
use crate::root::NodeKind;
use crate::txn::Txn;
use crate::version::{Behaviour, Version};
use crate::Host;

use super::changes::{Change, ChangeType};
use super::state::is_dependency_dir;
use super::{active, attached_dir, image_link, ServiceManager};

/// What to detach: the root image given to [`Host::detach`] with exactly these extension
/// layers, from the persistent or the runtime directory; `force` skips the check that no
/// unit is active (v252's FORCE_ATTACH).
#[derive(Debug, Clone, Default)]
pub struct DetachOptions {
    pub extensions: Vec<String>,
    pub runtime: bool,
    pub force: bool,
}

impl DetachOptions {
    /// No extensions.
    pub fn new(runtime: bool, force: bool) -> Self {
        Self {
            extensions: Vec::new(),
            runtime,
            force,
        }
    }
}

/// An attached unit found in an attached directory.
#[derive(Debug, Clone)]
pub(super) struct Attached {
    pub(super) unit: String,
    /// Whether the unit file itself is there (not only its drop-in directory).
    pub(super) has_file: bool,
    pub(super) marker: String,
}

impl Host {
    /// Every unit in `dir` whose 20-portable.conf marker matches `arg`, sorted by name.
    /// The units in `dir` attached from exactly the layers `arg` and `extensions`.
    pub(super) fn attached_units(
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
    pub(super) fn all_attached_units(&self, dir: &Path) -> Result<Vec<Attached>> {
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
    pub(super) fn plan_detach(
        dir: &Path,
        found: &[Attached],
        txn: &mut Txn<'_>,
    ) -> Vec<(Change, usize)> {
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
    /// the markers, when it is a symlink. From 256 on, whatever is
    /// there (a `--copy=mixed` copy), as systemd-portabled removes it; but never the image
    /// itself, kept in `/etc|run/portables` (systemd-portabled 262 deletes it:
    /// docs/compatibility.md).
    pub(super) fn removable_image_links(
        &self,
        found: &[Attached],
        runtime: bool,
        version: Version,
    ) -> Vec<PathBuf> {
        let copies = version.has(Behaviour::CopyMixed);
        let tokens: BTreeSet<PathBuf> = found
            .iter()
            .flat_map(|a| marker::tokens(&a.marker))
            .map(|t| PathBuf::from(marker::unescape(&t)))
            .filter(|t| t.is_absolute())
            .collect();
        let mut links: Vec<PathBuf> = tokens
            .iter()
            .map(|t| (t, image_link(&t.display().to_string(), runtime)))
            .filter(|(t, l)| {
                let exists = matches!(self.fs().lstat(l), Ok(Some(_)));
                self.is_symlink(l) || (copies && exists && l != *t)
            })
            .map(|(_, l)| l)
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

    pub(super) fn is_symlink(&self, p: &Path) -> bool {
        matches!(self.fs().lstat(p), Ok(Some(st)) if NodeKind::of(&st) == NodeKind::Symlink)
    }

    pub fn detach(
        &self,
        pid1: &dyn ServiceManager,
        arg: &str,
        o: &DetachOptions,
    ) -> Result<Vec<Change>> {
        let (arg, extensions) = &self.vpick_all(super::behave_as(pid1), arg, &o.extensions)?;
        let (extensions, runtime, force) = (extensions.as_slice(), o.runtime, o.force);
        let dir = attached_dir(runtime);
        let _guard = self.write_guard();
        let found = self.attached_units(dir, arg, extensions)?;
        if found.is_empty() {
            let also = if extensions.is_empty() {
                String::new()
            } else {
                format!("' or any of its extensions '{}", extensions.join(", "))
            };
            return Err(Error::NoSuchUnit(format!(
                "No unit files associated with '{arg}{also}' found attached to the system. Image not attached?"
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
        for link in self.removable_image_links(&found, runtime, super::behave_as(pid1)) {
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
}
