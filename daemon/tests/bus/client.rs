//! portctl as a Unix tool, on a private bus: a reader that goes away ends it quietly, an image
//! without matching units is refused as portablectl refuses it, and a long call shows its
//! progress on a terminal. `bus_` tests: root, a dbus-daemon.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use portctl_tests::{mkimage, DaemonHost, PrivateBus, Scratch};

fn portctld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_portctld"))
}

fn portctl() -> std::path::PathBuf {
    portctld().with_file_name("portctl")
}

#[test]
fn bus_a_closed_pipe_ends_portctl_quietly() {
    let h = DaemonHost::start(portctld(), |s| {
        for i in 0..20 {
            mkimage(&s.join(format!("/var/lib/portables/many{i}_1")), &[]);
        }
    });
    for verb in ["list", "list --json", "inspect --cat many0_1"] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} --bus-address {} {verb} | head -c 1",
                portctl().display(),
                h.bus.address()
            ))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{verb}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{verb}: {err}"
        );
        assert_eq!(out.stdout.len(), 1, "{verb}");
    }
}

#[test]
fn bus_inspect_of_an_image_without_matching_units_fails_as_portablectl_does() {
    let h = DaemonHost::start(portctld(), |s| {
        mkimage(&s.join("/var/lib/portables/minimal_1"), &[]);
    });
    let out = Command::new(portctl())
        .args([
            "--bus-address",
            &h.bus.address(),
            "inspect",
            "minimal_1",
            "other",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().last().unwrap(),
        "Failed to inspect image metadata: Couldn't find any matching unit files in image '/var/lib/portables/minimal_1', refusing."
    );
}

/// A stand-in for portctld that takes its time to attach.
struct Slow;

#[zbus::interface(name = "org.freedesktop.portable1.Manager")]
impl Slow {
    async fn attach_image(
        &self,
        _image: String,
        _matches: Vec<String>,
        _profile: String,
        _runtime: bool,
        _copy_mode: String,
    ) -> Vec<(String, String, String)> {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        Vec::new()
    }
}

/// A call that takes more than a second shows, on a terminal, how long it has taken and, for
/// --copy=mixed of a raw image, how much is copied; into a pipe, nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_a_long_attach_shows_progress_on_a_terminal() {
    let bus = PrivateBus::start();
    let _slow = zbus::connection::Builder::address(bus.address().as_str())
        .name("org.freedesktop.portable1")
        .serve_at("/org/freedesktop/portable1", Slow)
        .build()
        .await
        .unwrap();
    let s = Scratch::new();
    let raw = mkimage(
        &s.join("big_1.raw"),
        &["--format", "squashfs", "--prefix", "big"],
    );
    let cmd = format!(
        "{} --bus-address {} --no-reload --copy=mixed attach {} big",
        portctl().display(),
        bus.address(),
        raw.display()
    );
    let on_terminal = {
        let cmd = cmd.clone();
        tokio::task::spawn_blocking(move || {
            Command::new("script")
                .args(["-qec", &cmd, "/dev/null"])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let shown = String::from_utf8_lossy(&on_terminal.stdout);
    assert!(on_terminal.status.success(), "{shown}");
    assert!(
        shown.contains(&format!(
            "Attaching {}… 1s, copied 0.0 MiB of",
            raw.display()
        )) && shown.contains("… 2s"),
        "{shown:?}"
    );
    let piped = tokio::task::spawn_blocking(move || {
        Command::new("sh").arg("-c").arg(&cmd).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("Attaching"));
}
