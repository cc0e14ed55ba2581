//! What an attack on portctl found, tested on the engine (docs/security.md, "Findings"):
//! instances of host templates and [Install] names of host units, units that widen their
//! profile, paths that would write their own lines into a drop-in, `--copy=mixed` over an
//! existing image and dense copies of sparse ones, ext4 mount options chosen by the image,
//! prefix matching of image names, and images in use as extensions. `fs_` tests need a disk
//! file system only; `loop_` tests need root and loop devices.

use std::fs;

use portctl_engine::portable::{AttachOptions, DetachOptions, Offline, OfflineAs};
use portctl_engine::version::Version;
use portctl_engine::Error;
use portctl_tests::engine::security::*;
use portctl_tests::{attach_host, mkimage, snapshot, Scratch};

#[test]
fn fs_instances_of_host_templates_and_host_install_names_are_refused() {
    for (unit, install, host_unit, refused) in [
        ("user@0.service", "", "user@.service", "user@0.service"),
        (
            "getty@tty9.service",
            "",
            "getty@.service",
            "getty@tty9.service",
        ),
        (
            "app-test.service",
            "Also=debug-shell.service",
            "debug-shell.service",
            "debug-shell.service",
        ),
        (
            "app-test.service",
            "Alias=dbus-org.freedesktop.network1.service",
            "dbus-org.freedesktop.network1.service",
            "dbus-org.freedesktop.network1.service",
        ),
    ] {
        let s = Scratch::new();
        let host = app_image(&s, "", install);
        let units = s.join("/var/lib/portables/app_1/usr/lib/systemd/system");
        if unit != "app-test.service" {
            fs::rename(units.join("app-test.service"), units.join(unit)).unwrap();
        }
        fs::create_dir_all(s.join("/lib/systemd/system")).unwrap();
        fs::write(
            s.join(format!("/lib/systemd/system/{host_unit}")),
            "[Service]\n",
        )
        .unwrap();
        let before = snapshot(s.path(), &STATE);
        let prefix = unit.split(['@', '.']).next().unwrap();
        let e = host
            .attach(&Offline, "app_1", &opts(&[prefix], "default"))
            .unwrap_err();
        assert!(matches!(e, Error::UnitExists(_)), "{unit}: {e}");
        assert!(e.to_string().contains(refused), "{unit}: {e}");
        assert_eq!(
            snapshot(s.path(), &STATE),
            before,
            "{unit}: nothing changed"
        );
        // The same units name no host unit on a host without them.
        fs::remove_file(s.join(format!("/lib/systemd/system/{host_unit}"))).unwrap();
        host.attach(&Offline, "app_1", &opts(&[prefix], "default"))
            .unwrap_or_else(|e| panic!("{unit}: {e}"));
    }
}

#[test]
fn fs_units_that_widen_their_profile_are_refused_unless_trusted_or_forced() {
    // (setting, profile under which it widens)
    let cases = [
        ("User=root", "default"),
        ("User=0", "default"),
        ("Group=root", "default"),
        ("DynamicUser=no", "default"),
        ("PrivateUsers=no", "default"),
        ("PrivateDevices=no", "default"),
        ("NoNewPrivileges=no", "strict"),
        ("PrivateNetwork=no", "strict"),
        ("BindPaths=/etc:/hostetc", "default"),
        ("BindReadOnlyPaths=/root", "default"),
        ("LoadCredential=key:/etc/shadow", "default"),
        ("CapabilityBoundingSet=CAP_SYS_MODULE", "default"),
        ("CapabilityBoundingSet=CAP_CHOWN", "strict"),
        ("RootDirectory=/", "default"),
        ("StandardOutput=truncate:/etc/passwd", "default"),
        ("ExecStartPost=+/usr/bin/minimald", "default"),
    ];
    for (setting, profile) in cases {
        let s = Scratch::new();
        fs::create_dir_all(s.join("/etc")).unwrap();
        fs::write(s.join("/etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(s.join("/etc/group"), "root:x:0:\n").unwrap();
        let host = app_image(&s, setting, "");
        let before = snapshot(s.path(), &STATE);
        let e = host
            .attach(&Offline, "app_1", &opts(&["app"], profile))
            .unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, Error::WidensProfile { .. })
                && text.contains(setting)
                && text.contains(&format!("profile '{profile}'"))
                && text.contains("--profile=trusted")
                && text.contains("--force"),
            "{setting}: {text}"
        );
        assert_eq!(snapshot(s.path(), &STATE), before, "{setting}");
        // trusted allows it, and so does --force.
        host.attach(&Offline, "app_1", &opts(&["app"], "trusted"))
            .unwrap_or_else(|e| panic!("{setting} under trusted: {e}"));
        host.detach(&Offline, "app_1", &DetachOptions::new(false, false))
            .unwrap();
        let forced = AttachOptions {
            force: true,
            ..opts(&["app"], profile)
        };
        host.attach(&Offline, "app_1", &forced)
            .unwrap_or_else(|e| panic!("{setting} with --force: {e}"));
    }
}

#[test]
fn fs_a_timer_or_socket_of_the_image_cannot_reach_the_host() {
    let s = Scratch::new();
    let host = app_image(&s, "", "");
    let units = s.join("/var/lib/portables/app_1/usr/lib/systemd/system");
    fs::write(
        units.join("app-test.timer"),
        "[Timer]\nOnCalendar=daily\nUnit=debug-shell.service\n",
    )
    .unwrap();
    let e = host
        .attach(&Offline, "app_1", &opts(&["app"], "default"))
        .unwrap_err();
    assert!(e.to_string().contains("Unit=debug-shell.service"), "{e}");
    fs::write(
        units.join("app-test.timer"),
        "[Timer]\nOnCalendar=daily\nUnit=app-test.service\n",
    )
    .unwrap();
    fs::write(
        units.join("app-test.socket"),
        "[Socket]\nListenStream=/run/app.sock\nExecStartPre=/bin/sh -c 'id > /root/owned'\n",
    )
    .unwrap();
    let e = host
        .attach(&Offline, "app_1", &opts(&["app"], "default"))
        .unwrap_err();
    assert!(e.to_string().contains("runs a command on the host"), "{e}");
}

#[test]
fn fs_paths_with_control_characters_are_refused_and_specifiers_escaped() {
    let s = Scratch::new();
    let host = attach_host(&s);
    let evil = "/srv/evil\nUser=root\nPrivateUsers=no\n[Service]\n/minimal_1";
    let e = host
        .attach(&Offline, evil, &opts(&["minimal"], "default"))
        .unwrap_err();
    assert!(
        e.to_string().contains("contains control characters")
            && e.to_string().contains("\\nUser=root"),
        "{e}"
    );
    // A '%' in a path is a specifier to systemd: written as "%%".
    mkimage(&s.join("/srv/100%n/minimal_1"), &[]);
    host.attach(
        &Offline,
        "/srv/100%n/minimal_1",
        &opts(&["minimal"], "default"),
    )
    .unwrap();
    let dropin = fs::read_to_string(
        s.join("/etc/systemd/system.attached/minimal-test.service.d/20-portable.conf"),
    )
    .unwrap();
    assert!(dropin.starts_with("# Drop-in created for image '/srv/100%n/minimal_1'"));
    assert!(
        dropin.contains("\nRootDirectory=/srv/100%%n/minimal_1\n"),
        "{dropin}"
    );
}

#[test]
fn fs_detach_matches_whole_image_names_and_prefers_the_exact_version() {
    let s = Scratch::new();
    let host = attach_host(&s);
    mkimage(&s.join("/var/lib/portables/apple_2"), &[]);
    host.attach(&Offline, "apple_2", &opts(&["apple"], "default"))
        .unwrap();
    // v252 compared names as prefixes: "app_1" detached "apple_2".
    let e = host
        .detach(&Offline, "app_1", &DetachOptions::new(false, false))
        .unwrap_err();
    assert!(matches!(e, Error::NoSuchUnit(_)), "{e}");
    assert!(s
        .join("/etc/systemd/system.attached/apple-test.service")
        .exists());

    // Two versions attached side by side (other units): each detaches alone.
    for (img, unit) in [("app_1", "app-one"), ("app_2", "app-two")] {
        let p = mkimage(
            &s.join(format!("/var/lib/portables/{img}")),
            &["--prefix", unit],
        );
        let _ = p;
        host.attach(&Offline, img, &opts(&[unit], "default"))
            .unwrap();
    }
    host.detach(&Offline, "app_1", &DetachOptions::new(false, false))
        .unwrap();
    let a = s.join("/etc/systemd/system.attached");
    assert!(!a.join("app-one-test.service").exists());
    assert!(a.join("app-two-test.service").exists(), "app_2 stays");
    // With one version attached, another version's name still finds it (as systemd does).
    host.detach(&Offline, "app_7", &DetachOptions::new(false, false))
        .unwrap();
    assert!(!a.join("app-two-test.service").exists());
}

#[test]
fn fs_an_image_attached_as_an_extension_is_not_removed() {
    let s = Scratch::new();
    let host = attach_host(&s);
    mkimage(&s.join("/var/lib/portables/app_1"), &[]);
    portctl_tests::mkextension(
        &s.join("/var/lib/portables/app-ext_1"),
        "dir",
        &["app-ext.service"],
        "",
    );
    host.attach(
        &Offline,
        "app_1",
        &AttachOptions {
            extensions: vec!["app-ext_1".into()],
            ..opts(&["app"], "default")
        },
    )
    .unwrap();
    // 252 counts only root images as attached: the extension check refuses it.
    let e = host
        .remove_image(&OfflineAs(Version(252)), "app-ext_1")
        .unwrap_err();
    assert!(
        matches!(e, Error::Busy(_)) && e.to_string().contains("extension"),
        "{e}"
    );
    // From 256 on an extension has the state of its attachment (VersionedImageNames).
    let e = host.remove_image(&Offline, "app-ext_1").unwrap_err();
    assert!(
        matches!(e, Error::Busy(_))
            && e.to_string() == "Image 'app-ext_1' is not detached, refusing.",
        "{e}"
    );
    assert!(s.join("/var/lib/portables/app-ext_1").exists());
}
