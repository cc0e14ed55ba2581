//! The last step of an attach: the plan checked against the host under the write lock,
//! then the repairs of a writable image and the files, links and copy in one transaction.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::compliance;
use crate::error::{Error, IoContext, Result};
use crate::fault;
use crate::parse::marker;
use crate::root::Content;
use crate::txn::Txn;
use crate::Host;

use super::changes::{self, Change, ChangeType};
use super::detach::Attached;
use super::plan::{self, Plan};
use super::{active, AttachOptions, ServiceManager};

impl Host {
    /// No unit of the plan may exist on the host (an instance: nor its template) or be
    /// active, and enabling one must not link a host unit (the names of its `[Install]`
    /// section); see docs/security.md.
    pub(super) fn check_host_units(&self, pid1: &dyn ServiceManager, plan: &Plan) -> Result<()> {
        let planned: BTreeSet<&str> = plan.units.iter().map(|u| u.name.as_str()).collect();
        for u in &plan.units {
            if self.has_unit(&u.name) {
                return Err(Error::UnitExists(format!(
                    "Unit file '{}' exists on the host already, refusing.",
                    u.name
                )));
            }
            for (key, name) in &u.install_names {
                if !planned.contains(name.as_str()) && self.has_unit(name) {
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

    /// Adds the plan's files to a transaction: per unit the drop-ins first, the unit last.
    pub(super) fn stage_plan(plan: &Plan, txn: &mut Txn<'_>) {
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
    pub(super) fn plan_dirs(plan: &Plan, links: bool) -> Vec<PathBuf> {
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
    pub(super) fn is_link_error(plan: &Plan, e: &Error) -> bool {
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
    pub(super) fn stage_extension_links(&self, plan: &Plan, txn: &mut Txn<'_>) -> Vec<PathBuf> {
        let mut made = Vec::new();
        for (ext, link) in &plan.extensions {
            if *link == plan.link || made.contains(link) {
                continue;
            }
            if plan.copy_image && *link == ext.path {
                continue;
            }
            if plan.copy_image {
                txn.place_tree(link.clone(), Content::CopyOf(ext.path.clone()));
                made.push(link.clone());
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
    /// (The copies of the extensions likewise.)
    pub(super) fn check_copy_target(&self, plan: &Plan, replaced: &[Attached]) -> Result<()> {
        if !plan.copy_image {
            return Ok(());
        }
        let layers = std::iter::once((&plan.image, &plan.link))
            .chain(plan.extensions.iter().map(|(e, l)| (e, l)));
        for (image, target) in layers {
            // An image kept in `/etc|run/portables` is its own copy.
            if *target == image.path || !matches!(self.fs().lstat(target), Ok(Some(_))) {
                continue;
            }
            // A copy an attachment being replaced made: its marker names the image it is a
            // copy of (or, as earlier portctl versions wrote, the copy itself).
            let ours = replaced.iter().any(|a| {
                marker::tokens(&a.marker).iter().any(|t| {
                    let t = marker::unescape(t);
                    Path::new(&t) == target.as_path() || Path::new(&t) == image.path
                })
            });
            if !ours {
                return Err(Error::Io {
                    what:
                        "Refusing to replace what is there with a copy of the image (--copy=mixed)",
                    path: target.clone(),
                    source: std::io::Error::from_raw_os_error(libc::EEXIST),
                });
            }
        }
        Ok(())
    }

    pub(super) fn stage_image_link(&self, plan: &Plan, txn: &mut Txn<'_>) -> bool {
        if plan.copy_image && plan.link == plan.image.path {
            return false;
        }
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
    pub(super) fn commit_attach(
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

    /// Attaches an image. Returns the change list.
    pub fn attach(
        &self,
        pid1: &dyn ServiceManager,
        arg: &str,
        o: &AttachOptions,
    ) -> Result<Vec<Change>> {
        let (arg, o) = &self.picked(pid1, arg, o)?;
        let facts = self.inspect_attach(pid1, arg, o)?;
        let plan = plan::plan(arg, &facts, o)?;
        let _guard = self.write_guard();
        if !o.force {
            self.check_host_units(pid1, &plan)?;
        }
        self.check_copy_target(&plan, &[])?;
        // The repairs of a writable image come after every check, and are undone if the
        // files cannot be written.
        let repaired = self.repair(&plan)?;
        let committed = match self.commit_attach(&plan, o.runtime, true) {
            Err(e) if Self::is_link_error(&plan, &e) => {
                tracing::warn!(image = %plan.image.path.display(), "attached without a link to the image: {e}");
                self.commit_attach(&plan, o.runtime, false)
            }
            r => r,
        };
        let (created, link, ext_links) = match committed {
            Ok(c) => c,
            Err(e) => {
                if let Some(r) = &repaired {
                    r.undo();
                }
                return Err(e);
            }
        };
        fault::point("attach: committed");
        let mut changes = repaired.map(|r| r.changes(&plan)).unwrap_or_default();
        changes.extend(changes::attach_changes(&plan, &created, link, &ext_links));
        Ok(changes)
    }

    /// Creates what the plan repairs in the (writable) image; `None` when nothing is missing.
    pub(super) fn repair(&self, plan: &Plan) -> Result<Option<Repaired>> {
        if plan.repairs.is_empty() {
            return Ok(None);
        }
        let rw = self.open_image_with(&plan.image, true)?;
        let created = compliance::repair(&rw.root, &plan.repairs).context(
            "Failed to create missing mount points in image",
            &plan.image.path,
        )?;
        let list: Vec<&str> = plan.repairs.iter().map(|m| m.path.as_str()).collect();
        tracing::info!(image = %plan.image.name, paths = ?list, "created missing paths in writable image");
        Ok(Some(Repaired { image: rw, created }))
    }
}

/// What a repair created in an image, kept open (mounted for writing) until the attach is
/// committed, so that it can be undone.
pub(super) struct Repaired {
    image: crate::raw::OpenImage,
    created: Vec<compliance::Created>,
}

impl Repaired {
    /// Removes what was created, last first.
    pub(super) fn undo(&self) {
        compliance::undo_repair(&self.image.root, &self.created);
    }

    /// The `mkdir`/`write` changes, with host paths for a directory image.
    pub(super) fn changes(&self, plan: &Plan) -> Vec<Change> {
        self.created
            .iter()
            .map(|c| {
                let kind = match c.kind {
                    compliance::RepairKind::Mkdir => ChangeType::Mkdir,
                    compliance::RepairKind::Write => ChangeType::Write,
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
            .collect()
    }
}
