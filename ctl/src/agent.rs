//! The polkit text agent for interactive authorization, started as systemctl and portablectl
//! start it (systemd's `polkit_agent_open`): `pkttyagent --notify-fd N --fallback`, only for a
//! local bus, only when standard input is a terminal, and only until the command ends.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;
use std::process::{Child, Command};

use rustix::io::{fcntl_setfd, FdFlags};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{kill_process, Pid, Signal};

/// Where Debian (and systemd's default `POLKIT_AGENT_BINARY_PATH`) has the agent.
const AGENT: &str = "/usr/bin/pkttyagent";

/// A running agent; stopped (SIGTERM, then reaped) when dropped.
pub struct Agent(Child);

/// Starts the agent when it can ask somebody: no agent for `--no-ask-password`, remote
/// connections or a standard input that is not a terminal. Returns once the agent has
/// registered with polkit (it closes the notify fd then) or has exited. Failing to start it
/// is not an error: the call then goes on without one, as in systemd.
pub fn open(ask_password: bool, remote: bool) -> Option<Agent> {
    if !ask_password || remote || !std::io::stdin().is_terminal() {
        return None;
    }
    let (notify_read, notify_write) = pipe_with(PipeFlags::CLOEXEC).ok()?;
    // Only the agent's end is inherited.
    fcntl_setfd(&notify_write, FdFlags::empty()).ok()?;
    let child = Command::new(AGENT)
        .arg("--notify-fd")
        .arg(notify_write.as_raw_fd().to_string())
        .arg("--fallback")
        .spawn();
    drop(notify_write);
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("cannot start {AGENT}: {e}");
            return None;
        }
    };
    // EOF (or a byte) once the agent is registered, or when it died without registering.
    let mut byte = [0u8; 1];
    let _ = rustix::io::retry_on_intr(|| rustix::io::read(&notify_read, &mut byte));
    Some(Agent(child))
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(pid) = Pid::from_raw(self.0.id() as i32) {
            let _ = kill_process(pid, Signal::TERM);
        }
        let _ = self.0.wait();
    }
}
