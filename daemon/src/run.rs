//! `org.portctl.Run1` on the manager object: `portctl run` (issue 11), an addition of ours
//! beside the v252 interfaces. The daemon checks the image and resolves the command
//! (`Host::prepare_run`), then starts `portctld --run-stage1` with the caller's terminal or
//! pipes as its standard descriptors; stage 1 creates the namespaces and stage 2 builds the
//! tree and executes the command (`portctl_engine::run`, `sys::sandbox`). The call returns the
//! command's exit status. A caller that goes away takes its run with it.

use std::collections::HashMap;
use std::io::BufRead;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use portctl_dbus::error::{self as names, PortableError};
use portctl_engine::run::RunOptions;
use rustix::io::{fcntl_setfd, FdFlags};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{kill_process, Pid, Signal};
use zbus::message::Header;
use zbus::OwnedFd as BusFd;
use zbus::{interface, Connection};

use crate::auth::{authorize, Action};
use crate::state::State;

/// `flags` of `Run`: a writable overlay over the image.
pub const RUN_WRITABLE: u64 = 1 << 0;
/// `flags` of `Run`: a dynamic user even where the profile does not ask for one.
pub const RUN_DYNAMIC_USER: u64 = 1 << 1;

/// Runs in progress: token → (caller, host PID of stage 2).
pub type Runs = Arc<Mutex<HashMap<String, (String, i32)>>>;

pub struct Runner {
    pub state: Arc<State>,
    pub runs: Runs,
}

/// Kills every run in progress (the daemon stops).
pub fn kill_all(runs: &Runs) {
    for (_, pid) in runs.lock().unwrap_or_else(|e| e.into_inner()).values() {
        if let Some(pid) = Pid::from_raw(*pid) {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
}

fn failed(message: impl Into<String>) -> PortableError {
    PortableError::new(names::FAILED, message)
}

#[interface(name = "org.portctl.Run1")]
impl Runner {
    /// Runs `unit`'s `ExecStart=` or `command` from `image` with the given standard
    /// descriptors; returns the exit status (128 + N when killed by signal N). `token` names
    /// the run for `Kill`.
    #[allow(clippy::too_many_arguments)]
    #[zbus(out_args("status"))]
    async fn run(
        &self,
        image: String,
        unit: String,
        command: Vec<String>,
        profile: String,
        flags: u64,
        token: String,
        stdin: BusFd,
        stdout: BusFd,
        stderr: BusFd,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<i32, PortableError> {
        let _op = self.state.begin();
        if flags & !(RUN_WRITABLE | RUN_DYNAMIC_USER) != 0 {
            return Err(PortableError::new(
                names::INVALID_ARGS,
                format!("Invalid 'flags' parameter '{flags}'"),
            ));
        }
        authorize(conn, &hdr, Action::Attach).await?;
        let caller = hdr
            .sender()
            .map(|s| s.to_string())
            .ok_or_else(|| failed("No sender"))?;
        let o = RunOptions {
            profile,
            writable: flags & RUN_WRITABLE != 0,
            dynamic_user: flags & RUN_DYNAMIC_USER != 0,
        };
        let unit = (!unit.is_empty()).then_some(unit);
        let spec = self
            .state
            .blocking(move |h, _| h.prepare_run(&image, unit.as_deref(), &command, &o))
            .await?;
        tracing::info!(image = %spec.image.display(), argv = ?spec.argv, uid = spec.uid, "run");
        let json = serde_json::to_string(&spec).map_err(|e| failed(e.to_string()))?;
        // Stage 2's PID comes back through a pipe whose write end only stage 1 keeps.
        let (pid_read, pid_write) =
            pipe_with(PipeFlags::CLOEXEC).map_err(|e| failed(e.to_string()))?;
        fcntl_setfd(&pid_write, FdFlags::empty()).map_err(|e| failed(e.to_string()))?;
        let io = |fd: BusFd| Stdio::from(OwnedFd::from(fd));
        let mut child = tokio::process::Command::new("/proc/self/exe")
            .arg("--run-stage1")
            .arg(&json)
            .arg("--pid-fd")
            .arg(pid_write.as_raw_fd().to_string())
            .stdin(io(stdin))
            .stdout(io(stdout))
            .stderr(io(stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("Cannot start the run: {e}")))?;
        drop(pid_write);
        let stage2 = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(std::fs::File::from(pid_read)).read_line(&mut line);
            line.trim().parse::<i32>().ok()
        })
        .await
        .ok()
        .flatten();
        if let Some(pid) = stage2 {
            self.runs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(token.clone(), (caller.clone(), pid));
        }
        // The run ends when the command does, or when its caller leaves the bus.
        let gone = caller_gone(conn, caller);
        let status = tokio::select! {
            s = child.wait() => s.map_err(|e| failed(e.to_string()))?,
            () = gone => {
                if let Some(pid) = stage2.and_then(Pid::from_raw) {
                    let _ = kill_process(pid, Signal::KILL);
                }
                let _ = child.kill().await;
                child.wait().await.map_err(|e| failed(e.to_string()))?
            }
        };
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token);
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }

    /// Sends `signal` to the command of the caller's run `token`.
    async fn kill(
        &self,
        token: String,
        signal: i32,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), PortableError> {
        let caller = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
        let run = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&token)
            .cloned();
        let Some((owner, pid)) = run else {
            return Err(failed(format!("No run '{token}'")));
        };
        if owner != caller {
            return Err(PortableError::new(names::ACCESS_DENIED, "Not your run"));
        }
        let sig = Signal::from_named_raw(signal)
            .ok_or_else(|| PortableError::new(names::INVALID_ARGS, "Bad signal"))?;
        if let Some(pid) = Pid::from_raw(pid) {
            kill_process(pid, sig).map_err(|e| failed(e.to_string()))?;
        }
        Ok(())
    }
}

/// Resolves when `name` has left the bus.
async fn caller_gone(conn: &Connection, name: String) {
    let Ok(dbus) = zbus::fdo::DBusProxy::new(conn).await else {
        return std::future::pending().await;
    };
    let Ok(mut changes) = dbus
        .receive_name_owner_changed_with_args(&[(0, name.as_str())])
        .await
    else {
        return std::future::pending().await;
    };
    // (It may have left before the match was in place.)
    if let Ok(false) = dbus
        .name_has_owner(name.as_str().try_into().expect("unique name"))
        .await
    {
        return;
    }
    while let Some(c) = changes.next().await {
        if let Ok(args) = c.args() {
            if args.new_owner().is_none() {
                return;
            }
        }
    }
    std::future::pending().await
}
