//! `org.portctl.Run1` on the manager object: `portctl run`, an addition of ours beside the
//! v252 interfaces. The daemon checks the image and resolves the command
//! (`Host::prepare_run`), then has `portctld --run-stage1` started with the caller's terminal
//! or pipes as its standard descriptors: by PID 1, as a transient unit of its own
//! (`portctl-run-*.service`, with the network the profile gives, none of portctld's own
//! restrictions), or, when no service manager is on the bus, as a child of the daemon. Stage 1
//! creates the namespaces and stage 2 builds the tree and executes the command
//! (`portctl_engine::run`, `sys::sandbox`). The call returns the command's exit status. A
//! caller that goes away takes its run with it (docs/security.md, "portctl run").

use std::collections::HashMap;
use std::io::BufRead;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use portctl_dbus::error::{self as names, PortableError};
use portctl_dbus::systemd1;
use portctl_engine::run::RunOptions;
use rustix::io::{fcntl_setfd, FdFlags};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{kill_process, Pid, Signal};
use zbus::message::Header;
use zbus::OwnedFd as BusFd;
use zbus::{interface, Connection};

use crate::auth::{authorize, Action};
use crate::state::State;
use portctl_dbus::flags::RunFlags;

/// What a run in progress is: a unit PID 1 runs, or stage 2's host PID.
#[derive(Debug, Clone)]
pub enum Handle {
    Unit(String),
    Pid(i32),
}

/// Runs in progress: token → (caller, handle).
pub type Runs = Arc<Mutex<HashMap<String, (String, Handle)>>>;

pub struct Runner {
    pub state: Arc<State>,
    pub runs: Runs,
}

/// Kills every run in progress (the daemon stops).
pub async fn kill_all(runs: &Runs, conn: &Connection) {
    let all: Vec<Handle> = runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|(_, h)| h.clone())
        .collect();
    for h in all {
        let _ = signal_run(conn, &h, libc::SIGKILL).await;
    }
}

/// Sends `signal` to a run: to every process of its unit (stage 1 ignores interrupts), or to
/// stage 2.
async fn signal_run(conn: &Connection, h: &Handle, signal: i32) -> Result<(), PortableError> {
    match h {
        Handle::Unit(name) => {
            let m = systemd1::ManagerProxy::new(conn).await?;
            m.kill_unit(name, "all", signal).await?;
        }
        Handle::Pid(pid) => {
            let sig = Signal::from_named_raw(signal)
                .ok_or_else(|| PortableError::new(names::INVALID_ARGS, "Bad signal"))?;
            if let Some(pid) = Pid::from_raw(*pid) {
                kill_process(pid, sig).map_err(|e| failed(e.to_string()))?;
            }
        }
    }
    Ok(())
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
        self.start(
            Request {
                image,
                unit,
                command,
                profile,
                flags,
                token,
            },
            [stdin, stdout, stderr],
            conn,
            &hdr,
        )
        .await
    }

    /// Sends `signal` to the command of the caller's run `token`.
    async fn kill(
        &self,
        token: String,
        signal: i32,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), PortableError> {
        self.signal(&token, signal, conn, &hdr).await
    }
}

/// The arguments of `Run` besides the descriptors.
struct Request {
    image: String,
    unit: String,
    command: Vec<String>,
    profile: String,
    flags: u64,
    token: String,
}

impl Runner {
    async fn start(
        &self,
        r: Request,
        fds: [BusFd; 3],
        conn: &Connection,
        hdr: &Header<'_>,
    ) -> Result<i32, PortableError> {
        let Request {
            image,
            unit,
            command,
            profile,
            flags,
            token,
        } = r;
        let _op = self.state.begin();
        let flags = RunFlags::from_bits(flags)?;
        authorize(conn, hdr, Action::Attach).await?;
        let caller = hdr
            .sender()
            .map(|s| s.to_string())
            .ok_or_else(|| failed("No sender"))?;
        let o = RunOptions {
            profile,
            writable: flags.writable,
            dynamic_user: flags.dynamic_user,
        };
        let unit = (!unit.is_empty()).then_some(unit);
        let spec = self
            .state
            .blocking(move |h, _| h.prepare_run(&image, unit.as_deref(), &command, &o))
            .await?;
        tracing::info!(image = %spec.image.display(), argv = ?spec.argv, uid = spec.uid, "run");
        let json = serde_json::to_string(&spec).map_err(|e| failed(e.to_string()))?;
        let runner = RunUnit {
            conn,
            runs: &self.runs,
            token: &token,
            caller: &caller,
        };
        match runner.as_unit(&json, &spec, &fds).await {
            Ok(status) => Ok(status),
            Err(Started::NoServiceManager) => runner.as_child(&json, fds).await,
            Err(Started::Failed(e)) => Err(e),
        }
    }

    async fn signal(
        &self,
        token: &str,
        signal: i32,
        conn: &Connection,
        hdr: &Header<'_>,
    ) -> Result<(), PortableError> {
        let caller = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
        let run = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned();
        let Some((owner, handle)) = run else {
            return Err(failed(format!("No run '{token}'")));
        };
        if owner != caller {
            return Err(PortableError::new(names::ACCESS_DENIED, "Not your run"));
        }
        if Signal::from_named_raw(signal).is_none() {
            return Err(PortableError::new(names::INVALID_ARGS, "Bad signal"));
        }
        signal_run(conn, &handle, signal).await
    }
}

/// Why a run was not started as a unit.
enum Started {
    /// No service manager on the bus: run it as the daemon's child.
    NoServiceManager,
    Failed(PortableError),
}

impl From<PortableError> for Started {
    fn from(e: PortableError) -> Self {
        Self::Failed(e)
    }
}

impl From<zbus::Error> for Started {
    fn from(e: zbus::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// One run being started and waited for.
struct RunUnit<'a> {
    conn: &'a Connection,
    runs: &'a Runs,
    token: &'a str,
    caller: &'a str,
}

impl RunUnit<'_> {
    fn register(&self, h: Handle) {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.token.to_string(), (self.caller.to_string(), h));
    }

    fn unregister(&self) {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.token);
    }

    /// Has PID 1 run stage 1 as a transient service, and waits for it to end.
    async fn as_unit(
        &self,
        json: &str,
        spec: &portctl_engine::run::RunSpec,
        fds: &[BusFd; 3],
    ) -> Result<i32, Started> {
        use std::sync::atomic::{AtomicU64, Ordering};
        use zbus::{Fd, Variant};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "portctl-run-{}-{}.service",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let exe = std::env::current_exe()
            .map_err(|e| failed(format!("Cannot find portctld itself: {e}")))?
            .display()
            .to_string();
        let m = systemd1::ManagerProxy::new(self.conn).await?;
        let path = systemd1::unit_path(&name);
        // Properties read fresh each time; their changes announced by PID 1's signals.
        let unit = systemd1::UnitProxy::builder(self.conn)
            .path(path.as_str())
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let service = systemd1::ServiceProxy::builder(self.conn)
            .path(path.as_str())
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let announced = zbus::fdo::PropertiesProxy::builder(self.conn)
            .destination(systemd1::SERVICE)
            .path(path.as_str())
            .build()
            .await?;
        let mut changes = announced.receive_properties_changed().await?;
        let _ = m.subscribe().await;
        let argv = vec![exe.clone(), "--run-stage1".to_string(), json.to_string()];
        let properties: Vec<systemd1::Property<'_>> = vec![
            (
                "Description",
                Variant::from(format!("portctl run {}", spec.image_name)),
            ),
            ("Type", Variant::from("exec")),
            ("ExecStart", Variant::from(vec![(exe, argv, false)])),
            (
                "StandardInputFileDescriptor",
                Variant::Fd(Fd::from(&fds[0])),
            ),
            (
                "StandardOutputFileDescriptor",
                Variant::Fd(Fd::from(&fds[1])),
            ),
            (
                "StandardErrorFileDescriptor",
                Variant::Fd(Fd::from(&fds[2])),
            ),
            // Kept while we read how it ended; collected after that, failed or not.
            ("AddRef", Variant::from(true)),
            ("CollectMode", Variant::from("inactive-or-failed")),
            ("PrivateNetwork", Variant::from(spec.private_network)),
        ];
        match m
            .start_transient_unit(&name, "fail", &properties, &[])
            .await
        {
            Ok(_) => {}
            Err(e) if crate::pid1::service_manager_absent(&e) => {
                return Err(Started::NoServiceManager)
            }
            Err(e) => return Err(failed(format!("Cannot start the run: {e}")).into()),
        }
        self.register(Handle::Unit(name.clone()));
        // Ended: its main process exited and the unit is inactive (or failed). A timer
        // looks again now and then, in case a signal was missed.
        let ended = async {
            loop {
                let exited = service
                    .exec_main_exit_timestamp_monotonic()
                    .await
                    .unwrap_or(0)
                    != 0;
                let state = unit.active_state().await.unwrap_or_default();
                if exited && matches!(state.as_str(), "inactive" | "failed") {
                    return;
                }
                tokio::select! {
                    _ = changes.next() => {}
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        };
        tokio::select! {
            () = ended => {}
            () = caller_gone(self.conn, self.caller.to_string()) => {
                let _ = m.kill_unit(&name, "all", libc::SIGKILL).await;
                while !matches!(unit.active_state().await.unwrap_or_default().as_str(), "inactive" | "failed" | "") {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
        let (code, status) = match (
            service.exec_main_code().await,
            service.exec_main_status().await,
        ) {
            (Ok(c), Ok(s)) => (c, s),
            (c, s) => {
                tracing::warn!(unit = %name, "cannot read how the run ended: {c:?} {s:?}");
                (0, 0)
            }
        };
        let _ = m.unref_unit(&name).await;
        let _ = m.reset_failed_unit(&name).await;
        self.unregister();
        Ok(if code == systemd1::CLD_EXITED {
            status
        } else {
            128 + status
        })
    }

    /// Runs stage 1 as the daemon's own child (no service manager to ask).
    async fn as_child(&self, json: &str, fds: [BusFd; 3]) -> Result<i32, PortableError> {
        // Stage 2's PID comes back through a pipe whose write end only stage 1 keeps.
        let (pid_read, pid_write) =
            pipe_with(PipeFlags::CLOEXEC).map_err(|e| failed(e.to_string()))?;
        fcntl_setfd(&pid_write, FdFlags::empty()).map_err(|e| failed(e.to_string()))?;
        let [stdin, stdout, stderr] = fds;
        let io = |fd: BusFd| Stdio::from(OwnedFd::from(fd));
        let mut child = tokio::process::Command::new("/proc/self/exe")
            .arg("--run-stage1")
            .arg(json)
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
            self.register(Handle::Pid(pid));
        }
        // The run ends when the command does, or when its caller leaves the bus.
        let gone = caller_gone(self.conn, self.caller.to_string());
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
        self.unregister();
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
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
