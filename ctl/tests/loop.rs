//! `portctl validate`, run as a user runs it.

use std::process::{Command, Output};

use portctl_tests::{mkimage, set_immutable, Scratch};

fn portctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portctl"))
        .args(args)
        .env_remove("PORTCTL_LOG")
        .output()
        .expect("run portctl")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn compliant_image_exits_zero_with_a_table() {
    let s = Scratch::new();
    let img = mkimage(&s.join("minimal_1"), &[]);
    let out = portctl(&["validate", img.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("RULE"), "{stdout}");
    assert!(stdout.contains("minimal-test.service"), "{stdout}");
    assert!(stdout.contains("minimal_1: compliant."), "{stdout}");
}

#[test]
fn read_only_image_lacking_mount_points_exits_non_zero_and_lists_them() {
    let s = Scratch::new();
    let img = mkimage(&s.join("ro_1"), &["--no-mount-points"]);
    set_immutable(&img, true);
    let out = portctl(&["validate", img.to_str().unwrap()]);
    set_immutable(&img, false);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("NOT compliant"), "{stdout}");
    for p in ["/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp"] {
        assert!(
            stdout.contains(&format!("  {p} (directory)")),
            "{p} in {stdout}"
        );
    }
}

#[test]
fn json_output_parses_and_carries_the_verdict() {
    let s = Scratch::new();
    let img = mkimage(&s.join("bare_2"), &["--no-mount-points"]);
    for (flag, lines) in [("--json=short", 1), ("--json=pretty", 2), ("--json", 2)] {
        let out = portctl(&["validate", flag, img.to_str().unwrap()]);
        assert!(out.status.success(), "writable images are repairable");
        let stdout = text(&out.stdout);
        assert!(stdout.lines().count() >= lines, "{flag}: {stdout}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["compliant"], true);
        assert_eq!(v["image"]["name"], "bare_2");
        assert_eq!(v["image"]["type"], "directory");
        assert_eq!(v["profile"]["name"], "default");
        let checks = v["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 9, "rules 1 to 9 (8: confinement, 9: start)");
        let mp = checks.iter().find(|c| c["rule"] == "mount-points").unwrap();
        assert_eq!(mp["status"], "repairable");
        assert_eq!(v["missing"].as_array().unwrap().len(), 6);
    }
}

#[test]
fn errors_name_the_problem() {
    let s = Scratch::new();
    let out = portctl(&[
        "validate",
        "--root",
        s.path().to_str().unwrap(),
        "no-such-image",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr).trim(), "No image 'no-such-image' found.");
    let file = s.join("disk.img");
    std::fs::write(&file, "x").unwrap();
    let out = portctl(&["validate", file.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("not recognized"),
        "{}",
        text(&out.stderr)
    );
    let img = mkimage(&s.join("p_1"), &[]);
    let out = portctl(&["validate", "--profile", "nope", img.to_str().unwrap()]);
    assert_eq!(
        text(&out.stderr).trim(),
        "Unit profile 'nope' not found in any profile directory."
    );
}

#[test]
fn raw_images_validate_like_directories() {
    let s = Scratch::new();
    for format in ["squashfs", "erofs", "ext4", "ddi"] {
        let img = mkimage(
            &s.join(format!("minimal_{format}.raw")),
            &["--format", format],
        );
        let out = portctl(&["validate", img.to_str().unwrap()]);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{format}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("minimal_{format}: compliant.")),
            "{stdout}"
        );
    }
    let bare = mkimage(
        &s.join("minimal_bare.raw"),
        &["--format", "squashfs", "--no-mount-points"],
    );
    let out = portctl(&["validate", bare.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("  /var/tmp (directory)"));
}

#[test]
fn fix_repairs_a_writable_image() {
    let s = Scratch::new();
    let img = mkimage(
        &s.join("minimal_fix.raw"),
        &[
            "--format",
            "ext4",
            "--prefix",
            "minimal",
            "--no-mount-points",
        ],
    );
    let out = portctl(&["validate", "--fix", img.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Created directory /var/tmp"),
        "{}",
        text(&out.stderr)
    );
    let out = portctl(&["validate", "--json=short", img.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(v["missing"].as_array().unwrap().len(), 0, "{v}");
    // A read-only image cannot be fixed.
    let sq = mkimage(
        &s.join("minimal_ro.raw"),
        &[
            "--format",
            "squashfs",
            "--prefix",
            "minimal",
            "--no-mount-points",
        ],
    );
    let out = portctl(&["validate", "--fix", sq.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is read-only"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = portctl(&["completions", shell]);
        assert!(out.status.success());
        let t = text(&out.stdout);
        assert!(
            t.contains("is-attached") && t.contains("reattach"),
            "{shell}"
        );
    }
    // The main page, and one for every verb it names (issue: no page it points to missing).
    let s = Scratch::new();
    assert!(portctl(&["man", s.path().to_str().unwrap()])
        .status
        .success());
    let man = std::fs::read_to_string(s.join("portctl.1")).unwrap();
    assert!(
        man.contains(".TH portctl") && man.contains("reattach"),
        "{man}"
    );
    for verb in ["attach", "detach", "reattach", "inspect", "validate", "run"] {
        let page = std::fs::read_to_string(s.join(format!("portctl-{verb}.1"))).unwrap();
        assert!(page.contains(&format!(".TH portctl-{verb}")), "{page}");
    }
    let help = text(&portctl(&["--help"]).stdout);
    assert!(!help.contains("completions"), "hidden from --help");
}
