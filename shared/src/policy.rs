//! Image policies (`RootImagePolicy=`, `ExtensionImagePolicy=`): what systemd 260 and later
//! pin in 20-portable.conf, so that PID 1 uses the image only as attach found it
//! (docs/compatibility.md, "By systemd version"). Pure: built from what the raw image
//! dissection found.
//!
//! The string is systemd's simplified form: an entry per partition found, in the designators'
//! order, its words joined with `+` (protection, then `read-only-on|off` and `growfs-on|off`
//! for partitions of a partition table, then the file system), and `=absent` for everything
//! else. A bare file system image is a root partition with its file system word only:
//! `root=squashfs:=absent`; a GPT root: `root=read-only-off+growfs-on+ext4:=absent`.

use crate::parse::fsdetect::FsType;

/// The partition designators of an image, in systemd's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Designator {
    Root,
    Usr,
    Home,
    Srv,
    Esp,
    Xbootldr,
    Swap,
    RootVerity,
    UsrVerity,
    RootVeritySig,
    UsrVeritySig,
    Tmp,
    Var,
}

impl Designator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Usr => "usr",
            Self::Home => "home",
            Self::Srv => "srv",
            Self::Esp => "esp",
            Self::Xbootldr => "xbootldr",
            Self::Swap => "swap",
            Self::RootVerity => "root-verity",
            Self::UsrVerity => "usr-verity",
            Self::RootVeritySig => "root-verity-sig",
            Self::UsrVeritySig => "usr-verity-sig",
            Self::Tmp => "tmp",
            Self::Var => "var",
        }
    }
}

/// How a partition is protected, as the dissection saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protection {
    /// A verity partition and its root hash.
    Verity,
    /// A verity signature partition.
    Signed,
}

/// A partition the dissection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub designator: Designator,
    /// Its file system, when it has one we know.
    pub fs: Option<FsType>,
    pub protection: Option<Protection>,
    /// GPT flags (meaningless for a bare file system).
    pub read_only: bool,
    pub growfs: bool,
}

/// What the dissection of a raw image found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dissected {
    /// A bare file system (no partition table): its partition carries no flags.
    pub single_file_system: bool,
    pub partitions: Vec<Found>,
}

/// The policy words of one designator (possibly the union of several images').
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    absent: bool,
    protection: Vec<Protection>,
    read_only: Vec<bool>,
    growfs: Vec<bool>,
    fs: Vec<FsType>,
}

/// The file systems' words, in systemd's order.
const FS_ORDER: [FsType; 5] = [
    FsType::Btrfs,
    FsType::Ext4,
    FsType::Erofs,
    FsType::Squashfs,
    FsType::Xfs,
];

/// A policy: one entry per designator; designators without one are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    entries: Vec<(Designator, Entry)>,
}

impl Policy {
    /// The policy that admits exactly what `d` found.
    pub fn of(d: &Dissected) -> Self {
        let mut p = Self::default();
        for f in &d.partitions {
            let e = p.entry(f.designator);
            add(&mut e.protection, f.protection.as_slice());
            if !d.single_file_system {
                add(&mut e.read_only, &[f.read_only]);
                add(&mut e.growfs, &[f.growfs]);
            }
            add(&mut e.fs, f.fs.as_slice());
        }
        p
    }

    fn entry(&mut self, d: Designator) -> &mut Entry {
        let i = match self.entries.iter().position(|(x, _)| *x == d) {
            Some(i) => i,
            None => {
                self.entries.push((d, Entry::default()));
                self.entries.sort_by_key(|(x, _)| *x);
                self.entries
                    .iter()
                    .position(|(x, _)| *x == d)
                    .expect("inserted")
            }
        };
        &mut self.entries[i].1
    }

    /// What admits the images of both (one policy serves every extension image).
    pub fn union(&self, other: &Self) -> Self {
        let mut u = self.clone();
        let mine: Vec<Designator> = self.entries.iter().map(|(d, _)| *d).collect();
        for (d, e) in &other.entries {
            let absent_here = !mine.contains(d);
            let x = u.entry(*d);
            x.absent |= absent_here || e.absent;
            add(&mut x.protection, &e.protection);
            add(&mut x.read_only, &e.read_only);
            add(&mut x.growfs, &e.growfs);
            add(&mut x.fs, &e.fs);
        }
        for d in mine {
            if !other.entries.iter().any(|(x, _)| *x == d) {
                u.entry(d).absent = true;
            }
        }
        u
    }
}

/// Adds what `from` has that `to` lacks.
fn add<T: PartialEq + Copy>(to: &mut Vec<T>, from: &[T]) {
    for x in from {
        if !to.contains(x) {
            to.push(*x);
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (d, e) in &self.entries {
            let mut words: Vec<&str> = Vec::new();
            for p in [Protection::Verity, Protection::Signed] {
                if e.protection.contains(&p) {
                    words.push(match p {
                        Protection::Verity => "verity",
                        Protection::Signed => "signed",
                    });
                }
            }
            if e.absent {
                words.push("absent");
            }
            // A flag is named only when every image agrees on it.
            let one = |v: &[bool]| (v.len() == 1).then(|| v[0]);
            match one(&e.read_only) {
                Some(true) => words.push("read-only-on"),
                Some(false) => words.push("read-only-off"),
                None => {}
            }
            match one(&e.growfs) {
                Some(true) => words.push("growfs-on"),
                Some(false) => words.push("growfs-off"),
                None => {}
            }
            for fs in FS_ORDER {
                if e.fs.contains(&fs) {
                    words.push(fs.kernel_name());
                }
            }
            write!(f, "{}={}:", d.as_str(), words.join("+"))?;
        }
        f.write_str("=absent")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(designator: Designator, fs: FsType, read_only: bool, growfs: bool) -> Found {
        Found {
            designator,
            fs: Some(fs),
            protection: None,
            read_only,
            growfs,
        }
    }

    #[test]
    fn as_systemd_262_writes_them() {
        let bare = |fs| Dissected {
            single_file_system: true,
            partitions: vec![found(Designator::Root, fs, false, false)],
        };
        assert_eq!(
            Policy::of(&bare(FsType::Squashfs)).to_string(),
            "root=squashfs:=absent"
        );
        assert_eq!(
            Policy::of(&bare(FsType::Erofs)).to_string(),
            "root=erofs:=absent"
        );
        assert_eq!(
            Policy::of(&bare(FsType::Ext4)).to_string(),
            "root=ext4:=absent"
        );
        let gpt = Dissected {
            single_file_system: false,
            partitions: vec![found(Designator::Root, FsType::Ext4, false, true)],
        };
        assert_eq!(
            Policy::of(&gpt).to_string(),
            "root=read-only-off+growfs-on+ext4:=absent"
        );
        let usr = Dissected {
            single_file_system: false,
            partitions: vec![
                found(Designator::Usr, FsType::Erofs, true, false),
                found(Designator::Root, FsType::Ext4, false, false),
            ],
        };
        assert_eq!(
            Policy::of(&usr).to_string(),
            "root=read-only-off+growfs-off+ext4:usr=read-only-on+growfs-off+erofs:=absent"
        );
    }

    #[test]
    fn one_policy_for_several_extensions() {
        let a = Policy::of(&Dissected {
            single_file_system: true,
            partitions: vec![found(Designator::Root, FsType::Squashfs, false, false)],
        });
        let b = Policy::of(&Dissected {
            single_file_system: true,
            partitions: vec![found(Designator::Root, FsType::Erofs, false, false)],
        });
        assert_eq!(a.union(&a), a);
        assert_eq!(a.union(&b).to_string(), "root=erofs+squashfs:=absent");
    }
}
