//! The box version's own `portablectl` (252, 257, 262) against `portctld`, under that
//! version's PID 1 in an nspawn box:
//! every verb prints what it prints against the real systemd-portabled (timestamps masked),
//! and portctl prints the same against portctld.
//! portctld is installed in the box with the project's install target (`make install-files`),
//! takes the bus name over from systemd-portabled and is started by D-Bus activation.

use std::path::Path;

use portctl_tests::{mkimage, SystemdBox, AS_NOBODY, BUSCTL_ATTACH_MINIMAL_1};

use crate::{Role, Scenario, EVERY_VERSION, V252_ONLY};

/// Each in a box of its own: they go from systemd-portabled to portctld and back.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "portablectl_prints_the_same_against_portctld",
            role: Role::Own,
            versions: EVERY_VERSION,
            run: portablectl_prints_the_same_against_portctld,
        },
        Scenario {
            name: "polkit_decides_for_unprivileged_callers",
            role: Role::Own,
            versions: V252_ONLY,
            run: polkit_decides_for_unprivileged_callers,
        },
    ]
}

/// The commands, each run against the reference and then against portctld.
const SCRIPT: &[&[&str]] = &[
    &["list"],
    &["inspect", "minimal_1"],
    &["inspect", "--cat", "minimal_1"],
    &["attach", "--no-reload", "minimal_1"],
    &["is-attached", "minimal_1"],
    &["is-attached", "minimal_2"],
    &["list"],
    &["attach", "--no-reload", "minimal_1"],
    &["reattach", "--no-reload", "/var/lib/portables/minimal_1"],
    &["detach", "--no-reload", "minimal_1"],
    &["is-attached", "minimal_1"],
    &["detach", "--no-reload", "minimal_1"],
    &[
        "attach",
        "--no-reload",
        "--runtime",
        "--copy=copy",
        "--profile=strict",
        "/var/lib/portables/minimal_sq.raw",
    ],
    &["is-attached", "/var/lib/portables/minimal_sq.raw"],
    &["inspect", "minimal_sq", "-"],
    &[
        "detach",
        "--no-reload",
        "--runtime",
        "/var/lib/portables/minimal_sq.raw",
    ],
    &[
        "attach",
        "--no-reload",
        "--copy=symlink",
        "--profile=trusted",
        "minimal_1",
    ],
    &["detach", "--no-reload", "minimal_1"],
    &["read-only", "minimal_sq"],
    &["list"],
    &["read-only", "minimal_sq", "no"],
    &["attach", "--no-reload", "nope"],
    &["inspect", "nope"],
    &[
        "attach",
        "--no-reload",
        "--profile=default",
        "/var/lib/portables/minimal_1",
        "other",
    ],
    &["set-limit", "minimal_sq", "1G"],
    &["set-limit", "1G"],
    &["remove", "minimal_sq"],
    &["list"],
    // Under the box's PID 1: enable and start, restart on reattach, stop and disable.
    &["attach", "--now", "--enable", "minimal_1"],
    &["is-attached", "minimal_1"],
    &["reattach", "--now", "/var/lib/portables/minimal_1"],
    &["detach", "--now", "--enable", "minimal_1"],
    &["attach", "--now", "--no-block", "minimal_1"],
    &["detach", "--now", "minimal_1"],
    // The container transport, to the box itself; image paths are refused on it.
    &["-M", ".host", "list"],
    &["-M", ".host", "is-attached", "minimal_1"],
    &["-M", ".host", "attach", "/var/lib/portables/minimal_1"],
];

/// Where portctld deliberately answers differently (docs/compatibility.md): the command and
/// the standard error expected from it instead of the reference's.
const DAEMON_DIFFERENCES: &[(&str, &str)] = &[(
    "set-limit minimal_sq 1G",
    "Could not set limit: Image 'minimal_sq' is not a btrfs subvolume; limits are only supported on btrfs.\n",
)];

/// Where portctl deliberately differs from portablectl (docs/compatibility.md, "The client").
const CLIENT_DIFFERENCES: &[(&str, &str)] = &[(
    "set-limit 1G",
    "Could not set limit: Quota is only supported on btrfs.\n",
)];

/// Where portctld does not yet behave as the box's version (docs/compatibility.md, "By
/// systemd version"): the version from which on, and the command, not compared there.
const NOT_YET: &[(u32, &str)] = &[];

/// The reference's result for a command, with the deliberate differences applied.
fn expected(
    r: &(String, String, String, Option<i32>),
    differences: &[&[(&str, &str)]],
) -> (String, String, String, Option<i32>) {
    let mut e = r.clone();
    if let Some((_, err)) = differences
        .iter()
        .flat_map(|d| d.iter())
        .find(|(c, _)| *c == r.0)
    {
        e.2 = err.to_string();
    }
    e
}

/// `portablectl` output with the timestamps of `list` and job numbers replaced.
fn mask(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut words: Vec<&str> = line.split(' ').collect();
        // "Wed 2026-11-25 19:41:50 UTC"
        let mut i = 0;
        while i + 3 < words.len() {
            let date = words[i + 1];
            if date.len() == 10
                && date.as_bytes()[4] == b'-'
                && words[i + 2].len() == 8
                && words[i + 2].as_bytes()[2] == b':'
            {
                words.splice(i..i + 4, ["<time>"]);
            }
            i += 1;
        }
        // "/org/freedesktop/systemd1/job/144"
        for w in words.iter_mut() {
            if let Some(n) = w.strip_prefix("/org/freedesktop/systemd1/job/") {
                if n.bytes().all(|c| c.is_ascii_digit()) {
                    *w = "<job>";
                }
            }
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

/// `portablectl --no-ask-password --no-reload ARGS` in the box.
fn portablectl(b: &SystemdBox, args: &[&str]) -> std::process::Output {
    b.exec(&[&["portablectl", "--no-ask-password", "--no-reload"], args].concat())
}

fn images(root: &Path) {
    let p = root.join("var/lib/portables");
    for (name, args) in [
        ("minimal_1", vec![]),
        (
            "minimal_sq.raw",
            vec!["--format", "squashfs", "--prefix", "minimal"],
        ),
    ] {
        let img = p.join(name);
        if img.exists() {
            if img.is_dir() {
                std::fs::remove_dir_all(&img).unwrap();
            } else {
                std::fs::remove_file(&img).unwrap();
            }
        }
        mkimage(&img, &args);
    }
}

fn run_script(b: &SystemdBox) -> Vec<(String, String, String, Option<i32>)> {
    run_script_with(b, "portablectl")
}

fn run_script_with(b: &SystemdBox, client: &str) -> Vec<(String, String, String, Option<i32>)> {
    SCRIPT
        .iter()
        .map(|args| {
            let mut cmd = vec![client, "--no-pager", "--no-ask-password"];
            cmd.extend_from_slice(args);
            let out = b.exec(&cmd);
            (
                args.join(" "),
                mask(&String::from_utf8_lossy(&out.stdout)),
                mask(&String::from_utf8_lossy(&out.stderr)),
                out.status.code(),
            )
        })
        .collect()
}

fn portablectl_prints_the_same_against_portctld(b: &SystemdBox) {
    let bin = crate::bin_dir();
    let root = b.root();
    images(&root);
    let reference = run_script(b);
    let who = b.exec(&["systemctl", "is-active", "systemd-portabled.service"]);
    assert_eq!(
        String::from_utf8_lossy(&who.stdout).trim(),
        "active",
        "the reference must be systemd-portabled"
    );

    // Interoperability, one way: systemd-portabled attaches an image...
    mkimage(&root.join("var/lib/portables/minimal_io"), &[]);
    let by_reference = portablectl(b, &["attach", "minimal_io"]);
    assert!(
        by_reference.status.success(),
        "{}",
        String::from_utf8_lossy(&by_reference.stderr)
    );

    // Install portctld in the box as an admin would, and let D-Bus activation start it.
    b.install_portctl(&bin);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // ... which portctl lists and detaches.
    let listed = b.exec(&["portctl", "list", "--no-legend"]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("minimal_io directory no"),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
    let detached = b.exec(&[
        "portctl",
        "--no-ask-password",
        "--no-reload",
        "detach",
        "minimal_io",
    ]);
    assert!(
        detached.status.success(),
        "{}",
        String::from_utf8_lossy(&detached.stderr)
    );
    assert!(!root.join("etc/systemd/system.attached").exists());
    assert!(!root.join("etc/portables/minimal_io").exists());
    // (Out of the way of the script's listings.)
    std::fs::rename(
        root.join("var/lib/portables/minimal_io"),
        root.join("var/tmp/minimal_io"),
    )
    .unwrap();
    images(&root);
    let ours = run_script(b);
    let who = b.exec(&["systemctl", "is-active", "portctld.service"]);
    assert_eq!(
        String::from_utf8_lossy(&who.stdout).trim(),
        "active",
        "portctld was not activated"
    );
    let masked = b.exec(&["systemctl", "is-enabled", "systemd-portabled.service"]);
    assert_eq!(String::from_utf8_lossy(&masked.stdout).trim(), "masked");
    // The same script through portctl, against portctld, on fresh images.
    images(&root);
    let ours_client = run_script_with(b, "portctl");

    // Every difference at once, not only the first.
    let version = b.systemd().number();
    let compared = |r: &&(String, String, String, Option<i32>)| {
        !NOT_YET.iter().any(|(v, c)| version >= *v && *c == r.0)
    };
    let mut differ = Vec::new();
    for (r, o) in reference.iter().zip(&ours).filter(|(r, _)| compared(r)) {
        let e = expected(r, &[DAEMON_DIFFERENCES]);
        if &e != o {
            differ.push(format!(
                "portablectl {} differs\n  systemd-portabled: {e:?}\n  portctld:          {o:?}",
                r.0
            ));
        }
    }
    for (r, o) in reference
        .iter()
        .zip(&ours_client)
        .filter(|(r, _)| compared(r))
    {
        let e = expected(r, &[DAEMON_DIFFERENCES, CLIENT_DIFFERENCES]);
        if &e != o {
            differ.push(format!(
                "{} differs\n  portablectl against systemd-portabled: {e:?}\n  portctl against portctld:              {o:?}",
                r.0
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // The image object introspects the spelling of ReattachWithExtensions the box's systemd
    // introspects (252: misspelled), and serves both.
    let intro = b.exec(&[
        "busctl",
        "introspect",
        "org.freedesktop.portable1",
        "/org/freedesktop/portable1/image/minimal_5f1",
    ]);
    let intro = String::from_utf8_lossy(&intro.stdout).into_owned();
    let (listed, unlisted) = if b.systemd().number() >= 254 {
        (".ReattachWithExtensions ", ".ReattacheWithExtensions ")
    } else {
        (".ReattacheWithExtensions ", ".ReattachWithExtensions ")
    };
    assert!(
        intro.contains(listed) && !intro.contains(unlisted),
        "{intro}"
    );
    // --help: portablectl's text with the name changed, then portctl's own verbs and options.
    let help = |client: &str| {
        let out = b.exec(&["env", "SYSTEMD_COLORS=0", "LANG=C.UTF-8", client, "--help"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let theirs = help("portablectl")
        .replace("portablectl", "portctl")
        .replace("\nSee the portctl(1) man page for details.\n", "");
    let ours = help("portctl");
    assert_eq!(
        ours.split("\nportctl's own:\n").next().unwrap(),
        theirs,
        "portctl --help"
    );
    // v252 loses the attachment on a reattach by short name (docs/compatibility.md, "reattach"); portctld does not.
    let ok = |args: &[&str]| portablectl(b, args).status.success();
    assert!(ok(&["attach", "minimal_1"]));
    assert!(ok(&["reattach", "minimal_1"]));
    let state = b.exec(&["portablectl", "is-attached", "minimal_1"]);
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "attached");
    assert!(ok(&["detach", "minimal_1"]));

    // Interoperability, the other way: portctl attaches, systemd-portabled detaches.
    std::fs::rename(
        root.join("var/tmp/minimal_io"),
        root.join("var/lib/portables/minimal_io"),
    )
    .unwrap();
    assert!(b
        .exec(&[
            "portctl",
            "--no-ask-password",
            "--no-reload",
            "attach",
            "minimal_io"
        ])
        .status
        .success());

    // make uninstall gives the name back to systemd-portabled.
    let un = b.exec(&["make", "-s", "-C", repo.to_str().unwrap(), "uninstall"]);
    assert!(
        un.status.success(),
        "make uninstall: {}",
        String::from_utf8_lossy(&un.stderr)
    );
    let _ = b.exec(&["systemctl", "stop", "portctld.service"]);
    let enabled = b.exec(&["systemctl", "is-enabled", "systemd-portabled.service"]);
    assert_ne!(String::from_utf8_lossy(&enabled.stdout).trim(), "masked");
    assert!(!root.join("usr/local/libexec/portctld").exists());
    let io = portablectl(b, &["detach", "minimal_io"]);
    assert!(
        io.status.success(),
        "{}",
        String::from_utf8_lossy(&io.stderr)
    );
    assert!(!root.join("etc/portables/minimal_io").exists());
    assert!(!root.join("etc/systemd/system.attached").exists());
    let again = portablectl(b, &["attach", "minimal_1"]);
    assert!(
        again.status.success(),
        "systemd-portabled serves again: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    let who = b.exec(&["systemctl", "is-active", "systemd-portabled.service"]);
    assert_eq!(String::from_utf8_lossy(&who.stdout).trim(), "active");
    assert!(ok(&["detach", "minimal_1"]));
}

/// A caller that is not root goes through polkit: with a rule that allows it, it may attach;
/// without one, it may not; with one that wants its password, portctl's polkit agent asks.
fn polkit_decides_for_unprivileged_callers(b: &SystemdBox) {
    let bin = crate::bin_dir();
    let root = b.root();
    images(&root);
    b.install_portctl(&bin);
    let attach = |b: &SystemdBox| {
        b.exec(
            &[
                &AS_NOBODY[..],
                &["busctl", "--allow-interactive-authorization=no"],
                &BUSCTL_ATTACH_MINIMAL_1[..],
            ]
            .concat(),
        )
    };
    let denied = attach(b);
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains("Interactive authentication required") || err.contains("Access denied"),
        "{err}"
    );
    // portctl with --no-ask-password: polkit's answer comes back as the reference prints it.
    // (That the interactive flag reaches polkit otherwise is tested in dbus_api.rs.)
    let as_nobody = |args: &[&str]| {
        b.exec(
            &[
                &[&AS_NOBODY[..], &["portctl", "--no-reload"]].concat()[..],
                args,
            ]
            .concat(),
        )
    };
    let quiet = as_nobody(&["--no-ask-password", "attach", "minimal_1"]);
    assert!(!quiet.status.success());
    assert!(
        String::from_utf8_lossy(&quiet.stderr)
            .contains("AttachImage failed: Interactive authentication required."),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let rules = root.join("etc/polkit-1/rules.d");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("50-portctl-test.rules"),
        concat!(
            "polkit.addRule(function(action, subject) {\n",
            "  if (action.id.indexOf(\"org.freedesktop.portable1.\") != 0) return;\n",
            "  if (subject.user == \"nobody\") return polkit.Result.YES;\n",
            "  if (subject.user == \"ptest\") return polkit.Result.AUTH_SELF;\n",
            "});\n"
        ),
    )
    .unwrap();
    // polkitd watches its rules directory; give it a moment to load the rule.
    let mut allowed = attach(b);
    for _ in 0..50 {
        if allowed.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        allowed = attach(b);
    }
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert!(root
        .join("etc/systemd/system.attached/minimal-test.service")
        .exists());
    let state = b.exec(&["portablectl", "is-attached", "minimal_1"]);
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "attached");

    // Interactive authorization: a user whose polkit answer is "authenticate as yourself"
    // (rule above) runs portctl on a terminal in a login session; portctl starts pkttyagent,
    // which asks for the password, and the detach goes through. With --no-ask-password
    // nobody asks.
    assert!(b
        .exec(&["useradd", "--no-create-home", "ptest"])
        .status
        .success());
    let pw = b.exec(&["sh", "-c", "echo ptest:Secret-123 | chpasswd"]);
    assert!(
        pw.status.success(),
        "{}",
        String::from_utf8_lossy(&pw.stderr)
    );
    let pty_answer = portctl_tests::fixtures().join("pty-answer");
    let portctl = bin.join("portctl");
    let on_terminal = |args: &[&str]| {
        b.exec(
            &[
                &[
                    pty_answer.to_str().unwrap(),
                    "Password:",
                    "Secret-123",
                    "systemd-run",
                    "--quiet",
                    "--pty",
                    "--wait",
                    "--uid=ptest",
                    "--property=PAMName=login",
                    portctl.to_str().unwrap(),
                    "--no-reload",
                ][..],
                args,
            ]
            .concat(),
        )
    };
    let refused = on_terminal(&["--no-ask-password", "detach", "minimal_1"]);
    let text = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "{text}");
    assert!(
        text.contains("DetachImage failed: Interactive authentication required."),
        "{text}"
    );
    assert!(!text.contains("AUTHENTICATING"), "{text}");
    let asked = on_terminal(&["detach", "minimal_1"]);
    let text = String::from_utf8_lossy(&asked.stdout);
    assert!(asked.status.success(), "{text}");
    assert!(
        text.contains("==== AUTHENTICATING FOR org.freedesktop.portable1.attach-images ===="),
        "{text}"
    );
    assert!(text.contains("Authenticating as: ptest"), "{text}");
    // (Not the change lines: systemd-run --pty may end before it has forwarded all output.)
    let state = b.exec(&["portablectl", "is-attached", "minimal_1"]);
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "detached");
    // The agent ends with portctl.
    let agents = b.exec(&["pgrep", "-x", "pkttyagent"]);
    assert!(
        !agents.status.success(),
        "{}",
        String::from_utf8_lossy(&agents.stdout)
    );
}
