//! The compliance report of read-only directory images (root: chattr).

use portctl_engine::compliance::Status;
use portctl_tests::engine::compliance::*;
use portctl_tests::{set_immutable, Scratch};
use std::fs;

#[test]
fn read_only_image_missing_mount_points_fails_with_the_exact_list() {
    let s = Scratch::new();
    let host = host(&s);
    let img = sample(&s, "ro_1", &["--no-mount-points"]);
    set_immutable(&s.join(&img), true);
    let r = report(&host, &img, "default", None);
    assert!(!r.compliant());
    assert_eq!(status(&r, "mount-points"), Status::Failed);
    assert_eq!(status(&r, "host-files"), Status::Ok);
    let missing: Vec<&str> = r.missing.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        missing,
        ["/dev", "/proc", "/run", "/sys", "/tmp", "/var/tmp"]
    );
    let d = details(&r, "mount-points");
    // The profile shipped for the newest systemd leaves /tmp to DynamicUser=yes.
    assert!(d.contains("/tmp missing (for DynamicUser=yes)"), "{d}");
    set_immutable(&s.join(&img), false);
}

#[test]
fn required_paths_follow_the_profile() {
    let s = Scratch::new();
    let host = host(&s);
    let img = sample(&s, "nores_1", &[]);
    fs::remove_file(s.join(format!("{img}/etc/resolv.conf"))).unwrap();
    set_immutable(&s.join(&img), true);
    let default = report(&host, &img, "default", None);
    assert_eq!(status(&default, "host-files"), Status::Failed);
    assert!(details(&default, "host-files").contains("/etc/resolv.conf missing"));
    // strict and nonetwork do not bind resolv.conf.
    for profile in ["strict", "nonetwork"] {
        let r = report(&host, &img, profile, None);
        assert!(r.compliant(), "{profile}: {r:#?}");
    }
    set_immutable(&s.join(&img), false);
}
