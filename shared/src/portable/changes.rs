//! Change lists: what an operation did, as `(type, path, source)` entries in the
//! reference's order and spelling.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::root::Content;

use super::plan::Plan;

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
    pub(crate) fn new(kind: ChangeType, path: &Path, source: &str) -> Self {
        Self {
            kind,
            path: path.display().to_string(),
            source: source.to_string(),
        }
    }
}

/// The attach change list of a plan, as the reference reports it; `mkdir` entries only for
/// the directories in `created`.
pub(super) fn attach_changes(
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
            let kind = if plan.copy_image {
                ChangeType::Copy
            } else {
                ChangeType::Symlink
            };
            out.push(Change::new(kind, link, &ext.path.display().to_string()));
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
