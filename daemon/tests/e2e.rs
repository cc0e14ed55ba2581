//! End to end under a real systemd (PID 1 in an nspawn box): `portctl attach --now` makes
//! systemd start the service from the image, with the host's machine-id and resolv.conf and
//! the API file systems mounted in; `portctl detach --now` stops it and leaves nothing behind.
//! A failing scenario prints the journals of the unit and of portctld.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portctl_tests::{mkimage, SystemdBox};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_portctld"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn portctl(b: &SystemdBox, args: &[&str]) -> (bool, String) {
    let out = b.exec(&[&["portctl", "--no-ask-password"], args].concat());
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn wait_for(b: &SystemdBox, unit: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = b.journal(unit);
        if log.contains(what) {
            return log;
        }
        if Instant::now() > deadline {
            panic!(
                "{unit} never logged {what:?}\n--- {unit}:\n{log}\n--- portctld:\n{}",
                b.journal("portctld.service")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn attach_now_runs_the_service_from_the_image() {
    let b = SystemdBox::up("e2e");
    let root = b.root();
    b.install_portctl(&bin_dir());
    let machine_id = std::fs::read_to_string(root.join("etc/machine-id"))
        .unwrap()
        .trim()
        .to_string();
    let resolv = String::from_utf8_lossy(&b.exec(&["cat", "/etc/resolv.conf"]).stdout).into_owned();
    let first_resolv_line = resolv.lines().next().unwrap_or("").trim().to_string();

    for (format, file) in [
        ("dir", "minimal_dir"),
        ("squashfs", "minimal_sq.raw"),
        ("erofs", "minimal_ero.raw"),
        ("ext4", "minimal_ext.raw"),
    ] {
        let path = format!("/var/lib/portables/{file}");
        mkimage(
            &root.join(path.trim_start_matches('/')),
            &["--format", format, "--prefix", "minimal"],
        );
        let _ = b.exec(&["journalctl", "--rotate", "--vacuum-time=1s"]);
        let (ok, out) = portctl(&b, &["attach", "--now", &path]);
        assert!(
            ok,
            "{format}: attach --now failed:\n{out}\n--- portctld:\n{}",
            b.journal("portctld.service")
        );
        let log = wait_for(&b, "minimal-test.service", "dev: ");
        assert!(
            log.contains(&format!("machine-id: {machine_id}")),
            "{format}: machine-id not the host's:\n{log}"
        );
        if !first_resolv_line.is_empty() {
            assert!(
                log.contains(&first_resolv_line),
                "{format}: resolv.conf not the host's ({first_resolv_line:?}):\n{log}"
            );
        }
        assert!(
            log.contains("proc: mounted") && log.contains("dev: mounted"),
            "{format}:\n{log}"
        );
        let (_, state) = portctl(&b, &["is-attached", &path]);
        assert_eq!(state.trim(), "running", "{format}");

        let (ok, out) = portctl(&b, &["detach", "--now", &path]);
        assert!(ok, "{format}: detach --now failed:\n{out}");
        let active = b.exec(&["systemctl", "is-active", "minimal-test.service"]);
        assert_ne!(
            String::from_utf8_lossy(&active.stdout).trim(),
            "active",
            "{format}: still running"
        );
        let (_, state) = portctl(&b, &["is-attached", &path]);
        assert_eq!(state.trim(), "detached", "{format}");
        // Nothing left: no unit files, no links, no loop device backed by the image, no mount.
        assert!(
            !root.join("etc/systemd/system.attached").exists(),
            "{format}"
        );
        assert!(
            !root.join(format!("etc/portables/{file}")).exists(),
            "{format}"
        );
        let loops = b.exec(&["losetup", "-l", "-n", "-O", "BACK-FILE"]);
        assert!(
            !String::from_utf8_lossy(&loops.stdout).contains(file),
            "{format}: loop device left"
        );
        let mounts = b.exec(&["cat", "/proc/self/mountinfo"]);
        assert!(
            !String::from_utf8_lossy(&mounts.stdout).contains(file),
            "{format}: mount left"
        );
    }
}
