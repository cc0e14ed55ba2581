//! portctl: the command-line client of portctl, compatible with systemd 252's portablectl.

mod agent;
mod bus;
mod format;
mod pid1;
mod run;
mod validate;
mod verbs;

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
    /// Skip the checks for units on the host and for matching versions
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
    /// Print machine-readable JSON (pretty or short) instead of text (docs/json.md)
    #[arg(long, global = true, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "pretty")]
    json: Option<JsonFormat>,
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
    Attach(verbs::ImageArgs),
    /// Detach the specified portable service image
    Detach(verbs::ImageArgs),
    /// Reattach the specified portable service image
    Reattach(verbs::ImageArgs),
    /// Show details of specified portable service image
    Inspect(verbs::ImageArgs),
    /// Query if portable service image is attached
    IsAttached(verbs::ImageArgs),
    /// Mark or unmark portable service image read-only
    ReadOnly(verbs::ImageArgs),
    /// Remove a portable service image
    Remove(verbs::ImageArgs),
    /// Set image or pool size limit (disk quota)
    SetLimit(verbs::ImageArgs),
    /// Check an image against the portable-image requirements, offline (no daemon needed)
    Validate(validate::Args),
    /// Run a unit's command, or a command, from an image without attaching it
    Run(run::Args),
    /// Print the shell completions for SHELL (used by make install)
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// Print the man page (used by make install)
    #[command(hide = true)]
    Man,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTCTL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
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
        Some(Command::Man) => clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
            .render(&mut std::io::stdout())
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
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
