//! Leaks under load: 10,000 attach/detach cycles through portctld,
//! alternating directory, squashfs, ext4 and erofs images, sampling the daemon's memory, file
//! descriptors, mounts and loop devices every 1,000 cycles. Long (minutes), so not in the
//! default run:
//!
//!   cargo test --release -p portctld --test soak -- --ignored --nocapture
//!
//! `PORTCTL_SOAK_CYCLES` changes the number of cycles. docs/security.md has the figures.

use std::fs;
use std::path::Path;
use std::time::Instant;

use portctl_dbus::proxy::ManagerProxy;
use portctl_tests::{
    attach_host, loops_backed_by, mkimage, status_kib, Daemon, PrivateBus, Scratch,
};

fn count(path: String) -> usize {
    fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    cycles: usize,
    rss_kib: u64,
    fds: usize,
    mounts: usize,
    loops: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: run with --ignored (see the module documentation)"]
async fn ten_thousand_cycles_leak_nothing() {
    let cycles: usize = std::env::var("PORTCTL_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let s = Scratch::new();
    attach_host(&s);
    let images = [
        ("minimal_dir", vec![]),
        ("minimal_sq.raw", vec!["--format", "squashfs"]),
        ("minimal_ext4.raw", vec!["--format", "ext4"]),
        ("minimal_erofs.raw", vec!["--format", "erofs"]),
    ];
    for (name, args) in &images {
        let mut a = args.clone();
        a.extend(["--prefix", "minimal"]);
        mkimage(&s.join(format!("/var/lib/portables/{name}")), &a);
    }
    let bus = PrivateBus::start();
    let d = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_portctld")),
        &bus,
        s.path(),
        &[],
    );
    let pid = d.pid();
    let c = bus.connect().await;
    let m = ManagerProxy::new(&c).await.unwrap();
    let sample = |cycles| Sample {
        cycles,
        rss_kib: status_kib(pid, "VmRSS"),
        fds: count(format!("/proc/{pid}/fd")),
        mounts: fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap()
            .lines()
            .count(),
        loops: loops_backed_by(s.path()).len(),
    };
    let start = Instant::now();
    let mut samples = vec![sample(0)];
    for i in 1..=cycles {
        let (name, _) = &images[i % images.len()];
        let path = format!("/var/lib/portables/{name}");
        m.attach_image(&path, &["minimal"], "default", false, "")
            .await
            .unwrap_or_else(|e| panic!("cycle {i}: attach {name}: {e}"));
        m.detach_image(&path, false)
            .await
            .unwrap_or_else(|e| panic!("cycle {i}: detach {name}: {e}"));
        if i % 1000 == 0 || i == cycles {
            let s = sample(i);
            eprintln!(
                "{:>6} cycles  {:>6.1} s  RSS {:>6} KiB  fds {:>3}  mounts {:>3}  loop devices {}",
                s.cycles,
                start.elapsed().as_secs_f64(),
                s.rss_kib,
                s.fds,
                s.mounts,
                s.loops
            );
            samples.push(s);
        }
    }
    let first = samples[0];
    let warm = samples.get(1).copied().unwrap_or(first);
    let last = *samples.last().unwrap();
    eprintln!(
        "peak RSS (VmHWM) {} KiB over {cycles} cycles",
        status_kib(pid, "VmHWM")
    );
    assert_eq!(last.loops, 0, "loop devices left: {samples:#?}");
    assert_eq!(last.mounts, first.mounts, "mounts left: {samples:#?}");
    assert!(last.fds <= first.fds + 2, "descriptors grew: {samples:#?}");
    assert!(
        last.rss_kib <= warm.rss_kib + 4096,
        "memory grew after warm-up: {samples:#?}"
    );
    assert!(!s.join("/etc/systemd/system.attached").exists());
}
