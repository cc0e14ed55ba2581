//! Attach, detach, reattach and state on a scratch host root: the files systemd 252 writes,
//! byte for byte, and the change lists in the reference's order and spelling.

use std::fs;

use portctl_engine::portable::{CopyMode, DetachOptions, Offline, OfflineAs};
use portctl_engine::version::Version;
use portctl_engine::Error;
use portctl_tests::{attach_host, mkimage, snapshot, Scratch};

use portctl_tests::change_lines as list;
use portctl_tests::engine::attach::*;

/// No PID 1, files for systemd 252.
const V252: OfflineAs = OfflineAs(Version(252));

#[test]
fn attach_directory_image_writes_what_v252_writes() {
    let (s, host) = setup();
    let before = snapshot(s.path(), &STATE_DIRS);
    let changes = host
        .attach(&V252, "minimal_1", &opts("default", false, CopyMode::Auto))
        .unwrap();
    let a = "/etc/systemd/system.attached";
    assert_eq!(
        list(&changes),
        [
            format!("mkdir {a}"),
            format!("mkdir {a}/minimal-test.service.d"),
            format!("write {a}/minimal-test.service.d/20-portable.conf"),
            format!("symlink {a}/minimal-test.service.d/10-profile.conf /usr/lib/systemd/portable/profile/default/service.conf"),
            format!("copy {a}/minimal-test.service /var/lib/portables/minimal_1/usr/lib/systemd/system/minimal-test.service"),
            "symlink /etc/portables/minimal_1 /var/lib/portables/minimal_1".to_string(),
        ]
    );
    let dropin =
        fs::read_to_string(s.join(format!("{a}/minimal-test.service.d/20-portable.conf"))).unwrap();
    assert_eq!(
        dropin,
        "# Drop-in created for image '/var/lib/portables/minimal_1', do not edit.\n\n[Service]\nRootDirectory=/var/lib/portables/minimal_1\nEnvironment=PORTABLE=minimal_1\nBindReadOnlyPaths=/etc/os-release:/run/host/os-release\nLogExtraFields=PORTABLE=minimal_1\n"
    );
    let snap = snapshot(
        s.path(),
        &["/etc/systemd/system.attached", "/etc/portables"],
    );
    assert_eq!(
        snap,
        [
            format!("{a} dir 755"),
            format!("{a}/minimal-test.service file 644 \"[Unit]\\nDescription=portctl sample service (minimal_1)\\n\\n[Service]\\nExecStart=/usr/bin/minimald\\n\\n[Install]\\nWantedBy=multi-user.target\\n\""),
            format!("{a}/minimal-test.service.d dir 755"),
            format!("{a}/minimal-test.service.d/10-profile.conf link -> /usr/lib/systemd/portable/profile/default/service.conf"),
            format!("{a}/minimal-test.service.d/20-portable.conf file 644 {dropin:?}"),
            "/etc/portables dir 755".to_string(),
            "/etc/portables/minimal_1 link -> /var/lib/portables/minimal_1".to_string(),
        ]
    );
    assert_eq!(
        host.image_state(&V252, "minimal_1", &[]).unwrap().as_str(),
        "attached"
    );
    assert_eq!(
        host.image_state(&V252, "minimal_2", &[]).unwrap().as_str(),
        "attached",
        "v252 ignores versions"
    );
    assert_eq!(
        host.image_state(&V252, "other", &[]).unwrap().as_str(),
        "detached"
    );

    // Detach by name: everything goes, in the reference's order.
    let changes = host
        .detach(&V252, "minimal_1", &DetachOptions::new(false, false))
        .unwrap();
    assert_eq!(
        list(&changes),
        [
            format!("unlink {a}/minimal-test.service"),
            format!("unlink {a}/minimal-test.service.d/10-profile.conf"),
            format!("unlink {a}/minimal-test.service.d/20-portable.conf"),
            format!("unlink {a}/minimal-test.service.d"),
            "unlink /etc/portables/minimal_1".to_string(),
            format!("unlink {a}"),
        ]
    );
    let mut after = snapshot(s.path(), &STATE_DIRS);
    after.retain(|l| !l.starts_with("/etc/portables "));
    assert_eq!(after, before, "no trace left");
    assert_eq!(
        host.image_state(&V252, "minimal_1", &[]).unwrap().as_str(),
        "detached"
    );
}

#[test]
fn checks_before_writing() {
    let (s, host) = setup();
    let o = opts("default", false, CopyMode::Auto);
    let nothing = || snapshot(s.path(), &["/etc/systemd", "/etc/portables"]);
    let before = nothing();
    // A unit of that name exists on the host.
    fs::create_dir_all(s.join("/etc/systemd/system")).unwrap();
    fs::write(s.join("/etc/systemd/system/minimal-test.service"), "x").unwrap();
    let e = host.attach(&Offline, "minimal_1", &o).unwrap_err();
    assert!(matches!(e, Error::UnitExists(_)));
    assert_eq!(
        e.to_string(),
        "Unit file 'minimal-test.service' exists on the host already, refusing."
    );
    fs::remove_file(s.join("/etc/systemd/system/minimal-test.service")).unwrap();
    fs::remove_dir(s.join("/etc/systemd/system")).unwrap();
    fs::remove_dir(s.join("/etc/systemd")).unwrap();
    let e = host
        .attach(&Active("minimal-test.service"), "minimal_1", &o)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unit file 'minimal-test.service' is active already, refusing."
    );
    let e = host
        .attach(&V252, "minimal_1", &opts("nope", false, CopyMode::Auto))
        .unwrap_err();
    assert!(matches!(e, Error::NoSuchProfile(_)), "{e}");
    // 262 refuses in its own words, naming the profiles there are.
    let e = host
        .attach(&Offline, "minimal_1", &opts("nope", false, CopyMode::Auto))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Profile 'nope' does not exist, refusing. (Available profiles are: default, nonetwork, strict, trusted)"
    );
    assert_eq!(
        CopyMode::parse("bogus").unwrap_err().to_string(),
        "Unknown copy mode 'bogus'"
    );
    let mut wrong = o.clone();
    wrong.matches = vec!["other".into()];
    assert_eq!(
        host.attach(&Offline, "minimal_1", &wrong)
            .unwrap_err()
            .to_string(),
        "Couldn't find any matching unit files in image '/var/lib/portables/minimal_1', refusing."
    );
    assert!(matches!(
        host.attach(&Offline, "/var/lib/../lib/portables/minimal_1", &o),
        Err(Error::BadImageRef(_))
    ));
    assert!(matches!(
        host.attach(&Offline, "nosuch", &o),
        Err(Error::NoSuchImage(_))
    ));
    assert_eq!(nothing(), before, "nothing written");

    // Attached and active: detach refuses, and nothing changes.
    host.attach(&Offline, "minimal_1", &o).unwrap();
    let attached = nothing();
    let e = host
        .detach(
            &Active("minimal-test.service"),
            "minimal_1",
            &DetachOptions::new(false, false),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unit file 'minimal-test.service' is active, can't detach."
    );
    assert_eq!(nothing(), attached);
    assert_eq!(
        host.image_state(&Active("minimal-test.service"), "minimal_1", &[])
            .unwrap()
            .as_str(),
        "running"
    );
    let e = host
        .detach(&Offline, "other", &DetachOptions::new(false, false))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "No unit files associated with 'other' found attached to the system. Image not attached?"
    );
}

#[test]
fn user_drop_ins_give_enotempty_after_removing_the_rest() {
    let (s, host) = setup();
    host.attach(
        &Offline,
        "minimal_1",
        &opts("default", false, CopyMode::Auto),
    )
    .unwrap();
    let d = s.join("/etc/systemd/system.attached/minimal-test.service.d");
    fs::write(d.join("50-mine.conf"), "[Service]\n").unwrap();
    let e = host
        .detach(&Offline, "minimal_1", &DetachOptions::new(false, false))
        .unwrap_err();
    assert!(matches!(e, Error::NotEmpty(_)), "{e}");
    assert!(e.to_string().contains("minimal-test.service.d"), "{e}");
    let left = snapshot(
        s.path(),
        &["/etc/systemd/system.attached", "/etc/portables"],
    );
    assert_eq!(
        left,
        [
            "/etc/systemd/system.attached dir 755",
            "/etc/systemd/system.attached/minimal-test.service.d dir 755",
            "/etc/systemd/system.attached/minimal-test.service.d/50-mine.conf file 644 \"[Service]\\n\"",
            "/etc/portables dir 755",
        ]
    );
}

#[test]
fn reattach_swaps_versions_and_reports_both_lists() {
    let (s, host) = setup();
    // v2 has no extra unit; v1 has minimal-old.service too.
    fs::write(
        s.join("/var/lib/portables/minimal_1/usr/lib/systemd/system/minimal-old.service"),
        "[Service]\nExecStart=/usr/bin/minimald\n",
    )
    .unwrap();
    mkimage(&s.join("/var/lib/portables/minimal_2"), &[]);
    host.attach(
        &Offline,
        "minimal_1",
        &opts("default", false, CopyMode::Auto),
    )
    .unwrap();
    let (removed, updated) = host
        .reattach(
            &Offline,
            "minimal_2",
            &opts("default", false, CopyMode::Auto),
        )
        .unwrap();
    let a = "/etc/systemd/system.attached";
    assert_eq!(
        list(&removed),
        [
            format!("unlink {a}/minimal-old.service"),
            format!("unlink {a}/minimal-old.service.d"),
            "unlink /etc/portables/minimal_1".to_string(),
        ]
    );
    assert_eq!(
        list(&updated),
        [
            format!("mkdir {a}"),
            format!("mkdir {a}/minimal-test.service.d"),
            format!("write {a}/minimal-test.service.d/20-portable.conf"),
            format!("symlink {a}/minimal-test.service.d/10-profile.conf /usr/lib/systemd/portable/profile/default/service.conf"),
            format!("copy {a}/minimal-test.service /var/lib/portables/minimal_2/usr/lib/systemd/system/minimal-test.service"),
            "symlink /etc/portables/minimal_2 /var/lib/portables/minimal_2".to_string(),
        ]
    );
    let snap = snapshot(s.path(), &[a, "/etc/portables"]);
    assert!(!snap.iter().any(|l| l.contains("minimal-old")), "{snap:#?}");
    assert!(
        snap.iter()
            .any(|l| l.contains("RootDirectory=/var/lib/portables/minimal_2")),
        "{snap:#?}"
    );
    assert!(
        snap.contains(&"/etc/portables/minimal_2 link -> /var/lib/portables/minimal_2".to_string()),
        "{snap:#?}"
    );
    assert!(
        !snap
            .iter()
            .any(|l| l.starts_with("/etc/portables/minimal_1")),
        "{snap:#?}"
    );
    // By short name, again (v252 loses the attachment here: docs/compatibility.md, "reattach").
    host.reattach(
        &Offline,
        "minimal_2",
        &opts("default", false, CopyMode::Auto),
    )
    .unwrap();
    assert_eq!(
        host.image_state(&Offline, "minimal_2", &[])
            .unwrap()
            .as_str(),
        "attached"
    );
    // Nothing attached: NoSuchUnit, nothing changes.
    host.detach(&Offline, "minimal_2", &DetachOptions::new(false, false))
        .unwrap();
    let e = host
        .reattach(
            &Offline,
            "minimal_2",
            &opts("default", false, CopyMode::Auto),
        )
        .unwrap_err();
    assert!(matches!(e, Error::NoSuchUnit(_)));
    assert!(!s.join(a).exists());
}

#[test]
fn failed_reattach_restores_the_old_attachment() {
    let (s, host) = setup();
    mkimage(&s.join("/var/lib/portables/minimal_2"), &[]);
    host.attach(
        &Offline,
        "minimal_1",
        &opts("default", false, CopyMode::Auto),
    )
    .unwrap();
    let before = snapshot(s.path(), &STATE_DIRS);
    // The new image lacks os-release: the reattach fails before touching anything.
    fs::remove_file(s.join("/var/lib/portables/minimal_2/usr/lib/os-release")).unwrap();
    fs::remove_file(s.join("/var/lib/portables/minimal_2/etc/os-release")).unwrap();
    let e = host
        .reattach(
            &Offline,
            "minimal_2",
            &opts("default", false, CopyMode::Auto),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Image 'minimal_2' lacks os-release data, refusing."
    );
    let mut after = snapshot(s.path(), &STATE_DIRS);
    after.retain(|l| !l.contains("minimal_2"));
    let mut before_wo = before.clone();
    before_wo.retain(|l| !l.contains("minimal_2"));
    assert_eq!(after, before_wo);
    // A failure while committing (a directory in the way of a new file) restores byte for byte.
    fs::write(
        s.join("/var/lib/portables/minimal_2/usr/lib/os-release"),
        "ID=x\n",
    )
    .unwrap();
    let bad = s.join("/etc/systemd/system.attached/minimal-new.service");
    fs::write(
        s.join("/var/lib/portables/minimal_2/usr/lib/systemd/system/minimal-new.service"),
        "[Service]\nExecStart=/usr/bin/minimald\n",
    )
    .unwrap();
    fs::create_dir_all(bad.join("blocker")).unwrap();
    let before = snapshot(
        s.path(),
        &["/etc/systemd/system.attached", "/etc/portables"],
    );
    let e = host
        .reattach(
            &Offline,
            "minimal_2",
            &opts("default", false, CopyMode::Auto),
        )
        .unwrap_err();
    eprintln!("reattach failed as expected: {e}");
    assert_eq!(
        snapshot(
            s.path(),
            &["/etc/systemd/system.attached", "/etc/portables"]
        ),
        before
    );
}

#[test]
fn flags_are_checked() {
    use portctl_dbus::flags::Flags;
    assert_eq!(
        Flags::from_bits(6).unwrap(),
        Flags {
            runtime: false,
            force_attach: true,
            force_extension: true
        }
    );
    assert!(Flags::from_bits(1).unwrap().runtime);
    assert_eq!(
        Flags::from_bits(8).unwrap_err().to_string(),
        "Invalid 'flags' parameter '8'"
    );
    assert!(Flags::from_bits(u64::MAX).is_err());
}

#[test]
fn enabled_state_and_drop_in_only_leftovers() {
    let (s, host) = setup();
    host.attach(
        &Offline,
        "minimal_1",
        &opts("default", false, CopyMode::Auto),
    )
    .unwrap();
    let wants = s.join("/etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        "/etc/systemd/system.attached/minimal-test.service",
        wants.join("minimal-test.service"),
    )
    .unwrap();
    assert_eq!(
        host.image_state(&Offline, "minimal_1", &[])
            .unwrap()
            .as_str(),
        "enabled"
    );
    fs::remove_file(wants.join("minimal-test.service")).unwrap();
    // The unit file is gone (e.g. disabled after a symlink attach): the drop-ins still count.
    fs::remove_file(s.join("/etc/systemd/system.attached/minimal-test.service")).unwrap();
    assert_eq!(
        host.image_state(&Offline, "minimal_1", &[])
            .unwrap()
            .as_str(),
        "attached"
    );
    let changes = host
        .detach(&Offline, "minimal_1", &DetachOptions::new(false, false))
        .unwrap();
    assert!(list(&changes)
        .contains(&"unlink /etc/systemd/system.attached/minimal-test.service.d".to_string()));
    assert!(!s.join("/etc/systemd/system.attached").exists());
}

/// v252 reattaches by detaching, which removes the attached directory only when it is empty,
/// and attaching: the directory is reported created again only when it was removed. The
/// `*.wants/` links of an enabled unit (systemd puts them there) keep it.
#[test]
fn reattach_reports_the_directory_only_when_the_reference_recreates_it() {
    let (s, host) = setup();
    let o = opts("default", false, CopyMode::Auto);
    host.attach(&Offline, "minimal_1", &o).unwrap();
    let a = "/etc/systemd/system.attached";
    let (_, updated) = host.reattach(&Offline, "minimal_1", &o).unwrap();
    assert!(
        list(&updated).contains(&format!("mkdir {a}")),
        "{updated:?}"
    );
    let wants = s.join(a).join("multi-user.target.wants");
    fs::create_dir(&wants).unwrap();
    std::os::unix::fs::symlink(
        format!("{a}/minimal-test.service"),
        wants.join("minimal-test.service"),
    )
    .unwrap();
    let (_, updated) = host.reattach(&Offline, "minimal_1", &o).unwrap();
    assert!(
        !list(&updated).contains(&format!("mkdir {a}")),
        "{updated:?}"
    );
    assert!(list(&updated).contains(&format!("mkdir {a}/minimal-test.service.d")));
    assert!(fs::symlink_metadata(wants.join("minimal-test.service")).is_ok());
}

#[test]
fn unit_symlinks_out_of_the_image_are_read_inside_it() {
    let (s, host) = setup();
    let img = s.join("/var/lib/portables/minimal_1");
    // The unit is a link to /etc/shadow: the image's, not the host's.
    fs::write(
        img.join("etc/shadow"),
        "[Service]\nExecStart=/usr/bin/minimald\n",
    )
    .unwrap();
    let unit = img.join("usr/lib/systemd/system/minimal-test.service");
    fs::remove_file(&unit).unwrap();
    std::os::unix::fs::symlink("../../../../../../../etc/shadow", &unit).unwrap();
    host.attach(
        &Offline,
        "minimal_1",
        &opts("default", false, CopyMode::Auto),
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(s.join("/etc/systemd/system.attached/minimal-test.service")).unwrap(),
        "[Service]\nExecStart=/usr/bin/minimald\n"
    );
    host.detach(&Offline, "minimal_1", &DetachOptions::new(false, false))
        .unwrap();
    // Matches that are no unit-name prefix find nothing, and write nothing.
    for bad in ["../x", "a/b", ""] {
        let mut o = opts("default", false, CopyMode::Auto);
        o.matches = vec![bad.into()];
        assert!(host.attach(&Offline, "minimal_1", &o).is_err(), "{bad:?}");
    }
    assert!(!s.join("/etc/systemd/system.attached").exists());
}

/// The image's link in /etc/portables is a convenience: when it cannot be made (here
/// /etc/portables is a file), the attach is made without it, as v252 ignores link failures.
#[test]
fn fs_an_image_link_that_cannot_be_made_fails_no_attach() {
    let (s, host) = setup();
    fs::write(s.join("/etc/portables"), "not a directory\n").unwrap();
    let changes = host
        .attach(
            &Offline,
            "minimal_1",
            &opts("default", false, CopyMode::Auto),
        )
        .unwrap();
    assert!(
        !list(&changes).iter().any(|c| c.contains("/etc/portables")),
        "{changes:?}"
    );
    assert!(s
        .join("/etc/systemd/system.attached/minimal-test.service")
        .exists());
    assert_eq!(
        fs::read_to_string(s.join("/etc/portables")).unwrap(),
        "not a directory\n"
    );
    host.detach(&Offline, "minimal_1", &DetachOptions::new(false, false))
        .unwrap();
}

/// The repairs of a writable image are part of the attach: refused by a check against the
/// host (UnitExists) after a repair was planned, the image stays exactly as it was.
#[test]
fn fs_a_refused_attach_leaves_a_writable_image_as_it_was() {
    let s = Scratch::new();
    let host = attach_host(&s);
    let img = mkimage(
        &s.join("/var/lib/portables/bare_1"),
        &["--no-mount-points", "--prefix", "minimal"],
    );
    fs::create_dir_all(s.join("/lib/systemd/system")).unwrap();
    fs::write(
        s.join("/lib/systemd/system/minimal-test.service"),
        "[Service]\n",
    )
    .unwrap();
    let before = snapshot(s.path(), &["/var/lib/portables", "/etc"]);
    let e = host
        .attach(&Offline, "bare_1", &opts("default", false, CopyMode::Auto))
        .unwrap_err();
    assert!(matches!(e, Error::UnitExists(_)), "{e}");
    assert_eq!(snapshot(s.path(), &["/var/lib/portables", "/etc"]), before);
    assert!(!img.join("proc").exists());
}

#[test]
fn detach_never_deletes_an_image_kept_in_etc_portables() {
    // systemd-portabled 262 deletes /etc/portables/NAME on detach when the image itself lives
    // there (docs/compatibility.md); portctl removes only links and copies it made.
    let (s, host) = setup();
    mkimage(&s.join("/etc/portables/minimal_9"), &[]);
    for copy in [CopyMode::Auto, CopyMode::Mixed] {
        let changes = host
            .attach(&Offline, "minimal_9", &opts("default", false, copy))
            .unwrap();
        assert!(
            !list(&changes)
                .iter()
                .any(|c| c.split(' ').nth(1) == Some("/etc/portables/minimal_9")),
            "{copy:?}: {changes:?}"
        );
        let changes = host
            .detach(&Offline, "minimal_9", &DetachOptions::new(false, false))
            .unwrap();
        assert!(
            !list(&changes).contains(&"unlink /etc/portables/minimal_9".to_string()),
            "{copy:?}: {changes:?}"
        );
        assert!(
            s.join("/etc/portables/minimal_9/usr/lib/os-release")
                .exists(),
            "{copy:?}: the image is gone"
        );
    }
}
