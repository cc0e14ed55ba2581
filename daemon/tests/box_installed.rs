//! The installed, sandboxed `portctld.service` under systemd 252 (a box), tried as a new user
//! would: images where users keep them (/tmp, /var/tmp, /home, /srv, /opt, a relative path),
//! the directories portctld writes removed while it runs, an image whose resolv.conf is the
//! usual systemd-resolved link, and a service built from Debian's redis-server package (a
//! template unit and an alias link). Needs root, loop devices, systemd-nspawn and, for the
//! Debian image, mmdebstrap and Debian's mirror (`tests/corpus/mkcorpus`).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use portctl_tests::{mkimage, SystemdBox};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_portctld"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Nothing is attached, linked or left in the box.
fn assert_clean(b: &SystemdBox) {
    let root = b.root();
    for d in ["etc/systemd/system.attached", "run/systemd/system.attached"] {
        let left: Vec<_> = fs::read_dir(root.join(d))
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{d}: {left:?}");
    }
    for d in ["etc/portables", "run/portables"] {
        let left: Vec<_> = fs::read_dir(root.join(d))
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{d}: {left:?}");
    }
}

#[test]
fn box_the_installed_daemon_takes_images_from_anywhere() {
    let b = SystemdBox::up("installed");
    b.install_portctl(&bin_dir());
    images_where_users_keep_them(&b);
    a_relative_path(&b);
    written_directories_can_disappear(&b);
    a_resolved_style_resolv_conf_link(&b);
    debian_redis_with_its_template_and_alias(&b);
}

/// The state column of `portctl list` for `name`, and its RO column.
fn listed(b: &SystemdBox, name: &str) -> Option<(String, String)> {
    let out = b.portctl_ok(&["list", "--no-legend"]);
    out.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.first() == Some(&name))
            .then(|| (cols[2].to_string(), cols[cols.len() - 1].to_string()))
    })
}

fn images_where_users_keep_them(b: &SystemdBox) {
    let root = b.root();
    for dir in ["/tmp", "/var/tmp", "/home", "/srv", "/opt"] {
        let at = format!("{dir}/portctl-e2e");
        let _ = fs::remove_dir_all(root.join(&at[1..]));
        // A writable directory without mount points: repaired where it lies.
        let img = format!("{at}/where_1");
        mkimage(&root.join(&img[1..]), &["--no-mount-points"]);
        let (ok, v) = b.portctl(&["validate", &img]);
        assert!(ok && v.contains("compliant"), "{dir}: {v}");
        let out = b.portctl_ok(&["attach", "--now", &img]);
        assert!(
            out.contains(&format!("Created directory {img}/proc.")),
            "{dir}: repaired: {out}"
        );
        b.wait_for("where-test.service", "minimald: started");
        assert_eq!(
            listed(b, "where_1"),
            Some(("no".into(), "running".into())),
            "{dir}: writable and running"
        );
        b.portctl_ok(&["inspect", &img]);
        // Reattached to a squashfs image next to it, then detached.
        let raw = format!("{at}/where_2.raw");
        mkimage(
            &root.join(&raw[1..]),
            &["--format", "squashfs", "--prefix", "where"],
        );
        b.portctl_ok(&["reattach", "--now", &raw]);
        b.wait_for("where-test.service", "minimald: started");
        assert_eq!(
            b.portctl_ok(&["is-attached", &raw]).trim(),
            "running",
            "{dir}"
        );
        // (A raw image is read-only when its file is, whatever its file system: as v252.)
        assert_eq!(listed(b, "where_2"), Some(("no".into(), "running".into())));
        b.portctl_ok(&["detach", "--now", &raw]);
        assert_clean(b);
        // Read-only, writable again, and removed.
        b.portctl_ok(&["read-only", &img]);
        let attrs = b.exec(&["lsattr", "-d", &img]);
        assert!(
            String::from_utf8_lossy(&attrs.stdout).starts_with("----i"),
            "{dir}: {}",
            String::from_utf8_lossy(&attrs.stdout)
        );
        b.portctl_ok(&["read-only", &img, "no"]);
        for i in [&img, &raw] {
            b.portctl_ok(&["remove", i]);
            assert!(!root.join(&i[1..]).exists(), "{dir}: {i} removed");
        }
    }
    // A writable ext4 image outside the search path is repaired, and listed as writable.
    let raw = "/var/tmp/portctl-e2e/where_3.raw";
    mkimage(
        &root.join(&raw[1..]),
        &["--format", "ext4", "--prefix", "where", "--no-mount-points"],
    );
    b.portctl_ok(&["attach", "--now", raw]);
    b.wait_for("where-test.service", "minimald: started");
    assert_eq!(listed(b, "where_3"), Some(("no".into(), "running".into())));
    b.portctl_ok(&["detach", "--now", raw]);
    assert_clean(b);
}

fn a_relative_path(b: &SystemdBox) {
    let root = b.root();
    mkimage(&root.join("srv/portctl-e2e/rel_1"), &[]);
    let out = b.exec(&[
        "sh",
        "-c",
        "cd /srv/portctl-e2e && portctl attach ./rel_1 && portctl is-attached ./rel_1 && portctl detach ./rel_1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("attached"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean(b);
}

fn written_directories_can_disappear(b: &SystemdBox) {
    let root = b.root();
    let img = "/srv/portctl-e2e/gone_1";
    mkimage(&root.join(&img[1..]), &[]);
    for (dir, runtime) in [
        ("/etc/portables", false),
        ("/run/portables", true),
        ("/etc/systemd/system.attached", false),
        ("/run/systemd/system.attached", true),
        ("/var/lib/portctl", false),
        ("/run/portctl", true),
        ("/var/lib/portables", false),
    ] {
        // portctld runs (a call started it), and the directory goes.
        b.portctl_ok(&["list"]);
        let rm = b.exec(&["rm", "-rf", dir]);
        assert!(rm.status.success());
        let mut args = vec!["attach", img];
        if runtime {
            args.insert(1, "--runtime");
        }
        b.portctl_ok(&args);
        let attached = if runtime {
            "run/systemd/system.attached/gone-test.service"
        } else {
            "etc/systemd/system.attached/gone-test.service"
        };
        assert!(root.join(attached).exists(), "after rm -rf {dir}");
        args[0] = "detach";
        b.portctl_ok(&args);
        assert_clean(b);
    }
}

fn a_resolved_style_resolv_conf_link(b: &SystemdBox) {
    let root = b.root();
    let img = "/srv/portctl-e2e/resolved_1";
    let tree = mkimage(&root.join(&img[1..]), &[]);
    fs::remove_file(tree.join("etc/resolv.conf")).unwrap();
    symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        tree.join("etc/resolv.conf"),
    )
    .unwrap();
    let (ok, v) = b.portctl(&["validate", img]);
    assert!(ok, "{v}");
    b.portctl_ok(&["attach", "--now", img]);
    b.wait_for("resolved-test.service", "minimald: started");
    b.portctl_ok(&["detach", "--now", img]);
    assert_clean(b);
}

/// Debian's redis-server, made ready for a dynamic user (its configuration readable, its log
/// on the journal, its state in /tmp: the package's paths belong to its own user, and its
/// `ReadWritePaths=` do not make the image's /var/lib/redis writable): one redis serves, its template is neither
/// started nor stopped, and detach --now removes everything.
fn debian_redis_with_its_template_and_alias(b: &SystemdBox) {
    let corpus = Path::new("/var/tmp/portctl-corpus");
    let built =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/mkcorpus"))
            .arg(corpus)
            .arg("redis")
            .status()
            .unwrap();
    assert!(built.success(), "tests/corpus/mkcorpus redis");
    let img = "/srv/portctl-e2e/redis_7";
    let tree = b.root().join(&img[1..]);
    let cp = Command::new("cp")
        .arg("-a")
        .arg(corpus.join("redis"))
        .arg(&tree)
        .status()
        .unwrap();
    assert!(cp.success());
    let conf = tree.join("etc/redis/redis.conf");
    let text = fs::read_to_string(&conf).unwrap();
    let text: String = text
        .lines()
        .map(|l| match l.split_whitespace().next() {
            Some("logfile") => "logfile \"\"",
            // Its state in the service's own /tmp, and no snapshot to save on the way out.
            Some("dir") => "dir /tmp",
            Some("save") => "save \"\"",
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(&conf, text + "\n").unwrap();
    for (p, mode) in [("etc/redis", 0o755), ("etc/redis/redis.conf", 0o644)] {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tree.join(p), fs::Permissions::from_mode(mode)).unwrap();
    }
    let out = b.portctl_ok(&["attach", "--now", img]);
    assert!(!out.contains("Failed") && !out.contains("failed"), "{out}");
    assert!(
        !b.root()
            .join("etc/systemd/system.attached/redis.service")
            .exists(),
        "the alias link is no unit of its own: {out}"
    );
    assert!(b
        .root()
        .join("etc/systemd/system.attached/redis-server@.service")
        .exists());
    b.wait_for("redis-server.service", "Ready to accept connections");
    let ping = b.exec(&[
        "bash",
        "-c",
        "exec 3<>/dev/tcp/127.0.0.1/6379; printf 'PING\\r\\n' >&3; timeout 5 head -c 5 <&3",
    ]);
    assert_eq!(String::from_utf8_lossy(&ping.stdout), "+PONG");
    let out = b.portctl_ok(&["detach", "--now", img]);
    assert!(!out.contains("Failed"), "{out}");
    assert_clean(b);
    let active = b.exec(&["systemctl", "is-active", "redis-server.service"]);
    assert_ne!(String::from_utf8_lossy(&active.stdout).trim(), "active");
}
