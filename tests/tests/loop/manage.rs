//! Remove, read-only and limits (sections 7.5 to 7.7), on real file systems: btrfs for
//! subvolumes and quotas, a loop device for block images.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use portctl_engine::portable::{AttachOptions, CopyMode, DetachOptions, Offline};
use portctl_engine::{Error, Host, ImageType};
use portctl_tests::{attach_host, mkimage, Scratch};

fn run(cmd: &[&str]) -> String {
    let out = Command::new(cmd[0]).args(&cmd[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn remove_images() {
    let s = Scratch::new();
    let host = attach_host(&s);
    mkimage(&s.join("/var/lib/portables/minimal_1"), &[]);
    mkimage(
        &s.join("/var/lib/portables/minimal_2.raw"),
        &["--format", "squashfs"],
    );
    mkimage(&s.join("/srv/minimal_3"), &[]);
    fs::create_dir_all(s.join("/etc/portables")).unwrap();
    std::os::unix::fs::symlink("/srv/minimal_3", s.join("/etc/portables/minimal_3")).unwrap();
    fs::write(s.join("/var/lib/portables/minimal_1.nspawn"), "[Exec]\n").unwrap();
    mkimage(&s.join("/usr/lib/portables/vendor_1"), &[]);

    // Attached: refused.
    let o = AttachOptions {
        matches: vec!["minimal".into()],
        profile: "default".into(),
        runtime: false,
        copy: CopyMode::Auto,
        force: false,
        extensions: Vec::new(),
        relax_extension_check: false,
    };
    host.attach(&Offline, "minimal_1", &o).unwrap();
    let e = host.remove_image(&Offline, "minimal_1").unwrap_err();
    assert!(matches!(e, Error::Busy(_)));
    assert_eq!(
        e.to_string(),
        "Image 'minimal_1' is not detached, refusing."
    );
    host.detach(&Offline, "minimal_1", &DetachOptions::new(false, false))
        .unwrap();

    // A read-only (immutable) directory goes, with its .nspawn file.
    host.mark_read_only("minimal_1", true).unwrap();
    assert!(host.find_image("minimal_1").unwrap().read_only);
    host.remove_image(&Offline, "minimal_1").unwrap();
    assert!(!s.join("/var/lib/portables/minimal_1").exists());
    assert!(!s.join("/var/lib/portables/minimal_1.nspawn").exists());
    host.remove_image(&Offline, "minimal_2").unwrap();
    assert!(!s.join("/var/lib/portables/minimal_2.raw").exists());
    // Through a link in /etc/portables: only the link goes.
    host.remove_image(&Offline, "minimal_3").unwrap();
    assert!(!s.join("/etc/portables/minimal_3").exists());
    assert!(s.join("/srv/minimal_3/usr/bin/minimald").exists());
    // Vendor images stay.
    assert!(matches!(
        host.remove_image(&Offline, "vendor_1"),
        Err(Error::ReadOnly(_))
    ));
    assert!(matches!(
        host.remove_image(&Offline, "nope"),
        Err(Error::NoSuchImage(_))
    ));
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn remove_never_crosses_into_a_mount() {
    let s = Scratch::new();
    let host = attach_host(&s);
    mkimage(&s.join("/var/lib/portables/minimal_m"), &[]);
    let inner = s.join("/var/lib/portables/minimal_m/run");
    run(&["mount", "-t", "tmpfs", "tmpfs", inner.to_str().unwrap()]);
    let _m = Mounted(inner.clone());
    fs::write(inner.join("precious"), "x").unwrap();
    let e = host.remove_image(&Offline, "minimal_m").unwrap_err();
    assert!(e.to_string().contains("mount point"), "{e}");
    assert!(inner.join("precious").exists());
}

#[test]
fn read_only_toggles() {
    let s = Scratch::new();
    let host = attach_host(&s);
    mkimage(&s.join("/var/lib/portables/minimal_d"), &[]);
    let raw = mkimage(
        &s.join("/var/lib/portables/minimal_r.raw"),
        &["--format", "squashfs"],
    );
    fs::set_permissions(&raw, fs::Permissions::from_mode(0o644)).unwrap();
    for name in ["minimal_d", "minimal_r"] {
        assert!(!host.find_image(name).unwrap().read_only, "{name}");
        host.mark_read_only(name, true).unwrap();
        assert!(host.find_image(name).unwrap().read_only, "{name}");
        host.mark_read_only(name, false).unwrap();
        assert!(!host.find_image(name).unwrap().read_only, "{name}");
    }
    host.mark_read_only("minimal_r", true).unwrap();
    assert_eq!(
        fs::metadata(&raw).unwrap().permissions().mode() & 0o777,
        0o444
    );
    host.mark_read_only("minimal_r", false).unwrap();
    assert_eq!(
        fs::metadata(&raw).unwrap().permissions().mode() & 0o777,
        0o644
    );
    mkimage(&s.join("/usr/lib/portables/vendor_1"), &[]);
    assert!(matches!(
        host.mark_read_only("vendor_1", false),
        Err(Error::ReadOnly(_))
    ));
    assert!(matches!(
        host.set_image_limit("minimal_d", 1 << 20),
        Err(Error::NotSupported(_))
    ));
    assert_eq!(
        host.set_pool_limit(1 << 20).unwrap_err().to_string(),
        "Quota is only supported on btrfs."
    );
    assert_eq!(
        host.set_image_limit("minimal_d", u64::MAX - 1)
            .unwrap_err()
            .to_string(),
        "New limit out of range"
    );
}

#[test]
fn block_device_read_only() {
    let s = Scratch::new();
    let raw = mkimage(&s.join("blk.raw"), &["--format", "ext4"]);
    let dev = run(&["losetup", "--find", "--show", raw.to_str().unwrap()])
        .trim()
        .to_string();
    struct Detach(String);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("losetup").args(["-d", &self.0]).status();
        }
    }
    let _d = Detach(dev.clone());
    let host = Host::system().unwrap();
    assert!(!host.find_image(&dev).unwrap().read_only);
    host.mark_read_only(&dev, true).unwrap();
    assert!(host.find_image(&dev).unwrap().read_only);
    host.mark_read_only(&dev, false).unwrap();
    assert!(!host.find_image(&dev).unwrap().read_only);
}

#[test]
fn btrfs_subvolumes_read_only_flag_and_quota() {
    let s = Scratch::new();
    let host = attach_host(&s);
    let disk = s.join("btrfs.img");
    fs::File::create(&disk).unwrap().set_len(256 << 20).unwrap();
    run(&["mkfs.btrfs", "-q", disk.to_str().unwrap()]);
    let pool = s.join("/var/lib/portables");
    run(&[
        "mount",
        "-o",
        "loop",
        disk.to_str().unwrap(),
        pool.to_str().unwrap(),
    ]);
    let _m = Mounted(pool.clone());
    let sub = pool.join("minimal_b");
    run(&["btrfs", "-q", "subvolume", "create", sub.to_str().unwrap()]);
    let img = host.find_image("minimal_b").unwrap();
    assert_eq!(img.kind, ImageType::Subvolume);
    assert!(!img.read_only);
    host.mark_read_only("minimal_b", true).unwrap();
    assert!(host.find_image("minimal_b").unwrap().read_only);
    assert!(run(&[
        "btrfs",
        "property",
        "get",
        "-ts",
        sub.to_str().unwrap(),
        "ro"
    ])
    .contains("ro=true"));
    host.mark_read_only("minimal_b", false).unwrap();
    assert!(!host.find_image("minimal_b").unwrap().read_only);

    // Without quotas, no figures (as v252).
    let img = host.find_image("minimal_b").unwrap();
    assert_eq!((img.usage, img.limit), (u64::MAX, u64::MAX));
    assert_eq!(host.pool_usage(), (u64::MAX, u64::MAX));
    run(&["btrfs", "quota", "enable", pool.to_str().unwrap()]);
    host.set_image_limit("minimal_b", 64 << 20).unwrap();
    host.set_pool_limit(128 << 20).unwrap();
    run(&["btrfs", "quota", "rescan", "-w", pool.to_str().unwrap()]);
    // The figures come from the quota tree: usage and limits of the qgroups.
    let img = host.find_image("minimal_b").unwrap();
    assert_eq!(img.limit, 64 << 20);
    assert_eq!(img.limit_exclusive, u64::MAX);
    assert!(img.usage > 0 && img.usage < 1 << 20, "{}", img.usage);
    assert!(img.usage_exclusive > 0 && img.usage_exclusive <= img.usage);
    let (usage, limit) = host.pool_usage();
    assert_eq!(limit, 128 << 20);
    assert!(usage > 0 && usage < u64::MAX, "{usage}");
    let q = run(&[
        "btrfs",
        "qgroup",
        "show",
        "-r",
        "--raw",
        pool.to_str().unwrap(),
    ]);
    assert!(q.contains(&(64u64 << 20).to_string()), "{q}");
    assert!(q.contains(&(128u64 << 20).to_string()), "{q}");
    host.remove_image(&Offline, "minimal_b").unwrap();
    assert!(!sub.exists());
}
