//! What the attack found, where it needs root: mixed copies of raw images, ext4 mount options (loop devices).

use portctl_engine::portable::{AttachOptions, CopyMode, Offline};
use portctl_tests::engine::security::*;
use portctl_tests::{attach_host, loops_backed_by, mkimage, snapshot, Scratch};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

#[test]
fn fs_mixed_copies_never_replace_an_image_and_stay_sparse() {
    let s = Scratch::new();
    let host = attach_host(&s);
    // An image of the admin's at the place the copy would go.
    mkimage(&s.join("/etc/portables/minimal_1"), &["--prefix", "other"]);
    fs::write(s.join("/etc/portables/minimal_1/KEEP"), "mine\n").unwrap();
    mkimage(&s.join("/srv/images/minimal_1"), &[]);
    let before = snapshot(s.path(), &["/etc"]);
    let mixed = AttachOptions {
        copy: CopyMode::Mixed,
        ..opts(&["minimal"], "default")
    };
    let e = host
        .attach(&Offline, "/srv/images/minimal_1", &mixed)
        .unwrap_err();
    assert!(
        e.to_string().contains("/etc/portables/minimal_1") && e.to_string().contains("exists"),
        "{e}"
    );
    assert_eq!(
        snapshot(s.path(), &["/etc"]),
        before,
        "the admin's image is intact"
    );

    // A sparse raw image (2 GiB, a few MiB of data) is copied sparsely.
    let raw = mkimage(
        &s.join("/srv/images/sparse_1.raw"),
        &["--format", "squashfs", "--prefix", "sparse"],
    );
    fs::OpenOptions::new()
        .write(true)
        .open(&raw)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    host.attach(
        &Offline,
        "/srv/images/sparse_1.raw",
        &AttachOptions {
            copy: CopyMode::Mixed,
            ..opts(&["sparse"], "default")
        },
    )
    .unwrap();
    let copy = fs::metadata(s.join("/etc/portables/sparse_1.raw")).unwrap();
    assert_eq!(copy.len(), 2 << 30);
    assert!(
        copy.blocks() * 512 < 64 << 20,
        "copy allocates {} bytes",
        copy.blocks() * 512
    );
    assert_eq!(
        fs::read(&raw).unwrap()[..1 << 20],
        fs::read(s.join("/etc/portables/sparse_1.raw")).unwrap()[..1 << 20]
    );
}

/// The mount options of a read-only ext4 image are portctl's (`/proc/fs/ext4/DEV/options`
/// shows them), whatever its superblock asks for.
#[test]
fn loop_ext4_mounts_ignore_the_images_error_behaviour() {
    let s = Scratch::new();
    let host = attach_host(&s);
    let img = mkimage(
        &s.join("/srv/images/panic_1.raw"),
        &["--format", "ext4", "--prefix", "panic"],
    );
    let out = Command::new("tune2fs")
        .args(["-e", "panic", "-E", "mount_opts=errors=panic"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = host.find_image("/srv/images/panic_1.raw").unwrap();
    let opened = host.open_image(&image).unwrap();
    let loops = loops_backed_by(&s.join("/srv/images"));
    assert_eq!(loops.len(), 1, "{loops:?}");
    let dev = loops[0].split(':').next().unwrap();
    let options = fs::read_to_string(Path::new("/proc/fs/ext4").join(dev).join("options")).unwrap();
    assert!(
        options.lines().any(|l| l == "errors=remount-ro"),
        "{options}"
    );
    assert!(!options.contains("errors=panic"), "{options}");
    assert!(options.lines().any(|l| l == "ro"), "{options}");
    drop(opened);
}
