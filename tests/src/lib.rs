//! Helpers for portctl's integration tests: throw-away host roots, image trees, and the sample
//! image built from source by `tests/fixtures/mkimage`.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use portctl_engine::Host;

/// The repository's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A temporary directory on a disk file system (under /var/tmp), so that inode flags, birth
/// times and xattrs work as on a real host. Removed on drop, immutable flags cleared first.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("portctl-test.")
            .tempdir_in("/var/tmp")
            .expect("create scratch directory");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `path` below the scratch directory (`/a/b` and `a/b` alike).
    pub fn join(&self, path: impl AsRef<Path>) -> PathBuf {
        let p = path.as_ref();
        self.dir.path().join(p.strip_prefix("/").unwrap_or(p))
    }

    /// A [`Host`] rooted here.
    pub fn host(&self) -> Host {
        Host::new(self.path()).expect("open test host root")
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Directories marked immutable by a test would make the removal fail.
        let _ = Command::new("chattr")
            .args(["-R", "-i"])
            .arg(self.dir.path())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// One thing to put in a tree.
pub enum Node<'a> {
    File(&'a str, &'a str),
    Exec(&'a str, &'a [u8]),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

/// Creates the nodes below `root` (paths are relative to it, leading `/` allowed).
pub fn make_tree(root: &Path, nodes: &[Node<'_>]) {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    for n in nodes {
        match n {
            Node::File(p, content) => {
                let p = at(p);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, content).unwrap();
            }
            Node::Exec(p, content) => {
                let p = at(p);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, content).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
            }
            Node::Dir(p) => fs::create_dir_all(at(p)).unwrap(),
            Node::Link(p, target) => {
                let p = at(p);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                symlink(target, &p).unwrap();
            }
        }
    }
}

/// Runs `tests/fixtures/mkimage` with `args` and returns its output path.
pub fn mkimage(out: &Path, args: &[&str]) -> PathBuf {
    let status = Command::new(fixtures().join("mkimage"))
        .args(args)
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run tests/fixtures/mkimage");
    assert!(
        status.success(),
        "mkimage {args:?} {} failed",
        out.display()
    );
    out.to_path_buf()
}

/// An extension image at `out` (`format` `dir` or `squashfs`) for the sample images
/// (`ID=portctl-sample`, `VERSION_ID=1`): `extension-release.NAME` (NAME: the file name
/// without `.raw`) with `release` appended, the sample service binary, and one service per
/// name in `units`.
pub fn mkextension(out: &Path, format: &str, units: &[&str], release: &str) -> PathBuf {
    let name = out
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".raw")
        .to_string();
    let tree = if format == "dir" {
        out.to_path_buf()
    } else {
        out.with_extension("tree")
    };
    let rel = tree.join("usr/lib/extension-release.d");
    fs::create_dir_all(&rel).unwrap();
    fs::write(
        rel.join(format!("extension-release.{name}")),
        format!("ID=portctl-sample\nVERSION_ID=1\n{release}"),
    )
    .unwrap();
    let unit_dir = tree.join("usr/lib/systemd/system");
    fs::create_dir_all(&unit_dir).unwrap();
    for u in units {
        fs::write(
            unit_dir.join(u),
            format!("[Unit]\nDescription={u} from the extension {name}\n\n[Service]\nExecStart=/usr/bin/minimald\n"),
        )
        .unwrap();
    }
    let bin = tree.join("usr/bin");
    fs::create_dir_all(&bin).unwrap();
    let status = Command::new("cc")
        .args(["-static", "-Os", "-s", "-o"])
        .arg(bin.join("minimald"))
        .arg(fixtures().join("minimald.c"))
        .status()
        .unwrap();
    assert!(status.success(), "cc minimald.c");
    if format == "squashfs" {
        let status = Command::new("mksquashfs")
            .arg(&tree)
            .arg(out)
            .args(["-noappend", "-quiet", "-all-root"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "mksquashfs");
        fs::remove_dir_all(&tree).unwrap();
    }
    out.to_path_buf()
}

/// Sets or clears the immutable flag of a directory (chattr ±i).
pub fn set_immutable(path: &Path, on: bool) {
    let status = Command::new("chattr")
        .arg(if on { "+i" } else { "-i" })
        .arg(path)
        .status()
        .expect("run chattr");
    assert!(status.success(), "chattr on {}", path.display());
}

/// A host root for attach tests: an os-release, the profiles of `systemd-units/`, machine-id
/// and resolv.conf.
pub fn attach_host(s: &Scratch) -> Host {
    make_tree(
        s.path(),
        &[
            Node::File("/etc/os-release", "ID=debian\n"),
            Node::File("/etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
            Node::File("/etc/resolv.conf", "nameserver 127.0.0.1\n"),
            Node::Dir("/run"),
            Node::Dir("/var/lib/portables"),
        ],
    );
    // systemd 252's profiles: the texts the fs tier's expectations are written against.
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd-units/profile/252");
    for p in ["default", "nonetwork", "strict", "trusted"] {
        let dst = s.join(format!("/usr/lib/systemd/portable/profile/{p}"));
        fs::create_dir_all(&dst).unwrap();
        fs::copy(units.join(p).join("service.conf"), dst.join("service.conf")).unwrap();
    }
    s.host()
}

/// Everything below `dirs` (paths relative to the root), one line per node:
/// `path type mode [-> target | content, or a hash of it when large or binary]`.
pub fn snapshot(root: &Path, dirs: &[&str]) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    fn walk(root: &Path, p: &Path, out: &mut Vec<String>) {
        let Ok(md) = fs::symlink_metadata(p) else {
            return;
        };
        let rel = Path::new("/").join(p.strip_prefix(root).unwrap());
        let mode = md.mode() & 0o7777;
        if md.file_type().is_symlink() {
            out.push(format!(
                "{} link -> {}",
                rel.display(),
                fs::read_link(p).unwrap().display()
            ));
        } else if md.is_dir() {
            out.push(format!("{} dir {mode:o}", rel.display()));
            let mut entries: Vec<_> = fs::read_dir(p)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            for e in entries {
                walk(root, &e, out);
            }
        } else {
            let data = fs::read(p).unwrap();
            match std::str::from_utf8(&data) {
                Ok(text) if data.len() <= 1024 => {
                    out.push(format!("{} file {mode:o} {text:?}", rel.display()))
                }
                _ => {
                    // FNV-1a: enough to tell contents apart in a test.
                    let h = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                    });
                    out.push(format!(
                        "{} file {mode:o} {} bytes fnv {h:016x}",
                        rel.display(),
                        data.len()
                    ));
                }
            }
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        walk(root, &root.join(d.trim_start_matches('/')), &mut out);
    }
    out
}

/// The systemd versions the box tier boots: Debian 12's (the host's own root), Debian 12's
/// backport (254), Debian 13's and sid's (roots made by `tests/harness/mkroot`, cached in
/// /var/tmp/portctl-roots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Systemd {
    V252,
    V254,
    V257,
    V262,
}

impl Systemd {
    pub const ALL: [Self; 4] = [Self::V252, Self::V254, Self::V257, Self::V262];

    pub fn number(self) -> u32 {
        match self {
            Self::V252 => 252,
            Self::V254 => 254,
            Self::V257 => 257,
            Self::V262 => 262,
        }
    }

    /// The root file system the box boots (`None`: the host's).
    pub fn lower(self) -> Option<PathBuf> {
        let suite = match self {
            Self::V252 => return None,
            Self::V254 => "bookworm-backports",
            Self::V257 => "trixie",
            Self::V262 => "sid",
        };
        let dir = PathBuf::from(format!("/var/tmp/portctl-roots/{suite}"));
        let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/mkroot"))
            .arg(suite)
            .arg(&dir)
            .output()
            .expect("run mkroot");
        assert!(
            out.status.success(),
            "mkroot {suite}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(dir)
    }
}

/// A systemd booted as PID 1 in systemd-nspawn (`tests/harness/sdbox`), torn down on drop,
/// panics included.
pub struct SystemdBox {
    name: String,
    systemd: Systemd,
}

impl SystemdBox {
    fn harness() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/sdbox")
    }

    /// Boots a box of the host's systemd (252); its name must be unique among concurrently
    /// running tests.
    pub fn up(name: &str) -> Self {
        Self::up_version(name, Systemd::V252)
    }

    /// Boots a box of that systemd. Another root than the host's sees the repository (and its
    /// binaries) at the same path, read-only.
    pub fn up_version(name: &str, systemd: Systemd) -> Self {
        let mut cmd = Command::new(Self::harness());
        cmd.args(["up", name]);
        if let Some(lower) = systemd.lower() {
            let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
            cmd.arg("--lower").arg(lower).arg("--bind-ro").arg(repo);
        }
        let out = cmd.output().expect("run sdbox");
        assert!(
            out.status.success(),
            "sdbox up {name} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            name: name.to_string(),
            systemd,
        }
    }

    /// Which systemd runs in the box.
    pub fn systemd(&self) -> Systemd {
        self.systemd
    }

    /// The box's PID 1, as seen from here (it changes when the box reboots).
    pub fn leader(&self) -> u32 {
        fs::read_to_string(format!("/var/tmp/portctl-sdbox/{}/leader.pid", self.name))
            .expect("leader pid")
            .trim()
            .parse()
            .expect("leader pid")
    }

    /// The box's root as its processes see it, mounts included (its /run is a tmpfs).
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.leader()))
    }

    /// Reboots the box (see `sdbox reboot`).
    pub fn reboot(&self) {
        let out = Command::new(Self::harness())
            .args(["reboot", &self.name])
            .output()
            .expect("run sdbox");
        assert!(
            out.status.success(),
            "sdbox reboot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a command inside the box.
    pub fn exec(&self, cmd: &[&str]) -> std::process::Output {
        Command::new(Self::harness())
            .args(["exec", &self.name, "--"])
            .args(cmd)
            .output()
            .expect("run sdbox exec")
    }
}

impl Drop for SystemdBox {
    fn drop(&mut self) {
        let _ = Command::new(Self::harness())
            .args(["down", &self.name])
            .status();
    }
}

/// A change list as `type path source` lines (source left out when empty), the form
/// [`parse_portablectl_changes`] gives too.
pub fn change_lines(changes: &[portctl_engine::portable::Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| {
            format!("{} {} {}", c.kind.as_str(), c.path, c.source)
                .trim_end()
                .to_string()
        })
        .collect()
}

/// Turns portablectl's change messages (stderr) back into `(type, path, source)` lines.
pub fn parse_portablectl_changes(stderr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in stderr.lines() {
        let Some(l) = line.strip_suffix('.') else {
            continue;
        };
        let entry = if let Some(p) = l.strip_prefix("Created directory ") {
            format!("mkdir {p}")
        } else if let Some(p) = l.strip_prefix("Written ") {
            format!("write {p}")
        } else if let Some(rest) = l.strip_prefix("Created symlink ") {
            let (p, s) = rest.split_once(" → ").unwrap_or((rest, ""));
            format!("symlink {p} {s}")
        } else if let Some(rest) = l.strip_prefix("Copied ") {
            match rest.split_once(" → ") {
                Some((s, p)) => format!("copy {p} {s}"),
                None => format!("copy {rest}"),
            }
        } else if let Some(p) = l.strip_prefix("Removed ") {
            format!("unlink {p}")
        } else {
            continue;
        };
        out.push(entry.trim_end().to_string());
    }
    out
}

/// A command prefix that runs what follows as user nobody (uid 65534), without capabilities:
/// a caller that is neither root nor CAP_SYS_ADMIN.
pub const AS_NOBODY: [&str; 6] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
];

/// A private `dbus-daemon` for one test, stopped on drop.
pub struct PrivateBus {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl PrivateBus {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("portctl-bus.")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .arg("--nopidfile")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(socket.exists(), "dbus-daemon did not start");
        Self { dir, child }
    }

    pub fn address(&self) -> String {
        format!("unix:path={}", self.dir.path().join("bus").display())
    }

    /// A connection to this bus.
    pub async fn connect(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.address().as_str())
            .build()
            .await
            .expect("connect to the private bus")
    }

    /// Stops the bus now: every connection to it closes.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A config file of this bus, for a second daemon with a stricter policy.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch host with two versions of the sample image: `minimal_1`, which also has
/// `minimal-old.service`, and `minimal_2`, which lacks it (for reattach and crash tests).
pub fn two_versions_host() -> Scratch {
    let s = Scratch::new();
    attach_host(&s);
    mkimage(&s.join("/var/lib/portables/minimal_1"), &[]);
    fs::write(
        s.join("/var/lib/portables/minimal_1/usr/lib/systemd/system/minimal-old.service"),
        "[Service]\nExecStart=/usr/bin/minimald\n",
    )
    .unwrap();
    mkimage(&s.join("/var/lib/portables/minimal_2"), &[]);
    s
}

/// `busctl` arguments that attach `minimal_1` (prefix `minimal`, profile `default`, not
/// runtime, default copy mode) through the v252 `AttachImage`.
pub const BUSCTL_ATTACH_MINIMAL_1: [&str; 12] = [
    "call",
    "org.freedesktop.portable1",
    "/org/freedesktop/portable1",
    "org.freedesktop.portable1.Manager",
    "AttachImage",
    "sassbs",
    "minimal_1",
    "1",
    "minimal",
    "default",
    "false",
    "",
];

/// A scratch host (as [`attach_host`] makes it, plus the images `images` adds), a private
/// bus and `binary` (portctld) serving that host on it.
pub struct DaemonHost {
    pub s: Scratch,
    pub bus: PrivateBus,
    pub daemon: Daemon,
}

impl DaemonHost {
    pub fn start(binary: &Path, images: impl FnOnce(&Scratch)) -> Self {
        let s = Scratch::new();
        attach_host(&s);
        images(&s);
        let bus = PrivateBus::start();
        let daemon = Daemon::start(binary, &bus, s.path(), &[]);
        Self { s, bus, daemon }
    }
}

/// Loop devices whose backing file lies below `dir` ("loopN: file").
pub fn loops_backed_by(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir("/sys/block").unwrap().flatten() {
        if let Ok(b) = fs::read_to_string(e.path().join("loop/backing_file")) {
            if b.trim().starts_with(dir.to_str().unwrap()) {
                out.push(format!("{}: {}", e.file_name().to_string_lossy(), b.trim()));
            }
        }
    }
    out
}

/// Mount points below `dir` in the mount namespace of process `pid` ("self" for this one).
pub fn mounts_below(pid: &str, dir: &Path) -> Vec<String> {
    fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(dir.to_str().unwrap()))
        .collect()
}

/// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A running `portctld` on a bus, killed on drop.
pub struct Daemon {
    child: std::process::Child,
}

impl Daemon {
    /// Starts `binary` on `bus` for the host under `root` and waits until it owns its name.
    pub fn start(binary: &Path, bus: &PrivateBus, root: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(binary, bus, root, extra, &[])
    }

    /// [`Daemon::start`] with more environment (e.g. `PORTCTL_FAULT_AT`).
    pub fn start_with_env(
        binary: &Path,
        bus: &PrivateBus,
        root: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let child = Command::new(binary)
            .arg("--bus-address")
            .arg(bus.address())
            .arg("--root")
            .arg(root)
            .args(["--idle-timeout", "0"])
            .args(extra)
            .env("PORTCTLD_LOG", "warn")
            .envs(env.iter().copied())
            .spawn()
            .expect("start portctld");
        let d = Self { child };
        for _ in 0..500 {
            let out = Command::new("busctl")
                .arg(format!("--address={}", bus.address()))
                .args(["status", "org.freedesktop.portable1"])
                .output()
                .unwrap();
            if out.status.success() {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("portctld did not take its bus name");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the daemon to exit by itself (a crash) and returns how it ended.
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// Waits up to `timeout` for the daemon to exit by itself; `None` if it still runs.
    pub fn wait_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < until {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SystemdBox {
    /// Installs portctl from the binaries in `bin` with the project's install target, and
    /// checks that D-Bus activation starts portctld (showing its journal if not).
    pub fn install_portctl(&self, bin: &Path) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert!(
            bin.join("portctl").exists() && bin.join("portctld").exists(),
            "{} lacks portctl or portctld: build the workspace first",
            bin.display()
        );
        let make = self.exec(&[
            "make",
            "-s",
            "-C",
            repo.to_str().unwrap(),
            "install-files",
            &format!("BIN={}", bin.display()),
        ]);
        assert!(
            make.status.success(),
            "make install-files: {}",
            String::from_utf8_lossy(&make.stderr)
        );
        let start = self.exec(&[
            "systemctl",
            "start",
            "dbus-org.freedesktop.portable1.service",
        ]);
        if !start.status.success() {
            panic!(
                "portctld does not start in the box:\n{}",
                self.journal("portctld.service")
            );
        }
    }

    /// Runs `portctl --no-ask-password ARGS...` inside the box: whether it succeeded, and
    /// its standard output and error.
    pub fn portctl(&self, args: &[&str]) -> (bool, String) {
        // A job that never ends (a service that refuses to stop) must not hang the test.
        let out = self.exec(&[&["timeout", "120", "portctl", "--no-ask-password"], args].concat());
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// [`SystemdBox::portctl`], which must succeed; returns its output.
    pub fn portctl_ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.portctl(args);
        assert!(
            ok,
            "portctl {args:?}: {out}\n--- portctld:\n{}",
            self.journal("portctld.service")
        );
        out
    }

    /// Waits until the current run of `unit` has logged `what`; returns that run's log only.
    pub fn wait_for(&self, unit: &str, what: &str) -> String {
        use std::time::{Duration, Instant};
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let id = self.exec(&["systemctl", "show", "-P", "InvocationID", unit]);
            // (systemd 257 and later print it as a UUID with dashes; the journal has none.)
            let id = String::from_utf8_lossy(&id.stdout).trim().replace('-', "");
            let log = if id.is_empty() {
                String::new()
            } else {
                let out = self.exec(&[
                    "journalctl",
                    "--no-pager",
                    "-o",
                    "cat",
                    &format!("_SYSTEMD_INVOCATION_ID={id}"),
                ]);
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            if log.contains(what) {
                return log;
            }
            if Instant::now() > deadline {
                panic!(
                    "{unit} never logged {what:?}\n--- {unit}:\n{}\n--- portctld:\n{}",
                    self.journal(unit),
                    self.journal("portctld.service")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The journal of a unit, as text.
    pub fn journal(&self, unit: &str) -> String {
        let out = self.exec(&["journalctl", "--no-pager", "-o", "cat", "-u", unit]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One authorization check that reached [`StandInPolkit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolkitCheck {
    /// The subject's kind (`system-bus-name`, ...).
    pub subject: String,
    pub action: String,
    pub flags: u32,
}

/// A stand-in for polkit's authority on a test bus (`org.freedesktop.PolicyKit1`): it records
/// every check and answers `(authorized, challenge)` as `answer` says.
pub struct StandInPolkit {
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<PolkitCheck>>>,
    answer: fn(&PolkitCheck) -> (bool, bool),
}

#[zbus::interface(name = "org.freedesktop.PolicyKit1.Authority")]
impl StandInPolkit {
    #[allow(clippy::type_complexity)]
    async fn check_authorization(
        &self,
        subject: (
            String,
            std::collections::HashMap<String, zbus::OwnedVariant>,
        ),
        action_id: String,
        _details: std::collections::HashMap<String, String>,
        flags: u32,
        _cancellation_id: String,
    ) -> (bool, bool, std::collections::HashMap<String, String>) {
        let check = PolkitCheck {
            subject: subject.0,
            action: action_id,
            flags,
        };
        let (yes, challenge) = (self.answer)(&check);
        self.seen.lock().unwrap().push(check);
        (yes, challenge, std::collections::HashMap::new())
    }
}

impl StandInPolkit {
    /// Serves the stand-in on `bus` for as long as the returned connection lives.
    pub async fn serve(
        bus: &PrivateBus,
        answer: fn(&PolkitCheck) -> (bool, bool),
    ) -> (
        zbus::Connection,
        std::sync::Arc<std::sync::Mutex<Vec<PolkitCheck>>>,
    ) {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let conn = zbus::connection::Builder::address(bus.address().as_str())
            .name("org.freedesktop.PolicyKit1")
            .serve_at(
                "/org/freedesktop/PolicyKit1/Authority",
                Self {
                    seen: seen.clone(),
                    answer,
                },
            )
            .build()
            .await
            .expect("serve the stand-in polkit");
        (conn, seen)
    }
}

impl PrivateBus {
    /// Lets every user connect (its directory and socket are root's otherwise).
    pub fn open_to_everyone(&self) {
        for (mode, path) in [
            (0o755, self.dir().to_path_buf()),
            (0o666, self.dir().join("bus")),
        ] {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// A raw image at `out` made of the directory tree `tree`: `squashfs` or `ext4` (sized for the
/// tree, with room to spare).
pub fn raw_image_from_tree(tree: &Path, out: &Path, format: &str) -> PathBuf {
    let st = match format {
        "squashfs" => Command::new("mksquashfs")
            .arg(tree)
            .arg(out)
            .args(["-noappend", "-quiet"])
            .stdout(std::process::Stdio::null())
            .status(),
        "ext4" => {
            let du = Command::new("du").args(["-sk"]).arg(tree).output().unwrap();
            let kib: u64 = String::from_utf8_lossy(&du.stdout)
                .split_whitespace()
                .next()
                .and_then(|k| k.parse().ok())
                .unwrap_or(0);
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-d"])
                .arg(tree)
                .arg(out)
                .arg(format!("{}k", kib * 3 / 2 + 16384))
                .stdout(std::process::Stdio::null())
                .status()
        }
        f => panic!("no raw format {f}"),
    }
    .unwrap();
    assert!(st.success(), "{format} of {}", tree.display());
    out.to_path_buf()
}
pub mod engine;
