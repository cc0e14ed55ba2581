//! The compliance report on real image trees, and the repair of writable images.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use portctl_engine::compliance::{repair, Status};
use portctl_tests::engine::compliance::*;
use portctl_tests::{make_tree, Node, Scratch};

#[test]
fn the_sample_image_complies() {
    let s = Scratch::new();
    let host = host(&s);
    let img = sample(&s, "minimal_1", &[]);
    let r = report(&host, &img, "default", None);
    assert!(r.compliant(), "{r:#?}");
    assert!(r.checks.iter().all(|c| c.status == Status::Ok), "{r:#?}");
    assert_eq!(r.matches, ["minimal"]);
    assert_eq!(r.units, ["minimal-test.service"]);
    assert!(details(&r, "loader").contains("statically linked"));
    assert!(r.missing.is_empty());
}

#[test]
fn writable_image_missing_mount_points_is_repaired() {
    let s = Scratch::new();
    let host = host(&s);
    let img = sample(&s, "bare_1", &["--no-mount-points", "--no-host-files"]);
    let r = report(&host, &img, "default", None);
    assert!(r.compliant(), "a writable image is repairable: {r:#?}");
    assert_eq!(status(&r, "mount-points"), Status::Repairable);
    assert_eq!(status(&r, "host-files"), Status::Repairable);
    let missing: Vec<&str> = r.missing.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        missing,
        [
            "/dev",
            "/etc/machine-id",
            "/etc/resolv.conf",
            "/proc",
            "/run",
            "/sys",
            "/tmp",
            "/var/tmp"
        ]
    );
    let image = host.find_image(&img).unwrap();
    let root = host.open_image(&image).unwrap();
    let created = repair(&root, &r.missing).unwrap();
    let created: Vec<(String, String)> = created
        .iter()
        .map(|c| (c.kind.to_string(), c.path.display().to_string()))
        .collect();
    assert!(created.contains(&("write".into(), "/etc/resolv.conf".into())));
    assert!(created.contains(&("mkdir".into(), "/var/tmp".into())));
    let mode = |p: &str| {
        fs::metadata(s.join(format!("{img}{p}")))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("/tmp"), 0o1777);
    assert_eq!(mode("/var/tmp"), 0o1777);
    assert_eq!(mode("/proc"), 0o755);
    assert_eq!(mode("/etc/machine-id"), 0o644);
    assert_eq!(
        fs::metadata(s.join(format!("{img}/etc/resolv.conf")))
            .unwrap()
            .len(),
        0
    );
    let again = report(&host, &img, "default", None);
    assert!(
        again.checks.iter().all(|c| c.status == Status::Ok),
        "{again:#?}"
    );
}

#[test]
fn os_release_and_unit_rules() {
    let s = Scratch::new();
    let host = host(&s);
    let noos = sample(&s, "noos_1", &[]);
    fs::remove_file(s.join(format!("{noos}/etc/os-release"))).unwrap();
    fs::remove_file(s.join(format!("{noos}/usr/lib/os-release"))).unwrap();
    let r = report(&host, &noos, "default", None);
    assert_eq!(status(&r, "os-release"), Status::Failed);
    assert!(details(&r, "os-release").contains("no /etc/os-release or /usr/lib/os-release"));

    let noid = sample(&s, "noid_1", &[]);
    fs::write(
        s.join(format!("{noid}/usr/lib/os-release")),
        "NAME=x\nbroken line\n",
    )
    .unwrap();
    let r = report(&host, &noid, "default", None);
    assert_eq!(status(&r, "os-release"), Status::Failed);
    let d = details(&r, "os-release");
    assert!(
        d.contains("has no ID= field") && d.contains("line 2"),
        "{d}"
    );

    let nounits = sample(&s, "other_1", &["--prefix", "different"]);
    let r = report(&host, &nounits, "default", None);
    assert_eq!(status(&r, "unit-files"), Status::Failed);
    assert!(details(&r, "unit-files").contains("no unit files matching 'other'"));
    let r = report(&host, &nounits, "default", Some(&["different".into()]));
    assert!(r.compliant(), "{r:#?}");
}

#[test]
fn portable_prefixes_allow_list() {
    let s = Scratch::new();
    let host = host(&s);
    let img = sample(&s, "wl_1", &["--prefix", "svc"]);
    let osr = s.join(format!("{img}/usr/lib/os-release"));
    let mut text = fs::read_to_string(&osr).unwrap();
    text.push_str("PORTABLE_PREFIXES=\"svc other\"\n");
    fs::write(&osr, text).unwrap();
    let r = report(&host, &img, "default", None);
    assert!(
        r.compliant(),
        "PORTABLE_PREFIXES gives the default matches: {r:#?}"
    );
    assert_eq!(r.matches, ["svc", "other"]);
    let r = report(&host, &img, "default", Some(&["wl".into()]));
    assert_eq!(status(&r, "unit-files"), Status::Failed);
    assert!(details(&r, "unit-files").contains(
        "Selected matches 'wl' are not compatible with portable service image 'wl_1', refusing. (Acceptable prefix matches are: other, svc)"
    ));
}

#[test]
fn executable_rules() {
    let s = Scratch::new();
    let host = host(&s);
    let img = sample(&s, "exe_1", &[]);
    let unit = s.join(format!("{img}/usr/lib/systemd/system/exe-test.service"));
    fs::write(
        &unit,
        "[Service]\nExecStartPre=-/usr/bin/missing --x\nExecStart=/usr/bin/minimald\nExecStop=/usr/bin/noexec\nExecReload=/usr/bin/arm\nExecStartPost=relative-tool\n",
    )
    .unwrap();
    set_exec(&s, &img, "/usr/bin/noexec", b"#!/bin/sh\n", 0o644);
    // An ELF header for 64-bit ARM.
    let mut arm = vec![0u8; 64];
    arm[..6].copy_from_slice(b"\x7fELF\x02\x01");
    arm[6] = 1;
    arm[18..20].copy_from_slice(&183u16.to_le_bytes());
    set_exec(&s, &img, "/usr/bin/arm", &arm, 0o755);
    set_exec(
        &s,
        &img,
        "/usr/bin/relative-tool",
        b"#!/bin/sh\necho\n",
        0o755,
    );
    let r = report(&host, &img, "default", None);
    assert_eq!(status(&r, "executables"), Status::Failed);
    let d = details(&r, "executables");
    assert!(
        d.contains("/usr/bin/missing is missing in the image"),
        "{d}"
    );
    assert!(
        d.contains("/usr/bin/noexec is not executable (mode 0644)"),
        "{d}"
    );
    assert!(d.contains("built for arm64"), "{d}");
    assert!(
        d.contains("ExecStartPost=/usr/bin/relative-tool (script)"),
        "{d}"
    );
    let l = details(&r, "loader");
    assert!(l.contains("needs its #! interpreter /bin/sh"), "{l}");
}

#[test]
fn dynamic_binary_without_its_loader() {
    let s = Scratch::new();
    let host = host(&s);
    let img = sample(&s, "dyn_1", &[]);
    // The host's /bin/true is dynamically linked; the image has no loader.
    let t = fs::read("/bin/true").unwrap();
    set_exec(&s, &img, "/usr/bin/minimald", &t, 0o755);
    let r = report(&host, &img, "default", None);
    assert_eq!(status(&r, "loader"), Status::Failed);
    let l = details(&r, "loader");
    assert!(
        l.contains("needs its ELF interpreter /lib64/ld-linux-x86-64.so.2"),
        "{l}"
    );
    // With the loader present (as a symlink into /usr, merged-/usr style), it passes.
    let ld_real = fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap();
    make_tree(
        &s.join(&img),
        &[Node::Dir("/usr/lib64"), Node::Link("/lib64", "usr/lib64")],
    );
    fs::copy(
        &ld_real,
        s.join(format!("{img}/usr/lib64/ld-linux-x86-64.so.2")),
    )
    .unwrap();
    let r = report(&host, &img, "default", None);
    assert_eq!(status(&r, "loader"), Status::Ok, "{r:#?}");
}
