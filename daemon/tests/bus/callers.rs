//! Hostile callers: every method called by a user that is not root,
//! malformed arguments, callers that hang up in the middle of a call, and a flood of calls.
//! The daemon answers each with a clear error, changes nothing it must not, and keeps serving
//! others with bounded memory.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use portctl_dbus::proxy::ManagerProxy;
use portctl_tests::{mkimage, snapshot, status_kib, DaemonHost, AS_NOBODY};
use zbus::message::Message;

const STATE: [&str; 4] = [
    "/etc/systemd/system.attached",
    "/etc/portables",
    "/var/lib/portables",
    "/var/lib/portctl",
];

fn env() -> DaemonHost {
    DaemonHost::start(Path::new(env!("CARGO_BIN_EXE_portctld")), |s| {
        mkimage(&s.join("/var/lib/portables/minimal_1"), &[]);
    })
}

const MANAGER: &str = "/org/freedesktop/portable1";
const IMAGE: &str = "/org/freedesktop/portable1/image/minimal_5f1";

/// Every method of both interfaces, as `nobody` (busctl, no interactive authorization): the
/// ones that only read answer, the others are refused, and nothing changes.
#[test]
fn every_method_as_an_unprivileged_caller() {
    let e = env();
    e.bus.open_to_everyone();
    let before = snapshot(e.s.path(), &STATE);
    let m = "org.freedesktop.portable1.Manager";
    let i = "org.freedesktop.portable1.Image";
    let reads: &[(&str, &str, &str, &str, &[&str])] = &[
        (MANAGER, m, "GetImage", "s", &["minimal_1"]),
        (MANAGER, m, "ListImages", "", &[]),
        (MANAGER, m, "GetImageOSRelease", "s", &["minimal_1"]),
        (MANAGER, m, "GetImageMetadata", "sas", &["minimal_1", "0"]),
        (
            MANAGER,
            m,
            "GetImageMetadataWithExtensions",
            "sasast",
            &["minimal_1", "0", "0", "0"],
        ),
        (MANAGER, m, "GetImageState", "s", &["minimal_1"]),
        (
            MANAGER,
            m,
            "GetImageStateWithExtensions",
            "sast",
            &["minimal_1", "0", "0"],
        ),
        (IMAGE, i, "GetOSRelease", "", &[]),
        (IMAGE, i, "GetMetadata", "as", &["0"]),
        (
            IMAGE,
            i,
            "GetMetadataWithExtensions",
            "asast",
            &["0", "0", "0"],
        ),
        (IMAGE, i, "GetState", "", &[]),
        (IMAGE, i, "GetStateWithExtensions", "ast", &["0", "0"]),
    ];
    let writes: &[(&str, &str, &str, &str, &[&str])] = &[
        (
            MANAGER,
            m,
            "AttachImage",
            "sassbs",
            &["minimal_1", "0", "default", "false", ""],
        ),
        (
            MANAGER,
            m,
            "AttachImageWithExtensions",
            "sasassst",
            &["minimal_1", "0", "0", "default", "", "0"],
        ),
        (MANAGER, m, "DetachImage", "sb", &["minimal_1", "false"]),
        (
            MANAGER,
            m,
            "DetachImageWithExtensions",
            "sast",
            &["minimal_1", "0", "0"],
        ),
        (
            MANAGER,
            m,
            "ReattachImage",
            "sassbs",
            &["minimal_1", "0", "default", "false", ""],
        ),
        (
            MANAGER,
            m,
            "ReattachImageWithExtensions",
            "sasassst",
            &["minimal_1", "0", "0", "default", "", "0"],
        ),
        (MANAGER, m, "RemoveImage", "s", &["minimal_1"]),
        (
            MANAGER,
            m,
            "MarkImageReadOnly",
            "sb",
            &["minimal_1", "true"],
        ),
        (MANAGER, m, "SetImageLimit", "st", &["minimal_1", "1000"]),
        (MANAGER, m, "SetPoolLimit", "t", &["1000"]),
        (IMAGE, i, "Attach", "assbs", &["0", "default", "false", ""]),
        (
            IMAGE,
            i,
            "AttachWithExtensions",
            "asassst",
            &["0", "0", "default", "", "0"],
        ),
        (IMAGE, i, "Detach", "b", &["false"]),
        (IMAGE, i, "DetachWithExtensions", "ast", &["0", "0"]),
        (
            IMAGE,
            i,
            "Reattach",
            "assbs",
            &["0", "default", "false", ""],
        ),
        (
            IMAGE,
            i,
            "ReattachWithExtensions",
            "asassst",
            &["0", "0", "default", "", "0"],
        ),
        (IMAGE, i, "Remove", "", &[]),
        (IMAGE, i, "MarkReadOnly", "b", &["true"]),
        (IMAGE, i, "SetLimit", "t", &["1000"]),
    ];
    let call = |path: &str, iface: &str, member: &str, sig: &str, args: &[&str]| {
        let mut cmd = Command::new(AS_NOBODY[0]);
        cmd.args(&AS_NOBODY[1..])
            .arg("busctl")
            .arg(format!("--address={}", e.bus.address()))
            .args(["--allow-interactive-authorization=no", "call"])
            .args(["org.freedesktop.portable1", path, iface, member, sig])
            .args(args);
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // The image object exists once the image has been looked up.
    assert!(call(MANAGER, m, "GetImage", "s", &["minimal_1"]).0);
    for (path, iface, member, sig, args) in reads {
        let (ok, out) = call(path, iface, member, sig, args);
        assert!(ok, "{member} must answer nobody: {out}");
    }
    for (path, iface, member, sig, args) in writes {
        let (ok, out) = call(path, iface, member, sig, args);
        assert!(!ok, "{member} must be refused");
        assert!(
            out.contains("Access denied") || out.contains("Interactive authentication required"),
            "{member}: {out}"
        );
    }
    assert_eq!(snapshot(e.s.path(), &STATE), before);
}

/// Wrong signatures, huge arrays, 64 KiB strings and object paths that name nothing: an
/// error each, and the daemon goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_arguments() {
    let e = env();
    let c = e.bus.connect().await;
    let call = |path: &'static str, member: &'static str, body: zbus::Structure<'static>| {
        let c = c.clone();
        async move {
            let iface = if path == MANAGER {
                "org.freedesktop.portable1.Manager"
            } else {
                "org.freedesktop.portable1.Image"
            };
            c.call_method(
                Some("org.freedesktop.portable1"),
                path,
                Some(iface),
                member,
                &body,
            )
            .await
        }
    };
    // The wrong types.
    let wrong = zbus::Structure::builder().add_field(7u32).build().unwrap();
    let err = call(MANAGER, "GetImageState", wrong)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("InvalidArgs"), "{err}");
    let too_few = zbus::Structure::builder()
        .add_field("minimal_1")
        .build()
        .unwrap();
    let err = call(MANAGER, "AttachImage", too_few)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("InvalidArgs"), "{err}");
    // A 64 KiB name.
    let long = "x".repeat(64 * 1024);
    let body = zbus::Structure::builder()
        .add_field(long.clone())
        .build()
        .unwrap();
    let err = call(MANAGER, "GetImageState", body).await;
    // (A state query of a name nothing is attached from is "detached", as in v252.)
    assert!(err.is_ok() || err.unwrap_err().to_string().contains("Invalid"));
    let body = zbus::Structure::builder().add_field(long).build().unwrap();
    let err = call(MANAGER, "GetImage", body)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("No image") || err.contains("Invalid") || err.contains("not valid"),
        "{err}"
    );
    // 100,000 prefixes.
    let many: Vec<String> = (0..100_000).map(|i| format!("prefix{i}")).collect();
    let m = ManagerProxy::new(&c).await.unwrap();
    let matches: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = m
        .attach_image("minimal_1", &matches, "default", false, "")
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.is_empty());
    // Object paths of no image.
    for path in [
        "/org/freedesktop/portable1/image/nope",
        "/org/freedesktop/portable1/image/_zz",
        "/org/freedesktop/portable1/image",
    ] {
        let err = c
            .call_method(
                Some("org.freedesktop.portable1"),
                path,
                Some("org.freedesktop.portable1.Image"),
                "GetState",
                &(),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("UnknownObject") || err.contains("Unknown"),
            "{path}: {err}"
        );
    }
    assert!(!e.s.join("/etc/systemd/system.attached").exists());
    assert_eq!(m.get_image_state("minimal_1").await.unwrap(), "detached");
}

/// Callers that send an attach or a detach and hang up before the answer: each operation is
/// done completely or not at all, and the daemon serves the next caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_hang_up_mid_call() {
    let e = env();
    for round in 0..20 {
        let c = e.bus.connect().await;
        let member = if round % 2 == 0 {
            "AttachImage"
        } else {
            "DetachImage"
        };
        let msg = if round % 2 == 0 {
            Message::method_call(MANAGER, member)
                .destination("org.freedesktop.portable1")
                .interface("org.freedesktop.portable1.Manager")
                .build(&("minimal_1", Vec::<&str>::new(), "default", false, ""))
                .unwrap()
        } else {
            Message::method_call(MANAGER, member)
                .destination("org.freedesktop.portable1")
                .interface("org.freedesktop.portable1.Manager")
                .build(&("minimal_1", false))
                .unwrap()
        };
        c.send(&msg).await.unwrap();
        drop(c);
    }
    let c = e.bus.connect().await;
    let m = ManagerProxy::new(&c).await.unwrap();
    // Once the last operation is over, the state is whole: both files or none (polled: an
    // operation may still be running when the callers are gone).
    let unit =
        e.s.join("/etc/systemd/system.attached/minimal-test.service");
    let dropin =
        e.s.join("/etc/systemd/system.attached/minimal-test.service.d/20-portable.conf");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = m.get_image_state("minimal_1").await.unwrap();
        let whole = match state.as_str() {
            "attached" => unit.exists() && dropin.exists(),
            "detached" => !unit.exists() && !dropin.exists(),
            _ => false,
        };
        if whole {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "state {state}, unit {}, drop-in {}",
            unit.exists(),
            dropin.exists()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(Path::new(&format!("/proc/{}", e.daemon.pid())).exists());
    assert!(m.list_images().await.is_ok());
}

/// One caller sends 10,000 calls without waiting for the answers; another caller is still
/// answered promptly, and the daemon's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_calls() {
    let e = env();
    let quiet = e.bus.connect().await;
    let m = ManagerProxy::new(&quiet).await.unwrap();
    m.list_images().await.unwrap();
    let idle = status_kib(e.daemon.pid(), "VmRSS");
    let flood = e.bus.connect().await;
    let sender = tokio::spawn(async move {
        for _ in 0..10_000 {
            let msg = Message::method_call(MANAGER, "GetImageState")
                .destination("org.freedesktop.portable1")
                .interface("org.freedesktop.portable1.Manager")
                .build(&("minimal_1",))
                .unwrap();
            if flood.send(&msg).await.is_err() {
                break;
            }
        }
        flood
    });
    let mut worst = Duration::ZERO;
    let mut peak = idle;
    let start = Instant::now();
    while !sender.is_finished() || start.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), m.get_image_state("minimal_1"))
            .await
            .expect("the daemon stopped answering others during the flood")
            .unwrap();
        worst = worst.max(t.elapsed());
        peak = peak.max(status_kib(e.daemon.pid(), "VmRSS"));
        if start.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let _flood = sender.await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = status_kib(e.daemon.pid(), "VmRSS");
    eprintln!(
        "flood: worst answer to another caller {worst:?}, RSS idle {idle} KiB, peak {peak} KiB, after {after} KiB"
    );
    assert!(
        peak < idle + 64 * 1024,
        "memory grew from {idle} to {peak} KiB"
    );
    assert!(Path::new(&format!("/proc/{}", e.daemon.pid())).exists());
}
