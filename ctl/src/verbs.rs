//! The verbs of portablectl 252, with its argument handling, output and exit codes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use portctl_dbus::flags::Flags;
use portctl_dbus::proxy::{Authorized, ChangeEntry, ManagerProxy};
use portctl_engine::os_release::OsRelease;
use portctl_engine::parse::names;
use portctl_engine::version::Behaviour;
use zbus::Connection;

use crate::pid1::{self, Jobs};
use crate::{agent, bus, format, progress, speak, Cli, Command};

/// What `GetImageMetadataWithExtensions` returns: path, os-release, extension releases, units.
type Metadata = (
    String,
    Vec<u8>,
    HashMap<String, Vec<u8>>,
    HashMap<String, Vec<u8>>,
);

#[derive(clap::Args)]
pub struct ImageArgs {
    /// The arguments the usage line names.
    #[arg(hide = true)]
    args: Vec<String>,
}

/// portablectl's `determine_image`: a valid image name is passed on as a name (with a
/// warning when the working directory holds a file of that name); anything else is made an
/// absolute, normalized path (symlinks resolved when it exists).
pub fn determine_image(arg: &str, quiet: bool) -> anyhow::Result<String> {
    determine_image_for(arg, quiet, false)
}

/// [`determine_image`] with the options of the command line (quiet, remote).
pub fn determine_image_for_cli(cli: &Cli, arg: &str) -> anyhow::Result<String> {
    determine_image_for(arg, cli.quiet, bus::is_remote(cli))
}

fn determine_image_for(arg: &str, quiet: bool, remote: bool) -> anyhow::Result<String> {
    if names::image_name_is_valid(arg.as_bytes()) && !arg.contains('/') {
        if Path::new(arg).exists() && !quiet {
            eprintln!(
                "Ambiguous invocation: current working directory contains file matching non-path argument '{arg}', ignoring. Prefix argument with './' to force reference to file in current working directory."
            );
        }
        return Ok(arg.to_string());
    }
    if remote {
        bail!("Operations on images by path not supported when connecting to remote systems.");
    }
    let path = match std::fs::canonicalize(arg) {
        Ok(p) => p,
        Err(_) => {
            let abs = std::env::current_dir()
                .map_err(|e| anyhow!("Cannot normalize specified image path '{arg}': {e}"))?
                .join(arg);
            let mut out = PathBuf::from("/");
            for c in abs.components() {
                match c {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(n) => out.push(n),
                    _ => {}
                }
            }
            out
        }
    };
    path.into_os_string()
        .into_string()
        .map_err(|p| anyhow!("Image path '{}' is not valid UTF-8", p.to_string_lossy()))
}

/// portablectl's `determine_matches`: the prefixes given, or the image name cut at the first
/// `_` (without `.raw`); `-` alone means all units (inspect only).
fn determine_matches(
    image: &str,
    prefixes: &[String],
    allow_any: bool,
    quiet: bool,
) -> anyhow::Result<Vec<String>> {
    if prefixes.is_empty() {
        let prefix = names::default_prefix(image).ok_or_else(|| {
            anyhow!("Failed to extract prefix of image name '{image}': Invalid argument")
        })?;
        if !quiet {
            eprintln!("(Matching unit files with prefix '{prefix}'.)");
        }
        return Ok(vec![prefix]);
    }
    if prefixes.len() == 1 && prefixes[0] == "-" {
        if !allow_any {
            bail!("Refusing all unit file match.");
        }
        if !quiet {
            eprintln!("(Matching all unit files.)");
        }
        return Ok(Vec::new());
    }
    if !quiet {
        let list = prefixes
            .iter()
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let plural = prefixes.len() > 1 || !speak::has(Behaviour::OnePrefixSingular);
        let es = if plural { "es" } else { "" };
        eprintln!("(Matching unit files with prefix{es} {list}.)");
    }
    Ok(prefixes.to_vec())
}

/// systemd 262's second try when no prefix was given and the image name's matched nothing:
/// the prefixes of the image's os-release (`PORTABLE_PREFIXES=`), if it has any.
async fn os_release_prefixes(
    cli: &Cli,
    m: &ManagerProxy<'_>,
    image: &str,
    given: &[String],
    error: &zbus::Error,
) -> Option<Vec<String>> {
    let no_match = portctl_dbus::error::name_of(error).as_deref()
        == Some(portctl_dbus::error::NO_MATCHING_UNIT_FILES);
    if !given.is_empty() || !no_match || !speak::has(Behaviour::PortablePrefixesRetry) {
        return None;
    }
    let release = m.get_image_os_release(image).await.ok()?;
    let prefixes: Vec<String> = release
        .get("PORTABLE_PREFIXES")?
        .split_whitespace()
        .map(String::from)
        .collect();
    if prefixes.is_empty() {
        return None;
    }
    if !cli.quiet {
        eprintln!("(No matching unit files found with the image name prefix, retrying with PORTABLE_PREFIXES= from os-release.)");
    }
    determine_matches(image, &prefixes, false, cli.quiet).ok()
}

/// The `--extension` arguments as portablectl passes them: names as they are, paths made
/// absolute and normalized.
fn extensions(cli: &Cli) -> anyhow::Result<Vec<String>> {
    cli.extension
        .iter()
        .map(|e| determine_image_for(e, true, bus::is_remote(cli)))
        .collect()
}

/// The Manager's calls that may need authorization: interactive unless `--no-ask-password`.
fn authorized<'a>(cli: &Cli, m: &'a ManagerProxy<'a>) -> Authorized<'a> {
    Authorized::new(m, !cli.no_ask_password)
}

/// Prints `value` as JSON when `--json` was given; tells whether it did.
fn json(cli: &Cli, value: impl FnOnce() -> serde_json::Value) -> bool {
    if cli.json.is_none() {
        return false;
    }
    let value = value();
    match cli.json {
        Some(crate::JsonFormat::Pretty) => {
            println!("{}", serde_json::to_string_pretty(&value).expect("JSON"))
        }
        Some(crate::JsonFormat::Short) => println!("{value}"),
        None => return false,
    }
    true
}

fn changes_json(changes: &[ChangeEntry]) -> serde_json::Value {
    changes
        .iter()
        .map(|(t, p, src)| serde_json::json!({"type": t, "path": p, "source": src}))
        .collect()
}

pub fn print_changes(changes: &[ChangeEntry], quiet: bool) {
    if quiet {
        return;
    }
    for (kind, path, source) in changes {
        match kind.as_str() {
            "symlink" => eprintln!("Created symlink {path} \u{2192} {source}."),
            "copy" if source.is_empty() => eprintln!("Copied {path}."),
            "copy" => eprintln!("Copied {source} \u{2192} {path}."),
            "unlink" => eprintln!("Removed {path}."),
            "write" => eprintln!("Written {path}."),
            "mkdir" => eprintln!("Created directory {path}."),
            _ => eprintln!("Unexpected change: {kind}/{path}/{source}"),
        }
    }
}

fn copy_mode(cli: &Cli) -> anyhow::Result<Option<&'static str>> {
    Ok(Some(match cli.copy.as_deref() {
        None | Some("auto") => "",
        Some("copy") => "copy",
        Some("symlink") => "symlink",
        Some("mixed") => "mixed",
        Some("help") => return Ok(None),
        Some(other) => bail!("Failed to parse --copy= argument: {other}"),
    }))
}

/// systemd's `parse_size` (base 1024), and `-`, `none`, `infinity` for no limit.
fn parse_size(s: &str) -> anyhow::Result<u64> {
    if matches!(s, "-" | "none" | "infinity") {
        return Ok(u64::MAX);
    }
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let factor: u64 = match suffix.trim() {
        "" | "B" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        "P" => 1 << 50,
        "E" => 1 << 60,
        _ => bail!("Failed to parse size '{s}': Invalid argument"),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| anyhow!("Failed to parse size '{s}': Invalid argument"))?;
    let bytes = value * factor as f64;
    if !(0.0..1.8e19).contains(&bytes) {
        bail!("Failed to parse size '{s}': Numerical result out of range");
    }
    Ok(bytes as u64)
}

fn parse_boolean(s: &str) -> anyhow::Result<bool> {
    match s {
        "1" | "yes" | "y" | "true" | "t" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Ok(false),
        _ => bail!("Failed to parse read-only boolean: {s}"),
    }
}

fn args_between(a: &ImageArgs, min: usize, max: usize) -> anyhow::Result<&[String]> {
    if a.args.len() < min {
        bail!("Too few arguments.");
    }
    if a.args.len() > max {
        bail!("Too many arguments.");
    }
    Ok(&a.args)
}

/// The flags of the `*WithExtensions` calls: `--force` is FORCE_ATTACH and FORCE_EXTENSION,
/// as portablectl sends them.
fn flags(cli: &Cli) -> u64 {
    Flags {
        runtime: cli.runtime,
        force_attach: cli.force,
        force_extension: cli.force,
    }
    .bits()
}

pub fn run(cli: &Cli, command: &Option<Command>) -> anyhow::Result<ExitCode> {
    // --profile=help and --copy=help answer before anything else, as portablectl does.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        if cli.profile == "help" {
            let conn = bus::connect(cli).await?;
            let m = ManagerProxy::new(&conn).await?;
            let profiles = m
                .profiles()
                .await
                .map_err(|e| anyhow!("Failed to acquire list of profiles: {}", bus::message(e)))?;
            eprintln!("Available unit profiles:");
            for p in profiles {
                println!("{p}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        if copy_mode(cli)?.is_none() {
            for m in ["auto", "copy", "symlink", "mixed"] {
                println!("{m}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        if !names::filename_is_valid(cli.profile.as_bytes()) {
            if speak::has(Behaviour::ProfileRefusals) {
                bail!("Profile name '{}' is not valid.", cli.profile);
            }
            bail!("Unit profile name not valid: {}", cli.profile);
        }
        let conn = bus::connect(cli).await?;
        speak::decide(&conn, cli.systemd_version).await;
        // The verbs that may need authorization ask through a polkit agent on a terminal.
        let _agent = match command {
            Some(
                Command::Attach(_)
                | Command::Detach(_)
                | Command::Reattach(_)
                | Command::ReadOnly(_)
                | Command::Remove(_)
                | Command::SetLimit(_),
            ) => agent::open(!cli.no_ask_password, bus::is_remote(cli)),
            _ => None,
        };
        match command {
            None | Some(Command::List) => list(cli, &conn).await,
            Some(Command::Attach(a)) => attach(cli, &conn, a).await,
            Some(Command::Detach(a)) => detach(cli, &conn, a).await,
            Some(Command::Reattach(a)) => reattach(cli, &conn, a).await,
            Some(Command::Inspect(a)) => inspect(cli, &conn, a).await,
            Some(Command::IsAttached(a)) => is_attached(cli, &conn, a).await,
            Some(Command::ReadOnly(a)) => read_only(cli, &conn, a).await,
            Some(Command::Remove(a)) => remove(cli, &conn, a).await,
            Some(Command::SetLimit(a)) => set_limit(cli, &conn, a).await,
            Some(
                Command::Validate(_)
                | Command::Run(_)
                | Command::Completions { .. }
                | Command::Man { .. },
            ) => {
                unreachable!("handled in main")
            }
        }
    })
}

/// Warns about interrupted operations that portctld could neither complete nor roll back
/// (systemd-portabled has no such property: nothing to say then).
async fn warn_set_aside(conn: &Connection) {
    let Ok(p) = portctl_dbus::proxy::PortctlManagerProxy::new(conn).await else {
        return;
    };
    if let Ok(journals) = p.set_aside_journals().await {
        for j in journals {
            eprintln!(
                "Warning: an interrupted operation could be neither completed nor rolled back; its journal is {j} (see portctld's log)."
            );
        }
    }
}

async fn list(cli: &Cli, conn: &Connection) -> anyhow::Result<ExitCode> {
    warn_set_aside(conn).await;
    let m = ManagerProxy::new(conn).await?;
    let mut images = m
        .list_images()
        .await
        .map_err(|e| anyhow!("Failed to list images: {}", bus::message(e)))?;
    images.sort_by(|a, b| a.0.cmp(&b.0));
    let as_json = || {
        images
            .iter()
            .map(|(name, kind, ro, crtime, mtime, usage, state, path)| {
                serde_json::json!({
                    "name": name, "type": kind, "read_only": ro, "crtime_usec": crtime,
                    "mtime_usec": mtime, "usage": usage, "state": state, "object_path": path.as_str(),
                })
            })
            .collect()
    };
    if json(cli, as_json) {
        return Ok(ExitCode::SUCCESS);
    }
    if images.is_empty() {
        if !cli.no_legend {
            println!("No images.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|(name, kind, ro, crtime, mtime, usage, state, _)| {
            vec![
                name.clone(),
                kind.clone(),
                if *ro { "yes" } else { "no" }.to_string(),
                format::timestamp(*crtime),
                format::timestamp(*mtime),
                format::bytes(*usage),
                state.clone(),
            ]
        })
        .collect();
    let mut out = format::table(
        &["NAME", "TYPE", "RO", "CRTIME", "MTIME", "USAGE", "STATE"],
        &rows,
        !cli.no_legend,
    );
    if !cli.no_legend {
        out.push_str(&format!("\n{} images listed.\n", images.len()));
    }
    // One write, as portablectl's buffered stdout makes it: `portctl list | grep -q X` must
    // not lose the pipe to a reader that has seen enough (SIGPIPE on a second write).
    std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// One attach call (retried by [`attach`] with the os-release's prefixes), with the progress
/// of a `--copy=mixed` copy.
async fn attach_call(
    cli: &Cli,
    m: &ManagerProxy<'_>,
    image: &str,
    exts: &[&str],
    matches: &[String],
    copy: &str,
    plain: bool,
) -> zbus::Result<Vec<(String, String, String)>> {
    let matches: Vec<&str> = matches.iter().map(String::as_str).collect();
    let attaching = async {
        if plain {
            authorized(cli, m)
                .attach_image(image, &matches, &cli.profile, cli.runtime, copy)
                .await
        } else {
            authorized(cli, m)
                .attach_image_with_extensions(image, exts, &matches, &cli.profile, copy, flags(cli))
                .await
        }
    };
    let copying = (copy == "mixed")
        .then(|| progress::mixed_copy(image, cli.runtime))
        .flatten();
    progress::while_waiting(&format!("Attaching {image}"), copying, attaching).await
}

async fn attach(cli: &Cli, conn: &Connection, a: &ImageArgs) -> anyhow::Result<ExitCode> {
    let args = args_between(a, 1, usize::MAX)?;
    let image = determine_image_for(&args[0], cli.quiet, bus::is_remote(cli))?;
    let matches = determine_matches(&image, &args[1..], false, cli.quiet)?;
    let copy = copy_mode(cli)?.unwrap_or_default();
    let m = ManagerProxy::new(conn).await?;
    let exts = extensions(cli)?;
    let exts: Vec<&str> = exts.iter().map(String::as_str).collect();
    let plain = cli.extension.is_empty() && !cli.force;
    let method = if plain {
        "AttachImage"
    } else {
        "AttachImageWithExtensions"
    };
    let mut result = attach_call(cli, &m, &image, &exts, &matches, copy, plain).await;
    if let Err(e) = &result {
        if let Some(matches) = os_release_prefixes(cli, &m, &image, &args[1..], e).await {
            result = attach_call(cli, &m, &image, &exts, &matches, copy, plain).await;
        }
    }
    let changes = result.map_err(|e| anyhow!("{method} failed: {}", bus::message(e)))?;
    if !json(
        cli,
        || serde_json::json!({ "changes": changes_json(&changes) }),
    ) {
        print_changes(&changes, cli.quiet);
    }
    if !cli.no_reload {
        bus::reload(conn).await;
    }
    if cli.enable || cli.now {
        let mut jobs = Jobs::subscribe(conn).await?;
        let paths: Vec<&str> = changes
            .iter()
            .filter(|(k, p, _)| k != "unlink" && pid1::is_unit_change(k, p))
            .map(|(_, p, _)| p.as_str())
            .collect();
        if cli.enable {
            for path in &paths {
                pid1::enable(conn, path, cli.runtime, cli.quiet).await;
            }
        }
        let started = if cli.now {
            pid1::start_order(&paths)
        } else {
            Vec::new()
        };
        for path in &started {
            pid1::job(conn, pid1::JobKind::Start, path, &mut jobs, cli.quiet).await;
        }
        if !cli.no_block {
            jobs.wait().await;
            if !cli.quiet {
                let started: Vec<&str> = started.iter().map(String::as_str).collect();
                pid1::report_not_running(conn, &started).await;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn detach(cli: &Cli, conn: &Connection, a: &ImageArgs) -> anyhow::Result<ExitCode> {
    let args = args_between(a, 1, usize::MAX)?;
    let image = determine_image_for(&args[0], cli.quiet, bus::is_remote(cli))?;
    let m = ManagerProxy::new(conn).await?;
    if cli.enable || cli.now {
        // The units to stop and disable come from the image's metadata (the detach call
        // itself takes no prefixes).
        let matches = determine_matches(&image, &args[1..], true, cli.quiet)?;
        let matches: Vec<&str> = matches.iter().map(String::as_str).collect();
        let units = if cli.extension.is_empty() {
            m.get_image_metadata(&image, &matches)
                .await
                .map(|(_, _, u)| u)
        } else {
            let exts = extensions(cli)?;
            let exts: Vec<&str> = exts.iter().map(String::as_str).collect();
            m.get_image_metadata_with_extensions(&image, &exts, &matches, 0)
                .await
                .map(|(_, _, _, u)| u)
        }
        .map_err(|e| anyhow!("Failed to inspect image metadata: {}", bus::message(e)))?;
        let mut names: Vec<&String> = units.keys().collect();
        names.sort();
        let mut jobs = Jobs::subscribe(conn).await?;
        if cli.now {
            let all: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            for name in pid1::stop_order(&all) {
                pid1::job(conn, pid1::JobKind::Stop, name, &mut jobs, cli.quiet).await;
            }
        }
        // Stop jobs are always waited for.
        jobs.wait().await;
        if cli.clean {
            for name in &names {
                pid1::clean(conn, name).await;
            }
        }
        if cli.enable {
            for name in &names {
                pid1::disable(conn, name, cli.runtime, cli.quiet).await;
            }
        }
    }
    let (method, result) = if cli.extension.is_empty() && !cli.force {
        (
            "DetachImage",
            authorized(cli, &m).detach_image(&image, cli.runtime).await,
        )
    } else {
        let exts = extensions(cli)?;
        let exts: Vec<&str> = exts.iter().map(String::as_str).collect();
        (
            "DetachImageWithExtensions",
            authorized(cli, &m)
                .detach_image_with_extensions(&image, &exts, flags(cli))
                .await,
        )
    };
    let changes = result.map_err(|e| anyhow!("{method} failed: {}", bus::message(e)))?;
    if !json(
        cli,
        || serde_json::json!({ "changes": changes_json(&changes) }),
    ) {
        print_changes(&changes, cli.quiet);
    }
    if !cli.no_reload {
        bus::reload(conn).await;
    }
    Ok(ExitCode::SUCCESS)
}

async fn reattach(cli: &Cli, conn: &Connection, a: &ImageArgs) -> anyhow::Result<ExitCode> {
    let args = args_between(a, 1, usize::MAX)?;
    let image = determine_image_for(&args[0], cli.quiet, bus::is_remote(cli))?;
    let matches = determine_matches(&image, &args[1..], false, cli.quiet)?;
    let copy = copy_mode(cli)?.unwrap_or_default();
    let m = ManagerProxy::new(conn).await?;
    let matches: Vec<&str> = matches.iter().map(String::as_str).collect();
    let exts = extensions(cli)?;
    let exts: Vec<&str> = exts.iter().map(String::as_str).collect();
    let plain = cli.extension.is_empty() && !cli.force;
    let method = if plain {
        "ReattachImage"
    } else {
        "ReattachImageWithExtensions"
    };
    let reattaching = async {
        if plain {
            authorized(cli, &m)
                .reattach_image(&image, &matches, &cli.profile, cli.runtime, copy)
                .await
        } else {
            authorized(cli, &m)
                .reattach_image_with_extensions(
                    &image,
                    &exts,
                    &matches,
                    &cli.profile,
                    copy,
                    flags(cli),
                )
                .await
        }
    };
    let copying = (copy == "mixed")
        .then(|| progress::mixed_copy(&image, cli.runtime))
        .flatten();
    let result =
        progress::while_waiting(&format!("Reattaching {image}"), copying, reattaching).await;
    let (removed, updated) = result.map_err(|e| anyhow!("{method} failed: {}", bus::message(e)))?;
    if !json(
        cli,
        || serde_json::json!({ "removed": changes_json(&removed), "updated": changes_json(&updated) }),
    ) {
        print_changes(&removed, cli.quiet);
        print_changes(&updated, cli.quiet);
    }
    if !cli.no_reload {
        bus::reload(conn).await;
    }
    if cli.enable || cli.now {
        let mut jobs = Jobs::subscribe(conn).await?;
        if cli.now {
            let gone: Vec<&str> = removed
                .iter()
                .filter(|(k, p, _)| k == "unlink" && pid1::is_unit_change(k, p))
                .map(|(_, p, _)| p.as_str())
                .collect();
            for path in pid1::stop_order(&gone) {
                pid1::job(conn, pid1::JobKind::Stop, path, &mut jobs, cli.quiet).await;
            }
        }
        for (_, path, _) in updated
            .iter()
            .filter(|(k, p, _)| k != "unlink" && pid1::is_unit_change(k, p))
        {
            if cli.enable {
                pid1::enable(conn, path, cli.runtime, cli.quiet).await;
            }
            if cli.now {
                pid1::job(conn, pid1::JobKind::Restart, path, &mut jobs, cli.quiet).await;
            }
        }
        if !cli.no_block {
            jobs.wait().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn field<'a>(o: &'a OsRelease, key: &str) -> &'a str {
    o.non_empty(key).unwrap_or("n/a")
}

async fn inspect(cli: &Cli, conn: &Connection, a: &ImageArgs) -> anyhow::Result<ExitCode> {
    let args = args_between(a, 1, usize::MAX)?;
    let image = determine_image_for(&args[0], cli.quiet, bus::is_remote(cli))?;
    let matches = determine_matches(&image, &args[1..], true, cli.quiet)?;
    let m = ManagerProxy::new(conn).await?;
    let exts = extensions(cli)?;
    let metadata = |matches: Vec<String>| {
        let (m, image, exts) = (&m, &image, &exts);
        async move {
            let matches: Vec<&str> = matches.iter().map(String::as_str).collect();
            // v252 loses the unit list with --force and no extension (docs/compatibility.md,
            // "The client"): not here.
            if cli.extension.is_empty() && !cli.force {
                let (p, o, u) = m.get_image_metadata(image, &matches).await?;
                Ok::<Metadata, zbus::Error>((p, o, HashMap::new(), u))
            } else {
                let exts: Vec<&str> = exts.iter().map(String::as_str).collect();
                let flags = if cli.force { Flags::FORCE_EXTENSION } else { 0 };
                m.get_image_metadata_with_extensions(image, &exts, &matches, flags)
                    .await
            }
        }
    };
    let fetched = match metadata(matches).await {
        Err(e) => match os_release_prefixes(cli, &m, &image, &args[1..], &e).await {
            Some(matches) => metadata(matches).await,
            None => Err(e),
        },
        ok => ok,
    };
    let (path, os_release, extensions, units): Metadata =
        fetched.map_err(|e| anyhow!("Failed to inspect image metadata: {}", bus::message(e)))?;
    let units: BTreeMap<String, Vec<u8>> = units.into_iter().collect();
    {
        let osr = OsRelease::parse(&os_release);
        let pairs: serde_json::Map<String, serde_json::Value> = osr
            .pairs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        let text = |d: &Vec<u8>| serde_json::Value::from(String::from_utf8_lossy(d).into_owned());
        let exts: serde_json::Map<String, serde_json::Value> = extensions
            .iter()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect();
        let units_json: serde_json::Value = if cli.cat {
            units
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        } else {
            units.keys().cloned().collect::<Vec<_>>().into()
        };
        let value = serde_json::json!({
            "image": path,
            "portable_pretty_name": osr.non_empty("PORTABLE_PRETTY_NAME"),
            "pretty_name": osr.non_empty("PRETTY_NAME"),
            "os_release": pairs,
            "extensions": exts,
            "units": units_json,
        });
        if json(cli, || value) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    // What comes from the image is shown with its control characters escaped; `--cat` into
    // a pipe or a file stays byte for byte (docs/security.md, "Output").
    let show = |t: &str| portctl_engine::parse::text::cescape(t);
    let mut out: Vec<u8> = Vec::new();
    if cli.cat {
        let raw = !std::io::IsTerminal::is_terminal(&std::io::stdout());
        let file = |out: &mut Vec<u8>, data: &[u8]| {
            if raw {
                out.extend_from_slice(data);
            } else {
                let text = String::from_utf8_lossy(data);
                out.extend_from_slice(
                    portctl_engine::parse::text::escape(&text, "\n\t").as_bytes(),
                );
            }
        };
        out.extend_from_slice(b"-- OS Release: --\n");
        file(&mut out, &os_release);
        for (name, data) in &extensions {
            out.extend_from_slice(
                format!("\n-- Extension Release: {} --\n", show(name)).as_bytes(),
            );
            file(&mut out, data);
        }
        for (name, data) in &units {
            out.extend_from_slice(format!("\n-- Unit file: {name} --\n").as_bytes());
            file(&mut out, data);
        }
    } else {
        let osr = OsRelease::parse(&os_release);
        let mut text = format!(
            "Image:\n\t{}\nPortable Service:\n\t{}\nOperating System:\n\t{}\n",
            show(&path),
            show(field(&osr, "PORTABLE_PRETTY_NAME")),
            show(field(&osr, "PRETTY_NAME"))
        );
        for (name, data) in &extensions {
            let e = OsRelease::parse(data);
            let f = |k: &str| show(field(&e, k));
            text.push_str(&format!(
                "Extension:\n\t{}\n\tExtension Scope:\n\t\t{}\n\tExtension Compatibility Level:\n\t\t{}\n\tPortable Service:\n\t\t{}\n\tPortable Prefixes:\n\t\t{}\n\tOperating System:\n\t\t{} ({} {})\n",
                show(name),
                f("SYSEXT_SCOPE"),
                f("SYSEXT_LEVEL"),
                f("PORTABLE_PRETTY_NAME"),
                f("PORTABLE_PREFIXES"),
                f("PRETTY_NAME"),
                f("ID"),
                f("VERSION_ID"),
            ));
        }
        if !units.is_empty() {
            text.push_str("Unit files:\n");
            for name in units.keys() {
                text.push_str(&format!("\t{name}\n"));
            }
        }
        out = text.into_bytes();
    }
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(ExitCode::SUCCESS)
}

async fn is_attached(cli: &Cli, conn: &Connection, a: &ImageArgs) -> anyhow::Result<ExitCode> {
    let args = args_between(a, 1, 1)?;
    let image = determine_image_for(&args[0], cli.quiet, bus::is_remote(cli))?;
    let m = ManagerProxy::new(conn).await?;
    let state = if cli.extension.is_empty() {
        m.get_image_state(&image).await
    } else {
        let exts = extensions(cli)?;
        let exts: Vec<&str> = exts.iter().map(String::as_str).collect();
        m.get_image_state_with_extensions(&image, &exts, 0).await
    }
    .map_err(|e| anyhow!("Failed to get image state: {}", bus::message(e)))?;
    if !json(cli, || serde_json::json!({"image": image, "state": state})) && !cli.quiet {
        println!("{state}");
    }
    // Like portablectl, 0 whatever the state, unless asked.
    Ok(if cli.fail_if_detached && state == "detached" {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn read_only(cli: &Cli, conn: &Connection, a: &ImageArgs) -> anyhow::Result<ExitCode> {
    let args = args_between(a, 1, 2)?;
    let ro = match args.get(1) {
        Some(b) => parse_boolean(b)?,
        None => true,
    };
    let m = ManagerProxy::new(conn).await?;
    authorized(cli, &m)
        .mark_image_read_only(&args[0], ro)
        .await
        .map_err(|e| anyhow!("Could not mark image read-only: {}", bus::message(e)))?;
    Ok(ExitCode::SUCCESS)
}

async fn remove(cli: &Cli, conn: &Connection, a: &ImageArgs) -> anyhow::Result<ExitCode> {
    let args = args_between(a, 1, usize::MAX)?;
    let m = ManagerProxy::new(conn).await?;
    for arg in args {
        let image = if speak::has(Behaviour::RemoveRelativePaths) {
            determine_image_for_cli(cli, arg)?
        } else {
            arg.clone()
        };
        authorized(cli, &m)
            .remove_image(&image)
            .await
            .map_err(|e| anyhow!("Could not remove image: {}", bus::message(e)))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_limit(cli: &Cli, conn: &Connection, a: &ImageArgs) -> anyhow::Result<ExitCode> {
    let args = args_between(a, 1, 2)?;
    let m = ManagerProxy::new(conn).await?;
    let r = match args {
        [bytes] => authorized(cli, &m).set_pool_limit(parse_size(bytes)?).await,
        [image, bytes] => {
            authorized(cli, &m)
                .set_image_limit(image, parse_size(bytes)?)
                .await
        }
        _ => unreachable!(),
    };
    r.map_err(|e| anyhow!("Could not set limit: {}", bus::message(e)))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_booleans() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5K").unwrap(), 1536);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("infinity").unwrap(), u64::MAX);
        assert!(parse_size("1X").is_err());
        assert!(parse_boolean("yes").unwrap());
        assert!(!parse_boolean("off").unwrap());
        assert!(parse_boolean("maybe").is_err());
    }
}
