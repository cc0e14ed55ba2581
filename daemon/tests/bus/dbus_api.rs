//! portctld on a real (private) dbus-daemon: the v252 interface, method by method, through
//! zbus proxies and busctl.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use portctl_dbus::proxy::{ImageProxy, ManagerProxy, PortctlManagerProxy, Run1Proxy};
use portctl_tests::{attach_host, mkimage, Daemon, PrivateBus, Scratch, StandInPolkit, AS_NOBODY};

struct Env {
    _daemon: Daemon,
    bus: PrivateBus,
    s: Scratch,
}

fn env() -> Env {
    let s = Scratch::new();
    attach_host(&s);
    mkimage(&s.join("/var/lib/portables/minimal_1"), &[]);
    mkimage(
        &s.join("/var/lib/portables/minimal_sq.raw"),
        &["--format", "squashfs", "--prefix", "minimal"],
    );
    let bus = PrivateBus::start();
    let daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_portctld")),
        &bus,
        s.path(),
        &[],
    );
    Env {
        _daemon: daemon,
        bus,
        s,
    }
}

async fn conn(bus: &PrivateBus) -> zbus::Connection {
    zbus::connection::Builder::address(bus.address().as_str())
        .build()
        .await
        .unwrap()
}

fn err_name(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            format!("{name}: {}", msg.clone().unwrap_or_default())
        }
        e => format!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_methods_and_errors() {
    let e = env();
    let c = conn(&e.bus).await;
    let m = ManagerProxy::new(&c).await.unwrap();

    assert_eq!(m.pool_path().await.unwrap(), "/var/lib/portables");
    assert_eq!(m.pool_usage().await.unwrap(), u64::MAX);
    assert_eq!(
        m.profiles().await.unwrap(),
        ["default", "nonetwork", "strict", "trusted"]
    );

    let images = m.list_images().await.unwrap();
    let names: Vec<(&str, &str, &str)> = images
        .iter()
        .map(|i| (i.0.as_str(), i.1.as_str(), i.6.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("minimal_1", "directory", "detached"),
            ("minimal_sq", "raw", "detached")
        ]
    );
    assert_eq!(
        images[0].7.as_str(),
        "/org/freedesktop/portable1/image/minimal_5f1"
    );
    assert_eq!(
        images[1].5,
        std::fs::metadata(e.s.join("/var/lib/portables/minimal_sq.raw"))
            .unwrap()
            .blocks_of()
    );

    assert_eq!(
        m.get_image("minimal_1").await.unwrap().as_str(),
        "/org/freedesktop/portable1/image/minimal_5f1"
    );
    let er = m.get_image("nope").await.unwrap_err();
    assert_eq!(
        err_name(&er),
        "org.freedesktop.portable1.NoSuchImage: No image 'nope' found."
    );
    let er = m
        .get_image("/var/lib/portables/minimal_1")
        .await
        .unwrap_err();
    assert_eq!(
        err_name(&er),
        "org.freedesktop.DBus.Error.InvalidArgs: Expected image name, not path in place of '/var/lib/portables/minimal_1'."
    );

    let osr = m.get_image_os_release("minimal_sq").await.unwrap();
    assert_eq!(osr.get("ID").map(String::as_str), Some("portctl-sample"));
    let (path, raw, units) = m
        .get_image_metadata("minimal_1", &["minimal"])
        .await
        .unwrap();
    assert_eq!(path, "/var/lib/portables/minimal_1");
    assert!(String::from_utf8_lossy(&raw).contains("ID=portctl-sample"));
    assert_eq!(units.keys().collect::<Vec<_>>(), ["minimal-test.service"]);
    let (_, _, exts, units) = m
        .get_image_metadata_with_extensions("minimal_1", &[], &[], 0)
        .await
        .unwrap();
    assert!(exts.is_empty() && units.len() == 1);

    // Attach, state, detach.
    let changes = m
        .attach_image("minimal_1", &["minimal"], "default", false, "")
        .await
        .unwrap();
    assert_eq!(changes.len(), 6, "{changes:?}");
    assert_eq!(
        changes[0],
        (
            "mkdir".into(),
            "/etc/systemd/system.attached".into(),
            "".into()
        )
    );
    assert_eq!(m.get_image_state("minimal_1").await.unwrap(), "attached");
    assert_eq!(m.get_image_state("whatever").await.unwrap(), "detached");
    assert_eq!(
        m.get_image_state_with_extensions("minimal_1", &[], 0)
            .await
            .unwrap(),
        "attached"
    );
    let er = m
        .get_image_state_with_extensions("minimal_1", &[], 1)
        .await
        .unwrap_err();
    assert_eq!(
        err_name(&er),
        "org.freedesktop.DBus.Error.InvalidArgs: Invalid 'flags' parameter '1'"
    );
    let listed = m.list_images().await.unwrap();
    assert_eq!(
        listed.iter().find(|i| i.0 == "minimal_1").unwrap().6,
        "attached"
    );
    let er = m
        .attach_image("minimal_1", &["minimal"], "default", false, "")
        .await
        .unwrap_err();
    assert_eq!(
        err_name(&er),
        "org.freedesktop.systemd1.UnitExists: Unit file 'minimal-test.service' exists on the host already, refusing."
    );
    let er = m.remove_image("minimal_1").await.unwrap_err();
    assert_eq!(
        err_name(&er),
        "System.Error.EBUSY: Image 'minimal_1' is not detached, refusing."
    );
    let (removed, updated) = m
        .reattach_image(
            "/var/lib/portables/minimal_1",
            &["minimal"],
            "default",
            false,
            "",
        )
        .await
        .unwrap();
    assert!(removed.is_empty(), "{removed:?}");
    assert!(!updated.is_empty());
    let changes = m.detach_image("minimal_1", false).await.unwrap();
    assert!(changes.iter().all(|c| c.0 == "unlink"), "{changes:?}");
    let er = m.detach_image("minimal_1", false).await.unwrap_err();
    assert!(
        err_name(&er).starts_with(
            "org.freedesktop.systemd1.NoSuchUnit: No unit files associated with 'minimal_1'"
        ),
        "{}",
        err_name(&er)
    );

    // Flags, copy modes, paths.
    let er = m
        .attach_image_with_extensions("minimal_1", &[], &["minimal"], "default", "", 8)
        .await
        .unwrap_err();
    assert_eq!(
        err_name(&er),
        "org.freedesktop.DBus.Error.InvalidArgs: Invalid 'flags' parameter '8'"
    );
    let er = m
        .attach_image("minimal_1", &["minimal"], "default", false, "bogus")
        .await
        .unwrap_err();
    assert_eq!(
        err_name(&er),
        "org.freedesktop.DBus.Error.InvalidArgs: Unknown copy mode 'bogus'"
    );
    let er = m
        .attach_image("relative/path", &[], "default", false, "")
        .await
        .unwrap_err();
    assert_eq!(err_name(&er), "org.freedesktop.DBus.Error.InvalidArgs: Image name 'relative/path' is not valid or not a valid path.");
    let er = m
        .attach_image(
            "/var/lib/../lib/portables/minimal_1",
            &[],
            "default",
            false,
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(err_name(&er), "org.freedesktop.DBus.Error.InvalidArgs: Image path '/var/lib/../lib/portables/minimal_1' is not normalized.");
    let changes = m
        .attach_image_with_extensions("minimal_sq", &[], &["minimal"], "strict", "copy", 1)
        .await
        .unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.1 == "/run/systemd/system.attached/minimal-test.service"),
        "{changes:?}"
    );
    assert_eq!(
        m.get_image_state("minimal_sq").await.unwrap(),
        "attached-runtime"
    );
    m.detach_image_with_extensions("minimal_sq", &[], 1)
        .await
        .unwrap();

    // Read-only, limits, remove.
    m.mark_image_read_only("minimal_sq", true).await.unwrap();
    assert!(
        m.list_images()
            .await
            .unwrap()
            .iter()
            .find(|i| i.0 == "minimal_sq")
            .unwrap()
            .2
    );
    m.mark_image_read_only("minimal_sq", false).await.unwrap();
    let er = m.set_image_limit("minimal_1", 1 << 20).await.unwrap_err();
    assert!(
        err_name(&er).starts_with("org.freedesktop.DBus.Error.NotSupported:"),
        "{}",
        err_name(&er)
    );
    let er = m.set_pool_limit(1 << 20).await.unwrap_err();
    assert_eq!(
        err_name(&er),
        "org.freedesktop.DBus.Error.NotSupported: Quota is only supported on btrfs."
    );
    m.remove_image("minimal_sq").await.unwrap();
    assert!(!e.s.join("/var/lib/portables/minimal_sq.raw").exists());
    let listed: Vec<String> = m
        .list_images()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.0)
        .collect();
    assert_eq!(listed, ["minimal_1"]);
}

trait Blocks {
    fn blocks_of(&self) -> u64;
}

impl Blocks for std::fs::Metadata {
    fn blocks_of(&self) -> u64 {
        std::os::unix::fs::MetadataExt::blocks(self) * 512
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_objects() {
    let e = env();
    let c = conn(&e.bus).await;
    let m = ManagerProxy::new(&c).await.unwrap();
    let path = m.get_image("minimal_1").await.unwrap();
    let i = ImageProxy::builder(&c)
        .path(path)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    assert_eq!(i.name().await.unwrap(), "minimal_1");
    assert_eq!(i.path().await.unwrap(), "/var/lib/portables/minimal_1");
    assert_eq!(i.kind().await.unwrap(), "directory");
    assert!(!i.read_only().await.unwrap());
    assert_eq!(i.modification_timestamp().await.unwrap(), 0);
    assert_eq!(i.usage().await.unwrap(), u64::MAX);
    assert_eq!(
        i.get_os_release()
            .await
            .unwrap()
            .get("ID")
            .map(String::as_str),
        Some("portctl-sample")
    );
    assert_eq!(i.get_state().await.unwrap(), "detached");
    let changes = i.attach(&["minimal"], "default", false, "").await.unwrap();
    assert!(!changes.is_empty());
    assert_eq!(i.get_state().await.unwrap(), "attached");
    // Both spellings of the layered reattach work (v252's own misspelled one did not).
    let (_, updated) = i
        .reattach_with_extensions(&[], &["minimal"], "default", "", 0)
        .await
        .unwrap();
    assert!(!updated.is_empty());
    let (_removed, updated) = i
        .reattache_with_extensions(&[], &["minimal"], "default", "", 0)
        .await
        .unwrap();
    assert!(!updated.is_empty());
    i.detach(false).await.unwrap();
    // Once the image is gone, its object answers NoSuchImage.
    std::fs::remove_dir_all(e.s.join("/var/lib/portables/minimal_1")).unwrap();
    let er = i.name().await.unwrap_err();
    assert!(
        format!("{er}").contains("No image 'minimal_1' found."),
        "{er}"
    );
}

/// A call whose arguments or reply the daemon and the proxy disagree about fails before it
/// reaches the engine (zbus answers InvalidArgs or UnknownMethod, or the proxy cannot read
/// the reply); any other outcome means both sides speak one signature.
fn same_signature<T: std::fmt::Debug>(method: &str, r: zbus::Result<T>) {
    use zbus::fdo::Error as Fdo;
    if let Err(e) = &r {
        let ok = match e {
            zbus::Error::MethodError(..) => true,
            zbus::Error::FDO(fdo) => !matches!(
                **fdo,
                Fdo::UnknownMethod(_) | Fdo::InvalidArgs(_) | Fdo::InvalidSignature(_)
            ),
            _ => false,
        };
        assert!(ok, "{method}: {}", err_name(e));
    }
}

/// Every method and property of the proxies in dbus/ against the running daemon, whose own
/// introspection `introspection_matches_v252` compares with v252's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_proxy_method_speaks_the_daemons_signature() {
    let e = env();
    mkimage(
        &e.s.join("/var/lib/portables/other_1"),
        &["--prefix", "other"],
    );
    let c = conn(&e.bus).await;
    let m = ManagerProxy::new(&c).await.unwrap();
    let image = "minimal_1";
    same_signature("GetImage", m.get_image(image).await);
    same_signature("ListImages", m.list_images().await);
    same_signature("GetImageOSRelease", m.get_image_os_release(image).await);
    same_signature("GetImageMetadata", m.get_image_metadata(image, &[]).await);
    same_signature(
        "GetImageMetadataWithExtensions",
        m.get_image_metadata_with_extensions(image, &[], &[], 0)
            .await,
    );
    same_signature("GetImageState", m.get_image_state(image).await);
    same_signature(
        "GetImageStateWithExtensions",
        m.get_image_state_with_extensions(image, &[], 0).await,
    );
    same_signature(
        "AttachImage",
        m.attach_image(image, &[], "default", false, "").await,
    );
    same_signature(
        "ReattachImage",
        m.reattach_image(image, &[], "default", false, "").await,
    );
    same_signature("DetachImage", m.detach_image(image, false).await);
    same_signature(
        "AttachImageWithExtensions",
        m.attach_image_with_extensions(image, &[], &[], "default", "", 0)
            .await,
    );
    same_signature(
        "ReattachImageWithExtensions",
        m.reattach_image_with_extensions(image, &[], &[], "default", "", 0)
            .await,
    );
    same_signature(
        "DetachImageWithExtensions",
        m.detach_image_with_extensions(image, &[], 0).await,
    );
    same_signature(
        "MarkImageReadOnly",
        m.mark_image_read_only(image, false).await,
    );
    same_signature("SetImageLimit", m.set_image_limit(image, u64::MAX).await);
    same_signature("SetPoolLimit", m.set_pool_limit(u64::MAX).await);
    same_signature("PoolPath", m.pool_path().await);
    same_signature("PoolUsage", m.pool_usage().await);
    same_signature("PoolLimit", m.pool_limit().await);
    same_signature("Profiles", m.profiles().await);

    let i = ImageProxy::builder(&c)
        .path(m.get_image(image).await.unwrap())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    same_signature("GetOSRelease", i.get_os_release().await);
    same_signature("GetMetadata", i.get_metadata(&[]).await);
    same_signature(
        "GetMetadataWithExtensions",
        i.get_metadata_with_extensions(&[], &[], 0).await,
    );
    same_signature("GetState", i.get_state().await);
    same_signature(
        "GetStateWithExtensions",
        i.get_state_with_extensions(&[], 0).await,
    );
    same_signature("Attach", i.attach(&[], "default", false, "").await);
    same_signature("Reattach", i.reattach(&[], "default", false, "").await);
    same_signature(
        "ReattachWithExtensions",
        i.reattach_with_extensions(&[], &[], "default", "", 0).await,
    );
    same_signature(
        "ReattacheWithExtensions",
        i.reattache_with_extensions(&[], &[], "default", "", 0)
            .await,
    );
    same_signature("Detach", i.detach(false).await);
    same_signature(
        "AttachWithExtensions",
        i.attach_with_extensions(&[], &[], "default", "", 0).await,
    );
    same_signature(
        "DetachWithExtensions",
        i.detach_with_extensions(&[], 0).await,
    );
    same_signature("MarkReadOnly", i.mark_read_only(false).await);
    same_signature("SetLimit", i.set_limit(u64::MAX).await);
    same_signature("Name", i.name().await);
    same_signature("Path", i.path().await);
    same_signature("Type", i.kind().await);
    same_signature("ReadOnly", i.read_only().await);
    same_signature("CreationTimestamp", i.creation_timestamp().await);
    same_signature("ModificationTimestamp", i.modification_timestamp().await);
    same_signature("Usage", i.usage().await);
    same_signature("Limit", i.limit().await);
    same_signature("UsageExclusive", i.usage_exclusive().await);
    same_signature("LimitExclusive", i.limit_exclusive().await);
    let other = ImageProxy::builder(&c)
        .path(m.get_image("other_1").await.unwrap())
        .build()
        .await
        .unwrap();
    other.remove().await.unwrap();
    assert!(!e.s.join("/var/lib/portables/other_1").exists());

    let extra = PortctlManagerProxy::new(&c).await.unwrap();
    same_signature("SetAsideJournals", extra.set_aside_journals().await);
    let run = Run1Proxy::new(&c).await.unwrap();
    let er = run.kill("no-such-run", 15).await.unwrap_err();
    same_signature::<()>("Kill", Err(er));
}

/// Method and property signatures of one interface in an introspection document.
fn signatures(xml: &str, iface: &str) -> BTreeSet<String> {
    let start = xml
        .find(&format!("<interface name=\"{iface}\">"))
        .unwrap_or_else(|| panic!("{iface} missing"));
    let body = &xml[start..start + xml[start..].find("</interface>").unwrap()];
    let mut out = BTreeSet::new();
    let mut current = String::new();
    for line in body.lines().map(str::trim) {
        let attr = |name: &str| -> String {
            line.split(&format!("{name}=\""))
                .nth(1)
                .map(|r| r[..r.find('"').unwrap()].to_string())
                .unwrap_or_default()
        };
        if line.starts_with("<method ") {
            if !current.is_empty() {
                out.insert(std::mem::take(&mut current));
            }
            current = format!("method {}", attr("name"));
            if line.ends_with("/>") {
                out.insert(std::mem::take(&mut current));
            }
        } else if line.starts_with("<arg ") {
            current.push_str(&format!(
                " {}:{}:{}",
                attr("direction"),
                attr("type"),
                attr("name")
            ));
        } else if line.starts_with("</method>") {
            out.insert(std::mem::take(&mut current));
        } else if line.starts_with("<property ") {
            out.insert(format!(
                "property {} {} {}",
                attr("name"),
                attr("type"),
                attr("access")
            ));
        }
    }
    out
}

fn reference(path: &str) -> String {
    let xml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/portable1-v252.xml"),
    )
    .unwrap();
    let start = xml
        .find(&format!("<capture object-path=\"{path}\">"))
        .unwrap();
    xml[start..start + xml[start..].find("</capture>").unwrap()].to_string()
}

fn busctl(bus: &PrivateBus, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("busctl")
        .arg(format!("--address={}", bus.address()))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn introspection_matches_v252() {
    let e = env();
    let (ok, manager, err) = busctl(
        &e.bus,
        &[
            "introspect",
            "--xml-interface",
            "org.freedesktop.portable1",
            "/org/freedesktop/portable1",
        ],
    );
    assert!(ok, "{err}");
    let ours = signatures(&manager, "org.freedesktop.portable1.Manager");
    let theirs = signatures(
        &reference("/org/freedesktop/portable1"),
        "org.freedesktop.portable1.Manager",
    );
    assert_eq!(
        ours,
        theirs,
        "only ours: {:#?}\nonly v252: {:#?}",
        ours.difference(&theirs).collect::<Vec<_>>(),
        theirs.difference(&ours).collect::<Vec<_>>()
    );
    let (ok, image, err) = busctl(
        &e.bus,
        &[
            "introspect",
            "--xml-interface",
            "org.freedesktop.portable1",
            "/org/freedesktop/portable1/image/minimal_5f1",
        ],
    );
    assert!(ok, "{err}");
    let ours = signatures(&image, "org.freedesktop.portable1.Image");
    let theirs = signatures(
        &reference("/org/freedesktop/portable1/image/probe_5f1"),
        "org.freedesktop.portable1.Image",
    );
    // Without a PID 1 portctld introspects as the newest systemd: the spelling of 254 and
    // later in place of 252's misspelled one (both are served; docs/compatibility.md).
    assert!(
        !ours
            .iter()
            .any(|s| s.starts_with("method ReattacheWithExtensions ")),
        "{ours:#?}"
    );
    let respelled: BTreeSet<String> = ours
        .iter()
        .map(|s| {
            s.replace(
                "method ReattachWithExtensions ",
                "method ReattacheWithExtensions ",
            )
        })
        .collect();
    assert_eq!(
        respelled,
        theirs,
        "only ours: {:#?}\nonly v252: {:#?}",
        respelled.difference(&theirs).collect::<Vec<_>>(),
        theirs.difference(&respelled).collect::<Vec<_>>()
    );
    // The image node enumerates the images, as `busctl tree` shows.
    let (ok, tree, _) = busctl(&e.bus, &["tree", "--list", "org.freedesktop.portable1"]);
    assert!(ok);
    assert!(
        tree.contains("/org/freedesktop/portable1/image/minimal_5fsq"),
        "{tree}"
    );
}

#[test]
fn busctl_calls() {
    let e = env();
    let (ok, out, err) = busctl(
        &e.bus,
        &[
            "call",
            "org.freedesktop.portable1",
            "/org/freedesktop/portable1",
            "org.freedesktop.portable1.Manager",
            "GetImageState",
            "s",
            "minimal_1",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "s \"detached\"");
    let (ok, out, err) = busctl(
        &e.bus,
        &[
            "call",
            "org.freedesktop.portable1",
            "/org/freedesktop/portable1",
            "org.freedesktop.portable1.Manager",
            "AttachImage",
            "sassbs",
            "minimal_1",
            "1",
            "minimal",
            "trusted",
            "false",
            "copy",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with("a(sss) 6 \"mkdir\" \"/etc/systemd/system.attached\" \"\""),
        "{out}"
    );
    let (ok, out, _) = busctl(
        &e.bus,
        &[
            "get-property",
            "org.freedesktop.portable1",
            "/org/freedesktop/portable1/image/minimal_5f1",
            "org.freedesktop.portable1.Image",
            "Type",
        ],
    );
    assert!(ok);
    assert_eq!(out.trim(), "s \"directory\"");
    let (ok, _, err) = busctl(
        &e.bus,
        &[
            "call",
            "org.freedesktop.portable1",
            "/org/freedesktop/portable1",
            "org.freedesktop.portable1.Manager",
            "DetachImage",
            "sb",
            "minimal_1",
            "true",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("No unit files associated with 'minimal_1'"),
        "{err}"
    );
    let (ok, _, err) = busctl(
        &e.bus,
        &[
            "call",
            "org.freedesktop.portable1",
            "/org/freedesktop/portable1",
            "org.freedesktop.portable1.Manager",
            "DetachImage",
            "sb",
            "minimal_1",
            "false",
        ],
    );
    assert!(ok, "{err}");
    assert!(!e.s.join("/etc/systemd/system.attached").exists());
}

#[test]
fn sigterm_is_a_clean_exit() {
    let s = Scratch::new();
    attach_host(&s);
    let bus = PrivateBus::start();
    let d = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_portctld")),
        &bus,
        s.path(),
        &[],
    );
    assert!(d.terminate().success());
}

#[test]
fn exits_when_idle() {
    let s = Scratch::new();
    attach_host(&s);
    let bus = PrivateBus::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portctld"))
        .args([
            "--bus-address",
            &bus.address(),
            "--root",
            s.path().to_str().unwrap(),
            "--idle-timeout",
            "1",
        ])
        .env("PORTCTLD_LOG", "warn")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "portctld did not exit when idle"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// busctl as user nobody (uid 65534), without capabilities.
fn busctl_as_nobody(bus: &PrivateBus, args: &[&str]) -> (bool, String) {
    let out = Command::new(AS_NOBODY[0])
        .args(&AS_NOBODY[1..])
        .arg("busctl")
        .arg(format!("--address={}", bus.address()))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn unprivileged_callers_read_but_do_not_change() {
    let e = env();
    e.bus.open_to_everyone();
    let call = |member: &str, sig: &str, args: &[&str]| {
        let mut v = vec![
            "call",
            "org.freedesktop.portable1",
            "/org/freedesktop/portable1",
            "org.freedesktop.portable1.Manager",
            member,
            sig,
        ];
        v.extend_from_slice(args);
        busctl_as_nobody(&e.bus, &v)
    };
    let (ok, out) = call("ListImages", "", &[]);
    assert!(ok, "{out}");
    assert!(out.contains("minimal_1"));
    let (ok, out) = call("GetImageState", "s", &["minimal_1"]);
    assert!(ok && out.contains("detached"), "{out}");
    let (ok, out) = call("GetImageMetadata", "sas", &["minimal_1", "0"]);
    assert!(ok, "by name, inspecting needs no authorization: {out}");
    for (member, sig, args) in [
        (
            "AttachImage",
            "sassbs",
            vec!["minimal_1", "0", "default", "false", ""],
        ),
        ("DetachImage", "sb", vec!["minimal_1", "false"]),
        (
            "ReattachImage",
            "sassbs",
            vec!["minimal_1", "0", "default", "false", ""],
        ),
        ("RemoveImage", "s", vec!["minimal_1"]),
        ("MarkImageReadOnly", "sb", vec!["minimal_1", "true"]),
        ("SetImageLimit", "st", vec!["minimal_1", "1000"]),
        ("SetPoolLimit", "t", vec!["1000"]),
        (
            "GetImageMetadata",
            "sas",
            vec!["/var/lib/portables/minimal_1", "0"],
        ),
    ] {
        let (ok, out) = call(member, sig, &args);
        assert!(!ok, "{member} must be refused");
        assert!(out.contains("Access denied"), "{member}: {out}");
    }
    assert!(!e.s.join("/etc/systemd/system.attached").exists());
    assert!(!e.s.join("/etc/portables").exists());
    assert!(e.s.join("/var/lib/portables/minimal_1").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_over_ten_images() {
    let s = Scratch::new();
    attach_host(&s);
    for n in 0..10 {
        let args = ["--prefix", &format!("app{n}")].map(String::from);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if n % 2 == 0 {
            mkimage(&s.join(format!("/var/lib/portables/app{n}_1")), &args);
        } else {
            let mut a = vec!["--format", "squashfs"];
            a.extend_from_slice(&args);
            mkimage(&s.join(format!("/var/lib/portables/app{n}_1.raw")), &a);
        }
    }
    let bus = PrivateBus::start();
    let _d = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_portctld")),
        &bus,
        s.path(),
        &[],
    );
    let mut conns = Vec::new();
    for _ in 0..5 {
        conns.push(conn(&bus).await);
    }
    let mut tasks = Vec::new();
    for i in 0..50usize {
        let c = conns[i % 5].clone();
        tasks.push(tokio::spawn(async move {
            let m = ManagerProxy::new(&c).await.unwrap();
            let image = format!("app{}_1", i % 10);
            let prefix = format!("app{}", i % 10);
            let a = m
                .attach_image(&image, &[prefix.as_str()], "default", false, "")
                .await;
            let d = m.detach_image(&image, false).await;
            (
                a.map(|_| ()).map_err(|e| err_name(&e)),
                d.map(|_| ()).map_err(|e| err_name(&e)),
            )
        }));
    }
    for t in tasks {
        let (a, d) = t.await.unwrap();
        if let Err(e) = &a {
            assert!(e.starts_with("org.freedesktop.systemd1.UnitExists:"), "{e}");
        }
        if let Err(e) = &d {
            assert!(e.starts_with("org.freedesktop.systemd1.NoSuchUnit:"), "{e}");
        }
    }
    // Whatever the interleaving, each image is now either fully attached or detached.
    let m = ManagerProxy::new(&conns[0]).await.unwrap();
    for n in 0..10 {
        let image = format!("app{n}_1");
        let state = m.get_image_state(&image).await.unwrap();
        let unit = s.join(format!("/etc/systemd/system.attached/app{n}-test.service"));
        let dropin = s.join(format!(
            "/etc/systemd/system.attached/app{n}-test.service.d/20-portable.conf"
        ));
        match state.as_str() {
            "attached" => {
                assert!(unit.exists() && dropin.exists());
                m.detach_image(&image, false).await.unwrap();
            }
            "detached" => assert!(!unit.exists() && !dropin.exists()),
            s => panic!("{image}: {s}"),
        }
    }
    assert!(!s.join("/etc/systemd/system.attached").exists());
    assert!(!s.join("/var/lib/portctl").exists(), "journal left behind");
}

#[test]
fn interrupted_operations_are_recovered_at_start() {
    let s = Scratch::new();
    attach_host(&s);
    mkimage(&s.join("/var/lib/portables/minimal_1"), &[]);
    // Crash an attach after it staged everything (the engine's crash injection), ...
    let helper = Path::new(env!("CARGO_BIN_EXE_portctld")).with_file_name("portctl-engine-op");
    assert!(
        helper.exists(),
        "{} is missing: build the workspace first (cargo test --workspace)",
        helper.display()
    );
    let st = Command::new(&helper)
        .arg(s.path())
        .args(["attach", "minimal_1"])
        .env("PORTCTL_FAULT_AT", "7")
        .status()
        .unwrap();
    assert!(!st.success());
    assert!(
        s.join("/var/lib/portctl/journal")
            .read_dir()
            .unwrap()
            .next()
            .is_some(),
        "a journal is left"
    );
    // ... then start the daemon: it finishes or rolls back before it serves.
    let bus = PrivateBus::start();
    let _d = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_portctld")),
        &bus,
        s.path(),
        &[],
    );
    assert!(
        !s.join("/var/lib/portctl").exists(),
        "journal not recovered"
    );
    let (ok, out, _) = busctl(
        &bus,
        &[
            "call",
            "org.freedesktop.portable1",
            "/org/freedesktop/portable1",
            "org.freedesktop.portable1.Manager",
            "GetImageState",
            "s",
            "minimal_1",
        ],
    );
    assert!(ok);
    let attached = out.contains("\"attached\"");
    let unit = s.join("/etc/systemd/system.attached/minimal-test.service");
    assert_eq!(attached, unit.exists(), "{out}");
    let leftovers: Vec<_> = std::fs::read_dir(s.join("/etc/systemd/system.attached"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().starts_with(".#"))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `portctl --json` against portctld: every verb's document parses and has its fields.
/// A missing bus and a bus without a portable service manager are each said plainly, with a
/// hint at what to install or start.
#[test]
fn portctl_says_what_is_missing() {
    let portctl = Path::new(env!("CARGO_BIN_EXE_portctld")).with_file_name("portctl");
    let s = Scratch::new();
    let no_bus = format!("unix:path={}", s.join("/no-bus").display());
    let out = Command::new(&portctl)
        .args(["--bus-address", &no_bus, "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Failed to connect to the system bus: "),
        "{err}"
    );
    assert!(err.contains("Hint: no D-Bus daemon listens there"), "{err}");
    let bus = PrivateBus::start();
    let out = Command::new(&portctl)
        .args(["--bus-address", &bus.address(), "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Failed to list images: The name org.freedesktop.portable1 was not provided by any .service files"),
        "{err}"
    );
    assert!(
        err.contains("Hint: neither portctld nor systemd-portabled runs"),
        "{err}"
    );
}

#[test]
fn portctl_json_output() {
    let e = env();
    let portctl = Path::new(env!("CARGO_BIN_EXE_portctld")).with_file_name("portctl");
    if !portctl.exists() {
        panic!("{} missing: build the workspace first", portctl.display());
    }
    let run = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(&portctl)
            .args([
                "--bus-address",
                &e.bus.address(),
                "--no-reload",
                "--json=short",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
            panic!("{args:?}: {err}: {}", String::from_utf8_lossy(&out.stdout))
        })
    };
    let list = run(&["list"]);
    assert_eq!(list[0]["name"], "minimal_1");
    assert_eq!(list[0]["type"], "directory");
    assert_eq!(list[0]["state"], "detached");
    assert_eq!(
        list[0]["object_path"],
        "/org/freedesktop/portable1/image/minimal_5f1"
    );
    let inspect = run(&["inspect", "minimal_1"]);
    assert_eq!(inspect["image"], "/var/lib/portables/minimal_1");
    assert_eq!(inspect["os_release"]["ID"], "portctl-sample");
    assert_eq!(inspect["units"][0], "minimal-test.service");
    let cat = run(&["inspect", "--cat", "minimal_1"]);
    assert!(cat["units"]["minimal-test.service"]
        .as_str()
        .unwrap()
        .contains("ExecStart="));
    let attach = run(&["attach", "minimal_1"]);
    assert_eq!(attach["changes"][0]["type"], "mkdir");
    assert_eq!(run(&["is-attached", "minimal_1"])["state"], "attached");
    let re = run(&["reattach", "minimal_1"]);
    assert!(re["updated"].as_array().unwrap().len() >= 5, "{re}");
    let detach = run(&["detach", "minimal_1"]);
    assert!(detach["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["type"] == "unlink"));
}

/// `-H HOST` reaches the daemon through `ssh -xT -- HOST systemd-stdio-bridge`, as systemctl
/// does; here a stand-in ssh runs the bridge locally against the test bus. Image paths are
/// refused for remote systems, as portablectl refuses them.
#[test]
fn portctl_over_ssh_transport() {
    let e = env();
    let portctl = Path::new(env!("CARGO_BIN_EXE_portctld")).with_file_name("portctl");
    let fake = tempfile::tempdir().unwrap();
    let ssh = fake.path().join("ssh");
    std::fs::write(
        &ssh,
        format!(
            "#!/bin/sh\n# stand-in for ssh: record the arguments, then run the command here\necho \"$@\" > {}/args\nwhile [ \"$1\" != \"--\" ]; do shift; done\nshift 2\nexec systemd-stdio-bridge --bus-path={}\n",
            fake.path().display(),
            e.bus.address()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&ssh).status().unwrap();
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap()
    );
    let run = |args: &[&str]| {
        Command::new(&portctl)
            .env("PATH", &path)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["-H", "admin@box.example:2222", "list", "--no-legend"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("minimal_1 ") && l.contains(" directory ")),
        "{listed}"
    );
    assert_eq!(
        std::fs::read_to_string(fake.path().join("args"))
            .unwrap()
            .trim(),
        "-xT -p 2222 -- admin@box.example systemd-stdio-bridge"
    );
    let out = run(&["-H", "box", "is-attached", "minimal_1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "detached");
    let out = run(&[
        "-H",
        "box",
        "is-attached",
        "--fail-if-detached",
        "minimal_1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["-H", "box", "attach", "/var/lib/portables/minimal_1"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Operations on images by path not supported when connecting to remote systems."
    );
}

/// portctl asks for interactive authorization unless --no-ask-password, and portctld passes
/// that on to polkit for callers that are not root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_authorization_reaches_polkit() {
    let e = env();
    e.bus.open_to_everyone();
    // Authorized only when the request allows interaction.
    let (_polkit, seen) = StandInPolkit::serve(&e.bus, |c| (c.flags == 1, c.flags != 1)).await;
    let portctl = Path::new(env!("CARGO_BIN_EXE_portctld")).with_file_name("portctl");
    let address = e.bus.address();
    let as_nobody = move |extra: &[&str]| {
        Command::new(AS_NOBODY[0])
            .args(&AS_NOBODY[1..])
            .arg(&portctl)
            .args(["--bus-address", &address, "--no-reload"])
            .args(extra)
            .args(["attach", "minimal_1"])
            .output()
            .unwrap()
    };
    let out = tokio::task::spawn_blocking({
        let as_nobody = as_nobody.clone();
        move || as_nobody(&["--no-ask-password"])
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().last().unwrap(),
        "AttachImage failed: Interactive authentication required."
    );
    let out = tokio::task::spawn_blocking(move || as_nobody(&[]))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(e
        .s
        .join("/etc/systemd/system.attached/minimal-test.service")
        .exists());
    let seen: Vec<(String, u32)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.action.clone(), c.flags))
        .collect();
    assert_eq!(
        seen,
        [
            ("org.freedesktop.portable1.attach-images".to_string(), 0),
            ("org.freedesktop.portable1.attach-images".to_string(), 1)
        ]
    );
}
