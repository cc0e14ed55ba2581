//! Many threads open and read raw images at once. Every mount by one thread makes the
//! kernel's openat2(RESOLVE_IN_ROOT) of another thread fail with EAGAIN when it resolves a
//! ".." (as /etc/os-release -> ../usr/lib/os-release does); the engine must retry.

use std::sync::Arc;

use portctl_tests::{mkimage, Scratch};

#[test]
fn parallel_inspection_of_raw_images() {
    let s = Scratch::new();
    let img = mkimage(
        &s.join("app_1.raw"),
        &["--format", "squashfs", "--prefix", "app"],
    );
    let host = Arc::new(portctl_engine::Host::system().unwrap());
    let path = img.to_str().unwrap().to_string();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let host = Arc::clone(&host);
            let path = path.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let image = host.find_image(&path).unwrap();
                    let root = host.open_image(&image).unwrap();
                    let release = portctl_engine::os_release::read_os_release(&root)
                        .unwrap()
                        .unwrap();
                    assert_eq!(release.parsed.get("ID"), Some("portctl-sample"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
