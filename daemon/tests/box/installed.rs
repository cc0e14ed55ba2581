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

use portctl_tests::{mkimage, raw_image_from_tree, SystemdBox};

use crate::{Role, Scenario, EVERY_VERSION};

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

/// The scenarios, in order.
pub fn scenarios() -> Vec<Scenario> {
    let s = |name, run| Scenario {
        name,
        role: Role::Installed,
        versions: EVERY_VERSION,
        run,
    };
    vec![
        s("images_where_users_keep_them", images_where_users_keep_them),
        s("a_relative_path", a_relative_path),
        s(
            "written_directories_can_disappear",
            written_directories_can_disappear,
        ),
        s(
            "a_resolved_style_resolv_conf_link",
            a_resolved_style_resolv_conf_link,
        ),
        s(
            "debian_redis_with_its_template_and_alias",
            debian_redis_with_its_template_and_alias,
        ),
        s(
            "validate_predicts_what_happens_at_start",
            validate_predicts_what_happens_at_start,
        ),
        s(
            "a_running_ext4_image_detaches",
            a_running_ext4_image_detaches,
        ),
    ]
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

/// The trees of `tests/corpus/mkcorpus` (built once, cached in /var/tmp/portctl-corpus).
fn corpus(service: &str) -> &'static Path {
    let corpus = Path::new("/var/tmp/portctl-corpus");
    let built =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/mkcorpus"))
            .arg(corpus)
            .arg(service)
            .status()
            .unwrap();
    assert!(built.success(), "tests/corpus/mkcorpus {service}");
    corpus
}

/// A copy of `tree` in the box at `at` (a path of the box).
fn copy_into(b: &SystemdBox, tree: &Path, at: &str) -> PathBuf {
    let to = b.root().join(&at[1..]);
    let _ = fs::remove_dir_all(&to);
    let cp = Command::new("cp")
        .arg("-a")
        .arg(tree)
        .arg(&to)
        .status()
        .unwrap();
    assert!(cp.success());
    to
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
    let tree = copy_into(b, &corpus.join("redis"), img);
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

/// `portctl validate --json` of an image in the box: whether it is compliant, and its error
/// and warning findings as "severity directive".
fn predicted(b: &SystemdBox, img: &str, profile: &str) -> (bool, Vec<String>) {
    let out = b.exec(&[
        "portctl",
        &format!("--profile={profile}"),
        "validate",
        "--json=short",
        img,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let mut found = Vec::new();
    for c in v["checks"].as_array().unwrap() {
        for f in c["findings"].as_array().unwrap() {
            let sev = f["severity"].as_str().unwrap();
            if sev != "note" {
                found.push(format!("{sev} {}", f["directive"].as_str().unwrap_or("-")));
            }
        }
    }
    (v["compliant"] == true, found)
}

fn active_state(b: &SystemdBox, unit: &str) -> String {
    let out = b.exec(&["systemctl", "show", "-P", "ActiveState", unit]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What `validate` predicts is what happens at start, on the images of the corpus: Debian's
/// nginx is skipped (its `ConditionFileIsExecutable=` is checked on the host), Debian's redis
/// cannot read its configuration as a dynamic user, a missing `ExecReload=` program fails
/// only the reload, and a failing start job is reported with systemctl's words.
fn validate_predicts_what_happens_at_start(b: &SystemdBox) {
    let nginx = corpus("nginx").join("nginx");
    let redis = corpus("redis").join("redis");
    let root = b.root();
    let _ = fs::create_dir_all(root.join("srv/portctl-e2e"));
    // nginx as packaged: a directory and a squashfs image.
    let dir = "/srv/portctl-e2e/nginx_1";
    copy_into(b, &nginx, dir);
    let raw = "/srv/portctl-e2e/nginx_2.raw";
    raw_image_from_tree(&nginx, &root.join(&raw[1..]), "squashfs");
    for img in [dir, raw] {
        let (ok, found) = predicted(b, img, "default");
        assert!(
            !ok && found == ["error ConditionFileIsExecutable="],
            "{img}: {found:?}"
        );
        let out = b.portctl_ok(&["attach", "--now", img]);
        assert!(
            out.contains("Unit nginx.service was skipped: a start condition failed"),
            "{img}: {out}"
        );
        assert_eq!(active_state(b, "nginx.service"), "inactive", "{img}");
        b.portctl_ok(&["detach", "--now", img]);
        assert_clean(b);
    }
    // redis as packaged, as an ext4 image: its configuration is its own user's.
    let raw = "/srv/portctl-e2e/redis_8.raw";
    raw_image_from_tree(&redis, &root.join(&raw[1..]), "ext4");
    let (ok, found) = predicted(b, raw, "default");
    assert!(!ok && found == ["error ExecStart="], "{found:?}");
    let out = b.portctl_ok(&["attach", "--now", raw]);
    assert!(
        out.contains("Job for redis-server.service failed because the control process exited with error code.\nSee \"systemctl status redis-server.service\" and \"journalctl -xeu redis-server.service\" for details."),
        "{out}"
    );
    assert_ne!(active_state(b, "redis-server.service"), "active");
    let out = b.portctl_ok(&["detach", "--now", raw]);
    assert!(!out.contains("Failed"), "{out}");
    assert_clean(b);
    // The sample service with a reload program that is missing: a warning, and it runs.
    let img = "/srv/portctl-e2e/reload_1";
    let tree = mkimage(&root.join(&img[1..]), &[]);
    let unit = tree.join("usr/lib/systemd/system/reload-test.service");
    let text = fs::read_to_string(&unit).unwrap().replace(
        "ExecStart=/usr/bin/minimald",
        "ExecStart=/usr/bin/minimald\nExecReload=/usr/bin/reload-me",
    );
    fs::write(&unit, text).unwrap();
    let (ok, found) = predicted(b, img, "default");
    assert!(ok && found == ["warning ExecReload="], "{found:?}");
    b.portctl_ok(&["attach", "--now", img]);
    b.wait_for("reload-test.service", "minimald: started");
    let reload = b.exec(&["systemctl", "reload", "reload-test.service"]);
    assert!(!reload.status.success(), "the reload fails");
    assert_eq!(active_state(b, "reload-test.service"), "active");
    b.portctl_ok(&["detach", "--now", img]);
    assert_clean(b);
}

/// A service whose `ReadWritePaths=` makes PID 1 mount its ext4 image read-write: its journal
/// needs a replay while it runs, which portctld's read-only mounts do not attempt, so inspect
/// and `detach --now` work on it.
fn a_running_ext4_image_detaches(b: &SystemdBox) {
    let root = b.root();
    let tree = mkimage(&root.join("srv/portctl-e2e/rw.tree"), &["--prefix", "rw"]);
    fs::create_dir_all(tree.join("srv/data")).unwrap();
    let unit = tree.join("usr/lib/systemd/system/rw-test.service");
    let text = fs::read_to_string(&unit)
        .unwrap()
        .replace("[Service]\n", "[Service]\nReadWritePaths=/srv/data\n");
    fs::write(&unit, text).unwrap();
    let raw = "/srv/portctl-e2e/rw_1.raw";
    raw_image_from_tree(&tree, &root.join(&raw[1..]), "ext4");
    b.portctl_ok(&["attach", "--now", raw]);
    b.wait_for("rw-test.service", "minimald: started");
    let out = b.portctl_ok(&["inspect", raw]);
    assert!(out.contains("rw-test.service"), "{out}");
    b.portctl_ok(&["detach", "--now", raw]);
    assert_clean(b);
}
