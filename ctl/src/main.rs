//! portctl: the command-line client of portctl, compatible with systemd 252's portablectl.

mod agent;
mod bus;
mod format;
mod help;
mod pid1;
mod progress;
mod run;
mod speak;
mod validate;
mod verbs;

use portctl_engine::version::Version;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "portctl",
    version,
    about = "Attach, detach and inspect portable service images",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Do not pipe output into a pager
    #[arg(long, global = true)]
    no_pager: bool,
    /// Do not show the headers and footers
    #[arg(long, global = true)]
    no_legend: bool,
    /// Do not ask for system passwords
    #[arg(long, global = true)]
    no_ask_password: bool,
    /// Operate on remote host
    #[arg(short = 'H', long, global = true, value_name = "[USER@]HOST")]
    host: Option<String>,
    /// Operate on local container
    #[arg(short = 'M', long, global = true, value_name = "CONTAINER")]
    machine: Option<String>,
    /// Suppress informational messages
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Pick security profile for portable service
    #[arg(short, long, global = true, default_value = "default")]
    profile: String,
    /// Pick copying or symlinking of resources (auto, copy, symlink, mixed)
    #[arg(long, global = true, value_name = "MODE")]
    copy: Option<String>,
    /// Attach portable service until next reboot only
    #[arg(long, global = true)]
    runtime: bool,
    /// Don't reload the system and service manager
    #[arg(long, global = true)]
    no_reload: bool,
    /// When inspecting include unit and os-release file contents
    #[arg(long, global = true)]
    cat: bool,
    /// Immediately enable/disable the portable service after attach/detach
    #[arg(long, global = true)]
    enable: bool,
    /// Immediately start/stop the portable service after attach/before detach
    #[arg(long, global = true)]
    now: bool,
    /// Don't block waiting for attach --now to complete
    #[arg(long, global = true)]
    no_block: bool,
    /// Extension image
    #[arg(long, global = true, value_name = "PATH")]
    extension: Vec<String>,
    /// Skip the checks against the host (units there already, or active) and the image
    /// requirements (mount points a read-only image lacks, units that widen the profile);
    /// with --extension, take an extension-release file of another name
    #[arg(long, global = true)]
    force: bool,
    /// With detach --now: also remove the units' state, cache, logs and runtime directories
    #[arg(long, global = true)]
    clean: bool,
    /// is-attached: exit with status 1 when the image is detached
    #[arg(long, global = true)]
    fail_if_detached: bool,
    /// Connect to this bus instead of the system bus
    #[arg(long, global = true, value_name = "ADDRESS")]
    bus_address: Option<String>,
    /// Behave as this systemd version's portablectl, and predict for it (validate), whatever
    /// the host runs
    #[arg(long, global = true, value_name = "N", value_parser = parse_version)]
    systemd_version: Option<Version>,
    /// Print machine-readable JSON (pretty or short) instead of text (docs/json.md)
    #[arg(long, global = true, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "pretty")]
    json: Option<JsonFormat>,
    /// The system scope (the default), as portablectl 260 and later accept it
    #[arg(long, global = true, hide = true, overrides_with = "user")]
    system: bool,
    /// The user scope of portablectl 260 and later: not served by portctl yet
    #[arg(long, global = true, hide = true, overrides_with = "system")]
    user: bool,
}

fn parse_version(s: &str) -> Result<Version, String> {
    Version::parse(s).ok_or_else(|| format!("not a systemd version: {s}"))
}

/// `--json=` formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum JsonFormat {
    Pretty,
    Short,
}

#[derive(Subcommand)]
enum Command {
    /// List available portable service images
    List,
    /// Attach the specified portable service image
    #[command(override_usage = "portctl attach [OPTIONS] NAME|PATH [PREFIX...]")]
    Attach(verbs::ImageArgs),
    /// Detach the specified portable service image
    #[command(override_usage = "portctl detach [OPTIONS] NAME|PATH [PREFIX...]")]
    Detach(verbs::ImageArgs),
    /// Reattach the specified portable service image
    #[command(override_usage = "portctl reattach [OPTIONS] NAME|PATH [PREFIX...]")]
    Reattach(verbs::ImageArgs),
    /// Show details of specified portable service image
    #[command(override_usage = "portctl inspect [OPTIONS] NAME|PATH [PREFIX...]")]
    Inspect(verbs::ImageArgs),
    /// Query if portable service image is attached
    #[command(override_usage = "portctl is-attached [OPTIONS] NAME|PATH")]
    IsAttached(verbs::ImageArgs),
    /// Mark or unmark portable service image read-only
    #[command(override_usage = "portctl read-only [OPTIONS] NAME|PATH [BOOL]")]
    ReadOnly(verbs::ImageArgs),
    /// Remove a portable service image
    #[command(override_usage = "portctl remove [OPTIONS] NAME|PATH...")]
    Remove(verbs::ImageArgs),
    /// Set image or pool size limit (disk quota)
    #[command(override_usage = "portctl set-limit [OPTIONS] [NAME|PATH] LIMIT")]
    SetLimit(verbs::ImageArgs),
    /// Check an image against the portable-image requirements, offline (no daemon needed)
    Validate(validate::Args),
    /// Run a unit's command, or a command, from an image without attaching it
    Run(run::Args),
    /// Print the shell completions for SHELL (used by make install)
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// Write the manual pages (portctl.1 and one per verb) into DIR (used by make install)
    #[command(hide = true)]
    Man { dir: std::path::PathBuf },
}

/// The options each verb takes (beyond --help); the others are left out of its `--help`,
/// although, as with portablectl, every option may be given with every verb.
fn verb_options(verb: &str) -> &'static [&'static str] {
    const REMOTE: [&str; 4] = ["host", "machine", "bus_address", "quiet"];
    match verb {
        "list" => &[
            "no_pager",
            "no_legend",
            "host",
            "machine",
            "bus_address",
            "json",
        ],
        "attach" | "reattach" => &[
            "profile",
            "copy",
            "runtime",
            "no_reload",
            "enable",
            "now",
            "no_block",
            "extension",
            "force",
            "no_ask_password",
            "host",
            "machine",
            "bus_address",
            "quiet",
            "json",
        ],
        "detach" => &[
            "runtime",
            "no_reload",
            "enable",
            "now",
            "extension",
            "force",
            "clean",
            "no_ask_password",
            "host",
            "machine",
            "bus_address",
            "quiet",
            "json",
        ],
        "inspect" => &[
            "cat",
            "extension",
            "force",
            "no_pager",
            "host",
            "machine",
            "bus_address",
            "quiet",
            "json",
        ],
        "is-attached" => &[
            "extension",
            "fail_if_detached",
            "host",
            "machine",
            "bus_address",
            "quiet",
            "json",
        ],
        "read-only" | "remove" | "set-limit" => {
            &["no_ask_password", "host", "machine", "bus_address", "quiet"]
        }
        "validate" => &["profile", "quiet", "json"],
        "run" => &["profile", "no_ask_password", "bus_address", "quiet"],
        _ => &REMOTE,
    }
}

/// The systemd whose portablectl `portctl --help` looks like: `--systemd-version=N`, else the
/// one installed on the host (no bus is asked for a help text), else the newest.
fn help_version(args: &[String]) -> Version {
    let pinned = args.iter().enumerate().find_map(|(i, a)| {
        let v = a.strip_prefix("--systemd-version=").or_else(|| {
            (a == "--systemd-version")
                .then(|| args.get(i + 1).map(String::as_str))
                .flatten()
        })?;
        Version::parse(v)
    });
    pinned
        .or_else(|| portctl_engine::Host::system().ok()?.installed_systemd())
        .unwrap_or(Version::NEWEST)
        .behave_as()
}

/// `portctl VERB --help`: the verb's own options only.
fn verb_help(verb: &str) -> Option<ExitCode> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let keep = verb_options(verb);
    let sub = cmd.find_subcommand_mut(verb)?;
    let hide: Vec<String> = sub
        .get_arguments()
        .filter(|a| a.is_global_set() && !keep.contains(&a.get_id().as_str()))
        .map(|a| a.get_id().to_string())
        .collect();
    let mut sub = sub.clone();
    for id in hide {
        sub = sub.mut_arg(id, |a| a.hide(true));
    }
    let _ = sub.print_help();
    Some(ExitCode::SUCCESS)
}

/// portctl.1 and portctl-VERB.1 for every verb it names (`SEE ALSO`), into `dir`.
fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(dir.join("portctl.1"), page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("portctl-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone())
            .title(name.clone())
            .render(&mut page)?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    // `portctl list | head -1`: a reader that goes away ends portctl quietly (SIGPIPE), as it
    // ends portablectl, instead of a panic on the next write.
    portctl_engine::process::default_sigpipe();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTCTL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        let cmd = <Cli as clap::CommandFactory>::command();
        let verb = args[1..]
            .iter()
            .find(|a| cmd.find_subcommand(a.as_str()).is_some());
        if let Some(verb) = verb {
            if let Some(code) = verb_help(verb) {
                return code;
            }
        } else {
            print!("{}", help::text(help_version(&args)));
            return ExitCode::SUCCESS;
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::InvalidSubcommand => {
                    let verb = e
                        .get(clap::error::ContextKind::InvalidSubcommand)
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    eprintln!("Unknown command verb {verb}.");
                    ExitCode::FAILURE
                }
                _ => {
                    let _ = e.print();
                    ExitCode::FAILURE
                }
            };
        }
    };
    if cli.user {
        eprintln!(
            "portctl serves portable services of the system only: --user (the user scope of systemd 260 and later) is not supported yet."
        );
        return ExitCode::FAILURE;
    }
    let result = match &cli.command {
        Some(Command::Validate(args)) => validate::run(&cli, args),
        Some(Command::Run(args)) => run::run(&cli, args),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                *shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "portctl",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man { dir }) => write_man_pages(dir).map(|()| ExitCode::SUCCESS),
        command => verbs::run(&cli, command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Engine and daemon errors carry their causes in their messages already.
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_scope_options_last_one_wins() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap();
        assert!(parse(&["portctl", "--user", "list"]).user);
        assert!(!parse(&["portctl", "--user", "--system", "list"]).user);
        assert!(parse(&["portctl", "--system", "list", "--user"]).user);
        assert!(!parse(&["portctl", "list"]).user);
    }
}
