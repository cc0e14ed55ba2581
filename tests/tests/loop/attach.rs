//! Attach, detach and reattach of raw and block images, read-only directories and mixed copies (root: loop devices, chattr).

use portctl_engine::portable::{CopyMode, DetachOptions, Offline};
use portctl_tests::change_lines as list;
use portctl_tests::engine::attach::*;
use portctl_tests::{mkimage, set_immutable, snapshot};
use std::fs;

#[test]
fn block_device_image() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (s, host) = setup();
    let raw = mkimage(
        &s.join("blk.raw"),
        &["--format", "ext4", "--prefix", "minimal"],
    );
    let out = std::process::Command::new("losetup")
        .args(["--find", "--show", "--read-only"])
        .arg(&raw)
        .output()
        .unwrap();
    assert!(out.status.success());
    let dev = String::from_utf8(out.stdout).unwrap().trim().to_string();
    struct Detach(String);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = std::process::Command::new("losetup")
                .args(["-d", &self.0])
                .status();
        }
    }
    let _d = Detach(dev.clone());
    // The same device node inside the scratch root.
    let md = fs::metadata(&dev).unwrap();
    assert!(md.file_type().is_block_device());
    fs::create_dir_all(s.join("/dev")).unwrap();
    let node = s.join("/dev/minimal-blk");
    let st = std::process::Command::new("mknod")
        .arg(&node)
        .args([
            "b",
            &(md.rdev() >> 8 & 0xfff).to_string(),
            &(md.rdev() & 0xff | (md.rdev() >> 12) & 0xfff00).to_string(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let changes = host
        .attach(
            &Offline,
            "/dev/minimal-blk",
            &opts("default", false, CopyMode::Auto),
        )
        .unwrap();
    assert!(list(&changes)
        .contains(&"copy /etc/systemd/system.attached/minimal-test.service".to_string()));
    let dropin = fs::read_to_string(
        s.join("/etc/systemd/system.attached/minimal-test.service.d/20-portable.conf"),
    )
    .unwrap();
    assert!(
        dropin.contains("\nRootImage=/dev/minimal-blk\nEnvironment=PORTABLE=minimal-blk\n"),
        "{dropin}"
    );
    host.detach(
        &Offline,
        "/dev/minimal-blk",
        &DetachOptions::new(false, false),
    )
    .unwrap();
    assert!(!s.join("/etc/systemd/system.attached").exists());
}

#[test]
fn mixed_copies_the_image_and_detach_removes_the_copy() {
    let (s, host) = setup();
    mkimage(&s.join("/srv/minimal_5.raw"), &["--format", "squashfs"]);
    let o = opts("default", false, CopyMode::Mixed);
    let changes = host.attach(&Offline, "/srv/minimal_5.raw", &o).unwrap();
    let l = list(&changes);
    assert_eq!(
        l.last().unwrap(),
        "copy /etc/portables/minimal_5.raw /srv/minimal_5.raw"
    );
    assert!(l.contains(&"symlink /etc/systemd/system.attached/minimal-test.service.d/10-profile.conf /usr/lib/systemd/portable/profile/default/service.conf".to_string()));
    assert_eq!(
        fs::read(s.join("/etc/portables/minimal_5.raw")).unwrap(),
        fs::read(s.join("/srv/minimal_5.raw")).unwrap()
    );
    let dropin = fs::read_to_string(
        s.join("/etc/systemd/system.attached/minimal-test.service.d/20-portable.conf"),
    )
    .unwrap();
    // The drop-in names the original, as systemd-portabled's does; the copy is what the
    // image's name finds.
    assert!(
        dropin.contains("\nRootImage=/srv/minimal_5.raw\n"),
        "{dropin}"
    );
    assert_eq!(
        host.image_state(&Offline, "minimal_5", &[])
            .unwrap()
            .as_str(),
        "attached"
    );
    let changes = host
        .detach(&Offline, "minimal_5", &DetachOptions::new(false, false))
        .unwrap();
    assert!(list(&changes).contains(&"unlink /etc/portables/minimal_5.raw".to_string()));
    assert!(!s.join("/etc/portables/minimal_5.raw").exists());

    // A directory image: the tree is copied, modes, symlinks and all, and reattached in place.
    host.attach(&Offline, "minimal_1", &o).unwrap();
    let copy = snapshot(s.path(), &["/etc/portables/minimal_1"]);
    let orig = snapshot(s.path(), &["/var/lib/portables/minimal_1"]);
    let strip = |v: Vec<String>, p: &str| -> Vec<String> {
        v.into_iter().map(|l| l.replacen(p, "", 1)).collect()
    };
    assert_eq!(
        strip(copy, "/etc/portables/minimal_1"),
        strip(orig, "/var/lib/portables/minimal_1")
    );
    fs::write(
        s.join("/var/lib/portables/minimal_1/usr/bin/new-file"),
        "v2",
    )
    .unwrap();
    host.reattach(&Offline, "minimal_1", &o).unwrap();
    assert_eq!(
        fs::read_to_string(s.join("/etc/portables/minimal_1/usr/bin/new-file")).unwrap(),
        "v2"
    );
    host.detach(&Offline, "minimal_1", &DetachOptions::new(false, false))
        .unwrap();
    assert!(!s.join("/etc/portables/minimal_1").exists());
    assert!(
        s.join("/var/lib/portables/minimal_1/usr/bin/minimald")
            .exists(),
        "the original stays"
    );
}

#[test]
fn raw_runtime_copy_and_symlink_modes() {
    let (s, host) = setup();
    mkimage(&s.join("/srv/minimal_2.raw"), &["--format", "squashfs"]);
    let changes = host
        .attach(
            &Offline,
            "/srv/minimal_2.raw",
            &opts("strict", true, CopyMode::Copy),
        )
        .unwrap();
    let a = "/run/systemd/system.attached";
    assert_eq!(
        list(&changes),
        [
            format!("mkdir {a}"),
            format!("mkdir {a}/minimal-test.service.d"),
            format!("write {a}/minimal-test.service.d/20-portable.conf"),
            format!("copy {a}/minimal-test.service.d/10-profile.conf /usr/lib/systemd/portable/profile/strict/service.conf"),
            format!("copy {a}/minimal-test.service"),
            "symlink /run/portables/minimal_2.raw /srv/minimal_2.raw".to_string(),
        ]
    );
    let dropin =
        fs::read_to_string(s.join(format!("{a}/minimal-test.service.d/20-portable.conf"))).unwrap();
    assert!(
        dropin.contains("\nRootImage=/srv/minimal_2.raw\nEnvironment=PORTABLE=minimal_2.raw\n"),
        "{dropin}"
    );
    let profile = fs::read(s.join(format!("{a}/minimal-test.service.d/10-profile.conf"))).unwrap();
    assert_eq!(
        profile,
        fs::read(s.join("/usr/lib/systemd/portable/profile/strict/service.conf")).unwrap()
    );
    assert_eq!(
        host.image_state(&Offline, "minimal_2", &[])
            .unwrap()
            .as_str(),
        "attached-runtime"
    );
    host.detach(
        &Offline,
        "/srv/minimal_2.raw",
        &DetachOptions::new(true, false),
    )
    .unwrap();
    assert!(!s.join(a).exists() && !s.join("/run/portables/minimal_2.raw").exists());

    // Symlink mode links the unit into the directory image.
    let changes = host
        .attach(
            &Offline,
            "minimal_1",
            &opts("default", false, CopyMode::Symlink),
        )
        .unwrap();
    assert!(list(&changes).contains(&"symlink /etc/systemd/system.attached/minimal-test.service /var/lib/portables/minimal_1/usr/lib/systemd/system/minimal-test.service".to_string()));
    host.detach(&Offline, "minimal_1", &DetachOptions::new(false, false))
        .unwrap();
}

#[test]
fn read_only_image_missing_mount_points() {
    let (s, host) = setup();
    let img = s.join("/var/lib/portables/minimal_ro");
    mkimage(&img, &["--no-mount-points"]);
    set_immutable(&img, true);
    let e = host
        .attach(
            &Offline,
            "minimal_ro",
            &opts("default", false, CopyMode::Auto),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Image '/var/lib/portables/minimal_ro' is read-only and lacks what profile 'default' mounts over: /dev/, /proc/, /run/, /sys/, /tmp/, /var/tmp/. Add them when building the image, or attach with --force."
    );
    assert!(!s.join("/etc/systemd/system.attached").exists());
    let mut forced = opts("default", false, CopyMode::Auto);
    forced.force = true;
    host.attach(&Offline, "minimal_ro", &forced).unwrap();
    set_immutable(&img, false);
    host.detach(&Offline, "minimal_ro", &DetachOptions::new(false, false))
        .unwrap();

    // A writable image gets them created, reported first.
    let rw = s.join("/var/lib/portables/minimal_rw");
    mkimage(&rw, &["--no-mount-points"]);
    let changes = host
        .attach(
            &Offline,
            "minimal_rw",
            &opts("default", false, CopyMode::Auto),
        )
        .unwrap();
    assert_eq!(list(&changes)[0], "mkdir /var/lib/portables/minimal_rw/dev");
    assert!(rw.join("var/tmp").is_dir() && rw.join("proc").is_dir());
}
