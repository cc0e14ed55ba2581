//! Raw and block images on the real kernel (root, loop devices, detached mounts): every file
//! system type and a GPT DDI, repair of writable images, and broken inputs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use portctl_engine::compliance::{check_image, repair, Report, Request, Status};
use portctl_engine::{Host, Image};
use portctl_tests::{make_tree, mkimage, Node, Scratch};

fn host(s: &Scratch) -> Host {
    make_tree(
        s.path(),
        &[
            Node::File("/etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
            Node::File("/etc/resolv.conf", "nameserver 127.0.0.1\n"),
            Node::Dir("/images"),
        ],
    );
    s.host()
}

fn raw(s: &Scratch, format: &str, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["--format", format, "--prefix", "minimal"];
    args.extend_from_slice(extra);
    mkimage(&s.join(format!("/images/{name}.raw")), &args);
    format!("/images/{name}.raw")
}

fn report_of(host: &Host, image: &Image, matches: Option<&[String]>) -> (Report, String) {
    let opened = host.open_image_with(image, false).unwrap();
    let profile = host.service_profile("default").unwrap();
    let r = check_image(&Request {
        host,
        image,
        root: &opened.root,
        profile: &profile,
        matches,
        writable: opened.can_write,
        layout: &opened.layout,
        version: portctl_engine::version::Version(252),
    });
    (r, opened.layout.clone())
}

#[test]
fn every_type_is_inspected_and_validated() {
    let s = Scratch::new();
    let host = host(&s);
    for (format, layout, writable) in [
        ("squashfs", "squashfs", false),
        ("erofs", "erofs", false),
        ("ext4", "ext4", true),
        ("ddi", "GPT partition 1 (squashfs)", false),
    ] {
        let path = raw(&s, format, &format!("minimal_{format}"), &[]);
        let image = host.find_image(&path).unwrap();
        let (r, got_layout) = report_of(&host, &image, None);
        assert_eq!(got_layout, layout, "{format}");
        assert_eq!(r.writable, writable, "{format}");
        assert!(r.compliant(), "{format}: {r:#?}");
        assert!(
            r.checks.iter().all(|c| c.status == Status::Ok),
            "{format}: {r:#?}"
        );
        assert_eq!(r.units, ["minimal-test.service"], "{format}");
        assert_eq!(r.os_release.as_deref(), Some("/etc/os-release"), "{format}");
    }
}

#[test]
fn writable_ext4_is_repaired_and_then_complies() {
    let s = Scratch::new();
    let host = host(&s);
    let path = raw(
        &s,
        "ext4",
        "minimal_bare1",
        &["--no-mount-points", "--no-host-files"],
    );
    let image = host.find_image(&path).unwrap();
    let (r, _) = report_of(&host, &image, None);
    assert!(r.compliant(), "writable: repairable: {r:#?}");
    assert_eq!(r.missing.len(), 8);
    {
        let opened = host.open_image_with(&image, true).unwrap();
        assert!(opened.writable);
        let created = repair(&opened.root, &r.missing).unwrap();
        assert_eq!(created.len(), 9, "8 paths and /var: {created:?}");
    }
    let (again, _) = report_of(&host, &image, None);
    assert!(
        again.missing.is_empty() && again.checks.iter().all(|c| c.status == Status::Ok),
        "{again:#?}"
    );
}

#[test]
fn read_only_squashfs_missing_mount_points_is_refused_with_the_list() {
    let s = Scratch::new();
    let host = host(&s);
    let path = raw(&s, "squashfs", "minimal_bare2", &["--no-mount-points"]);
    let image = host.find_image(&path).unwrap();
    let (r, _) = report_of(&host, &image, None);
    assert!(!r.compliant());
    let missing: Vec<&str> = r.missing.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        missing,
        ["/dev", "/proc", "/run", "/sys", "/tmp", "/var/tmp"]
    );
    // Asking for write access changes nothing: squashfs is never written to.
    let opened = host.open_image_with(&image, true).unwrap();
    assert!(!opened.writable && !opened.can_write);
    assert!(repair(&opened.root, &r.missing).is_err());
}

fn open_err(host: &Host, path: &str) -> String {
    let image = host.find_image(path).unwrap();
    host.open_image(&image).unwrap_err().to_string()
}

#[test]
fn broken_inputs_give_their_own_errors() {
    let s = Scratch::new();
    let host = host(&s);
    fs::write(s.join("/images/empty.raw"), "").unwrap();
    assert_eq!(
        open_err(&host, "/images/empty.raw"),
        "Couldn't identify a suitable partition table or file system in '/images/empty.raw': the file is empty."
    );
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(s.join("/images/random.raw"), noise).unwrap();
    let e = open_err(&host, "/images/random.raw");
    assert!(e.contains("no known superblock"), "{e}");
    fs::write(s.join("/images/zeros.raw"), vec![0u8; 1 << 20]).unwrap();
    assert!(open_err(&host, "/images/zeros.raw").contains("only zero bytes"));

    let sq = raw(&s, "squashfs", "trunc_1", &[]);
    let bytes = fs::read(s.join(&sq)).unwrap();
    fs::write(s.join(&sq), &bytes[..bytes.len() / 3]).unwrap();
    let e = open_err(&host, &sq);
    assert!(
        e.contains("Cannot mount '/images/trunc_1.raw'") && e.contains("squashfs"),
        "{e}"
    );

    let ddi = raw(&s, "ddi", "badcrc_1", &[]);
    let mut bytes = fs::read(s.join(&ddi)).unwrap();
    bytes[512 + 40] ^= 0xff;
    fs::write(s.join(&ddi), bytes).unwrap();
    assert_eq!(
        open_err(&host, &ddi),
        "Bad partition table in '/images/badcrc_1.raw': GPT header checksum mismatch."
    );

    let two = s.join("/images/tworoots_1.raw");
    two_root_partitions(&two);
    assert_eq!(
        open_err(&host, "/images/tworoots_1.raw"),
        "Multiple suitable root partitions found in image '/images/tworoots_1.raw'."
    );

    fs::write(s.join("/images/disk.img"), bytes_of_squashfs(&s)).unwrap();
    assert!(host
        .find_image("/images/disk.img")
        .unwrap_err()
        .to_string()
        .contains("not recognized"));
}

fn bytes_of_squashfs(s: &Scratch) -> Vec<u8> {
    fs::read(s.join(raw(s, "squashfs", "src_1", &[]))).unwrap()
}

fn two_root_partitions(path: &Path) {
    let root = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
    let f = fs::File::create(path).unwrap();
    f.set_len(8 << 20).unwrap();
    let mut child = Command::new("sfdisk")
        .args(["-q", "--label", "gpt"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(
        child.stdin.take().unwrap(),
        "start=2048, size=4096, type={root}\nstart=6144, size=4096, type={root}"
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
}

/// A read-only loop device set up by the test, detached on drop.
struct TestLoop(PathBuf);

impl Drop for TestLoop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn block_device_images() {
    let s = Scratch::new();
    host(&s); // lays out /images
    let path = raw(&s, "ext4", "blk_1", &[]);
    let out = Command::new("losetup")
        .args(["--find", "--show", "--read-only"])
        .arg(s.join(&path))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dev = TestLoop(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()));
    let real = Host::system().unwrap();
    let image = real.find_image(dev.0.to_str().unwrap()).unwrap();
    assert_eq!(image.kind, portctl_engine::ImageType::Block);
    assert!(image.read_only, "BLKROGET of a read-only loop device");
    assert_eq!(image.usage, fs::metadata(s.join(&path)).unwrap().len());
    let matches = vec!["minimal".to_string()];
    let (r, layout) = report_of(&real, &image, Some(&matches));
    assert_eq!(layout, "ext4");
    assert!(!r.writable, "read-only unless asked otherwise");
    assert!(r.compliant(), "{r:#?}");
}

#[test]
fn usr_only_ddi_and_single_partition_mbr() {
    let s = Scratch::new();
    let host = host(&s);
    // /usr only: the tree is an empty root with the partition beneath /usr.
    let usr = raw(&s, "ddi-usr", "minimal_usr", &[]);
    let image = host.find_image(&usr).unwrap();
    let (r, layout) = report_of(&host, &image, None);
    assert_eq!(layout, "/usr: GPT partition 1 (squashfs)");
    assert_eq!(r.units, ["minimal-test.service"]);
    assert_eq!(r.os_release.as_deref(), Some("/usr/lib/os-release"));
    let exec = r.checks.iter().find(|c| c.rule == "executables").unwrap();
    assert_eq!(exec.status, Status::Ok, "{exec:#?}");
    let mbr = raw(&s, "mbr-ext4", "minimal_mbr", &[]);
    let image = host.find_image(&mbr).unwrap();
    let (r, layout) = report_of(&host, &image, None);
    assert_eq!(layout, "MBR partition 1 (ext4)");
    assert!(
        r.compliant() && r.checks.iter().all(|c| c.status == Status::Ok),
        "{r:#?}"
    );
}

/// Which way erofs was mounted is observable: from the file itself where the kernel can
/// (Linux 6.12 and later), through a loop device before.
#[test]
fn loop_erofs_is_mounted_from_the_file_where_the_kernel_can() {
    let s = Scratch::new();
    let host = host(&s);
    let path = raw(&s, "erofs", "minimal_ero", &[]);
    let image = host.find_image(&path).unwrap();
    let opened = host.open_image_with(&image, false).unwrap();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release
        .trim()
        .split(['.', '-'])
        .map(|x| x.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    let file_backed = (major, minor) >= (6, 12);
    assert_eq!(
        opened.loop_devices,
        usize::from(!file_backed),
        "Linux {release}"
    );
}
