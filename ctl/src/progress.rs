//! Progress of a long call on a terminal, as systemd's tools show it: after a second, a line
//! on standard error that says how long it has taken (and, for `--copy=mixed` of a raw image,
//! how much of it is copied), updated every second and cleared at the end. Nothing when
//! standard error is not a terminal.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What is copied: the directory the copy goes to (its temporary name starts with
/// `.#portctl-`), and the size of the image.
pub struct Copy {
    pub into: PathBuf,
    pub total: u64,
}

/// The bytes of the copies in progress in `dir`.
fn copied(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".#portctl-"))
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.blocks() * 512)
        .sum()
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

/// Awaits `call`, showing `label` with the time taken (and `copy`'s progress) while it runs.
pub async fn while_waiting<F: Future>(label: &str, copy: Option<Copy>, call: F) -> F::Output {
    if !std::io::stderr().is_terminal() {
        return call.await;
    }
    tokio::pin!(call);
    let started = tokio::time::Instant::now();
    let mut tick =
        tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    let mut shown = false;
    let out = loop {
        tokio::select! {
            r = &mut call => break r,
            _ = tick.tick() => {
                let secs = started.elapsed().as_secs();
                let what = match &copy {
                    Some(c) => format!(", copied {} of {}", mib(copied(&c.into).min(c.total)), mib(c.total)),
                    None => String::new(),
                };
                eprint!("\r\x1b[K{label}… {secs}s{what}");
                let _ = std::io::stderr().flush();
                shown = true;
            }
        }
    };
    if shown {
        eprint!("\r\x1b[K");
        let _ = std::io::stderr().flush();
    }
    out
}

/// What `--copy=mixed` of the image at `image` (a path on this machine) will copy, and where.
pub fn mixed_copy(image: &str, runtime: bool) -> Option<Copy> {
    let md = std::fs::metadata(image).ok()?;
    md.is_file().then(|| Copy {
        into: PathBuf::from(if runtime {
            "/run/portables"
        } else {
            "/etc/portables"
        }),
        total: md.blocks() * 512,
    })
}
