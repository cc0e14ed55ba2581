//! Differential tests against the real systemd-portabled of each version the box tier boots
//! (252, 257, 262), running under that version's PID 1 in a systemd-nspawn box: the same
//! images attached by `portablectl` and by our engine (writing for the box's version) into the
//! same root must give the same files, modes, symlink targets and contents, and the same change
//! lists; each side detaches what the other attached.

use std::path::Path;

use portctl_engine::portable::{AttachOptions, CopyMode, DetachOptions, OfflineAs};
use portctl_engine::version::Version;
use portctl_engine::Host;
use portctl_tests::{mkimage, parse_portablectl_changes, snapshot, SystemdBox};

use crate::{Role, Scenario, EVERY_VERSION};

/// Against the box version's own portabled, each in a box of its own (the reference's state).
pub fn scenarios() -> Vec<Scenario> {
    let s = |name, run| Scenario {
        name,
        role: Role::Own,
        versions: EVERY_VERSION,
        run,
    };
    vec![
        s(
            "same_files_and_changes_as_the_reference",
            same_files_and_changes_as_the_reference,
        ),
        s(
            "reattach_reports_what_the_reference_reports",
            reattach_reports_what_the_reference_reports,
        ),
        s(
            "layered_attach_matches_the_reference",
            layered_attach_matches_the_reference,
        ),
    ]
}

/// The engine without a PID 1, writing for the box's systemd.
fn as_box(b: &SystemdBox) -> OfflineAs {
    OfflineAs(Version(b.systemd().number()))
}

const DIRS: [&str; 4] = [
    "/etc/systemd/system.attached",
    "/run/systemd/system.attached",
    "/etc/portables",
    "/run/portables",
];

/// The attached state under `root`. The /etc/portables and /run/portables directories
/// themselves stay after a detach, with systemd as with us.
fn tree(root: &Path) -> Vec<String> {
    let mut t = snapshot(root, &DIRS);
    t.retain(|l| {
        !matches!(
            l.as_str(),
            "/etc/portables dir 755" | "/run/portables dir 755"
        )
    });
    t
}

use portctl_tests::change_lines as list;

struct Case {
    what: &'static str,
    /// mkimage format and where the image goes (inside the box).
    format: &'static str,
    path: &'static str,
    /// What is passed to attach: a name or the path.
    arg: &'static str,
    runtime: bool,
    copy: &'static str,
    profile: &'static str,
    /// A symlink in the search path to the image ("" for none), made before anything else.
    via: &'static str,
}

fn portablectl(b: &SystemdBox, args: &[&str]) -> (bool, String, String) {
    let mut cmd = vec!["portablectl", "--no-reload", "--no-ask-password"];
    cmd.extend_from_slice(args);
    let out = b.exec(&cmd);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn attach_args(c: &Case) -> Vec<String> {
    let mut a = vec!["attach".to_string()];
    if c.runtime {
        a.push("--runtime".into());
    }
    if !c.copy.is_empty() {
        a.push(format!("--copy={}", c.copy));
    }
    a.push(format!("--profile={}", c.profile));
    a.push(c.arg.into());
    a
}

fn same_files_and_changes_as_the_reference(b: &SystemdBox) {
    let root = b.root();
    let host = Host::new(&root).unwrap();
    let cases = [
        Case {
            what: "directory by name",
            format: "dir",
            path: "/var/lib/portables/minimal_1",
            arg: "minimal_1",
            runtime: false,
            copy: "",
            profile: "default",
            via: "",
        },
        Case {
            what: "directory, copy",
            format: "dir",
            path: "/var/lib/portables/minimal_1",
            arg: "/var/lib/portables/minimal_1",
            runtime: false,
            copy: "copy",
            profile: "strict",
            via: "",
        },
        Case {
            what: "directory, symlink, runtime",
            format: "dir",
            path: "/srv/images/minimal_3",
            arg: "/srv/images/minimal_3",
            runtime: true,
            copy: "symlink",
            profile: "trusted",
            via: "",
        },
        Case {
            what: "squashfs by path",
            format: "squashfs",
            path: "/srv/images/minimal_sq.raw",
            arg: "/srv/images/minimal_sq.raw",
            runtime: false,
            copy: "",
            profile: "default",
            via: "",
        },
        Case {
            what: "ext4, runtime",
            format: "ext4",
            path: "/srv/images/minimal_ext.raw",
            arg: "/srv/images/minimal_ext.raw",
            runtime: true,
            copy: "",
            profile: "nonetwork",
            via: "",
        },
        Case {
            what: "erofs by name",
            format: "erofs",
            path: "/var/lib/portables/minimal_ero.raw",
            arg: "minimal_ero",
            runtime: false,
            copy: "copy",
            profile: "default",
            via: "",
        },
        Case {
            what: "GPT DDI",
            format: "ddi",
            path: "/srv/images/minimal_ddi.raw",
            arg: "/srv/images/minimal_ddi.raw",
            runtime: false,
            copy: "",
            profile: "default",
            via: "",
        },
        Case {
            what: "squashfs by name through a /run/portables link",
            format: "squashfs",
            path: "/srv/images/minimal_lnk.raw",
            arg: "minimal_lnk",
            runtime: false,
            copy: "",
            profile: "default",
            via: "/run/portables/minimal_lnk.raw",
        },
    ];
    for c in cases.iter().filter(|c| !c.via.is_empty()) {
        let link = root.join(c.via.trim_start_matches('/'));
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(c.path, &link).unwrap();
    }
    let clean = tree(&root);
    for c in &cases {
        let image = root.join(c.path.trim_start_matches('/'));
        if !image.exists() {
            mkimage(&image, &["--format", c.format, "--prefix", "minimal"]);
        }
        let args = attach_args(c);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();

        // The reference.
        let (ok, _, err) = portablectl(b, &args);
        assert!(ok, "{}: reference attach failed: {err}", c.what);
        let ref_attach = parse_portablectl_changes(&err);
        let ref_tree = tree(&root);
        let mut detach = vec!["detach"];
        if c.runtime {
            detach.push("--runtime");
        }
        detach.push(c.arg);
        let (ok, _, err) = portablectl(b, &detach);
        assert!(ok, "{}: reference detach failed: {err}", c.what);
        let ref_detach = parse_portablectl_changes(&err);
        assert_eq!(
            tree(&root),
            clean,
            "{}: reference detach left files",
            c.what
        );

        // Ours, on the same root.
        let opts = AttachOptions {
            matches: vec!["minimal".into()],
            profile: c.profile.into(),
            runtime: c.runtime,
            copy: CopyMode::parse(c.copy).unwrap(),
            force: false,
            extensions: Vec::new(),
            relax_extension_check: false,
        };
        let ours = host.attach(&as_box(b), c.arg, &opts).unwrap();
        assert_eq!(tree(&root), ref_tree, "{}: trees differ", c.what);
        assert_eq!(list(&ours), ref_attach, "{}: attach changes differ", c.what);

        // Cross: the reference detaches what we attached.
        let (ok, _, err) = portablectl(b, &detach);
        assert!(
            ok,
            "{}: reference detach of our attachment failed: {err}",
            c.what
        );
        assert_eq!(parse_portablectl_changes(&err), ref_detach, "{}", c.what);
        assert_eq!(tree(&root), clean, "{}", c.what);

        // And we detach what the reference attached.
        let (ok, _, err) = portablectl(b, &args);
        assert!(ok, "{}: {err}", c.what);
        let ours = host
            .detach(&as_box(b), c.arg, &DetachOptions::new(c.runtime, false))
            .unwrap();
        assert_eq!(list(&ours), ref_detach, "{}: detach changes differ", c.what);
        assert_eq!(tree(&root), clean, "{}: our detach left files", c.what);
        assert!(
            !Path::new(&root.join("var/lib/portctl")).exists(),
            "{}: journal left",
            c.what
        );
    }
    for c in cases.iter().filter(|c| !c.via.is_empty()) {
        std::fs::remove_file(root.join(c.via.trim_start_matches('/'))).unwrap();
    }
}

fn reattach_reports_what_the_reference_reports(b: &SystemdBox) {
    let root = b.root();
    let host = Host::new(&root).unwrap();
    let v1 = root.join("var/lib/portables/minimal_1");
    mkimage(&v1, &[]);
    std::fs::write(
        v1.join("usr/lib/systemd/system/minimal-old.service"),
        "[Service]\nExecStart=/usr/bin/minimald\n",
    )
    .unwrap();
    mkimage(&root.join("var/lib/portables/minimal_2"), &[]);
    // By path: by short name v252 loses the attachment (docs/compatibility.md, "reattach"), which we do not copy.
    let (ok, _, err) = portablectl(b, &["attach", "/var/lib/portables/minimal_1"]);
    assert!(ok, "{err}");
    let (ok, _, err) = portablectl(b, &["reattach", "/var/lib/portables/minimal_2"]);
    assert!(ok, "{err}");
    let ref_changes = parse_portablectl_changes(&err);
    let ref_tree = tree(&root);
    let (ok, _, err) = portablectl(b, &["detach", "/var/lib/portables/minimal_2"]);
    assert!(ok, "{err}");

    let opts = AttachOptions {
        matches: vec!["minimal".into()],
        profile: "default".into(),
        runtime: false,
        copy: CopyMode::Auto,
        force: false,
        extensions: Vec::new(),
        relax_extension_check: false,
    };
    host.attach(&as_box(b), "/var/lib/portables/minimal_1", &opts)
        .unwrap();
    let (removed, updated) = host
        .reattach(&as_box(b), "/var/lib/portables/minimal_2", &opts)
        .unwrap();
    assert_eq!(tree(&root), ref_tree);
    let mut ours = list(&removed);
    ours.extend(list(&updated));
    // portablectl prints each list in the daemon's order; units come in hash order there.
    let (mut a, mut r) = (ours.clone(), ref_changes.clone());
    a.sort();
    r.sort();
    assert_eq!(a, r, "ours {ours:#?} reference {ref_changes:#?}");
    // The reference detaches our reattached units.
    let (ok, _, err) = portablectl(b, &["detach", "/var/lib/portables/minimal_2"]);
    assert!(ok, "{err}");
    assert!(tree(&root).is_empty(), "{:#?}", tree(&root));
}

/// Layered attach (a root and one extension, a directory and then a squashfs file): the same
/// files, markers, Extension*= lines, links and change lists as systemd 252; each side
/// detaches what the other attached.
fn layered_attach_matches_the_reference(b: &SystemdBox) {
    let root = b.root();
    let host = Host::new(&root).unwrap();
    let clean = tree(&root);
    mkimage(&root.join("var/lib/portables/app_1"), &["--prefix", "app"]);
    mkimage(
        &root.join("var/lib/portables/app_2.raw"),
        &["--prefix", "app", "--format", "squashfs"],
    );
    for (root_arg, format, ext) in [
        ("app_1", "dir", "/var/lib/portables/app-ext_1"),
        ("app_1", "squashfs", "/var/lib/portables/app-sq_1.raw"),
        // A raw root and a raw extension: image policies for both (260 and later) and the
        // extension lines on the root's units (262).
        ("app_2", "squashfs", "/var/lib/portables/app-sq_1.raw"),
    ] {
        let ext_path = root.join(ext.trim_start_matches('/'));
        if !ext_path.exists() {
            portctl_tests::mkextension(
                &ext_path,
                format,
                &["app-ext.service", "app-test.service"],
                "",
            );
        }
        let format = format!("{root_arg} + {format}");
        let with = format!("--extension={ext}");
        let (ok, _, err) = portablectl(b, &["attach", &with, root_arg]);
        assert!(ok, "{format}: reference attach failed: {err}");
        let ref_attach = parse_portablectl_changes(&err);
        let ref_tree = tree(&root);
        let (ok, _, err) = portablectl(b, &["detach", &with, root_arg]);
        assert!(ok, "{format}: reference detach failed: {err}");
        let ref_detach = parse_portablectl_changes(&err);
        assert_eq!(tree(&root), clean, "{format}: reference detach left files");

        let opts = AttachOptions {
            matches: vec!["app".into()],
            profile: "default".into(),
            runtime: false,
            copy: CopyMode::Auto,
            force: false,
            extensions: vec![ext.to_string()],
            relax_extension_check: false,
        };
        let ours = host.attach(&as_box(b), root_arg, &opts).unwrap();
        assert_eq!(tree(&root), ref_tree, "{format}: trees differ");
        // The units come in v252's hash order there, by name here (docs/compatibility.md);
        // the directory first and the links last, in the same order.
        let (ours, reference) = (list(&ours), ref_attach.clone());
        assert_eq!(ours[0], reference[0], "{format}");
        assert_eq!(
            ours[ours.len() - 2..],
            reference[reference.len() - 2..],
            "{format}"
        );
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(ours),
            sorted(reference),
            "{format}: attach changes differ"
        );
        let (ok, _, err) = portablectl(b, &["detach", &with, root_arg]);
        assert!(ok, "{format}: reference detach of our attachment: {err}");
        assert_eq!(tree(&root), clean, "{format}");

        let (ok, _, err) = portablectl(b, &["attach", &with, root_arg]);
        assert!(ok, "{format}: {err}");
        let ours = host
            .detach(
                &as_box(b),
                root_arg,
                &DetachOptions {
                    extensions: vec![ext.to_string()],
                    runtime: false,
                    force: false,
                },
            )
            .unwrap();
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(list(&ours)),
            sorted(ref_detach.clone()),
            "{format}: detach changes differ"
        );
        assert_eq!(tree(&root), clean, "{format}: our detach left files");
    }
}
