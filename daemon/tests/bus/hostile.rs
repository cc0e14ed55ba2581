//! Hostile images through portctld: unit files that are links out of the
//! image, loops, FIFOs, sockets, devices, directories, huge or too many; unit names no unit
//! may have; os-release junk; broken raw images and GPTs; an image swapped for a FIFO while it
//! is being opened. Each must give a clear error (or, for names that are no unit names, be
//! ignored as systemd ignores them), read nothing outside the image, write nothing, leave no
//! loop device or mount, and leave the daemon serving. (A unit name with `/` or of more than
//! 255 bytes cannot exist in a directory; the longest possible one, 255 bytes, is in here.)

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use portctl_dbus::proxy::ManagerProxy;
use portctl_tests::{
    attach_host, loops_backed_by, mkimage, mounts_below, snapshot, Daemon, PrivateBus, Scratch,
};

/// What no image may ever show: it sits in the host root, outside every image.
const SECRET: &str = "TOPSECRET-host-file";

const STATE: [&str; 6] = [
    "/etc/systemd/system.attached",
    "/run/systemd/system.attached",
    "/etc/portables",
    "/run/portables",
    "/var/lib/portctl",
    "/run/portctl",
];

fn unit_dir(image: &Path) -> PathBuf {
    image.join("usr/lib/systemd/system")
}

/// A directory image `name` (units `evil-*`) changed by `f`.
fn dir_image(s: &Scratch, name: &str, f: impl FnOnce(&Path)) -> String {
    let path = s.join(format!("/var/lib/portables/{name}"));
    mkimage(&path, &["--prefix", "evil"]);
    f(&path);
    format!("/var/lib/portables/{name}")
}

/// Replaces the image's unit with what `f` puts at its path.
fn unit_replaced(s: &Scratch, name: &str, f: impl FnOnce(&Path)) -> String {
    dir_image(s, name, |img| {
        let unit = unit_dir(img).join("evil-test.service");
        fs::remove_file(&unit).unwrap();
        f(&unit);
    })
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A GPT disk image (512-byte sectors, 8 MiB) with valid checksums: `entries` root
/// partitions (first and last LBA), in a table that claims `count` entries of 128 bytes.
fn gpt_image(path: &Path, count: u32, entries: &[(u64, u64)]) {
    const ROOT_X86_64: [u8; 16] = [
        0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d, 0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84, 0xb7,
        0x09,
    ];
    let mut disk = vec![0u8; 8 << 20];
    // Protective MBR.
    disk[446 + 4] = 0xEE;
    disk[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    disk[446 + 12..446 + 16].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xAA;
    // The entries (only the real ones are stored; the checksum covers what `count` says,
    // as far as the disk goes).
    let table = 1024;
    for (i, (first, last)) in entries.iter().enumerate() {
        let e = table + i * 128;
        disk[e..e + 16].copy_from_slice(&ROOT_X86_64);
        disk[e + 16] = i as u8 + 1;
        disk[e + 32..e + 40].copy_from_slice(&first.to_le_bytes());
        disk[e + 40..e + 48].copy_from_slice(&last.to_le_bytes());
    }
    let array_len = (count as usize * 128).min(disk.len() - table);
    let array_crc = portctl_engine::parse::gpt::crc32(&disk[table..table + array_len]);
    let h = 512;
    disk[h..h + 8].copy_from_slice(b"EFI PART");
    disk[h + 8..h + 12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    disk[h + 12..h + 16].copy_from_slice(&92u32.to_le_bytes());
    disk[h + 24..h + 32].copy_from_slice(&1u64.to_le_bytes());
    disk[h + 32..h + 40].copy_from_slice(&((8u64 << 11) - 1).to_le_bytes());
    disk[h + 40..h + 48].copy_from_slice(&34u64.to_le_bytes());
    disk[h + 48..h + 56].copy_from_slice(&((8u64 << 11) - 34).to_le_bytes());
    disk[h + 72..h + 80].copy_from_slice(&2u64.to_le_bytes());
    disk[h + 80..h + 84].copy_from_slice(&count.to_le_bytes());
    disk[h + 84..h + 88].copy_from_slice(&128u32.to_le_bytes());
    disk[h + 88..h + 92].copy_from_slice(&array_crc.to_le_bytes());
    let header_crc = portctl_engine::parse::gpt::crc32(&disk[h..h + 92]);
    disk[h + 16..h + 20].copy_from_slice(&header_crc.to_le_bytes());
    fs::write(path, disk).unwrap();
}

/// The hostile images: name, path to attach, and what the error must say (`None`: the
/// attach succeeds, and only the unit named `evil-test.service` is attached).
fn corpus(s: &Scratch) -> Vec<(&'static str, String, Option<&'static str>)> {
    let mut c = Vec::new();
    c.push((
        "absolute link out of the image",
        unit_replaced(s, "abs_1", |u| symlink("/secret.service", u).unwrap()),
        Some("evil-test.service"),
    ));
    c.push((
        "relative link out of the image",
        unit_replaced(s, "rel_1", |u| {
            symlink("../../../../../../../../secret.service", u).unwrap()
        }),
        Some("evil-test.service"),
    ));
    c.push((
        "symlink loop",
        unit_replaced(s, "loop_1", |u| {
            symlink("evil-b.service", u).unwrap();
            symlink("evil-test.service", u.with_file_name("evil-b.service")).unwrap();
        }),
        Some("Too many levels of symbolic links"),
    ));
    c.push((
        "FIFO",
        unit_replaced(s, "fifo_1", |u| run(Command::new("mkfifo").arg(u))),
        Some("evil-test.service"),
    ));
    c.push((
        "socket",
        unit_replaced(s, "sock_1", |u| {
            std::mem::forget(std::os::unix::net::UnixListener::bind(u).unwrap())
        }),
        Some("evil-test.service"),
    ));
    c.push((
        "device node",
        unit_replaced(s, "dev_1", |u| {
            run(Command::new("mknod").arg(u).args(["b", "7", "0"]))
        }),
        Some("evil-test.service"),
    ));
    c.push((
        "directory",
        unit_replaced(s, "dir_1", |u| fs::create_dir(u).unwrap()),
        Some("Couldn't find any matching unit files"),
    ));
    c.push((
        "1 GiB unit file",
        unit_replaced(s, "huge_1", |u| {
            fs::File::create(u).unwrap().set_len(1 << 30).unwrap()
        }),
        Some("evil-test.service"),
    ));
    c.push((
        "10,000 unit files",
        dir_image(s, "many_1", |img| {
            for i in 0..10_000 {
                fs::write(
                    unit_dir(img).join(format!("evil-u{i}.service")),
                    "[Service]\n",
                )
                .unwrap();
            }
        }),
        Some("4096"),
    ));
    c.push((
        "names no unit may have",
        dir_image(s, "names_1", |img| {
            use std::os::unix::ffi::OsStrExt;
            let d = unit_dir(img);
            fs::write(d.join("evil-new\nline.service"), "[Service]\n").unwrap();
            fs::write(
                d.join(std::ffi::OsStr::from_bytes(b"evil-\xff\xfe.service")),
                "[Service]\n",
            )
            .unwrap();
        }),
        None,
    ));
    c.push((
        "a unit name of 255 bytes (no room for NAME.d)",
        dir_image(s, "long_1", |img| {
            fs::write(
                unit_dir(img).join(format!("evil-{}.service", "a".repeat(242))),
                "[Service]\n",
            )
            .unwrap();
        }),
        Some("is too long to attach"),
    ));
    c.push((
        "os-release of binary junk",
        dir_image(s, "junk_1", |img| {
            let junk: Vec<u8> = (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            fs::write(img.join("usr/lib/os-release"), junk).unwrap();
        }),
        Some("ID"),
    ));
    c.push((
        "os-release with a 1 MiB line",
        dir_image(s, "longline_1", |img| {
            fs::write(
                img.join("usr/lib/os-release"),
                format!("ID={}\n", "x".repeat(1 << 20)),
            )
            .unwrap();
        }),
        Some("os-release"),
    ));
    c.push((
        "os-release without '=' and with an unterminated quote",
        dir_image(s, "noeq_1", |img| {
            fs::write(img.join("usr/lib/os-release"), "ID\nNAME=\"unterminated\n").unwrap();
        }),
        Some("ID"),
    ));
    // Raw images.
    let sq = s.join("/var/tmp/good.raw");
    mkimage(&sq, &["--format", "squashfs", "--prefix", "evil"]);
    let good = fs::read(&sq).unwrap();
    let raw = |name: &str, bytes: &[u8]| {
        fs::write(s.join(format!("/var/lib/portables/{name}")), bytes).unwrap();
        format!("/var/lib/portables/{name}")
    };
    c.push((
        "truncated squashfs",
        raw("trunc_1.raw", &good[..good.len() / 2]),
        Some("trunc_1"),
    ));
    c.push((
        "zero-filled",
        raw("zero_1.raw", &vec![0u8; 1 << 20]),
        Some("zero"),
    ));
    let noise: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    c.push(("random", raw("random_1.raw", &noise), Some("random_1")));
    let mut bad_sb = good.clone();
    bad_sb[12..16].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes()); // block size
    c.push((
        "squashfs with a corrupted superblock",
        raw("badsq_1.raw", &bad_sb),
        Some("badsq_1"),
    ));
    let ext4 = s.join("/var/tmp/good-ext4.raw");
    mkimage(&ext4, &["--format", "ext4", "--prefix", "evil"]);
    let mut bad_ext4 = fs::read(&ext4).unwrap();
    bad_ext4[1024 + 24..1024 + 28].copy_from_slice(&0xFFFFu32.to_le_bytes()); // log block size
    c.push((
        "ext4 with a corrupted superblock",
        raw("badext4_1.raw", &bad_ext4),
        Some("badext4_1"),
    ));
    gpt_image(
        &s.join("/var/lib/portables/gptcount_1.raw"),
        1_000_000,
        &[(2048, 4095)],
    );
    c.push((
        "GPT claiming a million entries",
        "/var/lib/portables/gptcount_1.raw".into(),
        Some("gptcount_1"),
    ));
    gpt_image(
        &s.join("/var/lib/portables/gptoverlap_1.raw"),
        128,
        &[(2048, 8191), (4096, 10239)],
    );
    c.push((
        "GPT with overlapping partitions",
        "/var/lib/portables/gptoverlap_1.raw".into(),
        Some("gptoverlap_1"),
    ));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_images_are_refused_and_change_nothing() {
    let s = Scratch::new();
    attach_host(&s);
    fs::write(
        s.join("/secret.service"),
        format!("[Service]\nExecStart={SECRET}\n"),
    )
    .unwrap();
    let cases = corpus(&s);
    let bus = PrivateBus::start();
    let daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_portctld")),
        &bus,
        s.path(),
        &[],
    );
    let conn = bus.connect().await;
    let m = ManagerProxy::new(&conn).await.unwrap();
    // (A detach leaves /etc/portables, as v252's does.)
    fs::create_dir_all(s.join("/etc/portables")).unwrap();
    let before = snapshot(s.path(), &STATE);
    let mut wrong = Vec::new();
    for (what, path, expected) in &cases {
        let meta = tokio::time::timeout(
            Duration::from_secs(30),
            m.get_image_metadata(path, &["evil"]),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: GetImageMetadata hangs"));
        let attach = tokio::time::timeout(
            Duration::from_secs(30),
            m.attach_image(path, &["evil"], "default", false, ""),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: AttachImage hangs"));
        match expected {
            Some(needle) => {
                let e = match attach {
                    Ok(c) => format!("attached: {c:?}"),
                    Err(e) => e.to_string(),
                };
                eprintln!("{what}: {e}");
                if !e.contains(needle) {
                    wrong.push(format!("{what}: {e}"));
                }
                assert!(!e.contains(SECRET), "{what} leaked the host file: {e}");
                if let Ok((_, _, units)) = &meta {
                    for content in units.values() {
                        assert!(
                            !String::from_utf8_lossy(content).contains(SECRET),
                            "{what}: metadata shows the host file"
                        );
                    }
                }
                assert_eq!(snapshot(s.path(), &STATE), before, "{what} wrote something");
            }
            None => {
                let changes = attach.unwrap_or_else(|e| panic!("{what}: {e}"));
                let units: BTreeSet<String> = changes
                    .iter()
                    .filter(|(kind, ..)| kind == "copy")
                    .map(|(_, p, _)| p.rsplit('/').next().unwrap().to_string())
                    .collect();
                assert_eq!(
                    units,
                    BTreeSet::from(["evil-test.service".to_string()]),
                    "{what}"
                );
                m.detach_image(path, false).await.unwrap();
                assert_eq!(
                    snapshot(s.path(), &STATE),
                    before,
                    "{what}: detach left something"
                );
            }
        }
        assert_eq!(
            loops_backed_by(s.path()),
            Vec::<String>::new(),
            "{what} left a loop device"
        );
        assert_eq!(
            mounts_below("self", s.path()),
            Vec::<String>::new(),
            "{what} left a mount"
        );
    }
    assert!(
        wrong.is_empty(),
        "unexpected answers:\n{}",
        wrong.join("\n")
    );
    // Still serving, the same process.
    assert!(m.list_images().await.unwrap().len() >= cases.len());
    assert!(Path::new(&format!("/proc/{}", daemon.pid())).exists());
}

/// An image path that is swapped between a squashfs image and a FIFO (or a link to a host
/// file) while the daemon opens it: every call ends (no blocking open), none shows the host
/// file, and nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_swapped_while_it_is_opened() {
    let s = Scratch::new();
    attach_host(&s);
    fs::write(
        s.join("/secret.service"),
        format!("[Service]\nExecStart={SECRET}\n"),
    )
    .unwrap();
    let pool = s.join("/var/lib/portables");
    mkimage(
        &s.join("/var/tmp/good.raw"),
        &["--format", "squashfs", "--prefix", "swap"],
    );
    run(Command::new("mkfifo").arg(s.join("/var/tmp/fifo.raw")));
    let bus = PrivateBus::start();
    let _daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_portctld")),
        &bus,
        s.path(),
        &[],
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = std::sync::Arc::clone(&stop);
        let pool = pool.clone();
        std::thread::spawn(move || {
            let targets = ["/var/tmp/good.raw", "/var/tmp/fifo.raw", "/secret.service"];
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tmp = pool.join(".swap.tmp");
                let _ = fs::remove_file(&tmp);
                symlink(targets[i % targets.len()], &tmp).unwrap();
                fs::rename(&tmp, pool.join("swap_1.raw")).unwrap();
                i += 1;
            }
        })
    };
    let conn = bus.connect().await;
    let m = ManagerProxy::new(&conn).await.unwrap();
    let mut outcomes = BTreeSet::new();
    for _ in 0..200 {
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            m.get_image_metadata("swap_1", &["swap"]),
        )
        .await
        .expect("a call blocked on the swapped image");
        match r {
            Ok((_, _, units)) => {
                for content in units.values() {
                    assert!(!String::from_utf8_lossy(content).contains(SECRET));
                }
                outcomes.insert("ok".to_string());
            }
            Err(e) => {
                let e = e.to_string();
                assert!(!e.contains(SECRET), "{e}");
                outcomes.insert(e.split(':').next().unwrap_or_default().to_string());
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(outcomes.contains("ok"), "{outcomes:?}");
    assert_eq!(loops_backed_by(s.path()), Vec::<String>::new());
    assert_eq!(mounts_below("self", s.path()), Vec::<String>::new());
    assert!(m.list_images().await.is_ok());
}
