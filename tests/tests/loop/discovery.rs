//! Read-only detection of images: immutable directories, read-only bind mounts (root).

use portctl_tests::{make_tree, set_immutable, Node, Scratch};
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// A read-only bind mount shares its device with the writable original: a listing must still
/// see which images sit on the read-only mount (the per-mount cache of `ListImages`).
#[test]
fn read_only_bind_mount_in_the_listing() {
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let s = Scratch::new();
    make_tree(
        s.path(),
        &[
            Node::Dir("/var/lib/portables/rw"),
            Node::Dir("/srv/images/ro"),
            Node::Dir("/run/portables"),
        ],
    );
    let target = s.join("/run/portables");
    let bind = |args: &[&str]| {
        let ok = std::process::Command::new("mount")
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount {args:?}");
    };
    bind(&[
        "--bind",
        s.join("/srv/images").to_str().unwrap(),
        target.to_str().unwrap(),
    ]);
    let _unmount = Unmount(target.clone());
    bind(&["-o", "remount,bind,ro", target.to_str().unwrap()]);
    let host = s.host();
    let listed: Vec<(String, bool)> = host
        .list_images()
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.read_only))
        .collect();
    assert_eq!(
        listed,
        [("ro".to_string(), true), ("rw".to_string(), false)]
    );
}

#[test]
fn read_only_detection() {
    let s = Scratch::new();
    make_tree(
        s.path(),
        &[
            Node::Dir("/var/lib/portables/rw"),
            Node::Dir("/var/lib/portables/immutable"),
            Node::Dir("/usr/lib/portables/vendor"),
            Node::File("/var/lib/portables/w.raw", "x"),
            Node::File("/var/lib/portables/r.raw", "x"),
        ],
    );
    fs::set_permissions(
        s.join("/var/lib/portables/r.raw"),
        fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    set_immutable(&s.join("/var/lib/portables/immutable"), true);
    let host = s.host();
    let ro = |n: &str| host.find_image(n).unwrap().read_only;
    assert!(!ro("rw"));
    assert!(ro("immutable"));
    assert!(ro("vendor"));
    assert!(!ro("w"));
    assert!(ro("r"));
    // A listing (statx of the entries, few opens) says the same as a lookup.
    for image in host.list_images().unwrap() {
        assert_eq!(image.read_only, ro(&image.name), "{}", image.name);
        assert_eq!(
            image.crtime_usec,
            host.find_image(&image.name).unwrap().crtime_usec
        );
    }
}
