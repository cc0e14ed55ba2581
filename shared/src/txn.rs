//! Crash-safe changes to the host's unit directories.
//!
//! A transaction first writes an intent journal (JSON, under `/var/lib/portctl/journal` or
//! `/run/portctl/journal`) that names every step, every temporary and backup name and every
//! directory it may create. Then it *stages*: it creates the directories, writes every new file
//! under its temporary name next to its target, and hard-links every file it will replace or
//! remove to its backup name next to it. One barrier (`syncfs()` of each file system touched)
//! makes all of that durable at once; then the journal is marked `commit` (and synced), and
//! the transaction *commits*: renames, removals and symlinks, in an order where a unit never
//! exists without its drop-ins, followed by a second barrier before the journal goes. A
//! failure while committing restores the backups (byte for byte: they are the old inodes); a
//! crash is repaired by [`Host::recover`]: rolled back when it happened before the commit
//! mark, rolled forward (everything is staged and durable) after it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::fault;
use crate::root::{Content, NodeKind};
use crate::Host;

pub const PERSISTENT_JOURNAL_DIR: &str = "/var/lib/portctl/journal";
pub const RUNTIME_JOURNAL_DIR: &str = "/run/portctl/journal";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Put the staged `temp` at `path`; `backup` holds the node it replaces, if any.
    Place {
        path: PathBuf,
        temp: String,
        backup: Option<String>,
        /// Set once `temp` is completely written (and recorded in the journal).
        #[serde(default)]
        staged: bool,
        /// Whether a directory tree may be replaced here (the image copy of
        /// `--copy=mixed`); anywhere else, a directory in the way is an error.
        #[serde(default)]
        tree: bool,
        /// What the staged node must be, so that recovery can tell a completely staged
        /// transaction from one whose barrier a power cut interrupted.
        #[serde(default)]
        check: Option<Check>,
    },
    /// Remove `path`; `backup` holds it until the end.
    Remove {
        path: PathBuf,
        backup: Option<String>,
    },
    /// Remove the directory `path` if it is empty.
    Rmdir { path: PathBuf },
}

/// The expected content of a staged node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// A regular file of this length and 64-bit FNV-1a hash.
    File { len: u64, fnv: u64 },
    /// A symbolic link to this target.
    Symlink(PathBuf),
}

impl Check {
    fn of(content: &Content) -> Option<Self> {
        match content {
            Content::File { data, .. } => Some(Self::File {
                len: data.len() as u64,
                fnv: fnv1a(data),
            }),
            Content::Symlink(target) => Some(Self::Symlink(target.clone())),
            Content::CopyOf(_) => None,
        }
    }

    /// Whether the node at `path` is what was staged.
    fn matches(&self, host: &Host, path: &Path) -> bool {
        match self {
            Self::File { len, fnv } => {
                matches!(host.fs().read_file(path, *len + 1), Ok(Some(d)) if d.len() as u64 == *len && fnv1a(&d) == *fnv)
            }
            Self::Symlink(target) => host.fs().read_link(path).is_ok_and(|t| t == *target),
        }
    }
}

/// 64-bit FNV-1a: a stable checksum (the journal may be read by another build).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    Staging,
    Commit,
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    op: String,
    phase: Phase,
    /// Directories the transaction created, removed again on rollback.
    #[serde(default)]
    created: Vec<PathBuf>,
    steps: Vec<Step>,
}

/// What [`Txn::commit`] did, step by step (same order as the steps).
#[derive(Debug, Default)]
pub struct Done {
    /// For each step: whether it changed something (a directory really removed, a file really
    /// there to remove).
    pub effective: Vec<bool>,
    /// The first error of an `Rmdir` that failed for another reason than "missing" (e.g. a
    /// drop-in directory that holds files of the user), with its path.
    pub rmdir_error: Option<(PathBuf, std::io::Error)>,
}

pub struct Txn<'h> {
    host: &'h Host,
    journal: PathBuf,
    id: String,
    op: String,
    created: Vec<PathBuf>,
    steps: Vec<Step>,
    /// Staged contents, by step index.
    contents: Vec<Option<Content>>,
    /// Whether replaced and removed files are backed up (to restore them on failure).
    backups: bool,
}

/// Where the backup of `path` is kept: next to it, or next to its drop-in directory for files
/// in a `*.d` directory (so that the directory itself can be removed).
fn backup_dir(path: &Path) -> &Path {
    let dir = parent(path);
    if dir.extension().is_some_and(|e| e == "d") {
        parent(dir)
    } else {
        dir
    }
}

fn temp_name(id: &str, n: usize, what: &str) -> String {
    format!(".#portctl-{id}-{n}.{what}")
}

impl<'h> Txn<'h> {
    /// A transaction for `op`. With `backups`, every file it replaces or removes is kept until
    /// the commit is complete, and restored if it fails.
    pub fn new(host: &'h Host, op: &str, runtime: bool, backups: bool) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let dir = if runtime {
            RUNTIME_JOURNAL_DIR
        } else {
            PERSISTENT_JOURNAL_DIR
        };
        Self {
            host,
            journal: Path::new(dir).join(format!("{id}.json")),
            id,
            op: op.to_string(),
            created: Vec::new(),
            steps: Vec::new(),
            contents: Vec::new(),
            backups,
        }
    }

    fn push(&mut self, step: Step, content: Option<Content>) -> usize {
        self.steps.push(step);
        self.contents.push(content);
        self.steps.len() - 1
    }

    /// Plans a new file or symlink at `path`. Returns the step index.
    pub fn place(&mut self, path: PathBuf, content: Content) -> usize {
        let n = self.steps.len();
        let temp = temp_name(&self.id, n, "new");
        let check = Check::of(&content);
        self.push(
            Step::Place {
                path,
                temp,
                backup: None,
                staged: false,
                tree: false,
                check,
            },
            Some(content),
        )
    }

    /// Plans a new file or directory tree at `path` that may replace a tree.
    pub fn place_tree(&mut self, path: PathBuf, content: Content) -> usize {
        let n = self.place(path, content);
        if let Step::Place { tree, .. } = &mut self.steps[n] {
            *tree = true;
        }
        n
    }

    /// Plans the removal of `path`.
    pub fn remove(&mut self, path: PathBuf) -> usize {
        self.push(Step::Remove { path, backup: None }, None)
    }

    /// Plans the removal of directory `path` if it ends up empty.
    pub fn rmdir(&mut self, path: PathBuf) -> usize {
        self.push(Step::Rmdir { path }, None)
    }

    /// Writes the journal atomically (a rename), without syncing it: the barriers do.
    /// Writes the journal atomically (a rename); with `durable`, synced with its directory.
    /// The staging journal is synced later, together with the staged files.
    fn write_journal(&self, phase: Phase, durable: bool) -> Result<()> {
        let fs = self.host.fs();
        let dir = self.journal.parent().expect("journal dir");
        fs.mkdir_p(dir, 0o700)
            .context("Failed to create journal directory", dir)?;
        let j = Journal {
            op: self.op.clone(),
            phase,
            created: self.created.clone(),
            steps: self.steps.clone(),
        };
        let data = serde_json::to_vec(&j).expect("journal serializes");
        let temp = format!(".#{}.tmp", self.id);
        let content = Content::File { data, mode: 0o600 };
        if durable {
            fs.stage(&self.journal, &temp, &content)
        } else {
            fs.stage_unsynced(&self.journal, &temp, &content)
        }
        .and_then(|()| fs.commit(&self.journal, &temp))
        .context("Failed to write journal", &self.journal)?;
        if durable {
            flush_dirs(self.host, &[parent(&self.journal)])?;
        }
        Ok(())
    }

    /// The directories whose entries the transaction changes: those of its steps, and the
    /// parents of the directories it created.
    fn touched_dirs(&self) -> Vec<&Path> {
        let mut dirs: Vec<&Path> = self.steps.iter().map(step_dir).collect();
        dirs.extend(self.created.iter().map(|d| parent(d)));
        dirs.push(parent(&self.journal));
        dirs
    }

    /// Creates `dirs` (recording the ones it created), stages every new file and backs up every
    /// file to be replaced or removed. Nothing visible changes but new empty directories.
    /// Returns the directories that were created.
    pub fn stage(&mut self, dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
        let fs = self.host.fs();
        // Everything the transaction may leave behind is named in the journal before it
        // exists: the directories that are missing now, the temporary and the backup names.
        for d in dirs {
            for a in d.ancestors().collect::<Vec<_>>().into_iter().rev() {
                if a != Path::new("/")
                    && !self.created.iter().any(|c| c == a)
                    && matches!(fs.lstat(a), Ok(None))
                {
                    self.created.push(a.to_path_buf());
                }
            }
        }
        if self.backups {
            for (i, step) in self.steps.iter_mut().enumerate() {
                if let Step::Place { backup, .. } | Step::Remove { backup, .. } = step {
                    *backup = Some(temp_name(&self.id, i, "old"));
                }
            }
        }
        let nothing_to_stage = self.created.is_empty()
            && !self.steps.iter().any(|s| {
                matches!(
                    s,
                    Step::Place { .. }
                        | Step::Remove {
                            backup: Some(_),
                            ..
                        }
                )
            });
        if nothing_to_stage {
            // Removals only: the commit mark, durable, is all a crash needs to find.
            self.write_journal(Phase::Commit, true)?;
            fault::point("txn: commit journal written");
            return Ok(Vec::new());
        }
        self.write_journal(Phase::Staging, false)?;
        fault::point("txn: journal written");
        let mut created = Vec::new();
        for d in dirs {
            if let Some(parent) = d.parent() {
                let made = fs
                    .mkdir_p(parent, 0o755)
                    .context("Failed to create directory", parent);
                if let Err(e) = made {
                    return Err(self.rollback_after(e));
                }
            }
            match fs.mkdir(d, 0o755).context("Failed to create directory", d) {
                Ok(true) => created.push(d.clone()),
                Ok(false) => {}
                Err(e) => return Err(self.rollback_after(e)),
            }
        }
        // What the transaction wrote is made durable (each staged file as it is written, then
        // the directories that name them and the backups) before the commit mark is, so that
        // the mark never names what a power cut lost. Nothing else of the file system is
        // flushed: another process's dirty data costs an attach nothing. (The checks of the
        // staged nodes still tell recovery if a file system reordered that.)
        let staged = self
            .stage_files()
            .and_then(|()| self.flush_files())
            .and_then(|()| flush_dirs(self.host, &self.touched_dirs()))
            .and_then(|()| self.write_journal(Phase::Commit, true));
        if let Err(e) = staged {
            return Err(self.rollback_after(e));
        }
        fault::point("txn: staged");
        fault::point("txn: commit journal written");
        Ok(created)
    }

    /// `fsync()` of the staging journal and of every staged regular file, after all were
    /// written (the first one commits the file system's journal for them all).
    fn flush_files(&self) -> Result<()> {
        self.host
            .fs()
            .sync_file(&self.journal)
            .context("Failed to sync", &self.journal)?;
        for (step, content) in self.steps.iter().zip(&self.contents) {
            if let (Step::Place { path, temp, .. }, Some(Content::File { .. })) = (step, content) {
                let staged = parent(path).join(temp);
                self.host
                    .fs()
                    .sync_file(&staged)
                    .context("Failed to sync", staged)?;
            }
        }
        Ok(())
    }

    fn stage_files(&mut self) -> Result<()> {
        let fs = self.host.fs();
        for i in 0..self.steps.len() {
            let path = match &self.steps[i] {
                Step::Place { path, .. } | Step::Remove { path, .. } => path.clone(),
                Step::Rmdir { .. } => continue,
            };
            let existing = fs.lstat(&path).context("Failed to look at", &path)?;
            let may_replace_tree = matches!(
                self.steps[i],
                Step::Place { tree: true, .. } | Step::Remove { .. }
            );
            if existing
                .as_ref()
                .is_some_and(|st| NodeKind::of(st) == NodeKind::Directory)
                && !may_replace_tree
            {
                return Err(Error::Io {
                    what: "Refusing to replace a directory",
                    path: path.clone(),
                    source: std::io::Error::from_raw_os_error(libc::EISDIR),
                });
            }
            if let (
                Some(_),
                Step::Place {
                    backup: Some(bak), ..
                }
                | Step::Remove {
                    backup: Some(bak), ..
                },
            ) = (&existing, &self.steps[i])
            {
                fs.keep_aside(&path, backup_dir(&path), bak)
                    .context("Failed to back up", &path)?;
            }
            if let (Step::Place { path, temp, .. }, Some(content)) =
                (&self.steps[i], &self.contents[i])
            {
                fs.stage_unsynced(path, temp, content)
                    .context("Failed to write", path)?;
                if let Step::Place { staged, .. } = &mut self.steps[i] {
                    *staged = true;
                }
            }
            fault::point("txn: file staged");
        }
        Ok(())
    }

    /// Applies the staged steps in order. On an error, everything is restored as it was.
    pub fn commit(mut self) -> Result<Done> {
        // No barrier after the renames: the journal goes after them, and a journal that a
        // power cut kept makes recovery apply the (idempotent) steps again.
        match apply(self.host, &self.steps) {
            Ok(done) => {
                cleanup(self.host, &self.steps);
                let _ = self.host.fs().unlink(&self.journal);
                remove_empty_journal_dirs(self.host);
                self.steps.clear();
                self.created.clear();
                Ok(done)
            }
            Err(e) => Err(self.rollback_after(e)),
        }
    }

    /// Undoes the transaction; returns what could not be undone.
    fn rollback(&mut self) -> Vec<String> {
        let left = rollback(self.host, &self.steps, &self.created);
        let _ = self.host.fs().unlink(&self.journal);
        remove_empty_journal_dirs(self.host);
        self.steps.clear();
        self.created.clear();
        left
    }

    /// Undoes the transaction after `cause`: the error to report, naming whatever could not
    /// be undone.
    fn rollback_after(&mut self, cause: Error) -> Error {
        let left = self.rollback();
        if left.is_empty() {
            cause
        } else {
            Error::RollbackFailed {
                cause: Box::new(cause),
                left,
            }
        }
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        // A transaction dropped before its commit (an early return) leaves nothing behind.
        if !self.steps.is_empty() || !self.created.is_empty() {
            for left in self.rollback() {
                tracing::error!("an abandoned operation could not be undone: {left}");
            }
        }
    }
}

/// The journal directories exist only while an operation runs: detach leaves no trace.
fn remove_empty_journal_dirs(host: &Host) {
    for dir in [PERSISTENT_JOURNAL_DIR, RUNTIME_JOURNAL_DIR] {
        let dir = Path::new(dir);
        if host.fs().rmdir(dir).unwrap_or(false) {
            let _ = host.fs().rmdir(parent(dir));
        }
    }
}

/// The directory a step changes.
fn step_dir(step: &Step) -> &Path {
    match step {
        Step::Place { path, .. } | Step::Remove { path, .. } | Step::Rmdir { path } => parent(path),
    }
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("/"))
}

/// Runs the steps forward. Idempotent, so that recovery can run it again after a crash.
fn apply(host: &Host, steps: &[Step]) -> Result<Done> {
    let fs = host.fs();
    let mut done = Done::default();
    for step in steps {
        let effective = match step {
            Step::Place { path, temp, .. } => {
                match fs.commit(path, temp) {
                    Ok(()) => true,
                    // Already renamed before a crash.
                    Err(e)
                        if e.raw_os_error() == Some(libc::ENOENT)
                            && matches!(fs.lstat(path), Ok(Some(_))) =>
                    {
                        true
                    }
                    Err(e) => return Err(e).context("Failed to install", path),
                }
            }
            Step::Remove { path, .. } => fs.remove_any(path).context("Failed to remove", path)?,
            Step::Rmdir { path } => match fs.rmdir(path) {
                Ok(removed) => removed,
                Err(e) => {
                    if done.rmdir_error.is_none() {
                        done.rmdir_error = Some((path.clone(), e));
                    }
                    false
                }
            },
        };
        done.effective.push(effective);
        fault::point("txn: step committed");
    }
    Ok(done)
}

/// `fsync()` of each of `dirs` once, so that their entries are durable (missing directories
/// are skipped).
fn flush_dirs(host: &Host, dirs: &[&Path]) -> Result<()> {
    let mut done: Vec<&Path> = Vec::new();
    for d in dirs {
        if done.contains(d) {
            continue;
        }
        done.push(d);
        match host.fs().sync_dir(d) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {}
            Err(e) => return Err(e).context("Failed to sync", *d),
        }
    }
    Ok(())
}

/// Whether every staged node still waiting to be put in place is what was staged.
fn staged_completely(host: &Host, steps: &[Step]) -> bool {
    steps.iter().all(|step| match step {
        Step::Place {
            path,
            temp,
            check: Some(check),
            ..
        } => {
            let staged = parent(path).join(temp);
            match host.fs().lstat(&staged) {
                Ok(Some(_)) => check.matches(host, &staged),
                _ => true,
            }
        }
        _ => true,
    })
}

/// Removes the backups of a committed transaction.
fn cleanup(host: &Host, steps: &[Step]) {
    for step in steps {
        if let Step::Place {
            path,
            backup: Some(b),
            ..
        }
        | Step::Remove {
            path,
            backup: Some(b),
        } = step
        {
            let _ = host.fs().remove_any(&backup_dir(path).join(b));
        }
    }
}

/// Puts the backup `b` of `path` back: renamed over `path` when `path` was replaced or removed,
/// simply dropped when `path` is still the very inode it links to. `Ok(false)` when there is
/// no backup (nothing was at `path` before).
fn restore(host: &Host, path: &Path, b: &str) -> std::io::Result<bool> {
    let fs = host.fs();
    let dir = backup_dir(path);
    let Ok(Some(bst)) = fs.lstat(&dir.join(b)) else {
        return Ok(false);
    };
    let same = matches!(fs.lstat(path), Ok(Some(st)) if (st.st_dev, st.st_ino) == (bst.st_dev, bst.st_ino));
    if same {
        // The file itself is still in place; the backup is only a second name.
        let _ = fs.unlink_name(&dir.join(b), b);
    } else {
        if let Some(p) = path.parent() {
            fs.mkdir_p(p, 0o755)?;
        }
        // A directory cannot be renamed over a new one: the new one goes first.
        if NodeKind::of(&bst) == NodeKind::Directory {
            fs.remove_any(path)?;
        }
        fs.rename_from(dir, b, path)?;
    }
    Ok(true)
}

/// Undoes whatever part of the steps happened, in reverse order. Steps that never started
/// are left alone: nothing that was not ours is ever removed. Returns what could not be
/// undone, each with the reason (empty when everything is as it was).
fn rollback(host: &Host, steps: &[Step], created: &[PathBuf]) -> Vec<String> {
    let fs = host.fs();
    let mut left = Vec::new();
    let mut failed = |what: String, e: std::io::Error| left.push(format!("{what}: {e}"));
    for step in steps.iter().rev() {
        match step {
            Step::Place {
                path,
                temp,
                backup,
                staged,
                ..
            } => {
                let temp_path = parent(path).join(temp);
                let temp_was_there = match fs.remove_any(&temp_path) {
                    Ok(was) => was,
                    Err(e) => {
                        failed(format!("'{}'", temp_path.display()), e);
                        true
                    }
                };
                let committed = *staged && !temp_was_there;
                let restored = match backup.as_ref().map(|b| (b, restore(host, path, b))) {
                    None => false,
                    Some((_, Ok(restored))) => restored,
                    Some((b, Err(e))) => {
                        let kept = backup_dir(path).join(b);
                        failed(
                            format!(
                                "'{}' (its old version is '{}')",
                                path.display(),
                                kept.display()
                            ),
                            e,
                        );
                        true
                    }
                };
                if committed && !restored {
                    // A new file of ours where there was none.
                    if let Err(e) = fs.remove_any(path) {
                        failed(format!("'{}'", path.display()), e);
                    }
                }
            }
            Step::Remove {
                path,
                backup: Some(b),
            } => {
                if let Err(e) = restore(host, path, b) {
                    let kept = backup_dir(path).join(b);
                    failed(
                        format!(
                            "'{}' (its old version is '{}')",
                            path.display(),
                            kept.display()
                        ),
                        e,
                    );
                }
            }
            Step::Remove { backup: None, .. } | Step::Rmdir { .. } => {}
        }
    }
    for dir in created.iter().rev() {
        // A directory someone else filled meanwhile stays, and is no failure of ours.
        match fs.rmdir(dir) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
            Err(e) => failed(format!("'{}'", dir.display()), e),
        }
    }
    left
}

/// The outcome of a rollback in recovery: rolled back, or (when something could not be
/// undone) a reason to set the journal aside.
fn rolled_back(failed: Vec<String>) -> std::result::Result<Outcome, String> {
    if failed.is_empty() {
        Ok(Outcome::RolledBack { why: None })
    } else {
        Err(format!(
            "could not be rolled back; left: {}",
            failed.join(", ")
        ))
    }
}

/// What recovery did with one interrupted transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovered {
    pub journal: PathBuf,
    pub op: String,
    pub outcome: Outcome,
}

/// How an interrupted transaction ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Undone: it had not reached its commit mark, its staged files were incomplete, or it
    /// could not be completed (`why`) and nothing of it was left.
    RolledBack { why: Option<String> },
    /// Done: every step after the commit mark was applied.
    Completed,
    /// Neither could be done: the journal was moved to `to` (in [`SET_ASIDE_DIRS`]), and the
    /// files it names that are still there stay where they are.
    SetAside { to: PathBuf, why: String },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RolledBack { why: None } => f.write_str("rolled back"),
            Self::RolledBack { why: Some(w) } => write!(f, "rolled back ({w})"),
            Self::Completed => f.write_str("completed"),
            Self::SetAside { to, why } => write!(f, "set aside as {} ({why})", to.display()),
        }
    }
}

/// Where journals that recovery could neither complete nor roll back are kept, persistent
/// and runtime.
pub const SET_ASIDE_DIRS: [&str; 2] = ["/var/lib/portctl/set-aside", "/run/portctl/set-aside"];

/// Whether any temporary or backup file of the steps is still there.
fn leftovers(host: &Host, steps: &[Step]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for step in steps {
        let (path, names): (&Path, Vec<(&Path, &str)>) = match step {
            Step::Place {
                path, temp, backup, ..
            } => {
                let mut n = vec![(parent(path), temp.as_str())];
                if let Some(b) = backup {
                    n.push((backup_dir(path), b.as_str()));
                }
                (path, n)
            }
            Step::Remove {
                path,
                backup: Some(b),
            } => (path, vec![(backup_dir(path), b.as_str())]),
            _ => continue,
        };
        let _ = path;
        for (dir, name) in names {
            let p = dir.join(name);
            if matches!(host.fs().lstat(&p), Ok(Some(_))) {
                out.push(p);
            }
        }
    }
    out
}

impl Host {
    /// Finishes or rolls back every transaction interrupted by a crash (run at start-up).
    /// Never fails on a journal: one that can be neither completed nor rolled back is set
    /// aside ([`SET_ASIDE_DIRS`]) and reported, so that the daemon serves whatever happened.
    /// The error is for a journal directory that cannot be read at all.
    pub fn recover(&self) -> Result<Vec<Recovered>> {
        let mut out = Vec::new();
        for (dir, aside) in [
            (RUNTIME_JOURNAL_DIR, SET_ASIDE_DIRS[1]),
            (PERSISTENT_JOURNAL_DIR, SET_ASIDE_DIRS[0]),
        ] {
            let Some(entries) = self
                .fs()
                .read_dir(Path::new(dir))
                .context("Failed to list journal directory", dir)?
            else {
                continue;
            };
            for e in entries {
                let name = e.name.to_string_lossy().into_owned();
                let path = Path::new(dir).join(&name);
                if !name.ends_with(".json") || name.starts_with(".#") {
                    // A journal that was being written when the crash came: its transaction
                    // had not staged anything yet.
                    let _ = self.fs().unlink(&path);
                    continue;
                }
                let (op, outcome) = self.recover_one(&path);
                let outcome = match outcome {
                    Ok(o) => {
                        let _ = self.fs().unlink(&path);
                        o
                    }
                    Err(why) => self.set_aside(&path, Path::new(aside), &name, why),
                };
                match &outcome {
                    Outcome::SetAside { .. } => {
                        tracing::error!(journal = %path.display(), op = %op, "interrupted operation: {outcome}")
                    }
                    _ => {
                        tracing::info!(journal = %path.display(), op = %op, "interrupted operation {outcome}")
                    }
                }
                out.push(Recovered {
                    journal: path,
                    op,
                    outcome,
                });
            }
        }
        remove_empty_journal_dirs(self);
        Ok(out)
    }

    /// Recovers the transaction of one journal: its operation, and how it ended or why it
    /// cannot end.
    fn recover_one(&self, path: &Path) -> (String, std::result::Result<Outcome, String>) {
        let data = match self.fs().read_file(path, 16 << 20) {
            Ok(Some(d)) => d,
            Ok(None) => return (String::new(), Ok(Outcome::RolledBack { why: None })),
            Err(e) => return (String::new(), Err(format!("unreadable: {e}"))),
        };
        let journal: Journal = match serde_json::from_slice(&data) {
            Ok(j) => j,
            Err(e) => return (String::new(), Err(format!("unreadable: {e}"))),
        };
        let op = journal.op.clone();
        let dir = parent(path);
        let outcome = match journal.phase {
            Phase::Staging => rolled_back(rollback(self, &journal.steps, &journal.created)),
            Phase::Commit if !staged_completely(self, &journal.steps) => {
                // The barrier after the commit mark was cut short: nothing was renamed yet.
                let mut steps = journal.steps.clone();
                for s in &mut steps {
                    if let Step::Place { staged, .. } = s {
                        *staged = false;
                    }
                }
                rolled_back(rollback(self, &steps, &journal.created))
            }
            Phase::Commit => {
                let done = apply(self, &journal.steps).and_then(|_| {
                    let mut dirs: Vec<&Path> = journal.steps.iter().map(step_dir).collect();
                    dirs.push(dir);
                    flush_dirs(self, &dirs)
                });
                match done {
                    Ok(()) => {
                        cleanup(self, &journal.steps);
                        Ok(Outcome::Completed)
                    }
                    // Something it needs went away (an administrator removed a half-made
                    // drop-in directory, say): undo what can be undone.
                    Err(e) => {
                        let failed = rollback(self, &journal.steps, &journal.created);
                        let left = leftovers(self, &journal.steps);
                        if left.is_empty() && failed.is_empty() {
                            Ok(Outcome::RolledBack {
                                why: Some(format!("could not be completed: {e}")),
                            })
                        } else {
                            let left: Vec<String> = failed
                                .into_iter()
                                .chain(left.iter().map(|p| p.display().to_string()))
                                .collect();
                            Err(format!(
                                "could not be completed ({e}) nor rolled back; left: {}",
                                left.join(", ")
                            ))
                        }
                    }
                }
            }
        };
        (op, outcome)
    }

    /// Moves a journal that cannot be recovered into `aside`.
    fn set_aside(&self, journal: &Path, aside: &Path, name: &str, why: String) -> Outcome {
        let to = aside.join(name);
        let moved = self
            .fs()
            .mkdir_p(aside, 0o700)
            .and_then(|_| self.fs().rename_from(parent(journal), name, &to));
        match moved {
            Ok(()) => Outcome::SetAside { to, why },
            Err(e) => Outcome::SetAside {
                to: journal.to_path_buf(),
                why: format!("{why}; cannot move the journal: {e}"),
            },
        }
    }

    /// The journals recovery set aside, for the administrator to look at.
    pub fn set_aside_journals(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in SET_ASIDE_DIRS {
            if let Ok(Some(entries)) = self.fs().read_dir(Path::new(dir)) {
                out.extend(entries.iter().map(|e| Path::new(dir).join(&e.name)));
            }
        }
        out
    }
}
