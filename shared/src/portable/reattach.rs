//! Reattach: the new attachment staged completely, then swapped for the old one in one
//! transaction.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::fault;
use crate::txn::Txn;
use crate::Host;

use super::changes::{self, Change, ChangeType};
use super::plan;
use super::{attached_dir, AttachOptions, ServiceManager};

impl Host {
    /// Reattaches atomically (docs/compatibility.md, "reattach"): the new attachment is staged completely, then
    /// swapped in; on failure the old one is restored byte for byte. Returns the removed and
    /// the updated change lists as the reference does.
    pub fn reattach(
        &self,
        pid1: &dyn ServiceManager, // reattach checks no unit against PID 1 (REATTACH)
        arg: &str,
        o: &AttachOptions,
    ) -> Result<(Vec<Change>, Vec<Change>)> {
        let (arg, o) = &self.picked(pid1, arg, o)?;
        let facts = self.inspect_attach(pid1, arg, o)?;
        let plan = plan::plan(arg, &facts, o)?;
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
        let old_links = self.removable_image_links(&found, o.runtime, super::behave_as(pid1));
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
        // A writable new image gets what it lacks, undone if the swap fails.
        let repaired = self.repair(&plan)?;
        let swapped = txn
            .stage(&Self::plan_dirs(&plan, true))
            .and_then(|_| txn.commit());
        if let Err(e) = swapped {
            if let Some(r) = &repaired {
                r.undo();
            }
            return Err(e);
        }
        fault::point("reattach: committed");
        // Reported as the reference reports a detach followed by an attach.
        let mut all_dirs: BTreeSet<PathBuf> = Self::plan_dirs(&plan, true).into_iter().collect();
        if dir_stays {
            all_dirs.remove(dir);
        } else {
            all_dirs.insert(dir.to_path_buf());
        }
        let all_ext_links: Vec<PathBuf> = plan.extensions.iter().map(|(_, l)| l.clone()).collect();
        let updated = changes::attach_changes(&plan, &all_dirs, true, &all_ext_links);
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
