//! 1,000 inspections of raw images leave no loop device, no mount and no fd behind.
//! (A test binary of its own in the loop tier, so that no other test opens fds or devices
//! meanwhile.)

use std::fs;
use std::time::{Duration, Instant};

use portctl_engine::os_release::read_os_release;
use portctl_engine::units::find_units;
use portctl_tests::{loops_backed_by, mkimage, Scratch};

fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

fn mounts() -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn a_thousand_inspections_leak_nothing() {
    let s = Scratch::new();
    let mut images = Vec::new();
    for format in ["squashfs", "erofs", "ext4", "ddi"] {
        let p = s.join(format!("leak_{format}.raw"));
        mkimage(&p, &["--format", format, "--prefix", "minimal"]);
        images.push(p);
    }
    let host = portctl_engine::Host::system().unwrap();
    let images: Vec<_> = images
        .iter()
        .map(|p| host.find_image(p.to_str().unwrap()).unwrap())
        .collect();
    let (fds0, mounts0) = (fd_count(), mounts());
    for i in 0..1000 {
        let image = &images[i % images.len()];
        let root = host.open_image(image).unwrap();
        let units = find_units(&root, &["minimal".into()]).unwrap();
        assert_eq!(units.len(), 1);
        assert!(read_os_release(&root).unwrap().is_some());
    }
    // Auto-clear runs when the last reference goes; give the kernel a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !loops_backed_by(s.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(loops_backed_by(s.path()), Vec::<String>::new());
    assert_eq!(mounts(), mounts0, "mount table changed");
    assert_eq!(fd_count(), fds0, "fds leaked");
}
