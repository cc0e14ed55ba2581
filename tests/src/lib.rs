//! Helpers for portctl's integration tests: throw-away host roots, image trees, and the sample
//! image built from source by `tests/fixtures/mkimage`.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use portctl_engine::Host;

/// The repository's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A temporary directory on a disk file system (under /var/tmp), so that inode flags, birth
/// times and xattrs work as on a real host. Removed on drop, immutable flags cleared first.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("portctl-test.")
            .tempdir_in("/var/tmp")
            .expect("create scratch directory");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `path` below the scratch directory (`/a/b` and `a/b` alike).
    pub fn join(&self, path: impl AsRef<Path>) -> PathBuf {
        let p = path.as_ref();
        self.dir.path().join(p.strip_prefix("/").unwrap_or(p))
    }

    /// A [`Host`] rooted here.
    pub fn host(&self) -> Host {
        Host::new(self.path()).expect("open test host root")
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Directories marked immutable by a test would make the removal fail.
        let _ = Command::new("chattr")
            .args(["-R", "-i"])
            .arg(self.dir.path())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// One thing to put in a tree.
pub enum Node<'a> {
    File(&'a str, &'a str),
    Exec(&'a str, &'a [u8]),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

/// Creates the nodes below `root` (paths are relative to it, leading `/` allowed).
pub fn make_tree(root: &Path, nodes: &[Node<'_>]) {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    for n in nodes {
        match n {
            Node::File(p, content) => {
                let p = at(p);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, content).unwrap();
            }
            Node::Exec(p, content) => {
                let p = at(p);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, content).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
            }
            Node::Dir(p) => fs::create_dir_all(at(p)).unwrap(),
            Node::Link(p, target) => {
                let p = at(p);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                symlink(target, &p).unwrap();
            }
        }
    }
}

/// Runs `tests/fixtures/mkimage` with `args` and returns its output path.
pub fn mkimage(out: &Path, args: &[&str]) -> PathBuf {
    let status = Command::new(fixtures().join("mkimage"))
        .args(args)
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run tests/fixtures/mkimage");
    assert!(
        status.success(),
        "mkimage {args:?} {} failed",
        out.display()
    );
    out.to_path_buf()
}

/// Sets or clears the immutable flag of a directory (chattr ±i).
pub fn set_immutable(path: &Path, on: bool) {
    let status = Command::new("chattr")
        .arg(if on { "+i" } else { "-i" })
        .arg(path)
        .status()
        .expect("run chattr");
    assert!(status.success(), "chattr on {}", path.display());
}
