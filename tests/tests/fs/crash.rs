//! Crash injection: `kill -9`-like aborts at every step of attach, detach and reattach, then
//! recovery. The tree must be the old or the new attachment, never a mix, with no temporary
//! or backup file left and no journal.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use portctl_tests::{snapshot, two_versions_host, Scratch};

const DIRS: [&str; 7] = [
    "/var/lib/portables/minimal_2/usr/bin",
    "/run/systemd/system.attached",
    "/run/portables",
    "/run/portctl/journal",
    "/etc/systemd/system.attached",
    "/etc/portables",
    "/var/lib/portctl/journal",
];

fn op(s: &Scratch, args: &[&str], fault_at: Option<usize>) -> (std::process::ExitStatus, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portctl-engine-op"));
    cmd.arg(s.path()).args(args);
    match fault_at {
        Some(n) => cmd.env("PORTCTL_FAULT_AT", n.to_string()),
        None => cmd.env_remove("PORTCTL_FAULT_AT"),
    };
    let out = cmd.output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A host with minimal_1 and minimal_2 (which lacks v1's extra unit), in the state `prepare`
/// leaves it.
fn fresh(prepare: &[&[&str]]) -> Scratch {
    let s = two_versions_host();
    for args in prepare {
        let (status, err) = op(&s, args, None);
        assert!(status.success(), "{args:?}: {err}");
    }
    s
}

fn crash_everywhere(prepare: &[&[&str]], args: &[&str]) {
    let s = fresh(prepare);
    let before = snapshot(s.path(), &DIRS);
    let (status, err) = op(&s, args, None);
    assert!(status.success(), "{err}");
    let after = snapshot(s.path(), &DIRS);
    assert_ne!(before, after);
    for (crashed, n) in (1..200).enumerate() {
        let s = fresh(prepare);
        let (status, err) = op(&s, args, Some(n));
        if status.success() {
            assert_eq!(snapshot(s.path(), &DIRS), after, "{args:?} without a crash");
            assert!(crashed > 3, "{args:?}: only {crashed} injection points");
            return;
        }
        assert_eq!(
            status.signal(),
            Some(SIGABRT),
            "{args:?} at {n}: {status}: {err}"
        );
        let host = s.host();
        host.recover().unwrap();
        let now = snapshot(s.path(), &DIRS);
        assert!(
            now == before || now == after,
            "{args:?}: crash at step {n} left a mixed tree:\n{now:#?}\nbefore:\n{before:#?}\nafter:\n{after:#?}"
        );
    }
    panic!("{args:?} never completed");
}

const SIGABRT: i32 = 6;

#[test]
fn attach_survives_a_crash_at_every_step() {
    crash_everywhere(&[], &["attach", "minimal_1"]);
}

#[test]
fn detach_survives_a_crash_at_every_step() {
    crash_everywhere(&[&["attach", "minimal_1"]], &["detach", "minimal_1"]);
}

#[test]
fn reattach_survives_a_crash_at_every_step() {
    crash_everywhere(&[&["attach", "minimal_1"]], &["reattach", "minimal_2"]);
}

#[test]
fn runtime_reattach_survives_a_crash_at_every_step() {
    crash_everywhere(
        &[&["attach", "minimal_1", "runtime", "copy"]],
        &[
            "reattach",
            "/var/lib/portables/minimal_2",
            "runtime",
            "copy",
        ],
    );
}

#[test]
fn mixed_reattach_of_a_directory_copy_survives_a_crash_at_every_step() {
    crash_everywhere(
        &[&["attach", "minimal_1", "persistent", "mixed"]],
        &[
            "reattach",
            "/var/lib/portables/minimal_2",
            "persistent",
            "mixed",
        ],
    );
}

/// A power cut during the barrier that makes the staged files and the commit mark durable
/// may keep the mark and lose file data: recovery sees that a staged file is not what the
/// journal says and rolls back (nothing was renamed yet) instead of installing it.
#[test]
fn a_commit_mark_without_its_staged_data_is_rolled_back() {
    let prepare: &[&[&str]] = &[&["attach", "minimal_1"]];
    let args = ["reattach", "minimal_2"];
    let before = snapshot(fresh(prepare).path(), &DIRS);
    for n in 1..200 {
        let s = fresh(prepare);
        let (status, err) = op(&s, &args, Some(n));
        assert!(!status.success(), "no crash point after the barrier");
        if !err.contains("(txn: staged)") {
            continue;
        }
        // Cut one staged unit file short, as a lost write would.
        let dir = s.join("/etc/systemd/system.attached");
        let staged = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(".#portctl-") && name.ends_with(".new") && p.is_file()
            })
            .expect("a staged unit file");
        std::fs::write(&staged, b"").unwrap();
        let recovered = s.host().recover().unwrap();
        assert_eq!(recovered.len(), 1);
        assert_eq!(
            recovered[0].outcome,
            portctl_engine::txn::Outcome::RolledBack { why: None }
        );
        assert_eq!(snapshot(s.path(), &DIRS), before);
        return;
    }
    panic!("never reached the staged point");
}

/// A rollback that cannot put a file back (an administrator replaced the attached file with a
/// directory of their own while portctld was down) is not reported as a clean rollback: the
/// journal is set aside, naming the path and where its old version is kept, and nothing of
/// the administrator's is touched.
#[test]
fn fs_a_rollback_that_cannot_restore_a_file_sets_the_journal_aside() {
    use std::os::unix::fs::MetadataExt;
    let prepare: &[&[&str]] = &[&["attach", "minimal_1"]];
    for n in 1..200 {
        let s = fresh(prepare);
        let (status, err) = op(&s, &["reattach", "minimal_2"], Some(n));
        assert!(!status.success(), "never crashed with a backup made");
        let dir = s.join("/etc/systemd/system.attached");
        let entries: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let Some(backup) = entries.iter().find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(".#portctl-") && name.ends_with(".old") && p.is_file()
        }) else {
            continue;
        };
        if !err.contains("(txn: file staged)") {
            continue;
        }
        let ino = std::fs::symlink_metadata(backup).unwrap().ino();
        let original = entries
            .iter()
            .find(|p| {
                !p.file_name().unwrap().to_string_lossy().starts_with(".#")
                    && std::fs::symlink_metadata(p).unwrap().ino() == ino
            })
            .expect("the file the backup keeps")
            .clone();
        std::fs::remove_file(&original).unwrap();
        std::fs::create_dir(&original).unwrap();
        std::fs::write(original.join("mine"), "an administrator's file").unwrap();

        let recovered = s.host().recover().unwrap();
        assert_eq!(recovered.len(), 1);
        let portctl_engine::txn::Outcome::SetAside { to, why } = &recovered[0].outcome else {
            panic!("{:?}", recovered[0].outcome);
        };
        let inside = original.strip_prefix(s.path()).unwrap();
        assert!(
            why.contains("could not be rolled back")
                && why.contains(&format!("'{}'", Path::new("/").join(inside).display()))
                && why.contains("its old version is"),
            "{why}"
        );
        assert!(s.join(to).exists());
        assert_eq!(
            std::fs::read_to_string(original.join("mine")).unwrap(),
            "an administrator's file"
        );
        assert!(backup.exists(), "the old version is kept");
        return;
    }
    panic!("never reached a staged file with a backup");
}
