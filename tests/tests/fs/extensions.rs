//! Extension images: a root image plus sysext/confext layers, attached, queried and
//! detached on a scratch host root.

use std::fs;

use portctl_engine::portable::{DetachOptions, Offline, OfflineAs};
use portctl_engine::version::Version;
use portctl_engine::Error;
use portctl_tests::engine::extensions::*;
use portctl_tests::{change_lines as list, mkextension, mkimage, snapshot};

/// No PID 1, files for systemd 252.
const V252: OfflineAs = OfflineAs(Version(252));

#[test]
fn layered_attach_writes_every_layer() {
    let (s, host) = setup();
    let changes = host
        .attach(&V252, "app_1", &opts(&["app"], &["app-ext_1"]))
        .unwrap();
    let lines = list(&changes);
    assert!(lines.contains(&format!(
        "copy {A}/app-ext.service /var/lib/portables/app-ext_1/usr/lib/systemd/system/app-ext.service"
    )));
    // The root's unit wins over the extension's.
    assert!(lines.contains(&format!(
        "copy {A}/app-test.service /var/lib/portables/app_1/usr/lib/systemd/system/app-test.service"
    )));
    assert!(lines.contains(&"symlink /etc/portables/app_1 /var/lib/portables/app_1".to_string()));
    assert!(lines
        .contains(&"symlink /etc/portables/app-ext_1 /var/lib/portables/app-ext_1".to_string()));
    let ext_dropin = read(&s, &format!("{A}/app-ext.service.d/20-portable.conf"));
    assert_eq!(
        ext_dropin,
        "# Drop-in created for image '/var/lib/portables/app_1:/var/lib/portables/app-ext_1', do not edit.\n\
         \n[Service]\nRootDirectory=/var/lib/portables/app_1\nEnvironment=PORTABLE=app-ext_1\n\
         BindReadOnlyPaths=/etc/os-release:/run/host/os-release\nLogExtraFields=PORTABLE=app-ext_1\n\
         ExtensionDirectories=/var/lib/portables/app-ext_1\n"
    );
    let root_dropin = read(&s, &format!("{A}/app-test.service.d/20-portable.conf"));
    assert!(root_dropin.contains("Environment=PORTABLE=app_1\n"));
    assert!(!root_dropin.contains("Extension"));
    assert!(root_dropin.starts_with(
        "# Drop-in created for image '/var/lib/portables/app_1:/var/lib/portables/app-ext_1'"
    ));
    // State: the root alone or with its extension.
    assert_eq!(
        host.image_state(&V252, "app_1", &[]).unwrap().as_str(),
        "attached"
    );
    assert_eq!(
        host.image_state(&V252, "app_1", &["app-ext_1".into()])
            .unwrap()
            .as_str(),
        "attached"
    );
    // Detaching needs every layer.
    let e = host
        .detach(&V252, "app_1", &DetachOptions::new(false, false))
        .unwrap_err();
    assert!(matches!(e, Error::NoSuchUnit(_)), "{e}");
    let gone = host
        .detach(
            &V252,
            "app_1",
            &DetachOptions {
                extensions: vec!["app-ext_1".into()],
                runtime: false,
                force: false,
            },
        )
        .unwrap();
    assert!(list(&gone).contains(&"unlink /etc/portables/app-ext_1".to_string()));
    assert!(!s.join(A).exists());
    assert!(!s.join("/etc/portables/app-ext_1").exists());
}

#[test]
fn extension_release_is_checked_against_the_root() {
    let (s, host) = setup();
    let before = snapshot(s.path(), &[A, "/etc/portables"]);
    // No extension-release at all.
    mkimage(&s.join("/var/lib/portables/plain_1"), &["--prefix", "app"]);
    let e = host
        .attach(&Offline, "app_1", &opts(&["app"], &["plain_1"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("plain_1 lacks extension-release data"), "{e}");
    // Another OS, another version, another scope.
    for (name, release, why) in [
        ("other-id_1", "ID=fedora\n", "ID=fedora"),
        ("other-ver_1", "VERSION_ID=2\n", "VERSION_ID=2"),
        ("scope_1", "SYSEXT_SCOPE=system initrd\n", "SYSEXT_SCOPE"),
        ("arch_1", "ARCHITECTURE=alpha\n", "ARCHITECTURE=alpha"),
    ] {
        let p = s.join(format!("/var/lib/portables/{name}"));
        mkextension(&p, "dir", &["app-x.service"], "");
        // The later assignment wins in an os-release file.
        let rel = p.join(format!(
            "usr/lib/extension-release.d/extension-release.{name}"
        ));
        let mut text = fs::read_to_string(&rel).unwrap();
        text.push_str(release);
        fs::write(&rel, text).unwrap();
        let e = host
            .attach(&Offline, "app_1", &opts(&["app"], &[name]))
            .unwrap_err();
        assert!(matches!(e, Error::Stale(_)), "{name}: {e}");
        assert!(e.to_string().contains(why), "{name}: {e}");
    }
    // ID=_any and a matching scope are fine; a wrongly named release file is taken only with
    // FORCE_EXTENSION.
    let any = s.join("/var/lib/portables/any_1");
    mkextension(
        &any,
        "dir",
        &["app-any.service"],
        "SYSEXT_SCOPE=portable system\n",
    );
    let rel = any.join("usr/lib/extension-release.d/extension-release.any_1");
    fs::write(&rel, "ID=_any\nSYSEXT_SCOPE=portable\n").unwrap();
    fs::rename(&rel, rel.with_file_name("extension-release.renamed")).unwrap();
    let e = host
        .attach(&Offline, "app_1", &opts(&["app"], &["any_1"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("any_1 lacks extension-release data"), "{e}");
    assert_eq!(snapshot(s.path(), &[A, "/etc/portables"]), before);
    let mut o = opts(&["app"], &["any_1"]);
    o.relax_extension_check = true;
    host.attach(&Offline, "app_1", &o).unwrap();
    assert!(s.join(format!("{A}/app-any.service")).exists());
}

/// Two services sharing one base image: detaching one leaves the other.
#[test]
fn two_services_on_one_base_image() {
    let (s, host) = setup();
    mkextension(
        &s.join("/var/lib/portables/one_1"),
        "dir",
        &["one-svc.service"],
        "",
    );
    mkextension(
        &s.join("/var/lib/portables/two_1"),
        "dir",
        &["two-svc.service"],
        "",
    );
    host.attach(&Offline, "app_1", &opts(&["one"], &["one_1"]))
        .unwrap();
    host.attach(&Offline, "app_1", &opts(&["two"], &["two_1"]))
        .unwrap();
    host.detach(
        &Offline,
        "app_1",
        &DetachOptions {
            extensions: vec!["one_1".into()],
            runtime: false,
            force: false,
        },
    )
    .unwrap();
    assert!(!s.join(format!("{A}/one-svc.service")).exists());
    assert!(s.join(format!("{A}/two-svc.service")).exists());
    // The base's link stays while two_1 still uses it.
    assert!(fs::symlink_metadata(s.join("/etc/portables/app_1")).is_ok());
    host.detach(
        &Offline,
        "app_1",
        &DetachOptions {
            extensions: vec!["two_1".into()],
            runtime: false,
            force: false,
        },
    )
    .unwrap();
    assert!(!s.join(A).exists());
}

/// Metadata of a layered image: the extension releases, in order, and every layer's units.
#[test]
fn layered_metadata() {
    let (s, host) = setup();
    let (meta, releases) = host
        .image_metadata(&Offline, "app_1", &["app-ext_1".into()], &[], false)
        .unwrap();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].0, "/var/lib/portables/app-ext_1");
    assert!(String::from_utf8_lossy(&releases[0].1).contains("ID=portctl-sample"));
    let names: Vec<&str> = meta.units.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["app-ext.service", "app-test.service"]);
    // The root's own unit, not the extension's.
    assert!(!String::from_utf8_lossy(&meta.units[1].1).contains("from the extension"));
    let _ = s;
}

/// A confext image: its release file in /etc/extension-release.d with CONFEXT_* fields, its
/// unit under /etc/systemd/system.
#[test]
fn confext_layers() {
    let (s, host) = setup();
    let conf = s.join("/var/lib/portables/app-conf_1");
    fs::create_dir_all(conf.join("etc/extension-release.d")).unwrap();
    fs::create_dir_all(conf.join("etc/systemd/system")).unwrap();
    fs::write(
        conf.join("etc/extension-release.d/extension-release.app-conf_1"),
        "ID=portctl-sample\nVERSION_ID=1\nCONFEXT_SCOPE=portable\n",
    )
    .unwrap();
    fs::write(
        conf.join("etc/systemd/system/app-conf.service"),
        "[Service]\nExecStart=/usr/bin/minimald\n",
    )
    .unwrap();
    host.attach(&V252, "app_1", &opts(&["app"], &["app-conf_1"]))
        .unwrap();
    let dropin = read(&s, &format!("{A}/app-conf.service.d/20-portable.conf"));
    assert!(
        dropin.ends_with("ExtensionDirectories=/var/lib/portables/app-conf_1\n"),
        "{dropin}"
    );
    host.detach(
        &V252,
        "app_1",
        &DetachOptions {
            extensions: vec!["app-conf_1".into()],
            runtime: false,
            force: false,
        },
    )
    .unwrap();
    // A confext for another scope is refused.
    fs::write(
        conf.join("etc/extension-release.d/extension-release.app-conf_1"),
        "ID=portctl-sample\nVERSION_ID=1\nCONFEXT_SCOPE=system\n",
    )
    .unwrap();
    let e = host
        .attach(&V252, "app_1", &opts(&["app"], &["app-conf_1"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("CONFEXT_SCOPE=system"), "{e}");
}
