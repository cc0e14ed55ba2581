//! `portctl run IMAGE [UNIT] [-- COMMAND...]`: runs a unit's command or any command from an
//! image without attaching it, through portctld's `org.portctl.Run1` (docs/compatibility.md). The
//! terminal (or whatever standard input and outputs are) is handed to the daemon, signals are
//! passed on, and portctl exits with the command's status.

use std::os::fd::AsFd;
use std::process::ExitCode;

use anyhow::anyhow;
use portctl_dbus::flags::RunFlags;
use portctl_dbus::proxy::Run1Proxy;
use tokio::signal::unix::{signal, SignalKind};

use crate::{agent, bus, verbs, Cli};

#[derive(clap::Args)]
pub struct Args {
    /// The image (name or path)
    image: String,
    /// A unit of the image whose ExecStart= runs (with its Environment=, WorkingDirectory=,
    /// User=); without one, the command after `--`
    unit: Option<String>,
    /// The command to run instead of a unit's
    #[arg(last = true)]
    command: Vec<String>,
    /// Put a writable overlay (in memory, discarded at the end) over the image
    #[arg(long)]
    writable: bool,
    /// Run as a dynamic user even where the profile does not ask for one
    #[arg(long)]
    dynamic_user: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<ExitCode> {
    if a.unit.is_none() && a.command.is_empty() {
        anyhow::bail!("Give a unit of the image or a command after '--'.");
    }
    if bus::is_remote(cli) {
        // The terminal goes over the bus as file descriptors, which ssh and
        // systemd-stdio-bridge do not carry.
        anyhow::bail!("portctl run works on the local machine only (no -H, no -M).");
    }
    let image = verbs::determine_image_for_cli(cli, &a.image)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let conn = bus::connect(cli).await?;
        let _agent = agent::open(!cli.no_ask_password, bus::is_remote(cli));
        let token = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let flags = RunFlags {
            writable: a.writable,
            dynamic_user: a.dynamic_user,
        }
        .bits();
        let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
        let runner = Run1Proxy::new(&conn).await?;
        let call = runner.run(
            image.as_str(),
            a.unit.as_deref().unwrap_or(""),
            &a.command,
            cli.profile.as_str(),
            flags,
            token.as_str(),
            zbus::Fd::from(stdin.as_fd()),
            zbus::Fd::from(stdout.as_fd()),
            zbus::Fd::from(stderr.as_fd()),
        );
        tokio::pin!(call);
        let mut signals = [
            (libc::SIGINT, signal(SignalKind::interrupt())?),
            (libc::SIGTERM, signal(SignalKind::terminate())?),
            (libc::SIGHUP, signal(SignalKind::hangup())?),
            (libc::SIGQUIT, signal(SignalKind::quit())?),
        ];
        let mut interrupts = 0;
        loop {
            let forwarded = async {
                let [a, b, c, d] = &mut signals;
                tokio::select! {
                    _ = a.1.recv() => a.0,
                    _ = b.1.recv() => b.0,
                    _ = c.1.recv() => c.0,
                    _ = d.1.recv() => d.0,
                }
            };
            tokio::select! {
                reply = &mut call => {
                    let status = reply.map_err(|e| anyhow!("Run failed: {}", bus::message(e)))?;
                    return Ok(ExitCode::from(status.clamp(0, 255) as u8));
                }
                sig = forwarded => {
                    // The command is the first process of its PID namespace: like an init,
                    // it gets a signal only when it handles it. A second one kills it.
                    interrupts += 1;
                    let sig = if interrupts > 1 { libc::SIGKILL } else { sig };
                    let _ = runner.kill(token.as_str(), sig).await;
                }
            }
        }
    })
}
