//! Reading inside an image root: os-release, unit discovery, symlinks resolved in the image.

use std::path::Path;

use portctl_engine::os_release::read_os_release;
use portctl_engine::units::{find_units, UnitError};
use portctl_engine::ImageRoot;
use portctl_tests::{make_tree, Node, Scratch};

fn open(s: &Scratch, dir: &str) -> ImageRoot {
    ImageRoot::open_dir(&s.join(dir)).unwrap()
}

fn unit_names(root: &ImageRoot, matches: &[&str]) -> Vec<(String, String)> {
    let m: Vec<String> = matches.iter().map(|s| s.to_string()).collect();
    find_units(root, &m)
        .unwrap()
        .into_iter()
        .map(|u| (u.name, u.path.display().to_string()))
        .collect()
}

#[test]
fn os_release_etc_wins_and_links_resolve_inside_the_image() {
    let s = Scratch::new();
    make_tree(
        s.path(),
        &[
            Node::File("/both/etc/os-release", "ID=etc\n"),
            Node::File("/both/usr/lib/os-release", "ID=usr\n"),
            Node::File("/usr-only/usr/lib/os-release", "ID=usronly\n"),
            // An absolute link must name the image's file, not the host's /usr/lib/os-release.
            Node::Link("/abs/etc/os-release", "/usr/lib/os-release"),
            Node::File("/abs/usr/lib/os-release", "ID=inside\n"),
            Node::Link(
                "/escape/etc/os-release",
                "../../../../../../../../etc/os-release",
            ),
            Node::Dir("/none/etc"),
        ],
    );
    let id = |dir: &str| {
        read_os_release(&open(&s, dir))
            .unwrap()
            .map(|r| (r.path, r.parsed.get("ID").unwrap_or_default().to_string()))
    };
    assert_eq!(id("both"), Some(("/etc/os-release".into(), "etc".into())));
    assert_eq!(
        id("usr-only"),
        Some(("/usr/lib/os-release".into(), "usronly".into()))
    );
    assert_eq!(id("abs"), Some(("/etc/os-release".into(), "inside".into())));
    // ../../.. is clamped to the image root: /etc/os-release of the image, which is the link
    // itself: a loop, an error, never the host's file.
    assert!(read_os_release(&open(&s, "escape")).is_err());
    assert_eq!(id("none"), None);
}

#[test]
fn oversized_and_special_os_release_files_are_refused() {
    let s = Scratch::new();
    let big = format!("ID=x\nJUNK=\"{}\"\n", "a".repeat(1 << 20));
    make_tree(
        s.path(),
        &[
            Node::File("/big/etc/os-release", &big),
            Node::Dir("/dir/etc/os-release"),
        ],
    );
    let e = read_os_release(&open(&s, "big")).unwrap_err().to_string();
    assert!(e.contains("/etc/os-release") && e.contains("limit"), "{e}");
    let e = read_os_release(&open(&s, "dir")).unwrap_err().to_string();
    assert!(e.contains("is a directory"), "{e}");
}

#[test]
fn unit_search_order_types_prefixes_and_skips() {
    let s = Scratch::new();
    make_tree(
        s.path(),
        &[
            Node::File(
                "/img/etc/systemd/system/app.service",
                "[Service]\nExecStart=/etc\n",
            ),
            Node::File(
                "/img/usr/lib/systemd/system/app.service",
                "[Service]\nExecStart=/usr\n",
            ),
            Node::File("/img/lib/systemd/system/app-worker.service", "x"),
            Node::File("/img/usr/lib/systemd/system/app@.service", "x"),
            Node::File("/img/usr/lib/systemd/system/app.socket", "x"),
            Node::File("/img/usr/lib/systemd/system/app.timer", "x"),
            Node::File("/img/usr/lib/systemd/system/app.path", "x"),
            Node::File("/img/usr/lib/systemd/system/app.target", "x"),
            Node::File("/img/usr/lib/systemd/system/app.mount", "x"),
            Node::File("/img/usr/lib/systemd/system/app.slice", "x"),
            Node::File("/img/usr/lib/systemd/system/appfoo.service", "x"),
            Node::File("/img/usr/lib/systemd/system/app-empty.service", ""),
            Node::Dir("/img/usr/lib/systemd/system/app-dir.service"),
            Node::File("/img/usr/lib/systemd/system/app bad.service", "x"),
            Node::File("/img/usr/lib/systemd/user/app-user.service", "x"),
            Node::File("/img/usr/local/lib/systemd/system/app-local.service", "x"),
            Node::Link(
                "/img/usr/lib/systemd/system/app-alias.service",
                "app.socket",
            ),
            Node::Link("/img/etc/systemd/system/app-masked.service", "/dev/null"),
            Node::File(
                "/img/usr/lib/systemd/system/app-masked.service",
                "masked by /etc",
            ),
        ],
    );
    let root = open(&s, "img");
    // app-alias.service, a link to another unit file of the image, is an alias: no unit.
    let expect = [
        (
            "app-local.service",
            "/usr/local/lib/systemd/system/app-local.service",
        ),
        (
            "app-worker.service",
            "/lib/systemd/system/app-worker.service",
        ),
        ("app.path", "/usr/lib/systemd/system/app.path"),
        ("app.service", "/etc/systemd/system/app.service"),
        ("app.socket", "/usr/lib/systemd/system/app.socket"),
        ("app.target", "/usr/lib/systemd/system/app.target"),
        ("app.timer", "/usr/lib/systemd/system/app.timer"),
        ("app@.service", "/usr/lib/systemd/system/app@.service"),
    ];
    let expect: Vec<_> = expect
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(unit_names(&root, &["app"]), expect);
    let all = find_units(&root, &[]).unwrap();
    assert!(
        all.iter().any(|u| u.name == "appfoo.service"),
        "empty matches take all"
    );
    let svc = all.iter().find(|u| u.name == "app.service").unwrap();
    assert_eq!(svc.content, b"[Service]\nExecStart=/etc\n");
    assert!(
        !all.iter().any(|u| u.name == "app-alias.service"),
        "an alias is not a unit of its own"
    );
    assert_eq!(
        portctl_engine::units::find_aliases(&root, &["app".into()]),
        [("app-alias.service".to_string(), "app.socket".to_string())]
    );
    assert_eq!(
        unit_names(&root, &["app.service"]).len(),
        1,
        "a full unit name matches itself"
    );
}

#[test]
fn unit_symlinks_resolve_inside_the_image() {
    let s = Scratch::new();
    make_tree(
        s.path(),
        &[
            Node::File("/img/etc/shadow", "[Service]\n# the image's shadow\n"),
            Node::Link("/img/usr/lib/systemd/system/esc-abs.service", "/etc/shadow"),
            Node::Link(
                "/img/usr/lib/systemd/system/esc-rel.service",
                "../../../../../../../../../../etc/shadow",
            ),
        ],
    );
    let units = find_units(&open(&s, "img"), &["esc".into()]).unwrap();
    assert_eq!(units.len(), 2);
    for u in units {
        assert_eq!(
            u.content, b"[Service]\n# the image's shadow\n",
            "{}",
            u.name
        );
    }
}

#[test]
fn broken_unit_files_are_clear_errors() {
    let s = Scratch::new();
    make_tree(
        s.path(),
        &[
            Node::Link("/loop/usr/lib/systemd/system/x.service", "x.service"),
            Node::Link(
                "/dangling/usr/lib/systemd/system/x.service",
                "/nowhere/x.service",
            ),
            Node::Dir("/fifo/usr/lib/systemd/system"),
        ],
    );
    nix_mkfifo(&s.join("/fifo/usr/lib/systemd/system/x.service"));
    let err = |dir: &str| find_units(&open(&s, dir), &["x".into()]).unwrap_err();
    let e = err("loop");
    assert!(matches!(e, UnitError::Read { .. }), "{e}");
    assert!(
        e.to_string().contains("/usr/lib/systemd/system/x.service"),
        "{e}"
    );
    let e = err("dangling").to_string();
    assert!(e.contains("dangling"), "{e}");
    let e = err("fifo").to_string();
    assert!(e.contains("FIFO"), "{e}");
}

#[test]
fn too_many_units_are_refused() {
    let s = Scratch::new();
    let dir = s.join("/img/usr/lib/systemd/system");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..=portctl_engine::limits::UNITS_MAX {
        std::fs::write(dir.join(format!("many-{i}.service")), "x").unwrap();
    }
    let e = find_units(&open(&s, "img"), &["many".into()]).unwrap_err();
    assert!(matches!(e, UnitError::TooMany { .. }), "{e}");
    assert!(find_units(&open(&s, "img"), &["many-1.service".into()]).is_ok());
}

fn nix_mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn extension_release_by_name() {
    let s = Scratch::new();
    make_tree(
        s.path(),
        &[Node::File(
            "/ext/usr/lib/extension-release.d/extension-release.app-ext_1",
            "ID=_any\nSYSEXT_SCOPE=portable\n",
        )],
    );
    let root = open(&s, "ext");
    let r = portctl_engine::os_release::read_extension_release(&root, "app-ext_1")
        .unwrap()
        .unwrap();
    assert_eq!(
        r.path,
        "/usr/lib/extension-release.d/extension-release.app-ext_1"
    );
    assert_eq!(r.parsed.get("SYSEXT_SCOPE"), Some("portable"));
    assert!(
        portctl_engine::os_release::read_extension_release(&root, "other")
            .unwrap()
            .is_none()
    );
    assert!(
        portctl_engine::os_release::read_extension_release(&root, "../x")
            .unwrap()
            .is_none()
    );
}
