//! `portctl run` through portctld: the command runs from the image in namespaces of
//! its own, sees the host's machine-id and resolv.conf and its own /proc, gets the caller's
//! standard input and outputs, and portctl exits with its status; images that cannot run are
//! refused before anything runs; nothing stays mounted, and a caller that goes away takes its
//! run with it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use portctl_tests::{loops_backed_by, mkimage, mounts_below, DaemonHost, Scratch};

fn env() -> DaemonHost {
    DaemonHost::start(Path::new(env!("CARGO_BIN_EXE_portctld")), |s| {
        mkimage(&s.join("/var/lib/portables/minimal_1"), &[]);
        mkimage(
            &s.join("/var/lib/portables/minimal_sq.raw"),
            &["--format", "squashfs", "--prefix", "minimal"],
        );
    })
}

fn portctl() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_portctld")).with_file_name("portctl")
}

fn run(e: &DaemonHost, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(portctl())
        .args(["--bus-address", &e.bus.address(), "run"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Nothing of a run left on the host: no loop device on the scratch images, no mount below
/// it, no helper process.
fn nothing_left(s: &Scratch) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let loops = loops_backed_by(s.path()).len();
        let mounts = mounts_below("self", s.path()).len();
        let helpers = Command::new("pgrep")
            .args(["-f", &format!("run-stage.*{}", s.path().display())])
            .output()
            .unwrap()
            .stdout
            .len();
        if loops == 0 && mounts == 0 && helpers == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: {loops} loop devices, {mounts} mounts, helpers: {helpers}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn commands_run_from_directory_and_raw_images() {
    let e = env();
    for image in ["minimal_1", "minimal_sq"] {
        let out = run(&e, &[image, "--", "/usr/bin/minimald", "--once"], "");
        let t = text(&out);
        assert!(out.status.success(), "{image}: {t}");
        assert!(
            t.contains("machine-id: 0123456789abcdef0123456789abcdef"),
            "{image}: not the host's machine-id:\n{t}"
        );
        assert!(
            t.contains("resolv.conf: nameserver 127.0.0.1"),
            "{image}:\n{t}"
        );
        assert!(
            t.contains("proc: mounted") && t.contains("dev: mounted"),
            "{t}"
        );
        // Its own PID namespace, a dynamic user (the default profile), fewer capabilities.
        assert!(t.contains("pid: 1\n"), "{image}:\n{t}");
        let uid: u32 = t
            .lines()
            .find_map(|l| l.strip_prefix("uid: "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((61184..=65519).contains(&uid), "{uid}");
        assert!(!t.contains("capbnd: 000001ffffffffff"), "{t}");
    }
    // Standard input is the caller's; the exit status is the command's.
    let out = run(
        &e,
        &["minimal_1", "--", "/usr/bin/minimald", "--echo"],
        "hello\n",
    );
    assert!(text(&out).contains("echo: hello"), "{}", text(&out));
    let out = run(
        &e,
        &["minimal_1", "--", "/usr/bin/minimald", "--exit", "7"],
        "",
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    // A writable overlay, and the profile "trusted" (root, all capabilities).
    let out = run(
        &e,
        &[
            "--writable",
            "--profile=trusted",
            "minimal_1",
            "--",
            "/usr/bin/minimald",
            "--once",
        ],
        "",
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("uid: 0\n"), "{t}");
    nothing_left(&e.s);
}

/// A unit's ExecStart= runs, with the unit's environment and working directory.
#[test]
fn a_unit_of_the_image() {
    let e = env();
    let unit =
        e.s.join("/var/lib/portables/minimal_1/usr/lib/systemd/system/minimal-test.service");
    std::fs::write(
        &unit,
        "[Service]\nEnvironment=X=1\nWorkingDirectory=/usr\nExecStart=/usr/bin/minimald --exit 5\n",
    )
    .unwrap();
    let out = run(&e, &["minimal_1", "minimal-test.service"], "");
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let out = run(&e, &["minimal_1", "nope.service"], "");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("has no unit 'nope.service'"),
        "{}",
        text(&out)
    );
    nothing_left(&e.s);
}

/// Images that cannot run are refused before anything runs, with what is missing.
#[test]
fn images_that_cannot_run() {
    let e = env();
    mkimage(
        &e.s.join("/var/lib/portables/bare_1.raw"),
        &["--format", "squashfs", "--no-mount-points"],
    );
    let out = run(&e, &["bare_1", "--", "/usr/bin/minimald", "--once"], "");
    let t = text(&out);
    assert!(!out.status.success());
    assert!(t.contains("/proc/") && t.contains("lacks"), "{t}");
    // A dynamically linked program whose loader the image lacks.
    let dynamic = e.s.join("/var/lib/portables/minimal_1/usr/bin/dynamic");
    std::fs::copy("/bin/true", &dynamic).unwrap();
    let out = run(&e, &["minimal_1", "--", "/usr/bin/dynamic"], "");
    let t = text(&out);
    assert!(!out.status.success());
    assert!(t.contains("needs the loader /lib64/ld-linux"), "{t}");
    let out = run(&e, &["minimal_1", "--", "/usr/bin/nothing"], "");
    assert!(text(&out).contains("has no program /usr/bin/nothing"));
    nothing_left(&e.s);
}

/// A caller that is killed takes its run with it; a caller that is interrupted passes the
/// signal on (twice: the command is the init of its namespace and ignores it once).
#[test]
fn the_run_ends_with_its_caller() {
    let e = env();
    // (A mark of this run among the other minimald processes of a test run.)
    let mark = format!("mark-{}", std::process::id());
    let mut client = long_run(&e, &mark);
    let running = || running(&mark);
    assert!(running());
    client.kill().unwrap();
    client.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running() {
        assert!(Instant::now() < deadline, "the run outlived its caller");
        std::thread::sleep(Duration::from_millis(100));
    }
    nothing_left(&e.s);
}

/// On a terminal: the command reads what is typed there (the terminal itself is passed).
#[test]
fn the_terminal_is_passed_through() {
    let e = env();
    let out = Command::new(portctl_tests::fixtures().join("pty-answer"))
        .args(["pid: 1", "typed on the terminal"])
        .arg(portctl())
        .args(["--bus-address", &e.bus.address(), "run", "minimal_1", "--"])
        .args(["/usr/bin/minimald", "--echo"])
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("echo: typed on the terminal"), "{t}");
}

/// Starts `minimald MARK` (runs until stopped) and returns the client once it has started.
fn long_run(e: &DaemonHost, mark: &str) -> std::process::Child {
    let mut client = Command::new(portctl())
        .args(["--bus-address", &e.bus.address(), "run", "minimal_1", "--"])
        .args(["/usr/bin/minimald", mark])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = client.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    while !seen.contains("pid: ") {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "the run ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    client
}

fn running(mark: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", &format!("^/usr/bin/minimald {mark}$")])
        .output()
        .unwrap()
        .status
        .success()
}

/// Ctrl-C is passed on; the second one kills the command, and portctl exits with 128 + 9.
#[test]
fn interrupts_are_passed_on() {
    let e = env();
    let mark = format!("int-{}", std::process::id());
    let mut client = long_run(&e, &mark);
    for _ in 0..2 {
        assert!(Command::new("kill")
            .args(["-INT", &client.id().to_string()])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(300));
    }
    let status = client.wait().unwrap();
    assert_eq!(status.code(), Some(137), "{status}");
    assert!(!running(&mark));
    nothing_left(&e.s);
}

/// Stopping the daemon ends the runs it serves.
#[test]
fn runs_end_with_the_daemon() {
    let e = env();
    let mark = format!("stop-{}", std::process::id());
    let mut client = long_run(&e, &mark);
    assert!(running(&mark));
    let DaemonHost { s, bus, daemon } = e;
    assert!(daemon.terminate().success());
    let _ = client.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(&mark) {
        assert!(Instant::now() < deadline, "the run outlived the daemon");
        std::thread::sleep(Duration::from_millis(100));
    }
    nothing_left(&s);
    drop(bus);
}
