//! portctld: the `org.freedesktop.portable1` service of portctl.
//!
//! Thin by design: each D-Bus method checks its arguments and the caller, then calls one
//! function of the engine (`portctl-engine`) on a blocking thread. On start it finishes or
//! rolls back whatever a crash interrupted; it tells systemd when it is ready, pets the
//! watchdog, exits when idle (D-Bus activation brings it back), and on SIGTERM stops taking
//! calls and lets the ones in flight finish.

mod auth;
mod errors;
mod extra;
mod image;
mod introspect;
mod manager;
mod notify;
mod ops;
mod pid1;
mod run;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use portctl_dbus::{BUS_NAME, MANAGER_PATH};
use portctl_engine::version::Version;
use portctl_engine::Host;
use tokio::signal::unix::{signal, SignalKind};

use crate::manager::{sync_image_objects, Manager};
use crate::pid1::SystemdManager;
use crate::state::State;

#[derive(Parser)]
#[command(
    name = "portctld",
    version,
    about = "The org.freedesktop.portable1 service of portctl"
)]
struct Args {
    /// Connect to this bus instead of the system bus (e.g. unix:path=/run/x/bus).
    #[arg(long, value_name = "ADDRESS")]
    bus_address: Option<String>,
    /// Own this bus name (e.g. to run beside systemd-portabled).
    #[arg(long, value_name = "NAME", default_value = BUS_NAME)]
    bus_name: String,
    /// Work on the host under this root directory (tests, image builds).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Exit after this many seconds without calls; 0 never exits.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    idle_timeout: u64,
    /// Write what this systemd version's portabled writes, whatever PID 1's version is
    /// (image builds, tests). Without it: PID 1's version, the newest known without a PID 1.
    #[arg(long, value_name = "N", value_parser = parse_version)]
    systemd_version: Option<Version>,
    /// (Internal) stage 1 of `portctl run`: the run's specification.
    #[arg(long, hide = true, value_name = "JSON")]
    run_stage1: Option<String>,
    /// (Internal) where stage 1 writes the PID of stage 2.
    #[arg(long, hide = true, value_name = "FD")]
    pid_fd: Option<i32>,
    /// (Internal) stage 2 of `portctl run`.
    #[arg(long, hide = true, value_name = "JSON")]
    run_stage2: Option<String>,
}

fn parse_version(s: &str) -> Result<Version, String> {
    Version::parse(s).ok_or_else(|| format!("not a systemd version: {s}"))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCTLD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        // stderr is the journal: it has its own timestamps and no terminal.
        fmt.without_time()
            .with_ansi(false)
            .with_target(false)
            .init();
    } else {
        fmt.init();
    }
}

fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    // The helpers of `portctl run` (see run.rs): single-threaded, no runtime.
    if let Some(spec) = &args.run_stage1 {
        let pid_out = args.pid_fd.and_then(portctl_engine::run::inherited_fd);
        std::process::exit(portctl_engine::run::run_stage1(spec, pid_out));
    }
    if let Some(spec) = &args.run_stage2 {
        eprintln!("portctl run: {}", portctl_engine::run::run_stage2(spec));
        std::process::exit(127);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let host =
        Host::new(&args.root).with_context(|| format!("cannot open {}", args.root.display()))?;
    // Whatever recovery finds, the daemon serves: a journal it cannot finish is set aside
    // (and `portctl list` warns about it), an unreadable journal directory is logged.
    match host.recover() {
        Ok(recovered) => {
            for r in recovered {
                tracing::warn!(journal = %r.journal.display(), op = %r.op, "interrupted operation {}", r.outcome);
            }
        }
        Err(e) => tracing::error!("cannot recover interrupted operations: {e}"),
    }
    let builder = match &args.bus_address {
        Some(a) => zbus::connection::Builder::address(a.as_str()),
        None => zbus::connection::Builder::system(),
    };
    let conn = builder.build().await.context("cannot connect to the bus")?;
    let state = Arc::new(State::new(
        host,
        SystemdManager::new(
            conn.clone(),
            tokio::runtime::Handle::current(),
            args.systemd_version,
        ),
    ));
    conn.object_server()
        .at(
            MANAGER_PATH,
            Manager {
                state: Arc::clone(&state),
            },
        )
        .await?;
    // Image objects exist before the name is taken, so that a call to one of them that
    // activated portctld finds it; the listings alone name them (no image is opened).
    let runs: run::Runs = Default::default();
    conn.object_server()
        .at(
            MANAGER_PATH,
            run::Runner {
                state: Arc::clone(&state),
                runs: Arc::clone(&runs),
            },
        )
        .await?;
    conn.object_server()
        .at(
            MANAGER_PATH,
            extra::Extra {
                state: Arc::clone(&state),
            },
        )
        .await?;
    let names = state
        .blocking(|h, _| Ok(h.image_names()))
        .await
        .unwrap_or_default();
    sync_image_objects(&state, conn.object_server(), &names, true).await;
    conn.request_name(args.bus_name.as_str())
        .await
        .with_context(|| format!("cannot own the bus name {}", args.bus_name))?;
    tracing::info!(bus_name = %args.bus_name, root = %args.root.display(), "serving");
    notify::notify("READY=1");

    if let Some(period) = notify::watchdog_interval() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                notify::notify("WATCHDOG=1");
            }
        });
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let idle = Duration::from_secs(args.idle_timeout);
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            // dbus-daemon closes the connection of a service that broke its limits (a reply
            // over the message size, say): without a bus there is nobody to serve, and the
            // next call activates a fresh instance.
            () = conn.closed() => { tracing::warn!("the bus closed the connection: exiting"); break; }
            _ = tick.tick() => {
                if args.idle_timeout > 0 && state.in_flight() == 0 && state.idle_for() >= idle {
                    tracing::info!("idle for {}s: exiting", args.idle_timeout);
                    break;
                }
            }
        }
    }
    notify::notify("STOPPING=1");
    // New calls go to the next instance (D-Bus activation); those in flight finish here.
    let _ = conn.release_name(args.bus_name.as_str()).await;
    // Runs of portctl run end with the daemon.
    run::kill_all(&runs, &conn).await;
    while state.in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
