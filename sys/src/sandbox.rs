//! The namespaces, mounts and credentials of `portctl run`. Two helper processes do
//! this, never the daemon itself: [`stage1`] leaves the daemon's mount, PID, IPC and UTS
//! namespaces and starts stage 2, the first process of the new PID namespace, which calls
//! [`enter_and_exec`]: it builds the image's tree (the image read-only or under a tmpfs overlay,
//! the host's resolv.conf and machine-id, /proc, a read-only /sys, a minimal /dev, fresh /run,
//! /tmp and /var/tmp), pivots into it, drops to the user, the capability bounding set and
//! `NoNewPrivileges=` of the run, and executes the command. Everything lives in the new mount
//! namespace: when its last process ends, every mount and the loop device go with it.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;

use rustix::fs::{AtFlags, CWD};
use rustix::mount::{
    mount, mount_bind, mount_change, mount_remount, move_mount, open_tree, unmount, MountFlags,
    MountPropagationFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags,
};
use rustix::process::{chdir, pivot_root, Signal};
use rustix::thread::{CapabilitySet, UnshareFlags};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the helper needs, resolved and checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Spec {
    /// The host root the daemon works on (`/` but in tests).
    pub host_root: PathBuf,
    /// The image's path on the host.
    pub image: PathBuf,
    pub image_name: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub uid: u32,
    pub gid: u32,
    /// Capabilities kept in the bounding set (numbers); `None`: all.
    pub capabilities: Option<Vec<u32>>,
    pub no_new_privileges: bool,
    pub writable: bool,
    /// The profile's `PrivateNetwork=`: the command gets a network namespace of its own, with
    /// only a loopback device; otherwise it shares the host's network.
    #[serde(default)]
    pub private_network: bool,
}

/// Stage 1: new mount, PID, IPC and UTS namespaces (and a network namespace with
/// `private_network`) for the children of this (single-threaded helper) process. It must not
/// be called in the daemon.
pub fn stage1_unshare(private_network: bool) -> io::Result<()> {
    let mut flags =
        UnshareFlags::NEWNS | UnshareFlags::NEWPID | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS;
    if private_network {
        flags |= UnshareFlags::NEWNET;
    }
    // SAFETY: no `UnshareFlags::FILES`: the fd table stays shared as it was, so the concern
    // of `unshare_unsafe` (threads seeing fds of an unshared table) does not arise; the
    // helper has one thread.
    unsafe {
        rustix::thread::unshare_unsafe(flags)?;
    }
    // Nothing done in the new mount namespace propagates back to the host.
    mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )?;
    Ok(())
}

/// Ignores SIGINT, SIGTERM, SIGHUP and SIGQUIT in this process (stage 1, after it started
/// stage 2: dispositions are per process, and stage 2 has exec'd with its own).
pub fn ignore_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: SIG_IGN installs no handler; signal() only changes this process's
        // disposition of a valid signal number.
        unsafe {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
}

/// Ends this process when its parent does (the daemon, or stage 1).
pub fn die_with_parent() -> io::Result<()> {
    Ok(rustix::process::set_parent_process_death_signal(Some(
        Signal::KILL,
    ))?)
}

fn tmpfs(target: &str, options: &CStr, flags: MountFlags) -> io::Result<()> {
    Ok(mount("tmpfs", target, "tmpfs", flags, Some(options))?)
}

fn ensure_file(path: &str) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map(drop)
}

/// Stage 2 (PID 1 of the new namespace): builds the tree from `image` (an fd of the image's
/// root: a directory or a detached mount), enters it and executes the command. Returns only
/// on failure.
pub fn enter_and_exec(spec: &Spec, image: &OwnedFd) -> io::Error {
    match build_and_enter(spec, image) {
        Ok(()) => {}
        Err(e) => return e,
    }
    let mut cmd = std::process::Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    cmd.exec()
}

fn build_and_enter(spec: &Spec, image: &OwnedFd) -> io::Result<()> {
    let plain = MountFlags::NOSUID | MountFlags::NODEV;
    // A scratch tmpfs for the tree (this namespace's /tmp).
    tmpfs("/tmp", c"mode=0700,size=8m", plain)?;
    std::fs::create_dir("/tmp/root")?;
    // The image: a clone of its tree, executable, read-only unless under an overlay.
    let tree = open_tree(
        image.as_fd(),
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_EMPTY_PATH,
    )?;
    let root = "/tmp/root";
    if spec.writable {
        std::fs::create_dir("/tmp/lower")?;
        move_mount(
            tree.as_fd(),
            "",
            CWD,
            "/tmp/lower",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        std::fs::create_dir("/tmp/rw")?;
        tmpfs("/tmp/rw", c"mode=0755", plain)?;
        std::fs::create_dir("/tmp/rw/upper")?;
        std::fs::create_dir("/tmp/rw/work")?;
        mount(
            "overlay",
            root,
            "overlay",
            plain,
            Some(c"lowerdir=/tmp/lower,upperdir=/tmp/rw/upper,workdir=/tmp/rw/work"),
        )?;
    } else {
        move_mount(
            tree.as_fd(),
            "",
            CWD,
            root,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        mount_remount(root, MountFlags::BIND | MountFlags::RDONLY | plain, c"")?;
    }
    let at = |p: &str| format!("{root}{p}");
    mount(
        "proc",
        at("/proc").as_str(),
        "proc",
        plain | MountFlags::NOEXEC,
        None::<&CStr>,
    )?;
    mount(
        "sysfs",
        at("/sys").as_str(),
        "sysfs",
        plain | MountFlags::NOEXEC | MountFlags::RDONLY,
        None::<&CStr>,
    )?;
    tmpfs(
        &at("/dev"),
        c"mode=0755,size=64k",
        MountFlags::NOSUID | MountFlags::NOEXEC,
    )?;
    for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = at(&format!("/dev/{dev}"));
        ensure_file(&target)?;
        mount_bind(format!("/dev/{dev}").as_str(), target.as_str())?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, at(&format!("/dev/{link}")))?;
    }
    std::fs::create_dir(at("/dev/shm"))?;
    tmpfs(&at("/dev/shm"), c"mode=1777", plain)?;
    tmpfs(&at("/run"), c"mode=0755", plain)?;
    tmpfs(&at("/tmp"), c"mode=1777", plain)?;
    tmpfs(&at("/var/tmp"), c"mode=1777", plain)?;
    for file in ["/etc/resolv.conf", "/etc/machine-id"] {
        // The host's file (under the daemon's host root, `/` but in tests).
        let host = spec.host_root.join(file.trim_start_matches('/'));
        if host.exists() {
            let target = at(file);
            mount_bind(&host, target.as_str())?;
            mount_remount(
                target.as_str(),
                MountFlags::BIND | MountFlags::RDONLY | plain,
                c"",
            )?;
        }
    }
    // Into the tree; the old root goes.
    chdir(root)?;
    pivot_root(".", ".")?;
    unmount(".", UnmountFlags::DETACH)?;
    chdir("/")?;
    let _ = rustix::system::sethostname(spec.image_name.as_bytes());
    // The bounding set, then the user (dropping capabilities needs CAP_SETPCAP).
    if let Some(keep) = &spec.capabilities {
        for cap in 0..64u32 {
            if keep.contains(&cap) {
                continue;
            }
            let set = CapabilitySet::from_bits_retain(1u64 << cap);
            if rustix::thread::capability_is_in_bounding_set(set).unwrap_or(false) {
                rustix::thread::remove_capability_from_bounding_set(set)?;
            }
        }
    }
    if spec.no_new_privileges {
        rustix::thread::set_no_new_privs(true)?;
    }
    if spec.uid != 0 || spec.gid != 0 {
        rustix::thread::set_thread_groups(&[])?;
        let gid = rustix::process::Gid::from_raw(spec.gid);
        let uid = rustix::process::Uid::from_raw(spec.uid);
        rustix::thread::set_thread_res_gid(gid, gid, gid)?;
        rustix::thread::set_thread_res_uid(uid, uid, uid)?;
    }
    chdir(spec.workdir.as_str())?;
    let _ = AtFlags::empty();
    Ok(())
}

/// Takes the descriptor `n` that the daemon left open for this helper (named on its command
/// line); `None` when it is not an open descriptor above the standard ones.
pub fn inherited_fd(n: i32) -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_GETFD only reads the descriptor's flags; any number is fine to ask about.
    if n < 3 || unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: `n` is open (checked above), was handed to this process for it to own, and
    // nothing else in this single-threaded helper uses or closes it.
    Some(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(n) }))
}
