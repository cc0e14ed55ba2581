//! What an attack on the installed portctld found, on a private bus (docs/security.md,
//! "Findings"): a caller's PID taken for its privileges, extension paths that skipped
//! authorization on image objects, metadata too large for one D-Bus message (and a daemon
//! that stayed off the bus when dbus-daemon dropped it), and terminal escapes in what
//! `portctl inspect` prints. Every test needs root (`bus_`: a dbus-daemon, loop devices).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use portctl_tests::{
    mkimage, status_kib, DaemonHost, PolkitCheck, Scratch, StandInPolkit, AS_NOBODY,
};

fn portctld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_portctld"))
}

/// A binary of the workspace built next to portctld (cargo test --workspace builds them).
fn workspace_bin(name: &str) -> PathBuf {
    let p = portctld().with_file_name(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo test --workspace)",
        p.display()
    );
    p
}

const DENY: fn(&PolkitCheck) -> (bool, bool) = |_| (false, false);

/// A setuid-root program that only waits, like `su` at its password prompt.
fn setuid_waiter(dir: &Path) -> PathBuf {
    let src = dir.join("waiter.c");
    fs::write(
        &src,
        "#include <unistd.h>\nint main(void) { sleep(60); return 0; }\n",
    )
    .unwrap();
    let bin = dir.join("waiter");
    assert!(Command::new("cc")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap()
        .success());
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o4755)).unwrap();
    bin
}

/// The process that connected to the bus hands the connection to a child and execs a setuid
/// program: its PID now shows every capability, but the caller is still `nobody`, and polkit
/// decides (v252's sd-bus never trusts capabilities read from /proc either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_a_setuid_program_behind_the_connection_gets_polkit_to_decide() {
    let h = DaemonHost::start(portctld(), |s| {
        mkimage(&s.join("/var/lib/portables/minimal_1"), &[]);
    });
    h.bus.open_to_everyone();
    let (_polkit, seen) = StandInPolkit::serve(&h.bus, DENY).await;
    let dir = Scratch::new();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let waiter = setuid_waiter(dir.path());
    let result = dir.join("result");
    let mut attacker = Command::new("setpriv")
        // No --bounding-set: the setuid program gets its capabilities.
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(workspace_bin("portctl-pid-trick"))
        .arg(h.bus.dir().join("bus"))
        .arg(&waiter)
        .arg(&result)
        .spawn()
        .unwrap();
    let outcome = tokio::task::spawn_blocking(move || {
        for _ in 0..1000 {
            if let Ok(r) = fs::read_to_string(&result) {
                return r;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the attacker's child wrote no result");
    })
    .await
    .unwrap();
    // The trick worked as far as the kernel goes: the connecting PID has capabilities.
    let caps = fs::read_to_string(format!("/proc/{}/status", attacker.id())).unwrap();
    assert!(
        caps.lines()
            .any(|l| l.starts_with("CapEff:") && l.trim_end() != "CapEff:\t0000000000000000"),
        "{caps}"
    );
    let _ = attacker.kill();
    let _ = attacker.wait();
    assert_eq!(
        outcome,
        "org.freedesktop.DBus.Error.AccessDenied: Access denied"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [PolkitCheck {
            subject: "system-bus-name".into(),
            action: "org.freedesktop.portable1.attach-images".into(),
            flags: 0,
        }]
    );
    assert!(!h
        .s
        .join("/etc/systemd/system.attached/minimal-test.service")
        .exists());
}

/// Extension paths given to an image object's `GetMetadataWithExtensions` are authorized as
/// the Manager authorizes them, before anything is looked up: an unprivileged caller cannot
/// make portctld mount her file system images, nor learn which paths exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_extension_paths_on_image_objects_need_authorization() {
    let h = DaemonHost::start(portctld(), |s| {
        mkimage(&s.join("/var/lib/portables/minimal_1"), &[]);
        portctl_tests::mkextension(
            &s.join("/srv/mine/app_1.raw"),
            "squashfs",
            &["app.service"],
            "",
        );
    });
    h.bus.open_to_everyone();
    let (_polkit, seen) = StandInPolkit::serve(&h.bus, DENY).await;
    let address = h.bus.address();
    let call = move |extension: &str| {
        let out = Command::new(AS_NOBODY[0])
            .args(&AS_NOBODY[1..])
            .arg("busctl")
            .arg(format!("--address={address}"))
            .args([
                "call",
                "org.freedesktop.portable1",
                "/org/freedesktop/portable1/image/minimal_5f1",
                "org.freedesktop.portable1.Image",
                "GetMetadataWithExtensions",
                "asast",
                "1",
                extension,
                "0",
                "0",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };
    let (existing, missing) = tokio::task::spawn_blocking(move || {
        (call("/srv/mine/app_1.raw"), call("/srv/nothing/here.raw"))
    })
    .await
    .unwrap();
    assert_eq!(existing, "Call failed: Access denied");
    assert_eq!(
        missing, existing,
        "no oracle for paths the caller cannot see"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|c| c.action == "org.freedesktop.portable1.inspect-images"));
    // Reads by name stay open to everybody, as in v252.
    let out = Command::new(AS_NOBODY[0])
        .args(&AS_NOBODY[1..])
        .arg("busctl")
        .arg(format!("--address={}", h.bus.address()))
        .args([
            "call",
            "org.freedesktop.portable1",
            "/org/freedesktop/portable1/image/minimal_5f1",
            "org.freedesktop.portable1.Image",
            "GetMetadata",
            "as",
            "0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A squashfs image at `out` whose units (`big-N.service`) have `size` bytes each.
fn image_with_big_units(out: &Path, count: usize, size: usize) {
    let tree = out.with_extension("tree");
    mkimage(&tree, &["--prefix", "big"]);
    let units = tree.join("usr/lib/systemd/system");
    let mut text = b"[Unit]\nDescription=big\n#".to_vec();
    text.resize(size, b'x');
    for i in 0..count {
        fs::write(units.join(format!("big-{i}.service")), &text).unwrap();
    }
    let st = Command::new("mksquashfs")
        .arg(&tree)
        .arg(out)
        .args(["-noappend", "-quiet", "-all-root"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    fs::remove_dir_all(&tree).unwrap();
}

/// Metadata that would not fit into one D-Bus message is refused with an error naming the
/// image; four such calls at once keep the daemon small, and it keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_metadata_over_the_budget_is_refused_and_the_daemon_answers() {
    let h = DaemonHost::start(portctld(), |s| {
        // 12 units of 4 MiB (the attack), and 12 of 1 MiB (each allowed, too much together).
        image_with_big_units(&s.join("/var/lib/portables/huge_1.raw"), 12, 4 << 20);
        image_with_big_units(&s.join("/var/lib/portables/big_1.raw"), 12, 1 << 20);
        // 3 MiB in all: answered.
        image_with_big_units(&s.join("/var/lib/portables/fits_1.raw"), 3, 1 << 20);
    });
    let conn = h.bus.connect().await;
    let m = portctl_dbus::proxy::ManagerProxy::new(&conn).await.unwrap();
    for (image, says) in [
        ("huge_1", "is larger than the limit of 1048576 bytes"),
        ("big_1", "exceed 4194304 bytes in all"),
    ] {
        let call = || m.get_image_metadata(image, &["big"]);
        let (a, b, c, d) = tokio::join!(call(), call(), call(), call());
        for r in [a, b, c, d] {
            let e = r.unwrap_err().to_string();
            assert!(e.contains(&format!("'{image}'")) && e.contains(says), "{e}");
        }
    }
    let call = || m.get_image_metadata("fits_1", &["big"]);
    let (a, b, c, d) = tokio::join!(call(), call(), call(), call());
    for r in [a, b, c, d] {
        let (_, _, units) = r.unwrap();
        assert_eq!(units.len(), 4, "big-test.service and the three");
    }
    let peak = status_kib(h.daemon.pid(), "VmHWM");
    assert!(peak < 64 * 1024, "portctld peaked at {peak} KiB");
    let listed = tokio::time::timeout(Duration::from_secs(2), m.list_images())
        .await
        .expect("the daemon answers")
        .unwrap();
    assert_eq!(listed.len(), 3);
}

/// When dbus-daemon drops portctld (as it does for a reply over its message limit), portctld
/// exits at once, so that the next call activates a fresh one.
#[test]
fn bus_portctld_exits_when_the_bus_drops_it() {
    let mut h = DaemonHost::start(portctld(), |_| {});
    h.bus.stop();
    let st = h
        .daemon
        .wait_timeout(Duration::from_secs(5))
        .expect("portctld still runs without a bus");
    assert!(st.success(), "{st}");
}

/// `portctl inspect` shows what the image says with its control characters escaped; `--cat`
/// into a pipe stays byte for byte, and on a terminal it is escaped too.
#[test]
fn bus_portctl_inspect_escapes_what_the_image_says() {
    let h = DaemonHost::start(portctld(), |s| {
        let img = mkimage(&s.join("/var/lib/portables/evil_1"), &[]);
        fs::write(
            img.join("usr/lib/os-release"),
            "ID=evil\nPRETTY_NAME=\"Evil\x1b]0;owned\x07 OS\"\nPORTABLE_PRETTY_NAME=\"x\x1b[2Jy\"\n",
        )
        .unwrap();
    });
    let portctl = portctld().with_file_name("portctl");
    let run = |extra: &[&str]| {
        let out = Command::new(&portctl)
            .args(["--bus-address", &h.bus.address(), "inspect"])
            .args(extra)
            .arg("evil_1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let text = String::from_utf8(run(&[])).unwrap();
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(text.contains("\tEvil\\033]0;owned\\a OS\n"), "{text}");
    assert!(text.contains("\tx\\033[2Jy\n"), "{text}");
    let raw = run(&["--cat"]);
    let osr = fs::read(h.s.join("/var/lib/portables/evil_1/usr/lib/os-release")).unwrap();
    assert!(
        raw.windows(osr.len()).any(|w| w == osr.as_slice()),
        "--cat into a pipe is byte for byte"
    );
    // On a terminal (script gives it one), escaped.
    let cmd = format!(
        "{} --bus-address {} inspect --cat evil_1",
        portctl.display(),
        h.bus.address()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("Evil\\033]0;owned\\a OS") && !shown.contains('\x07'),
        "{shown:?}"
    );
}
