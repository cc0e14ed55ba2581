//! The engine alone, without D-Bus or a client: `cargo bench -p portctl-tests`. Scratch host
//! roots live in /var/tmp (a disk, so that syncs cost what they cost); raw images need root
//! (loop devices). Whole-daemon figures against systemd-portabled: `bench/run`.

use std::path::Path;

use portctl_engine::os_release::OsRelease;
use portctl_engine::portable::{AttachOptions, CopyMode, DetachOptions, Offline};
use portctl_engine::Host;
use portctl_tests::{attach_host, mkimage, Scratch};

fn main() {
    divan::main();
}

fn opts() -> AttachOptions {
    AttachOptions {
        matches: vec!["minimal".into()],
        profile: "default".into(),
        runtime: false,
        copy: CopyMode::Auto,
        force: false,
        extensions: Vec::new(),
        relax_extension_check: false,
    }
}

fn host_with(images: &[(&str, &[&str])]) -> (Scratch, Host) {
    let s = Scratch::new();
    let host = attach_host(&s);
    for (name, args) in images {
        mkimage(&s.join(Path::new("/var/lib/portables").join(name)), args);
    }
    (s, host)
}

/// Attach and detach, as `portctl attach` + `portctl detach` do in the daemon.
#[divan::bench(args = ["minimal_1", "minimal_sq.raw", "minimal_ext4.raw"], sample_count = 30)]
fn attach_detach(bencher: divan::Bencher, image: &str) {
    let (_s, host) = host_with(&[
        ("minimal_1", &[]),
        (
            "minimal_sq.raw",
            &["--format", "squashfs", "--prefix", "minimal"],
        ),
        (
            "minimal_ext4.raw",
            &["--format", "ext4", "--prefix", "minimal"],
        ),
    ]);
    let arg = format!("/var/lib/portables/{image}");
    bencher.bench_local(|| {
        host.attach(&Offline, &arg, &opts()).unwrap();
        host.detach(&Offline, &arg, &DetachOptions::new(false, false))
            .unwrap();
    });
}

/// Opening a raw image: loop device, file system detection, detached mount, and back.
#[divan::bench(args = ["minimal_sq.raw", "minimal_ext4.raw"], sample_count = 50)]
fn open_raw_image(bencher: divan::Bencher, image: &str) {
    let (_s, host) = host_with(&[
        (
            "minimal_sq.raw",
            &["--format", "squashfs", "--prefix", "minimal"],
        ),
        (
            "minimal_ext4.raw",
            &["--format", "ext4", "--prefix", "minimal"],
        ),
    ]);
    let img = host.find_image(image.trim_end_matches(".raw")).unwrap();
    bencher.bench_local(|| drop(host.open_raw_image(&img, false).unwrap()));
}

/// Discovery of 1,000 images (a third each directories, squashfs and ext4 files).
#[divan::bench(sample_count = 30)]
fn list_1000_images(bencher: divan::Bencher) {
    let (s, host) = host_with(&[
        ("template", &[]),
        ("template_sq.raw", &["--format", "squashfs"]),
    ]);
    let pool = s.join("/var/lib/portables");
    for i in 0..1000 {
        let to = pool.join(format!("l{i:04}"));
        match i % 2 {
            0 => std::fs::create_dir_all(to.join("usr/lib")).unwrap(),
            _ => {
                std::fs::copy(pool.join("template_sq.raw"), to.with_extension("raw")).unwrap();
            }
        }
    }
    bencher.bench_local(|| host.list_images().unwrap().len());
}

/// Metadata of a squashfs image with 50 units (what `inspect` shows).
#[divan::bench(sample_count = 50)]
fn metadata_50_units(bencher: divan::Bencher) {
    let (_s, host) = host_with(&[("fifty_1.raw", &["--format", "squashfs", "--units", "50"])]);
    bencher.bench_local(|| {
        host.image_metadata(&Offline, "fifty_1", &[], &[], false)
            .unwrap()
    });
}

/// Parsing an os-release file.
#[divan::bench]
fn parse_os_release(bencher: divan::Bencher) {
    let data = b"NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL=\"https://www.debian.org/\"\nSUPPORT_URL=\"https://www.debian.org/support\"\nBUG_REPORT_URL=\"https://bugs.debian.org/\"\n# comment\nPORTABLE_PREFIXES='a b c'\n";
    bencher.bench(|| OsRelease::parse(divan::black_box(data)));
}
