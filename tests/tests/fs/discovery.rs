//! Image discovery in a host root: search path, types, names, lookup, read-only, timestamps.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use portctl_engine::image::UNKNOWN;
use portctl_engine::{Error, ImageType};
use portctl_tests::engine::discovery::*;
use portctl_tests::{make_tree, Node, Scratch};

#[test]
fn search_path_types_and_priority() {
    let s = Scratch::new();
    make_tree(
        s.path(),
        &[
            Node::Dir("/var/lib/portables/dup_1/usr"),
            Node::Dir("/usr/lib/portables/dup_1"),
            Node::File("/usr/lib/portables/vendor.raw", "x"),
            Node::File("/var/lib/portables/sq_1.raw", "raw bytes"),
            Node::File("/var/lib/portables/notraw.img", "x"),
            Node::Dir("/var/lib/portables/dir.raw"),
            Node::Dir("/var/lib/portables/.hidden_1"),
            Node::Dir("/var/lib/portables/.#locked"),
            Node::Dir("/var/lib/portables/bad~name"),
            Node::Dir("/run/portables/runtime_1"),
            Node::Dir("/usr/local/lib/portables/local"),
            Node::Dir("/run/systemd/portables/ignored"),
        ],
    );
    // A non-UTF-8 name is not a valid image name.
    let bad: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(b"caf\xe9");
    fs::create_dir(s.join("var/lib/portables").join(bad)).unwrap();
    let host = s.host();
    let found = names(&host);
    let expect = [
        (
            ".hidden_1",
            ImageType::Directory,
            "/var/lib/portables/.hidden_1",
        ),
        (
            "bad~name",
            ImageType::Directory,
            "/var/lib/portables/bad~name",
        ),
        (
            "dir.raw",
            ImageType::Directory,
            "/var/lib/portables/dir.raw",
        ),
        ("dup_1", ImageType::Directory, "/var/lib/portables/dup_1"),
        (
            "local",
            ImageType::Directory,
            "/usr/local/lib/portables/local",
        ),
        (
            "runtime_1",
            ImageType::Directory,
            "/run/portables/runtime_1",
        ),
        ("sq_1", ImageType::Raw, "/var/lib/portables/sq_1.raw"),
        ("vendor", ImageType::Raw, "/usr/lib/portables/vendor.raw"),
    ];
    let expect: Vec<_> = expect
        .iter()
        .map(|(n, t, p)| (n.to_string(), *t, p.to_string()))
        .collect();
    assert_eq!(found, expect);
}

#[test]
fn lookup_by_name_follows_portables_symlinks_inside_the_root() {
    let s = Scratch::new();
    make_tree(
        s.path(),
        &[
            Node::Dir("/var/lib/portables/app_1/etc"),
            Node::Link("/etc/portables/app_1", "/var/lib/portables/app_1"),
            Node::File("/var/lib/portables/sq_1.raw", "x"),
            Node::File("/var/lib/portables/plain", "a regular file without .raw"),
        ],
    );
    let host = s.host();
    let app = host.find_image("app_1").unwrap();
    assert_eq!(
        app.path,
        Path::new("/etc/portables/app_1"),
        "the symlink path is kept"
    );
    assert_eq!(app.kind, ImageType::Directory);
    let sq = host.find_image("sq_1").unwrap();
    assert_eq!(
        (sq.kind, sq.path.as_path()),
        (ImageType::Raw, Path::new("/var/lib/portables/sq_1.raw"))
    );
    // A regular file is only an image when its name ends in .raw.
    assert!(matches!(host.find_image("plain"), Err(Error::NoSuchImage(n)) if n == "plain"));
    assert_eq!(
        host.find_image("nope").unwrap_err().to_string(),
        "No image 'nope' found."
    );
}

#[test]
fn lookup_by_path_and_bad_arguments() {
    let s = Scratch::new();
    make_tree(
        s.path(),
        &[
            Node::Dir("/srv/images/app_2"),
            Node::File("/srv/images/disk.img", "x"),
            Node::File("/srv/images/foo_1.raw", "x"),
        ],
    );
    let host = s.host();
    let img = host.find_image("/srv/images/app_2").unwrap();
    assert_eq!(
        (img.name.as_str(), img.kind),
        ("app_2", ImageType::Directory)
    );
    let raw = host.find_image("/srv/images/foo_1.raw").unwrap();
    assert_eq!(raw.name, "foo_1");
    let err = |arg: &str| host.find_image(arg).unwrap_err().to_string();
    assert_eq!(
        err("/srv/images/disk.img"),
        "Type of image '/srv/images/disk.img' not recognized; supported image types are directories/btrfs subvolumes, block devices, and raw disk image files with suffix '.raw'."
    );
    assert_eq!(
        err("srv/images/app_2"),
        "Image name 'srv/images/app_2' is not valid or not a valid path."
    );
    assert_eq!(
        err("/srv/images/../images/app_2"),
        "Image path '/srv/images/../images/app_2' is not normalized."
    );
    assert_eq!(
        err("/srv//images/app_2"),
        "Image path '/srv//images/app_2' is not normalized."
    );
    assert_eq!(
        err("/srv/images/missing"),
        "No image '/srv/images/missing' found."
    );
    assert_eq!(
        err(".."),
        "Image name '..' is not valid or not a valid path."
    );
}

#[test]
fn escaping_symlinks_stay_in_the_host_root() {
    let s = Scratch::new();
    // Points "up" far beyond the root: resolution is clamped to the test root.
    make_tree(
        s.path(),
        &[
            Node::Dir("/images/inside"),
            Node::Link(
                "/var/lib/portables/esc",
                "../../../../../../../../images/inside",
            ),
            Node::Link("/var/lib/portables/loop", "loop"),
        ],
    );
    let host = s.host();
    let esc = host.find_image("esc").unwrap();
    assert_eq!(esc.kind, ImageType::Directory);
    // A symlink loop is no image, and listing does not fail because of it.
    assert!(host.find_image("loop").is_err());
    assert_eq!(names(&host).len(), 1);
}

#[test]
fn timestamps_and_usage() {
    let s = Scratch::new();
    make_tree(s.path(), &[Node::Dir("/var/lib/portables/d")]);
    let raw = s.join("/var/lib/portables/r.raw");
    fs::write(&raw, vec![7u8; 10000]).unwrap();
    let host = s.host();
    let d = host.find_image("d").unwrap();
    assert_eq!(d.mtime_usec, 0, "directories report no mtime");
    assert_eq!((d.usage, d.limit), (UNKNOWN, UNKNOWN));
    let r = host.find_image("r").unwrap();
    let meta = fs::metadata(&raw).unwrap();
    let mtime = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    assert_eq!(r.mtime_usec, mtime.as_micros() as u64);
    assert_eq!(r.limit, 10000);
    assert_eq!(r.usage, std::os::unix::fs::MetadataExt::blocks(&meta) * 512);
    // /var/tmp is on a disk file system that records birth times.
    if meta.created().is_ok() {
        assert!(r.crtime_usec > 0 && d.crtime_usec > 0);
    }
}

#[test]
fn dangling_portables_link_is_no_image() {
    let s = Scratch::new();
    fs::create_dir_all(s.join("/etc/portables")).unwrap();
    symlink("/var/lib/portables/gone_1", s.join("/etc/portables/gone_1")).unwrap();
    let host = s.host();
    assert!(names(&host).is_empty());
    assert!(matches!(
        host.find_image("gone_1"),
        Err(Error::NoSuchImage(_))
    ));
}

/// A pool large enough to be inspected by several threads lists every image once, sorted,
/// each as a lookup by name sees it.
#[test]
fn large_pool() {
    let s = Scratch::new();
    let pool = s.join("/var/lib/portables");
    fs::create_dir_all(&pool).unwrap();
    for i in 0..700 {
        if i % 2 == 0 {
            fs::create_dir(pool.join(format!("img{i:03}"))).unwrap();
        } else {
            fs::write(pool.join(format!("img{i:03}.raw")), b"x").unwrap();
        }
    }
    let host = s.host();
    let listed = host.list_images().unwrap();
    let names: Vec<&str> = listed.iter().map(|i| i.name.as_str()).collect();
    let expected: Vec<String> = (0..700).map(|i| format!("img{i:03}")).collect();
    assert_eq!(names, expected);
    for i in [0, 1, 350, 699] {
        let one = host.find_image(&format!("img{i:03}")).unwrap();
        let l = &listed[i];
        assert_eq!(
            (
                &l.path,
                l.kind,
                l.read_only,
                l.crtime_usec,
                l.mtime_usec,
                l.usage
            ),
            (
                &one.path,
                one.kind,
                one.read_only,
                one.crtime_usec,
                one.mtime_usec,
                one.usage
            )
        );
    }
}
