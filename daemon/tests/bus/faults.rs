//! Crashes and faults through portctld: the daemon killed at every step of
//! attach, detach and reattach and started again; a full and a read-only /etc; PID 1 leaving
//! the bus in the middle of a call. The state afterwards is the old or the new one, whole.
//!
//! The crash points are the engine's fault points (feature `fault-injection`, on in test
//! builds): `PORTCTL_FAULT_AT=N` aborts the daemon at the N-th one.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use portctl_dbus::proxy::ManagerProxy;
use portctl_tests::{
    snapshot, two_versions_host, Daemon, PrivateBus, Scratch, BUSCTL_ATTACH_MINIMAL_1,
};

const STATE: [&str; 6] = [
    "/etc/systemd/system.attached",
    "/etc/portables",
    "/run/systemd/system.attached",
    "/run/portables",
    "/var/lib/portctl",
    "/run/portctl",
];

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_portctld"))
}

async fn manager(bus: &PrivateBus) -> (zbus::Connection, ManagerProxy<'static>) {
    let c = bus.connect().await;
    let m = ManagerProxy::new(&c).await.unwrap();
    (c, m)
}

fn host() -> Scratch {
    two_versions_host()
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Attach,
    Detach,
    Reattach,
}

async fn run(m: &ManagerProxy<'_>, op: Op) -> zbus::Result<()> {
    match op {
        Op::Attach => m
            .attach_image("minimal_1", &["minimal"], "default", false, "")
            .await
            .map(drop),
        Op::Detach => m.detach_image("minimal_1", false).await.map(drop),
        Op::Reattach => m
            .reattach_image("minimal_2", &["minimal"], "default", false, "")
            .await
            .map(drop),
    }
}

async fn crash_everywhere(op: Op) {
    let prepared = |s: &Scratch| {
        if !matches!(op, Op::Attach) {
            // Attached by a daemon that is then stopped.
            let bus = PrivateBus::start();
            let d = Daemon::start(bin(), &bus, s.path(), &[]);
            let out = Command::new("busctl")
                .arg(format!("--address={}", bus.address()))
                .args(BUSCTL_ATTACH_MINIMAL_1)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(d.terminate().success());
        }
    };
    // The tree before and after the operation, without a crash.
    let s = host();
    prepared(&s);
    let before = snapshot(s.path(), &STATE);
    let bus = PrivateBus::start();
    let d = Daemon::start(bin(), &bus, s.path(), &[]);
    let (_c, m) = manager(&bus).await;
    run(&m, op).await.unwrap();
    let after = snapshot(s.path(), &STATE);
    drop(d);
    assert_ne!(before, after);
    for n in 1..200 {
        let s = host();
        prepared(&s);
        let bus = PrivateBus::start();
        let d = Daemon::start_with_env(
            bin(),
            &bus,
            s.path(),
            &[],
            &[("PORTCTL_FAULT_AT", &n.to_string())],
        );
        let (_c, m) = manager(&bus).await;
        let result = tokio::time::timeout(Duration::from_secs(30), run(&m, op))
            .await
            .expect("the call neither returned nor failed");
        if result.is_ok() {
            assert_eq!(snapshot(s.path(), &STATE), after, "{op:?} without a crash");
            assert!(n > 3, "{op:?}: only {n} crash points");
            return;
        }
        let status = d.wait();
        assert_eq!(status.signal(), Some(6), "{op:?} at {n}: {status}");
        // Started again (as D-Bus activation would), it recovers before it serves.
        let d = Daemon::start(bin(), &bus, s.path(), &[]);
        let now = snapshot(s.path(), &STATE);
        assert!(
            now == before || now == after,
            "{op:?}: crash at step {n} left a mixed tree:\n{now:#?}\nbefore:\n{before:#?}\nafter:\n{after:#?}"
        );
        let (_c, m) = manager(&bus).await;
        assert!(m.list_images().await.is_ok());
        drop(d);
    }
    panic!("{op:?} never completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_killed_at_every_step_of_attach() {
    crash_everywhere(Op::Attach).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_killed_at_every_step_of_detach() {
    crash_everywhere(Op::Detach).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_killed_at_every_step_of_reattach() {
    crash_everywhere(Op::Reattach).await;
}

/// A small file system over the scratch host's /etc/systemd: mounted by the test, unmounted
/// on drop.
struct Mounted(std::path::PathBuf);

impl Mounted {
    fn tmpfs(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "portctl-test",
            ])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs on {}", at.display());
        Self(at.to_path_buf())
    }

    fn read_only(&self, ro: bool) {
        let opt = if ro { "remount,ro" } else { "remount,rw" };
        assert!(Command::new("mount")
            .args(["-o", opt])
            .arg(&self.0)
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A full /etc/systemd and a read-only one: a clear error, and the previous attachment (of
/// minimal_1) stays as it was when minimal_2 is reattached over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_or_read_only_etc() {
    let s = host();
    let etc_systemd = s.join("/etc/systemd");
    let _fs = Mounted::tmpfs(&etc_systemd, "64k");
    let bus = PrivateBus::start();
    let _d = Daemon::start(bin(), &bus, s.path(), &[]);
    let (_c, m) = manager(&bus).await;
    m.attach_image("minimal_1", &["minimal"], "default", false, "")
        .await
        .unwrap();
    let before = snapshot(s.path(), &STATE);
    // Fill the file system.
    let filler = etc_systemd.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 64 * 1024]);
    let err = m
        .reattach_image("minimal_2", &["minimal"], "default", false, "")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(
        snapshot(s.path(), &STATE),
        before,
        "a full disk changed the attachment"
    );
    std::fs::remove_file(&filler).unwrap();
    // Read-only.
    _fs.read_only(true);
    let err = m
        .reattach_image("minimal_2", &["minimal"], "default", false, "")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Read-only file system"), "{err}");
    let err = m
        .detach_image("minimal_1", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(
        snapshot(s.path(), &STATE),
        before,
        "a read-only /etc changed the attachment"
    );
    _fs.read_only(false);
    m.reattach_image("minimal_2", &["minimal"], "default", false, "")
        .await
        .unwrap();
    assert_eq!(m.get_image_state("minimal_2").await.unwrap(), "attached");
}

/// A stand-in for PID 1 that answers `GetUnit` slowly and leaves the bus before it answers.
struct VanishingSystemd(std::sync::Arc<tokio::sync::Notify>);

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl VanishingSystemd {
    async fn get_unit(&self, _name: String) -> zbus::fdo::Result<zbus::OwnedObjectPath> {
        self.0.notify_one();
        tokio::time::sleep(Duration::from_secs(5)).await;
        Err(zbus::fdo::Error::Failed("too late".into()))
    }
}

/// PID 1 leaves the bus while portctld waits for its answer: the call fails with an error
/// that says so, nothing is written, and the next call works (no service manager now).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pid1_leaves_the_bus_mid_call() {
    let s = host();
    let bus = PrivateBus::start();
    let _d = Daemon::start(bin(), &bus, s.path(), &[]);
    let asked = std::sync::Arc::new(tokio::sync::Notify::new());
    let systemd = zbus::connection::Builder::address(bus.address().as_str())
        .name("org.freedesktop.systemd1")
        .serve_at("/org/freedesktop/systemd1", VanishingSystemd(asked.clone()))
        .build()
        .await
        .unwrap();
    let (_c, m) = manager(&bus).await;
    let before = snapshot(s.path(), &STATE);
    let attach = tokio::spawn(async move {
        m.attach_image("minimal_1", &["minimal"], "default", false, "")
            .await
            .map(drop)
    });
    // PID 1 leaves once portctld has asked it.
    tokio::time::timeout(Duration::from_secs(30), asked.notified())
        .await
        .expect("portctld never asked PID 1");
    systemd.close().await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), attach)
        .await
        .expect("attach hangs after PID 1 left")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("service manager"), "{err}");
    assert_eq!(snapshot(s.path(), &STATE), before);
    let (_c, m) = manager(&bus).await;
    m.attach_image("minimal_1", &["minimal"], "default", false, "")
        .await
        .unwrap();
    assert_eq!(m.get_image_state("minimal_1").await.unwrap(), "attached");
}

/// Killed right after an attach's commit mark, then an administrator removes the half-made
/// drop-in directory: recovery cannot complete the attach, rolls back what is left, and the
/// daemon serves (it used to exit at every start until the journal was deleted by hand).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_a_crash_after_the_commit_mark_then_a_cleanup_wedges_nothing() {
    let journal_dir = "/var/lib/portctl/journal";
    for n in 1..200 {
        let s = host();
        let bus = PrivateBus::start();
        let d = Daemon::start_with_env(
            bin(),
            &bus,
            s.path(),
            &[],
            &[("PORTCTL_FAULT_AT", &n.to_string())],
        );
        let (_c, m) = manager(&bus).await;
        if run(&m, Op::Attach).await.is_ok() {
            panic!("never crashed after the commit mark");
        }
        assert_eq!(d.wait().signal(), Some(6));
        let committed = std::fs::read_dir(s.join(journal_dir))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.path()).is_ok_and(|j| j.contains("\"phase\":\"commit\""))
            });
        let dropins = s.join("/etc/systemd/system.attached/minimal-test.service.d");
        if !committed
            || s.join("/etc/systemd/system.attached/minimal-test.service")
                .exists()
        {
            continue;
        }
        std::fs::remove_dir_all(&dropins).unwrap();
        let _d = Daemon::start(bin(), &bus, s.path(), &[]);
        let (_c, m) = manager(&bus).await;
        assert!(m.list_images().await.is_ok(), "the daemon serves");
        assert!(
            !s.join(journal_dir).exists(),
            "the journal is gone (rolled back)"
        );
        run(&m, Op::Attach)
            .await
            .expect("an attach works afterwards");
        return;
    }
    panic!("no crash point after the commit mark");
}

/// A journal that cannot be read is set aside, named in the log and by `portctl list`, and
/// the daemon serves.
#[test]
fn bus_an_unreadable_journal_is_set_aside_and_named() {
    let s = host();
    let dir = s.join("/var/lib/portctl/journal");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("123-0.json"), "{not json").unwrap();
    let bus = PrivateBus::start();
    let _d = Daemon::start(bin(), &bus, s.path(), &[]);
    let aside = s.join("/var/lib/portctl/set-aside/123-0.json");
    assert!(aside.exists() && !dir.join("123-0.json").exists());
    let out = Command::new(bin().with_file_name("portctl"))
        .args(["--bus-address", &bus.address(), "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/var/lib/portctl/set-aside/123-0.json") && err.starts_with("Warning:"),
        "{err}"
    );
}
